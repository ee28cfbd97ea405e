"""``asrctl bundles list|verify|checksum|extract|fetch``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from asrctl.commands.common import begin, examples
from asrctl.commands.options import Seconds, digest_options, digest_policy, sha256_option
from asrctl.commands.settings import setting
from asrctl.errors import AsrctlError, Reported
from asrctl.output import Result

if TYPE_CHECKING:
    from asrctl.app import App
    from asrctl.bundles.catalog import Bundle


@click.group(
    epilog=examples(
        "asrctl bundles checksum /srv/asr-bundles        # on the staging host: writes SHA256SUMS",
        "asrctl bundles list --bundle-dir /mnt/asr",
        "asrctl bundles verify --all --bundle-dir /mnt/asr",
        "asrctl bundles extract BUNDLE /tmp/asr-unpacked",
        "asrctl bundles fetch https://mirror.corp.example/asr/Microsoft-ASR_UA_….tar.gz --require-digest",
    )
)
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
            "format": b.format,
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


# --- verify -------------------------------------------------------------------------------------------------


@bundles.command("verify")
@click.argument("bundle", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--all", "all_bundles", is_flag=True, help="Every bundle found in the bundle dirs.")
@digest_options
@click.pass_context
def bundles_verify(
    ctx: click.Context, bundle: Path | None, all_bundles: bool, sha256: str | None, require_digest: bool
) -> Result:
    """Check bundles against SHA256SUMS beside them (or --sha256 HEX).

    Without BUNDLE: the bundle this host would use (the one `bundles list` marks); with --all, every bundle in
    the bundle dirs, as `sha256sum -c SHA256SUMS` would. Exits 5 when a digest does not match, or when one is
    missing and --require-digest is set.
    """
    from asrctl.bundles.digest import verify_bundle

    app = begin(ctx)
    if bundle is not None and all_bundles:
        raise click.UsageError("give BUNDLE or --all, not both")
    if sha256 is not None and all_bundles:
        raise click.UsageError("--sha256 is the digest of one bundle; it does not go with --all")
    targets = [_load(bundle)] if bundle is not None else _chosen(app, all_bundles)
    policy = digest_policy(sha256, require_digest)
    rows: list[dict[str, Any]] = []
    failures: list[tuple[Bundle, AsrctlError]] = []
    for target in targets:
        try:
            outcome = verify_bundle(target.path, policy, app.out)
        except AsrctlError as exc:
            failures.append((target, exc))
            details = exc.details
            rows.append(
                {
                    "path": str(target.path),
                    "filename": target.path.name,
                    "format": target.format,
                    "status": _failure_status(exc),
                    "sha256": details.get("actual"),
                    "expected": details.get("expected"),
                    "source": details.get("source"),
                    "verified": False,
                    "error": exc.as_json(),
                }
            )
            continue
        rows.append(
            {
                "path": str(target.path),
                "filename": target.path.name,
                "format": target.format,
                "status": "verified" if outcome.verified else "unverified",
                "sha256": outcome.digest,
                "expected": outcome.digest if outcome.verified else None,
                "source": outcome.source,
                "verified": outcome.verified,
                "error": None,
            }
        )
    result = Result(app.command, data={"bundles": rows})
    result.warnings.extend(
        f"{r['filename']}: not verified ({r['source']})" for r in rows if r["status"] == "unverified"
    )
    out = app.out
    if len(rows) > 1 or (rows and failures):
        out.table(
            "Bundles",
            ["file", "format", "result", "SHA-256", "checked against"],
            [(r["filename"], r["format"] or "—", r["status"], r["sha256"] or "—", r["source"] or "—") for r in rows],
        )
    if failures:
        err = failures[0][1]
        if len(targets) > 1:
            codes = {f.code for _t, f in failures}
            err = AsrctlError(
                "ASRCTL-E030" if "ASRCTL-E030" in codes else err.code,
                f"{len(failures)} of {len(targets)} bundles failed verification: "
                + "; ".join(f"{t.path.name}: {f.spec.title}" for t, f in failures),
                remedy=err.remedy,
            )
        logging.getLogger("asrctl").error("%s: %s", err.code, err.message)
        out.error(err.code, err.message, err.remedy)
        raise Reported(err, result)
    for r in rows:
        if r["verified"]:
            out.success(f"{r['filename']} ({r['format']}): SHA-256 matches {r['source']} ({r['sha256']})")
        else:
            out.info(f"{r['filename']} ({r['format']}): SHA-256 {r['sha256']} (not verified)")
    return result


def _failure_status(exc: AsrctlError) -> str:
    return {"ASRCTL-E030": "MISMATCH", "ASRCTL-E031": "no digest"}.get(exc.code, "error")


def _load(path: Path) -> Bundle:
    from asrctl.bundles.catalog import load_bundle

    return load_bundle(path)


def _chosen(app: App, all_bundles: bool) -> list[Bundle]:
    """The bundles verify looks at when none is named."""
    from asrctl.bundles.catalog import resolve_dirs, scan

    dirs, _explicit = resolve_dirs(app.bundle_dir_args, app.paths)
    catalog = scan(dirs)
    where = ", ".join(map(str, dirs)) or "any bundle dir"
    if all_bundles:
        if not catalog.bundles:
            raise AsrctlError("ASRCTL-E020", f"no bundles in {where}")
        return sorted(catalog.bundles, key=lambda b: (b.os_tag.upper(), b.name.sort_key))
    plat = app.platform
    if not plat.os_tag:
        raise AsrctlError(
            "ASRCTL-E020",
            f"this host has no bundle of its own ({plat.reason})",
            remedy="Name the bundle (`asrctl bundles verify BUNDLE`) or check them all with --all.",
        )
    selected = catalog.newest_for(plat.os_tag)
    if selected is None:
        raise AsrctlError("ASRCTL-E020", f"no {plat.os_tag} bundle in {where}")
    return [selected]


# --- checksum -----------------------------------------------------------------------------------------------


@bundles.command("checksum")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def bundles_checksum(ctx: click.Context, directory: Path) -> Result:
    """Write DIR/SHA256SUMS for the bundles in DIR (on the staging host; `sha256sum -c` reads it too).

    The file is replaced atomically and lists exactly the bundles in DIR. Copy it along with the bundles: every
    verb that uses a bundle checks it against this file.
    """
    from asrctl.bundles.catalog import scan
    from asrctl.bundles.digest import read_sums, write_sums

    app = begin(ctx)
    target = write_sums(directory, app.out)
    sums = read_sums(target)
    ignored = scan([directory]).ignored
    result = Result(
        app.command,
        changed=True,
        data={
            "file": str(target),
            "bundles": [{"filename": name, "sha256": digest} for name, digest in sorted(sums.items())],
            "ignored": [{"path": str(i.path), "reason": i.reason} for i in ignored],
        },
    )
    for ign in ignored:
        msg = f"left out {ign.path.name}: {ign.reason}"
        result.warnings.append(msg)
        app.out.warn(msg)
    for name, digest in sorted(sums.items()):
        app.out.info(f"{digest}  {name}")  # as sha256sum prints it
    app.out.success(f"wrote {target} ({len(sums)} bundle{'s' if len(sums) != 1 else ''})")
    return result


# --- extract ------------------------------------------------------------------------------------------------


@bundles.command("extract")
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dest", type=click.Path(path_type=Path))
@digest_options
@click.pass_context
def bundles_extract(ctx: click.Context, bundle: Path, dest: Path, sha256: str | None, require_digest: bool) -> Result:
    """Verify and unpack BUNDLE into DEST (which must not exist yet), refusing unsafe archives.

    One streaming pass hashes, decompresses and unpacks into a private directory beside DEST; only when the
    digest matches is it renamed to DEST (mode 0700). Exits 5 on a digest mismatch, an unsafe member (named)
    or a damaged file, leaving nothing behind.
    """
    from asrctl.bundles.digest import expected_digest, unverified_warning
    from asrctl.bundles.extract import extract

    app = begin(ctx)
    found = _load(bundle)
    if found.name.kind != "linux":
        raise AsrctlError(
            "ASRCTL-E022",
            f"{bundle.name} is a Windows installer; only .tar.gz bundles are unpacked",
            remedy="Run the Windows bundle with `asrctl install` on the Windows host.",
        )
    expected, source = expected_digest(found.path, digest_policy(sha256, require_digest))
    result = Result(app.command)
    if expected is None:
        warning = unverified_warning(found.path, source)
        result.warnings.append(warning)
        app.out.warn(warning)
    done = extract(found.path, dest, expected_sha256=expected, out=app.out)
    result.changed = True
    result.data = {
        "bundle": str(found.path),
        "dest": str(done.path),
        "sha256": done.sha256,
        "format": done.format,
        "verified": expected is not None,
        "source": source,
        "members": done.members,
        "bytes": done.bytes,
    }
    how = f"SHA-256 matches {source}" if expected else "NOT verified"
    app.out.success(f"unpacked {done.members} members ({_mb(done.bytes)}) into {done.path}; {how}")
    return result


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"


# --- fetch --------------------------------------------------------------------------------------------------


@bundles.command("fetch")
@click.argument("url")
@sha256_option
@click.option(
    "--to",
    "to_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Where to put it. Default: the first --bundle-dir, else <root>/var/lib/asrctl/bundles.",
)
@click.option(
    "--ca-bundle",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="PEM file with the CA(s) that signed the mirror's certificate (default: the system's).",
)
@click.option("--retries", type=click.IntRange(0, 20), default=5, show_default=True, help="Retries after a failure.")
@click.option("--timeout", type=Seconds(600), default=30.0, show_default=True, help="Network timeout in seconds.")
@setting(
    "--require-digest",
    "require_digest",
    is_flag=True,
    help="Refuse to keep a download that has no digest (no --sha256, no SHA256SUMS line).",
)
@click.pass_context
def bundles_fetch(
    ctx: click.Context,
    url: str,
    sha256: str | None,
    to_dir: Path | None,
    ca_bundle: str | None,
    retries: int,
    timeout: float,
    require_digest: bool,
) -> Result:
    """Download a bundle from an internal HTTPS mirror into the bundle dir, resuming and verifying it.

    Honours HTTPS_PROXY/NO_PROXY. The digest comes from --sha256, else from SHA256SUMS beside the bundle on the
    mirror, else from SHA256SUMS in the bundle dir; a verified digest is recorded in the bundle dir's SHA256SUMS.
    An interrupted download is resumed by the next run.
    """
    from asrctl.bundles.fetch import fetch_bundle
    from asrctl.system import redact

    redact.register_url_password(url)  # before anything can print or record the URL
    app = begin(ctx)
    target = to_dir or (Path(app.bundle_dir_args[0]) if app.bundle_dir_args else app.paths.default_bundle_dir)
    got = fetch_bundle(
        url,
        target,
        sha256=sha256,
        ca_bundle=ca_bundle,
        out=app.out,
        retries=retries,
        timeout=timeout,
        require_digest=require_digest,
    )
    result = Result(app.command, changed=got.changed, data={"url": url, **got.as_json()})
    if not got.verified:
        result.warnings.append(f"{got.path.name}: not verified ({got.source})")
    if got.changed:
        how = f"SHA-256 matches {got.source}" if got.verified else "NOT verified"
        app.out.success(f"fetched {got.path} ({_mb(got.path.stat().st_size)}); {how}")
    return result
