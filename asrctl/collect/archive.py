"""The support archive itself: each report and file as a member (masked, within the per-file and archive caps),
``manifest.json`` of what was kept, cut, masked and skipped, the archive written 0600 to a temporary file beside the
target and linked into place (never half an archive, never over a file), and the summary for people."""

from __future__ import annotations

import io
import json
import logging
import lzma
import os
import re
import socket
import tarfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asrctl import __version__
from asrctl.app import App
from asrctl.collect import gather, masking
from asrctl.errors import AsrctlError, Reported
from asrctl.output import Result
from asrctl.system import redact, rootfs
from asrctl.system.paths import Paths

LOG = logging.getLogger("asrctl")

MANIFEST_FORMAT = "asrctl-support/1"
MAX_FILE = 16 << 20  # bytes kept of one file (its tail)
MAX_TOTAL = 128 << 20  # bytes of content in the whole archive (before compression), the manifest aside
SECRET_FILE_LIMIT = 4096 + 2  # a passphrase file: secrets.MAX_LEN and a line end


@dataclass
class Collector:
    app: App
    tar: tarfile.TarFile
    prefix: str
    max_file: int
    max_total: int
    kept_total: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    _seen: dict[str, str] = field(default_factory=dict)
    _members: set[str] = field(default_factory=set)

    @property
    def paths(self) -> Paths:
        return self.app.paths

    # -- members ---------------------------------------------------------------------------------------------
    def _member(self, rel: str) -> str:
        name = f"{self.prefix}/{rel}"
        base, n = name, 1
        while name in self._members:
            n += 1
            name = f"{base}~{n}"
        self._members.add(name)
        return name

    def _write(self, name: str, size: int, data: io.BufferedIOBase, mtime: float | None = None) -> None:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o600
        info.mtime = int(mtime if mtime is not None else time.time())
        self.tar.addfile(info, data)
        self.kept_total += size

    def room(self) -> int:
        return max(0, min(self.max_file, self.max_total - self.kept_total))

    # -- reports ---------------------------------------------------------------------------------------------
    def report(self, name: str, produce: Callable[[], Result | dict[str, Any]]) -> None:
        """One report, as ``--json`` would print it. A report that fails says so in its file: the archive is
        what an operator sends when asrctl itself is in trouble, so nothing here may stop it."""
        try:
            made = produce()
        except Reported as rep:
            made = rep.result
            made.ok, made.error = False, rep.error.as_json()
        except AsrctlError as err:
            made = Result(name, ok=False, error=err.as_json())
        except Exception as exc:  # a bug in one report must not cost the whole archive
            LOG.exception("logs collect: the %s report failed", name)
            made = Result(name, ok=False, error={"code": "ASRCTL-E001", "message": f"{type(exc).__name__}: {exc}"})
        doc = made.envelope() if isinstance(made, Result) else made
        plain = json.loads(json.dumps(doc, default=str))
        masked, count = redact.scrub_json(redact.redact_data(plain))
        data = (json.dumps(masked, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        member = self._member(f"reports/{name}.json")
        if len(data) > self.max_total - self.kept_total:
            self.skipped.append({"path": member, "kind": "archive-full", "reason": "the archive cap was reached"})
            return
        self._write(member, len(data), io.BytesIO(data))
        entry: dict[str, Any] = {"member": member, "bytes": len(data), "redacted": count}
        if isinstance(made, Result):
            entry["ok"] = made.ok
        self.reports.append(entry)

    def text(self, rel: str, text: str) -> None:
        masked, count = redact.scrub_text(text)
        data = masked.encode("utf-8")[-self.room() :] if self.room() else b""
        if data:
            member = self._member(rel)
            self._write(member, len(data), io.BytesIO(data))
            self.reports.append({"member": member, "bytes": len(data), "redacted": count})

    # -- files -----------------------------------------------------------------------------------------------
    def source(self, src: gather.Source) -> None:
        paths = Paths.for_root(Path(src.directory).anchor) if src.on_host else self.paths
        for directory in self._directories(paths, src.directory):
            names = [n for n in self._list(paths, directory) if re.fullmatch(src.pattern, n)]
            if src.expected and src.expected not in names:
                self.absent.append(_join(directory, src.expected))
            targets = [_join(directory, n) for n in names]
            if src.newest_first:
                targets.sort(key=lambda t: self._mtime(paths, t, directory), reverse=True)
            for target in targets:
                self.file(paths, target, directory, src.what)

    def _directories(self, paths: Paths, pattern: str) -> list[str]:
        if not pattern.endswith("/*"):
            return [pattern]
        parent = pattern[:-2]
        return [_join(parent, name) for name in self._list(paths, parent)]

    def _list(self, paths: Paths, directory: str) -> list[str]:
        try:
            return rootfs.list_dir(paths, directory)
        except rootfs.Refused as exc:
            self.skipped.append({"path": directory, "kind": exc.kind, "reason": exc.reason})
            return []

    def _mtime(self, paths: Paths, target: str, within: str) -> float:
        try:
            with rootfs.opened(paths, target, within) as f:
                return f.mtime if f is not None else 0.0
        except rootfs.Refused:
            return 0.0

    def file(self, paths: Paths, target: str, within: str, what: str) -> None:
        try:
            opened = rootfs.open_regular(paths, target, within)
        except rootfs.Refused as exc:
            self.skipped.append({"path": target, "kind": exc.kind, "reason": exc.reason})
            return
        if opened is None:
            return
        with opened:
            if opened.target in self._seen:
                self.skipped.append(
                    {"path": target, "kind": "duplicate", "reason": f"the same file as {self._seen[opened.target]}"}
                )
                return
            self._seen[opened.target] = target
            room = self.room()
            if room <= 0:
                self.skipped.append({"path": target, "kind": "archive-full", "reason": "the archive cap was reached"})
                return
            entry: dict[str, Any] = {"path": target, "what": what, "size": opened.size}
            if opened.via:
                entry["via"] = opened.via
            suffix = next((s for s in masking.DECOMPRESSORS if target.endswith(s)), None)
            try:
                if suffix:
                    raw, read, complete = masking.decompressed_tail(opened, room, suffix)
                    entry["decompressed"] = {"format": suffix[1:], "bytes": read, "complete": complete}
                    cut = read > len(raw) or not complete
                    stored_as = target[: -len(suffix)]
                else:
                    raw = opened.tail(room)
                    cut = opened.size > len(raw)
                    stored_as = target
            except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
                self.skipped.append({"path": target, "kind": rootfs.UNREADABLE, "reason": f"cannot read it: {exc}"})
                return
            pieces, cut = masking.scrub(raw, cut, stored_as, room)
            del raw
            kept = sum(len(p.data) for p in pieces)
            if not kept and cut and room < self.max_file:
                self.skipped.append({"path": target, "kind": "archive-full", "reason": "the archive cap was reached"})
                return
            member = self._member("files/" + _relative(redact.redact(stored_as)))
            self._write(member, kept, io.BufferedReader(masking.Pieces(pieces), masking.CHUNK), opened.mtime)
            entry.update({"member": member, "kept": kept, "truncated": cut, "redacted": sum(p.count for p in pieces)})
            self.files.append(entry)

    def learn_secrets(self) -> int:
        """Register the passphrases left on the machine (and ASRCTL_PASSPHRASE, when the environment of an
        automation run has it), so that every member is masked of them."""
        from asrctl.system.secrets import ENV_VAR

        state = rootfs.target_of(self.paths, self.paths.state_dir)
        learned = 0
        if os.environ.get(ENV_VAR, "").strip():
            redact.register(os.environ[ENV_VAR].rstrip("\r\n"))
            learned += 1
        for directory, pattern in gather.SECRET_FILES:
            for d in self._directories(self.paths, directory.format(state=state)):
                for name in self._list(self.paths, d):
                    if not re.fullmatch(pattern, name):
                        continue
                    try:
                        raw = rootfs.read_file(self.paths, _join(d, name), SECRET_FILE_LIMIT, within=d)
                    except rootfs.Refused:
                        continue
                    value = (raw or b"").decode("utf-8", errors="replace").rstrip("\r\n")
                    if value.strip():
                        redact.register(value)
                        learned += 1
        return learned

    def manifest(self, started: str) -> dict[str, Any]:
        doc = {
            "format": MANIFEST_FORMAT,
            "created": started,
            "asrctl": __version__,
            "hostname": socket.gethostname(),
            "root": str(self.paths.root),
            "limits": {"file_bytes": self.max_file, "total_bytes": self.max_total},
            "totals": {
                "files": len(self.files),
                "kept_bytes": self.kept_total,
                "truncated": sum(1 for f in self.files if f["truncated"]),
                "redacted": sum(f["redacted"] for f in (*self.files, *self.reports)),
                "skipped": len(self.skipped),
            },
            "reports": self.reports,
            "files": self.files,
            "skipped": self.skipped,
            "absent": self.absent,
        }
        masked: dict[str, Any] = redact.redact_data(doc)
        return masked


def _join(directory: str, name: str) -> str:
    sep = "\\" if "\\" in directory and "/" not in directory else "/"
    return directory.rstrip("/\\") + sep + name


def _relative(target: str) -> str:
    """A member name for a target-system path: ``/var/log/x`` → ``var/log/x``, ``C:\\x\\y`` → ``C/x/y``."""
    return target.replace("\\", "/").replace(":", "").lstrip("/")


def default_target(app: App) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return app.paths.log_dir / f"asrctl-support-{socket.gethostname()}-{stamp}.tar.gz"


def collect(
    app: App,
    output: str | None,
    max_file: int = MAX_FILE,
    max_total: int = MAX_TOTAL,
    cs_endpoint: str | None = None,
) -> Result:
    result = Result(app.command)
    target = Path(output) if output else default_target(app)
    if os.path.lexists(target):
        raise AsrctlError("ASRCTL-E037", f"{target} exists; choose another -o FILE")
    prefix = re.sub(r"\.(?:tar\.gz|tgz)$", "", target.name) or "asrctl-support"
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tar:
                c = Collector(app, tar, prefix, max_file, max_total)
                learned = c.learn_secrets()
                if learned:
                    LOG.info("logs collect: %d passphrase(s) found on the machine will be masked", learned)
                doctor_text = io.StringIO()
                c.report("detect", lambda: gather.detect_report(app))
                c.report("status", lambda: gather.status_report(app))
                c.report("doctor", lambda: gather.doctor_report(app, cs_endpoint, doctor_text))
                c.report("host", lambda: gather.host_report(app))
                c.text("reports/doctor.txt", doctor_text.getvalue())
                for src in gather.sources(app):
                    c.source(src)
                manifest = c.manifest(started)
                data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
                info = tarfile.TarInfo(f"{prefix}/manifest.json")
                info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
                tar.addfile(info, io.BytesIO(data))
            raw.flush()
            os.fsync(raw.fileno())
        _publish(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    result.changed = True
    result.data["archive"] = str(target)
    result.data["files"] = [f["path"] for f in manifest["files"]]
    result.data["manifest"] = manifest
    _render(app, target, manifest)
    return result


def _publish(tmp: Path, target: Path) -> None:
    """Put the finished archive at ``target``, never over a file that appeared meanwhile: a hard link fails when
    the name exists (rename would replace it). Where links are not possible, rename: it refuses an existing name
    on Windows; on POSIX the name is checked right before."""
    try:
        os.link(tmp, target)
        return
    except FileExistsError:
        raise AsrctlError("ASRCTL-E037", f"{target} exists; choose another -o FILE") from None
    except OSError:
        pass
    if os.path.lexists(target):
        raise AsrctlError("ASRCTL-E037", f"{target} exists; choose another -o FILE")
    try:
        os.rename(tmp, target)
    except FileExistsError:
        raise AsrctlError("ASRCTL-E037", f"{target} exists; choose another -o FILE") from None


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _render(app: App, target: Path, manifest: dict[str, Any]) -> None:
    rows = []
    for f in manifest["files"]:
        notes = []
        if f["truncated"]:
            notes.append(f"tail of {_human(f['size'])}")
        if f["redacted"]:
            notes.append(f"{f['redacted']} masked")
        rows.append((f["path"], _human(f["kept"]), ", ".join(notes)))
    app.out.table("Support archive", ["file", "kept", "notes"], rows or [("(no log files found)", "", "")])
    for s in manifest["skipped"]:
        app.out.warn(f"skipped {s['path']}: {s['reason']}")
    totals = manifest["totals"]
    app.out.success(
        f"wrote {target} ({totals['files']} files, {_human(totals['kept_bytes'])} before compression, "
        f"{totals['redacted']} secrets masked)"
    )
