"""Redaction that cannot corrupt: secrets are masked by field in data and by whole token in text.

The property tests draw passphrases of every length the passphrase sources accept (1 character to 4 KiB), with
the awkward ones always included, and check that what asrctl writes stays parseable and never holds the secret as
a token. The token check here is written independently of asrctl's regular expression.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from asrctl import output
from asrctl.output import Output, Result
from asrctl.plan import Plan, Step, apply
from asrctl.system import redact
from asrctl.system.journal import OWN_FIELDS, Journal
from asrctl.system.runner import shown
from asrctl.system.secrets import MAX_LEN

AWKWARD = ["1", "a", "{", '"', "\\", "null", "true", " a b ", "pass word", "*", "**", "********", "é", "-", "1.2"]
PROPERTY = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def passphrases() -> st.SearchStrategy[str]:
    """What secrets.py accepts: one line, not blank, at most MAX_LEN characters."""
    drawn = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\n\r"), min_size=1, max_size=40)
    long = st.text(alphabet='ab1 {}"\\*', min_size=MAX_LEN - 8, max_size=MAX_LEN)
    return st.one_of(st.sampled_from(AWKWARD), drawn, long).filter(lambda s: bool(s.strip()))


def _word(ch: str) -> bool:
    return re.match(r"\w", ch) is not None


def token_in(secret: str, text: str) -> bool:
    """``secret`` occurs in ``text`` with no word character right before or after it."""
    start = text.find(secret)
    while start >= 0:
        end = start + len(secret)
        if (start == 0 or not _word(text[start - 1])) and (end == len(text) or not _word(text[end])):
            return True
        start = text.find(secret, start + 1)
    return False


def leaks(secret: str, text: str) -> bool:
    return any(token_in(s, text) for s in {secret, secret.strip()} if s.strip())


def strings(value: Any, skip: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every string value, except under the keys in ``skip``."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in skip:
                yield from strings(v, skip)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v, skip)


def keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from keys(v)


def carrying(secret: str) -> dict[str, Any]:
    """Data as asrctl builds it, with the secret as a whole value, inside text, in argv and nested."""
    return {
        "bundle": "Microsoft-ASR_UA_9.65.0.0_UBUNTU-22.04-64_GA_01Jan2025_release.tar.gz",
        "exit": 1,
        "ok": True,
        "none": None,
        "ratio": 1.5,
        "secret": secret,
        "text": f"the passphrase {secret} was used",
        "argv": ["UnifiedAgentConfigurator.sh", "-i", "10.0.0.1", "-P", secret],
        "nested": {"list": [secret, {"deep": f"({secret})"}], "null": "null", "true": "true"},
    }


# --- the defect ---------------------------------------------------------------------------------------------


def test_a_one_digit_passphrase_keeps_the_journal_valid(tmp_path: Path) -> None:
    """Issue 13 item 7: with the passphrase "1" every digit of journal.json became the mask (invalid JSON)."""
    redact.register("1")
    journal = Journal(tmp_path)
    journal.begin("install", {"bundle": "Microsoft-ASR_UA_9.65.0.0_UBUNTU-22.04-64_GA_01Jan2025_release.tar.gz"})
    journal.step("stage", "Stage 1 bundle", "done", argv="install -P 1")
    journal.finish("ok")
    data = json.loads((tmp_path / "journal.json").read_text())  # valid JSON
    assert journal.last() == data and data["status"] == "ok"
    assert data["summary"]["bundle"] == "Microsoft-ASR_UA_9.65.0.0_UBUNTU-22.04-64_GA_01Jan2025_release.tar.gz"
    step = data["steps"][0]
    assert step["describe"] == f"Stage {redact.MASK} bundle" and step["argv"] == f"install -P {redact.MASK}"
    line = json.loads((tmp_path / "history.jsonl").read_text().splitlines()[-1])
    assert line["run_id"] == data["run_id"] and line["steps"][0]["argv"] == f"install -P {redact.MASK}"


def test_a_dead_run_is_still_recovered_with_a_one_digit_passphrase(tmp_path: Path) -> None:
    """Crash recovery reads journal.json: it must survive any passphrase."""
    redact.register("1")
    journal = Journal(tmp_path)
    journal.begin("install", {"run_id": "1"})
    leftover = tmp_path / "staging" / "1"
    leftover.mkdir(parents=True)
    journal.note_cleanup(leftover)
    journal.data["pid"] = 999999999  # died
    journal._save()
    applied = apply(Plan("install", [Step("s", "step 1", lambda: None)]), Output(verbosity=-1), tmp_path)
    assert applied.recovered is not None and applied.recovered["command"] == "install"
    assert not leftover.exists()


# --- text: whole tokens ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "text", "expected"),
    [
        ("1", "exit 1 after 1.2 s", "exit M after M.2 s"),
        ("1", "9.65.7417.1 x1 1x 21", "9.65.7417.M x1 1x 21"),
        ("pass", "passport pass, (pass) surpass", "passport M, (M) surpass"),
        ("pass word", "a pass word b", "a M b"),
        ("p@ss!", "x=p@ss! y", "x=M y"),
        ("{", '{"a": 1}', 'M"a": 1}'),
        ("null", "null, nullable", "M, nullable"),
        ('"', 'a " b "c', 'a M b "c'),
        ("\\", "C:\\ temp C:\\temp", "C:M temp C:\\temp"),
        ("é", "café é", "café M"),
        ("s3cret", "s3cret", "M"),
    ],
)
def test_text_is_masked_by_whole_token(secret: str, text: str, expected: str) -> None:
    redact.register(secret)
    assert redact.redact(text) == expected.replace("M", redact.MASK)


def test_surrounding_blanks_and_json_escapes_are_variants() -> None:
    redact.register('  a"b  ')
    assert redact.redact('x a"b y') == f"x {redact.MASK} y"
    assert redact.redact(json.dumps({"p": 'a"b'})) == '{"p": "' + redact.MASK + '"}'


def test_blank_secrets_are_ignored() -> None:
    redact.register("   ")
    redact.register("")
    assert not redact.known()
    assert redact.redact("a   b") == "a   b"


def test_a_secret_inside_the_mask_gets_another_mask() -> None:
    redact.register("*")
    assert redact.mask() != redact.MASK
    assert redact.redact("a * b") == f"a {redact.mask()} b"
    assert not token_in("*", redact.redact("a * b"))


def test_several_secrets_longest_first() -> None:
    redact.register("a")
    redact.register("a b")
    assert redact.redact("x a b y a") == f"x {redact.MASK} y {redact.MASK}"


def test_shown_masks_each_argument_before_quoting() -> None:
    redact.register("it's secret")
    assert shown(["tool", "-P", "it's secret"]) == f"tool -P '{redact.MASK}'"


@PROPERTY
@given(secret=passphrases(), text=st.text(max_size=200))
@example(secret="1", text='{"pid": 1234, "exit": 1}')
def test_text_without_the_token_is_left_alone_and_with_it_is_masked(secret: str, text: str) -> None:
    redact.forget_all()
    redact.register(secret)
    masked = redact.redact(f"{text} {secret} {text}")
    assert not leaks(secret, masked)
    if not leaks(secret, text):
        assert redact.redact(text) == text  # nothing else is touched


# --- data: by field ----------------------------------------------------------------------------------------


def test_data_values_are_masked_and_keys_and_scalars_kept() -> None:
    redact.register("1")
    data = {"1": "1", "exit": 1, "ok": True, "list": ["1", "a 1 b", ("1",)], "path": "/v/9.1"}
    assert redact.redact_data(data) == {
        "1": redact.MASK,
        "exit": 1,
        "ok": True,
        "list": [redact.MASK, f"a {redact.MASK} b", (redact.MASK,)],
        "path": f"/v/9.{redact.MASK}",
    }
    assert data["1"] == "1"  # a copy: the caller's data is unchanged


def test_no_secret_no_copy() -> None:
    data = {"a": ["b"]}
    assert redact.redact_data(data) is data


@PROPERTY
@given(secret=passphrases())
def test_journal_and_history_stay_valid_and_never_hold_the_secret(tmp_path: Path, secret: str) -> None:
    redact.forget_all()
    redact.register(secret)
    state = tmp_path / f"s{abs(hash(secret))}"
    journal = Journal(state)
    journal.begin("register", carrying(secret))
    journal.step("reg", f"Register with {secret}", "started", argv=shown(["cfg", "-P", secret]))
    journal.step("reg", f"Register with {secret}", "failed", error={"message": f"bad {secret}"})
    journal.finish("failed", {"code": "ASRCTL-E060", "message": f"rejected: {secret}"})
    data = json.loads((state / "journal.json").read_text(encoding="utf-8"))
    assert data["status"] == "failed" and data["summary"]["exit"] == 1 and data["summary"]["ok"] is True
    assert set(keys(data["summary"])) == set(keys(carrying("x")))
    history = [json.loads(line) for line in (state / "history.jsonl").read_text(encoding="utf-8").splitlines()]
    assert history[-1]["run_id"] == data["run_id"]
    for doc in (data, history[-1]):
        # asrctl's own identifiers (run id, statuses, the paths it created) are kept whole, by design.
        assert not any(leaks(secret, s) for s in strings(doc, OWN_FIELDS))


@PROPERTY
@given(secret=passphrases())
def test_json_output_stays_valid_and_never_holds_the_secret(secret: str, capsys: pytest.CaptureFixture[str]) -> None:
    redact.forget_all()
    capsys.readouterr()
    redact.register(secret)
    result = Result("register", data=carrying(secret), warnings=[f"w {secret}"])
    result.error = {"code": "ASRCTL-E060", "message": f"rejected {secret}", "remedy": "check it"}
    Output(json_mode=True, verbosity=-1).emit(result)
    doc = json.loads(capsys.readouterr().out)
    assert doc["data"]["exit"] == 1 and doc["ok"] is True and doc["error"]["code"] == "ASRCTL-E060"
    assert doc["command"] == "register"
    assert not any(leaks(secret, s) for s in strings(doc, output.OWN_FIELDS))


def _log_and_print(secret: str) -> tuple[str, str]:
    """(log text, stderr text) of logging and printing what carries ``secret``."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(redact.RedactingFormatter("%(levelname)s %(message)s"))
    log = logging.getLogger("asrctl.test.redact")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    try:
        log.info("run: %s", shown(["cfg", "-P", secret]))
        log.debug("output of cfg:\n%s", f"error: passphrase {secret} rejected")
        try:
            raise RuntimeError(f"vendor said {secret}")
        except RuntimeError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    out = Output(verbosity=0)
    plan = Plan("register", [Step("r", f"Register with {secret}", lambda: None, argv=["cfg", "-P", secret])])
    plan.render(out)
    out.error("ASRCTL-E060", f"rejected {secret}", "retry")
    out.warn(f"warning {secret}")
    return stream.getvalue(), ""


@PROPERTY
@given(secret=passphrases())
def test_log_plan_and_error_text_never_hold_the_secret(secret: str, capsys: pytest.CaptureFixture[str]) -> None:
    redact.forget_all()
    capsys.readouterr()
    # What asrctl prints itself ("#", "retry", "Traceback", the table's frame): a secret equal to one of those
    # words cannot be told apart from them, so such draws are left out.
    baseline = "".join(_log_and_print("QQ-placeholder-QQ")) + capsys.readouterr().err
    assume(not leaks(secret, baseline))
    redact.register(secret)
    log_text, _ = _log_and_print(secret)
    err = capsys.readouterr().err
    for text in (log_text, err):
        assert not leaks(secret, text), text
    assert "RuntimeError" in log_text and "output of cfg" in log_text and "ASRCTL-E060" in err


# --- credential shapes asrctl never saw (logs collect) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer eyJ0.eyJ1.sig", "Authorization: M"),
        ("-H 'Proxy-Authorization: Basic dXNlcjpw' -x", "-H 'Proxy-Authorization: M' -x"),
        ("then bearer abc.DEF-123_x/y= done", "then bearer M done"),
        (
            "https://a.blob.core.windows.net/c?sv=1&SIG=a%2Fb%3D&se=2",
            "https://a.blob.core.windows.net/c?sv=1&SIG=M&se=2",
        ),
        ("x registration_key=K-1 y=2", "x registration_key=M y=2"),
        ("x Password: hunter2 y", "x Password: M y"),
        ("x passphrase='a b c' y", "x passphrase='M' y"),
        ('{"client_secret": "a\\"b", "id": 1}', '{"client_secret": "M", "id": 1}'),
        ("AccountKey=abc==;Endpoint=x", "AccountKey=M"),
        ("  RelaySharedKey = a b c  ", "  RelaySharedKey = M"),
        ("proxy http://u:p%40ss@h:3128/", "proxy http://u:M@h:3128/"),
        ("Cookie: a=b; c=d", "Cookie: M"),
        ("x token=abc&next=1", "x token=M&next=1"),
    ],
)
def test_credential_shapes_are_masked(text: str, expected: str) -> None:
    masked, count = redact.scrub_text(text)
    assert masked == expected.replace("M", redact.MASK) and count == 1


@pytest.mark.parametrize(
    "text",
    [
        "HostId = 0d5c5b52-1b8e-4e7e-9f39-6d3e1a1c3e7f",
        "Hostname = 10.0.0.5",
        "x bypass=true compass: north",
        "the key was rotated",
        "passport=123",
        "token expired",
        "https://host:443/path",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact.scrub_text(text) == (text, 0)


def test_registered_secrets_are_counted_once_when_a_shape_also_matches() -> None:
    redact.register("S3cret-Value")
    assert redact.scrub_text("password=S3cret-Value and S3cret-Value") == (
        f"password={redact.MASK} and {redact.MASK}",
        2,
    )


def test_json_is_masked_by_field_name_whatever_the_value() -> None:
    doc = {"Password": {"nested": 1}, "sig": "a", "Token": 5, "ok": True, "key": None, "list": [{"api_key": "x"}]}
    masked, count = redact.scrub_json(doc)
    assert masked == {
        "Password": redact.MASK,
        "sig": redact.MASK,
        "Token": redact.MASK,
        "ok": True,
        "key": None,
        "list": [{"api_key": redact.MASK}],
    }
    assert count == 4


def test_a_url_password_is_a_secret_from_then_on() -> None:
    """bundles fetch and kernel lists fetch register it before anything prints the URL: masked wherever it shows,
    quoted or unquoted, also outside a URL's shape (a JSON field holding the URL as given)."""
    redact.register_url_password("https://fetcher:p%40ss-Word9@mirror.example/asr/b.tar.gz")
    assert redact.redact("user p@ss-Word9 and p%40ss-Word9") == f"user {redact.MASK} and {redact.MASK}"
    assert redact.redact_data({"url": "fetcher:p%40ss-Word9@mirror"}) == {"url": f"fetcher:{redact.MASK}@mirror"}
    redact.register_url_password("https://mirror.example:notaport/x")  # refused later as a URL; nothing to mask
    redact.register_url_password("https://mirror.example/x")
    assert redact.redact("mirror.example") == "mirror.example"
