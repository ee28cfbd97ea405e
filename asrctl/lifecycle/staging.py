"""A run's id and its private staging directory, where the bundle is verified and unpacked (the first steps of
an install or upgrade plan)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from asrctl.agent.base import AgentBackend
from asrctl.app import App
from asrctl.bundles.catalog import Bundle
from asrctl.plan import Plan, Step


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def staging_for(app: App, run_id: str) -> tuple[Path, Path]:
    """(directory to remove afterwards, where the bundle is unpacked). Private, on the state dir's filesystem."""
    holder = app.paths.state_dir / "staging" / run_id
    return holder, holder / "bundle"


def with_run_dir(app: App, run_id: str, plan: Plan) -> str:
    """The run's private dir (``Paths.run_dir``, created when a vendor tool first needs it) for this plan's vendor
    tools; it goes when the plan is done, whatever the outcome."""
    path = app.paths.run_dir(run_id)
    if path not in plan.cleanup:
        plan.cleanup.append(path)
    return str(path)


def stage(app: App, backend: AgentBackend, bundle: Bundle, digest: str | None, run_id: str, plan: Plan) -> Path:
    holder, staged = staging_for(app, run_id)
    plan.cleanup.append(holder)

    def make_holder() -> dict[str, Any]:
        holder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        holder.mkdir(mode=0o700)
        return {}

    plan.add(Step("staging", f"Create a private staging directory {holder}", make_holder))
    for step in backend.stage_steps(bundle, staged, digest):
        plan.add(step)
    return staged


def stage_also(
    app: App, backend: AgentBackend, bundle: Bundle, digest: str | None, run_id: str, plan: Plan, name: str
) -> Path:
    """A second bundle unpacked beside the first in the same run's staging dir (after :func:`stage`'s steps): the
    bundle a downgrade's undo reinstalls, verified before anything is removed. Its steps are ``<name>-<id>``."""
    holder, _ = staging_for(app, run_id)
    staged = holder / name
    for step in backend.stage_steps(bundle, staged, digest):
        step.id = f"{name}-{step.id}"
        plan.add(step)
    return staged
