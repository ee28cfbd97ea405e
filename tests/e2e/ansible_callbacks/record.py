"""A test-only Ansible callback: every task result and the stats as one JSON file, for tests/e2e/test_ansible_role.py.

ansible-core 2.19 no longer ships a JSON stdout callback (it moved to ansible.posix, which the tests must not
download), and reading the human output would be fragile. Results go through CallbackBase._dump_results, which
masks no_log values as every stdout callback does, so the file shows what an operator's output would.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[dict[str, Any]] = []

    def _add(self, result: Any, status: str) -> None:
        task = getattr(result, "task", None) or result._task
        host = getattr(result, "host", None) or result._host
        raw = getattr(result, "result", None)
        if raw is None:
            raw = result._result
        self.tasks.append(
            {
                "name": task.get_name(),
                "host": host.get_name(),
                "status": status,
                "result": json.loads(self._dump_results(raw, indent=None)),
            }
        )

    def v2_runner_on_ok(self, result: Any) -> None:
        self._add(result, "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._add(result, "failed")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._add(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._add(result, "unreachable")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        summary = {host: stats.summarize(host) for host in sorted(stats.processed)}
        with open(os.environ["ASRCTL_TEST_ANSIBLE_RECORD"], "w", encoding="utf-8") as out:
            json.dump({"tasks": self.tasks, "stats": summary}, out)
