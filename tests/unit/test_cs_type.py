"""The CS type comes from the inputs, never from a silent default (lifecycle/registration.resolve_cs_type)."""

from __future__ import annotations

import pytest

from asrctl.errors import AsrctlError
from asrctl.lifecycle.registration import resolve_cs_type
from asrctl.lifecycle.request import RegistrationInput


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"config_file": "/c.json"}, "CSPrime"),
        ({"config_file": "/c.json", "cs_type": "CSPrime"}, "CSPrime"),
        ({"endpoint": "10.0.0.5:8443", "passphrase_file": "/p"}, "CSLegacy"),
        ({"endpoint": "10.0.0.5"}, "CSLegacy"),  # the passphrase is checked later (ASRCTL-E050)
        ({"passphrase_stdin": True}, "CSLegacy"),
        ({"endpoint": "10.0.0.5", "cs_type": "CSLegacy"}, "CSLegacy"),
        ({"cs_type": "CSPrime"}, "CSPrime"),  # modernized install: prints the agent config input
        ({"cs_type": "CSLegacy"}, "CSLegacy"),
        ({"no_register": True, "cs_type": "CSPrime"}, "CSPrime"),
        ({"no_register": True, "cs_type": "CSLegacy"}, "CSLegacy"),
        ({"config_file": "/c.json", "cs_type": "CSLegacy"}, "ASRCTL-E086"),
        ({"endpoint": "10.0.0.5", "cs_type": "CSPrime"}, "ASRCTL-E086"),
        ({"config_file": "/c.json", "endpoint": "10.0.0.5"}, "ASRCTL-E086"),
        ({"no_register": True}, "ASRCTL-E085"),
        ({}, "ASRCTL-E085"),
    ],
)
def test_resolve_cs_type(given: dict, expected: str) -> None:
    inp = RegistrationInput(**given)
    if expected.startswith("ASRCTL-"):
        with pytest.raises(AsrctlError) as caught:
            resolve_cs_type(inp)
        assert (caught.value.code, caught.value.exit_code) == (expected, 2)
        assert "--cs-type" in caught.value.message or "--config-file" in caught.value.message
    else:
        assert resolve_cs_type(inp) == expected
