"""``asrctl bundles list|verify|checksum|extract|fetch``."""

from __future__ import annotations

import click

from asrctl.commands.common import begin
from asrctl.output import Result


@click.group()
def bundles() -> None:
    """Find, verify, unpack and fetch Mobility Service bundles."""


@bundles.command("list")
@click.pass_context
def bundles_list(ctx: click.Context) -> Result:
    """Every bundle found, parsed, and the one this host would use."""
    from asrctl import render
    from asrctl.bundles.catalog import resolve_dirs, scan

    app = begin(ctx)
    dirs, _explicit = resolve_dirs(app.bundle_dir_args, app.paths)
    catalog = scan(dirs)
    plat = app.platform
    selected = catalog.newest_for(plat.os_tag) if plat.os_tag else None
    rows = [
        {
            "path": str(b.path),
            "filename": b.path.name,
            "version": b.version,
            "os_tag": b.os_tag,
            "date": b.name.date.isoformat(),
            "kind": b.name.kind,
            "selected": selected is not None and b.path == selected.path,
        }
        for b in sorted(catalog.bundles, key=lambda b: (b.os_tag.upper(), b.name.sort_key))
    ]
    result = Result(
        app.command,
        data={
            "bundles": rows,
            "ignored": [{"path": str(i.path), "reason": i.reason} for i in catalog.ignored],
            "dirs": [str(d) for d in catalog.dirs],
            "host_os_tag": plat.os_tag,
            "selected": str(selected.path) if selected else None,
        },
    )
    if plat.os_tag and selected is None:
        result.warnings.append(f"no bundle for this host's tag {plat.os_tag} in {', '.join(map(str, dirs)) or '-'}")
    elif not plat.supported:
        result.warnings.append(f"this host is unsupported: {plat.reason}")
    render.bundles_list(app, result)
    return result


def register(group: click.Group) -> None:
    group.add_command(bundles)
