"""Microsoft's ``supported_kernels`` lists: the file in every bundle, and the same file renamed
``<TAG>_supported_kernels.txt`` in Microsoft's SupportedKernels tree (docs/KERNELS.md).

One ``uname -r`` per line; SLES lines are ``<uname -r>:<SP>``. Microsoft's files never hold a CR, a blank line, a
comment, surrounding spaces or a BOM, so any of those means the copy was damaged (an editor, a Windows transfer):
the file is refused, naming the line, rather than read differently from how Microsoft's checker reads it (a CRLF
line never matches there). Two real files lack the final newline: that is accepted, and remembered, because
Microsoft's checker reads the list with a ``while read`` loop that never sees a last line without one
(:attr:`KernelList.unterminated`). RHEL and OL files are empty: their support is rule-based (:mod:`.rules`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asrctl.errors import AsrctlError
from asrctl.kernels import kver

MAX_BYTES = 4 << 20  # the longest real list is ~300 lines (~10 KB)


@dataclass(frozen=True)
class KernelList:
    source: str  # where it came from, for messages
    entries: dict[str, int | None] = field(default_factory=dict)  # kernel -> SLES service pack (None: no SP)
    sles: bool = False  # lines are kver:SP
    unterminated: str | None = None  # the last line, when the file has no final newline

    def __contains__(self, kernel: object) -> bool:
        return kernel in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def seen_by_installer(self, kernel: str) -> bool:
        """Whether Microsoft's checker finds ``kernel``: its ``while read`` loop never reads a last line that has no
        final newline."""
        return kernel in self.entries and kernel != self.unterminated

    def kernels(self) -> list[str]:
        return list(self.entries)


def _bad(source: str, line: int | None, why: str) -> AsrctlError:
    where = f"{source} line {line}" if line is not None else source
    return AsrctlError("ASRCTL-E094", f"{where}: {why}", source=source, line=line)


def parse(data: bytes | str, source: str) -> KernelList:
    """Parse one list; ``ASRCTL-E094`` naming the file and line for anything Microsoft's files never contain."""
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            raise _bad(source, None, f"larger than {MAX_BYTES} bytes: not a kernel list")
        if data.startswith(b"\xef\xbb\xbf"):
            raise _bad(source, 1, "starts with a byte-order mark (BOM); Microsoft's lists are plain ASCII")
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError as exc:
            at = data[: exc.start].count(b"\n") + 1
            raise _bad(source, at, "holds a byte that is not ASCII; Microsoft's lists are plain ASCII") from None
    else:
        text = data
    if not text:
        return KernelList(source)
    lines = text.split("\n")
    unterminated = None
    if lines[-1] == "":
        lines.pop()
    else:
        unterminated = lines[-1]
    entries: dict[str, int | None] = {}
    with_sp = without_sp = 0
    for n, line in enumerate(lines, 1):
        if "\r" in line:
            raise _bad(source, n, "has a CR (CRLF line endings?); Microsoft's lists end lines with LF only")
        if not line.strip():
            raise _bad(source, n, "is blank; Microsoft's lists have one kernel on every line")
        if line != line.strip():
            raise _bad(source, n, f"{line!r} has spaces around it")
        kernel, sp = line, None
        if ":" in line:
            kernel, _, sp_text = line.rpartition(":")
            if not (sp_text.isascii() and sp_text.isdigit() and len(sp_text) <= 2):
                raise _bad(source, n, f"{line!r}: the service pack after ':' must be a number")
            sp = int(sp_text)
            with_sp += 1
        else:
            without_sp += 1
        why = kver.problem(kernel)
        if why is not None:
            raise _bad(source, n, f"{kernel!r} is not a kernel release string: {why}")
        if kernel in entries and entries[kernel] != sp:
            raise _bad(source, n, f"{kernel} is listed twice with different service packs")
        entries[kernel] = sp
    if with_sp and without_sp:
        raise _bad(source, None, "mixes kver:SP lines (SLES) with plain lines")
    if unterminated is not None and ":" in unterminated:
        unterminated = unterminated.rpartition(":")[0]
    return KernelList(source, entries, sles=bool(with_sp), unterminated=unterminated)
