# -*- coding: utf-8 -*-
# Copyright: asrctl contributors. MIT License (see the repository's LICENSE).
#
# Runs on the controller (filters always do), but is kept to the same plain Python as the module so the collection
# has one style; tests/unit/test_ansible_module.py tests it.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: sha256_from_sums
short_description: The SHA-256 that a SHA256SUMS file gives for one file name
version_added: "0.2.0"
description:
  - Reads GNU C(sha256sum) output (C(<64 hex>  name) or C(<64 hex> *name), as C(asrctl bundles checksum) and
    C(make release) write it) and returns the digest listed for the file's base name, in lower case.
  - Fails, naming the file, when the name is not listed, listed twice with different digests, or the text has no
    digest line at all, so a play never copies a file it could not check.
options:
  _input:
    description: The text of the SHA256SUMS file.
    type: str
    required: true
  name:
    description: The file name (a path is reduced to its base name).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The digest of the asrctl release binary
  ansible.builtin.set_fact:
    asrctl_sha256: "{{ lookup('ansible.builtin.file', 'SHA256SUMS') | asrctl.mobility.sha256_from_sums('asrctl-0.2.0-linux-x86_64') }}"
"""

RETURN = r"""
_value:
  description: 64 lower-case hex digits.
  type: str
"""

import re

from ansible.errors import AnsibleFilterError

_LINE = re.compile(r"^\\?([0-9a-fA-F]{64}) [ *](.+)$")


def sha256_from_sums(text, name):
    name = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    if not name:
        raise AnsibleFilterError("sha256_from_sums: no file name given")
    found = set()
    lines = 0
    for raw in str(text).splitlines():
        match = _LINE.match(raw.rstrip("\r"))
        if not match:
            continue
        lines += 1
        listed = match.group(2).replace("\\", "/")
        if listed.startswith("./"):
            listed = listed[2:]
        if listed == name:
            found.add(match.group(1).lower())
    if not lines:
        raise AnsibleFilterError("sha256_from_sums: no 'DIGEST  NAME' line in the SHA256SUMS text")
    if not found:
        raise AnsibleFilterError("sha256_from_sums: %s is not listed in SHA256SUMS" % name)
    if len(found) > 1:
        raise AnsibleFilterError("sha256_from_sums: %s is listed with %d different digests" % (name, len(found)))
    return found.pop()


class FilterModule(object):
    def filters(self):
        return {"sha256_from_sums": sha256_from_sums}
