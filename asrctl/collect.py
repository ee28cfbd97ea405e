"""``asrctl logs collect``: one archive that Microsoft support and the operator can work from, and that is safe to send.

What goes in (``sources()``, in this order, so that when the archive cap is reached the vendor's rotated agent logs
are what gives way): the ``detect``, ``status`` and ``doctor`` results run in-process (each the JSON document
``--json`` would print) and host facts; asrctl's log, journal and history; the vendor's installer and uninstaller
logs (rotated ones too), its errors and summary JSON, its setup telemetry, the agent's version file and
configuration, the agent's logs newest first.

How (each point is a defect it replaces, issue 13 item 6 and issue 14 item 5):

- every file is opened through ``system/rootfs``: resolved inside ``--root`` and under the directory it was listed
  in (``ua_install.log -> /etc/passwd`` is skipped as a link out, also when the root is ``/``), regular files
  only (a FIFO named like a log is skipped, never opened blocking), and only its **tail** is read: at most
  ``--max-file-size`` bytes, so a 3 GB log costs that much memory, not 3 GB. A cut tail starts at the next line,
  so no secret is cut in half. Rotated ``.gz``/``.xz``/``.bz2`` logs are decompressed as a stream, keeping the
  tail, and stored as text;
- secrets are masked in every member: passphrases asrctl knows (and the ones the vendor and a dead run left
  on the machine, read only to be masked, never archived) and the shapes of credentials it never saw
  (``system/redact.scrub_text``); JSON documents field by field (``scrub_json``), so they stay valid;
- the whole archive is capped at ``--max-size`` bytes of content; what did not fit is listed;
- ``manifest.json`` says what was included (original size, kept bytes, whether cut, how many values were
  masked — never the values), what was skipped and why, and which expected files were absent;
- the archive is written 0600 to a temporary file beside the target and linked into place: never half an
  archive, never over an existing file.
"""

from __future__ import annotations

import bz2
import gzip
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asrctl import __version__
from asrctl.app import App
from asrctl.errors import AsrctlError, Reported
from asrctl.output import Output, Result
from asrctl.system import redact, rootfs
from asrctl.system.paths import Paths

LOG = logging.getLogger("asrctl")

MANIFEST_FORMAT = "asrctl-support/1"
MAX_FILE = 16 << 20  # bytes kept of one file (its tail)
MAX_TOTAL = 128 << 20  # bytes of content in the whole archive (before compression), the manifest aside
DECOMPRESS_LIMIT = 256 << 20  # a rotated .gz is decompressed up to here (a decompression bomb stops here)
SECRET_FILE_LIMIT = 4096 + 2  # a passphrase file: secrets.MAX_LEN and a line end
CHUNK = 1 << 20
JSON_PARSE_LIMIT = 4 << 20  # a larger JSON file is masked as text (parsed, 16 MiB of JSON is ~10x in objects)
CONNECT_TIMEOUT = 3.0

_DECOMPRESSORS: dict[str, Callable[[Any], Any]] = {
    ".gz": lambda f: gzip.GzipFile(fileobj=f, mode="rb"),
    ".xz": lambda f: lzma.LZMAFile(f),
    ".bz2": lambda f: bz2.BZ2File(f),
}


def _rotated(*names: str) -> str:
    """A log and its rotations: ``x.log``, ``x.log.1``, ``x.log.2.gz``, ``x.log-20250101``, ``x.log.old``."""
    return rf"(?:{'|'.join(map(re.escape, names))})(?:[.-](?:\d+|old|bak))*(?:\.(?:gz|xz|bz2))?"


@dataclass(frozen=True)
class Source:
    """Entries of one directory of the target system. ``directory`` may end in ``/*``: every subdirectory (the
    private directory of each run). ``expected`` names a file whose absence the manifest reports."""

    directory: str
    pattern: str
    what: str
    expected: str | None = None
    newest_first: bool = False
    on_host: bool = False  # a path of the machine asrctl runs on, not of --root (ASRCTL_LOG_FILE)


def sources(app: App) -> list[Source]:
    """Where the files are (docs/CLI.md, "logs collect"). Facts on paths: /work/notes/ms-bundles-facts.md."""
    from asrctl.system.log import LOG_FILE_ENV

    p = app.paths
    state = rootfs.target_of(p, p.state_dir)
    windows_host = os.name == "nt" and not p.sandboxed
    setup_logs = str(Path(os.environ.get("ProgramData", r"C:\ProgramData")) / "ASRSetupLogs")
    found = [Source(setup_logs if windows_host else "/var/log", _rotated("asrctl.log"), "asrctl log", "asrctl.log")]
    moved = os.environ.get(LOG_FILE_ENV)
    if moved:  # the operator moved the log (system/log.py): it is read where they put it
        where = Path(moved).absolute()
        found.append(Source(str(where.parent), _rotated(where.name), "asrctl log", on_host=True))
    found += [
        Source(state, r"journal\.json", "asrctl journal", expected="journal.json"),
        Source(state, r"history\.jsonl|identity\.json", "asrctl history"),
        Source(f"{state}/private/*", r".+\.json", "vendor JSON of a run"),
        Source(f"{state}/runs/*", r".+\.json", "vendor JSON of a run"),  # a dead run's (lifecycle/staging.py)
    ]
    if windows_host:
        vendor = r"(?i)(?!asrctl\.log).+\.(?:log|json|txt)"
        return [*found, Source(setup_logs, vendor, "vendor setup log", newest_first=True)]
    installer = ("ua_install.log", "ua_uninstall.log", "UaUnInstall.log", "InMage_drivers.log")
    return [
        *found,
        Source("/var/log", _rotated(*installer), "vendor installer log", newest_first=True),
        Source("/var/log", r"InstallerErrors\.json", "vendor errors JSON", expected="InstallerErrors.json"),
        Source("/var/log/ASRsetuptelemetry", r".+", "vendor setup telemetry"),
        Source("/var/log", _rotated("cdpcli.log", "AzureRcmCli.log"), "agent tool log", newest_first=True),
        Source("/usr/local", r"\.vx_version", "agent version file", expected=".vx_version"),
        *_agent_config(app),
        Source("/usr/local/InMage/config", r"RCMInfo\.conf", "agent configuration"),
        Source("/var/log", r"(?:svagents|appservice).*", "agent log", newest_first=True),
    ]


def _agent_config(app: App) -> list[Source]:
    """The installed agent's own configuration (drscout.conf, the RCMInfo.conf template), found through its
    version file: the path is the vendor's, so it is resolved inside the root like any other."""
    from asrctl.agent import factory

    try:
        agent = factory.backend_for(app).installed()
    except AsrctlError as err:
        LOG.warning("logs collect: the agent's configuration is left out: %s", err.message)
        return []
    if agent is None:
        return []
    vx = Path(str(agent.details.get("vx_dir") or agent.install_dir / "Vx"))
    etc = rootfs.target_of(app.paths, vx / "etc")
    return [Source(etc, r"drscout\.conf|RCMInfo\.conf", "agent configuration", expected="drscout.conf")]


# Passphrases left on the machine: read only to mask them everywhere, never archived. The vendor's configurator
# keeps a copy of -P (ms-bundles-facts.md, "Outside the install dir"); a killed asrctl run leaves its private copy.
SECRET_FILES = (
    ("/usr/local/InMage/private", r"connection\.passphrase"),
    ("{state}/private/*", r"passphrase"),
)


# --- the archive ------------------------------------------------------------------------------------------------


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
    def source(self, src: Source) -> None:
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
            suffix = next((s for s in _DECOMPRESSORS if target.endswith(s)), None)
            try:
                if suffix:
                    raw, read, complete = _decompressed_tail(opened, room, suffix)
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
            pieces, cut = _scrub(raw, cut, stored_as, room)
            del raw
            kept = sum(len(p.data) for p in pieces)
            if not kept and cut and room < self.max_file:
                self.skipped.append({"path": target, "kind": "archive-full", "reason": "the archive cap was reached"})
                return
            member = self._member("files/" + _relative(redact.redact(stored_as)))
            self._write(member, kept, io.BufferedReader(_Pieces(pieces), CHUNK), opened.mtime)
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
        for directory, pattern in SECRET_FILES:
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


def _first_whole_line(raw: bytes | bytearray, start: int = 0) -> int:
    """Where a cut tail's first whole line starts: a token cut in half could not be recognised as a secret."""
    nl = raw.find(b"\n", start)
    return len(raw) if nl < 0 else nl + 1


def _decompressed_tail(opened: rootfs.Opened, limit: int, suffix: str) -> tuple[bytearray, int, bool]:
    """(the last ``limit`` decompressed bytes, how many were decompressed, whether the stream ended)."""
    buf = bytearray()
    total = 0
    with _DECOMPRESSORS[suffix](opened.stream()) as stream:
        while total < DECOMPRESS_LIMIT:
            chunk = stream.read(min(CHUNK, DECOMPRESS_LIMIT - total))
            if not chunk:
                return buf, total, True
            total += len(chunk)
            buf += chunk
            if len(buf) > limit:
                del buf[: len(buf) - limit]  # cheap: bytearray drops a prefix without copying the rest
        complete = not stream.read(1)
    return buf, total, complete


@dataclass
class Piece:
    """Masked output of ``raw[start:end]``: the source span is kept so a piece can be cut and masked again."""

    data: bytes
    count: int
    start: int
    end: int


def _scrub(raw: bytes | bytearray, cut: bool, name: str, room: int) -> tuple[list[Piece], bool]:
    """Mask secrets in one file's kept bytes (JSON documents by field, JSON lines line by line, everything else
    as text, in line-aligned pieces) and keep at most ``room`` bytes of the result, whole lines from the end.
    Returns the pieces and whether the file was cut."""
    start = _first_whole_line(raw) if cut else 0
    lower = name.lower()
    if lower.endswith(".json") and not cut and len(raw) <= JSON_PARSE_LIMIT:
        try:
            doc = json.loads(str(memoryview(raw), "utf-8"))
        except ValueError:
            pass  # the vendor's JSON is not always valid (unescaped quotes): masked as text below
        else:
            masked, count = redact.scrub_json(doc)
            data = (json.dumps(masked, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
            if len(data) <= room:
                return [Piece(data, count, 0, len(raw))], False
    if lower.endswith(".jsonl"):
        pieces = [_scrub_json_line(raw, a, b) for a, b in _lines(raw, start)]
    else:
        pieces = [_scrub_span(raw, a, b, cut and a == start) for a, b in _spans(raw, start)]
    return _fit(raw, pieces, room, cut)


def _fit(raw: bytes | bytearray, pieces: list[Piece], room: int, cut: bool) -> tuple[list[Piece], bool]:
    """Drop whole pieces from the front, then cut the first one at a line, until the masked output fits."""
    total = sum(len(p.data) for p in pieces)
    while pieces and total > room:
        first = pieces[0]
        excess = total - room
        total -= len(first.data)
        cut = True
        if excess >= len(first.data):
            pieces.pop(0)
            continue
        again = _scrub_span(raw, _first_whole_line(raw, first.start + excess), first.end, True)
        pieces[0] = again
        total += len(again.data)
    return pieces, cut


def _lines(raw: bytes | bytearray, start: int) -> Iterator[tuple[int, int]]:
    pos = start
    while pos < len(raw):
        end = _first_whole_line(raw, pos)
        yield pos, end
        pos = end


def _scrub_json_line(raw: bytes | bytearray, a: int, b: int) -> Piece:
    line = str(memoryview(raw)[a:b], "utf-8", "replace")
    try:
        masked, count = redact.scrub_json(json.loads(line))
        text = json.dumps(masked, sort_keys=True, ensure_ascii=False) + "\n"
    except ValueError:
        text, count = redact.scrub_text(line)
    return Piece(text.encode("utf-8"), count, a, b)


def _spans(raw: bytes | bytearray, start: int) -> Iterator[tuple[int, int]]:
    """~1 MiB spans that end at a line end, and never inside a PEM block (which spans lines)."""
    pos = start
    while pos < len(raw):
        end = raw.find(b"\n", min(len(raw), pos + CHUNK))
        end = len(raw) if end < 0 else end + 1
        begin = raw.rfind(b"-----BEGIN ", pos, end)
        if begin >= 0 and raw.find(b"-----END ", begin, end) < 0:
            close = raw.find(b"-----END ", end)
            close = -1 if close < 0 else raw.find(b"\n", close)
            end = len(raw) if close < 0 else close + 1
        yield pos, end
        pos = end


def _scrub_span(raw: bytes | bytearray, a: int, b: int, first_of_cut: bool) -> Piece:
    text = str(memoryview(raw)[a:b], "utf-8", "replace")
    masked, count = redact.scrub_cut_text(text) if first_of_cut else redact.scrub_text(text)
    return Piece(masked.encode("utf-8"), count, a, b)


class _Pieces(io.RawIOBase):
    """The pieces as one stream for tarfile, without joining them into one more copy."""

    def __init__(self, pieces: list[Piece]) -> None:
        self._rest = [memoryview(p.data) for p in pieces if p.data]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._rest:
            return 0
        head = self._rest[0]
        n = min(len(buffer), len(head))
        buffer[:n] = head[:n]
        if n == len(head):
            self._rest.pop(0)
        else:
            self._rest[0] = head[n:]
        return n


# --- the verb -----------------------------------------------------------------------------------------------


def _quiet(app: App, command: str, console: io.StringIO | None = None) -> App:
    """The same host and options, output captured: a verb run for a report draws nothing on the terminal."""
    return App(
        root_arg=app.root_arg,
        bundle_dir_args=app.bundle_dir_args,
        out=Output(verbosity=0, color=False, file=console or io.StringIO()),
        exit_codes=app.exit_codes,
        command=command,
    )


def _detect(app: App) -> Result:
    quiet = _quiet(app, "detect")
    result = Result("detect", data={"platform": quiet.platform_json(), "host": quiet.facts.as_json()})
    result.warnings.extend(quiet.platform.warnings)
    if not quiet.platform.supported:
        result.ok = False
        result.error = AsrctlError("ASRCTL-E010", quiet.platform.reason or "unsupported").as_json()
    return result


def _status(app: App) -> Result:
    from asrctl.lifecycle.status import status

    return status(_quiet(app, "status"))


def _doctor(app: App, endpoint: str | None, console: io.StringIO) -> Result:
    from asrctl.support import doctor

    quiet = _quiet(app, "doctor", console)
    if endpoint is None:  # the configuration server this agent is registered with, if any
        from asrctl.agent import factory

        try:
            agent = factory.backend_for(quiet).installed()
        except AsrctlError:
            agent = None
        endpoint = agent.cs_endpoint if agent and agent.registered else None
    return doctor(quiet, endpoint, 9443, CONNECT_TIMEOUT, None)


def _host(app: App) -> dict[str, Any]:
    """What support asks first about the machine (the host running asrctl; release files from the root)."""
    import platform

    import psutil

    from asrctl import buildinfo

    p = app.paths
    disks: dict[str, Any] = {}
    for label, where in (("root", p.root), ("state", p.state_dir), ("log", p.log_dir)):
        probe = next((d for d in (where, *where.parents) if d.exists()), None)
        if probe is not None:
            usage = psutil.disk_usage(str(probe))
            disks[label] = {"path": str(probe), "total": usage.total, "free": usage.free}
    memory = psutil.virtual_memory()
    return {
        "hostname": socket.gethostname(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "timezone": list(time.tzname),
        "boot_time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(psutil.boot_time())),
        "uname": platform.uname()._asdict(),
        "cpus": os.cpu_count(),
        "memory": {"total": memory.total, "available": memory.available},
        "disks": disks,
        "locale": {k: os.environ.get(k) for k in ("LANG", "LC_ALL", "LC_CTYPE")},
        "root": str(p.root),
        "sandboxed": p.sandboxed,
        "facts": app.facts.as_json(),
        "release_files": dict(app.facts.release_files),
        "asrctl": buildinfo.collect().__dict__,
    }


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
                c.report("detect", lambda: _detect(app))
                c.report("status", lambda: _status(app))
                c.report("doctor", lambda: _doctor(app, cs_endpoint, doctor_text))
                c.report("host", lambda: _host(app))
                c.text("reports/doctor.txt", doctor_text.getvalue())
                for src in sources(app):
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
