"""``asrctl bundles fetch URL``: a bundle from a site's internal HTTPS mirror into the bundle dir.

- requests, with the environment's proxy settings (HTTPS_PROXY, NO_PROXY) and ``--ca-bundle`` for a private CA;
- the download goes to ``.<name>.part`` in the bundle dir; an interrupted transfer is resumed with a Range
  request (guarded by If-Range with the server's ETag or Last-Modified, kept beside the part file, so a bundle
  that changed on the mirror meanwhile is downloaded whole again), and transient failures are retried with
  exponential backoff (asrctl.system.retry, shared with registration);
- the digest comes from ``--sha256``, else from ``SHA256SUMS`` beside the bundle on the mirror, else from the
  bundle dir's own ``SHA256SUMS``; the finished file is verified before it is renamed into place (atomically), and
  a verified digest is recorded in the bundle dir's ``SHA256SUMS`` so the verbs that use the bundle check it too.
  Without any digest the same policy as everywhere applies: a loud warning, or ``ASRCTL-E031`` with
  ``--require-digest``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from asrctl.bundles.digest import (
    SOURCE_OPTION,
    SUMS_NAME,
    add_sum,
    mismatch_error,
    normalize_hex,
    parse_sums,
    read_sums,
    sha256_file,
    unverified_warning,
)
from asrctl.bundles.formats import EXE_MAGIC, SNIFF_BYTES, sniff
from asrctl.bundles.names import BundleNameError, parse
from asrctl.errors import AsrctlError
from asrctl.system.retry import retry

if TYPE_CHECKING:
    import requests

    from asrctl.output import Output

LOG = logging.getLogger("asrctl.fetch")
T = TypeVar("T")

CHUNK = 64 << 10  # urllib3 drops a partly read chunk when the connection breaks: keep them small
MAX_BACKOFF = 30.0
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_SUMS_BYTES = 1 << 20
SOURCE_MIRROR = "SHA256SUMS on the mirror"
SOURCE_LOCAL = "SHA256SUMS in the bundle dir"


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str
    source: str  # where the expected digest came from, or why there was none
    verified: bool
    changed: bool  # False when the bundle dir already had the file with the expected digest
    downloaded: int  # bytes transferred by this run
    resumed_from: int  # bytes of an earlier partial download that were kept

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "source": self.source,
            "verified": self.verified,
            "downloaded": self.downloaded,
            "resumed_from": self.resumed_from,
        }


class _Retry(Exception):
    """A transient failure: try again (resuming) after a pause."""


def fetch_bundle(
    url: str,
    to_dir: Path,
    *,
    sha256: str | None,
    ca_bundle: str | None,
    out: Output | None,
    retries: int = 5,
    timeout: float = 30.0,
    require_digest: bool = False,
    backoff: float = 1.0,
) -> Fetched:
    """Download ``url`` into ``to_dir`` (see the module docstring) and say what happened."""
    return fetch_file(
        url,
        to_dir,
        filename=bundle_filename(url),
        sha256=sha256,
        ca_bundle=ca_bundle,
        out=out,
        retries=retries,
        timeout=timeout,
        require_digest=require_digest,
        backoff=backoff,
    )


def fetch_file(
    url: str,
    to_dir: Path,
    *,
    filename: str,
    sha256: str | None,
    ca_bundle: str | None,
    out: Output | None,
    retries: int = 5,
    timeout: float = 30.0,
    require_digest: bool = False,
    backoff: float = 1.0,
    magic: tuple[bytes, ...] | None = None,
    local_sums: bool = True,
) -> Fetched:
    """The same for any file the caller named (``kernel lists fetch``: an archive of the kernel lists): resumed,
    verified against ``--sha256`` or a SHA256SUMS line, renamed into ``to_dir`` whole. ``magic``: the accepted
    first bytes (default: a bundle's, by its extension). ``local_sums=False``: neither read nor write ``to_dir``'s
    SHA256SUMS (a file whose name stays while its content changes, such as the kernel lists' archive, would
    otherwise be held to its first digest forever)."""
    expected = normalize_hex(sha256) if sha256 else None
    scheme = urlsplit(url).scheme.lower()
    if scheme == "http" and expected is None:
        raise AsrctlError(
            "ASRCTL-E002",
            f"{url}: plain http without --sha256; anyone on the way could change the bundle",
            remedy="Use the mirror's https:// URL, or pass --sha256 HEX from a trusted source.",
        )
    if ca_bundle is not None and not Path(ca_bundle).is_file():
        raise AsrctlError("ASRCTL-E002", f"--ca-bundle {ca_bundle}: no such file")
    to_dir = Path(to_dir)
    try:
        to_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AsrctlError("ASRCTL-E021", f"bundle dir {to_dir}: {exc.strerror}", path=str(to_dir)) from None
    final = to_dir / filename
    part = to_dir / f".{filename}.part"
    validator_file = to_dir / f".{filename}.part.validator"

    dl = _Downloader(url, ca_bundle, out, retries, timeout, backoff)
    with dl:
        source = SOURCE_OPTION
        if expected is None:
            expected, source = _expected_from_sums(dl, url, filename, to_dir if local_sums else None)
        if expected is None and require_digest:
            raise AsrctlError(
                "ASRCTL-E031",
                f"{filename}: no digest to verify it against ({source}); --require-digest is set",
                remedy="Pass --sha256 HEX, or publish SHA256SUMS beside the bundle on the mirror "
                "(`asrctl bundles checksum DIR` writes it).",
                url=url,
            )
        if expected is not None and final.is_file() and sha256_file(final) == expected:
            _say(out, f"{final} is already there and verified ({source})")
            return Fetched(final, expected, source, True, False, 0, 0)

        resumed_from = part.stat().st_size if part.exists() else 0
        downloaded = dl.download(part, validator_file)
        _check_magic(part, validator_file, filename, url, magic)
        actual = _hash(part, out)
        if expected is not None and actual != expected and resumed_from:
            # The kept part may come from another copy of the file: fetch it whole once before failing.
            LOG.info("digest mismatch after resuming %s from byte %d; downloading it whole", filename, resumed_from)
            _discard(part, validator_file)
            downloaded += dl.download(part, validator_file)
            _check_magic(part, validator_file, filename, url, magic)
            actual = _hash(part, out)
            resumed_from = 0
        if expected is not None and actual != expected:
            _discard(part, validator_file)
            raise mismatch_error(final, expected, actual, source)

    os.chmod(part, 0o644)
    os.replace(part, final)
    _fsync_dir(to_dir)
    with contextlib.suppress(FileNotFoundError):
        validator_file.unlink()
    if expected is not None and source != SOURCE_LOCAL and local_sums:
        try:
            add_sum(to_dir, filename, actual)
        except AsrctlError as exc:  # the download is good and in place; only the bookkeeping failed
            if out is not None:
                out.warn(f"could not record the digest in {to_dir / SUMS_NAME}: {exc.message}")
    elif expected is None and out is not None:
        out.warn(unverified_warning(final, source))
    LOG.info("fetched %s into %s (%d bytes transferred, sha256 %s)", url, final, downloaded, actual)
    return Fetched(final, actual, source, expected is not None, True, downloaded, resumed_from)


def bundle_filename(url: str) -> str:
    """The bundle file name a URL ends in; ``ASRCTL-E022`` when it does not end in one."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("https", "http") or not parts.netloc:
        raise AsrctlError(
            "ASRCTL-E002", f"{url}: not an https:// URL", remedy="Give the bundle's full https:// URL on the mirror."
        )
    name = unquote(parts.path.rsplit("/", 1)[-1])
    try:
        parse(name)
    except BundleNameError as exc:
        raise AsrctlError(
            "ASRCTL-E022", f"{url}: does not end in a bundle file name ({name or 'empty'}: {exc})", url=url
        ) from None
    return name


def _say(out: Output | None, text: str) -> None:
    if out is not None:
        out.info(text)


def _hash(path: Path, out: Output | None) -> str:
    if out is None:
        return sha256_file(path)
    with out.progress(f"Verifying {path.name.lstrip('.').removesuffix('.part')}", path.stat().st_size) as progress:
        return sha256_file(path, progress)


def _discard(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _check_magic(
    part: Path, validator_file: Path, filename: str, url: str, magic: tuple[bytes, ...] | None = None
) -> None:
    """A captive portal or a misconfigured mirror answers 200 with an HTML page; say so plainly. A Linux bundle
    may be gzip, LZMA, xz or tar whatever its name says (asrctl.bundles.formats); ``magic`` narrows what is
    accepted (a kernel lists archive is gzip)."""
    with open(part, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if magic is not None:
        ok = head.startswith(magic)
    elif filename.lower().endswith(".exe"):
        ok = head.startswith(EXE_MAGIC)
    else:
        ok = sniff(head) is not None
    if not ok:
        _discard(part, validator_file)
        shown = head[:40].decode("latin-1").strip()
        raise AsrctlError(
            "ASRCTL-E036",
            f"{url}: the server sent something that is not a {'bundle' if magic is None else filename} (it starts "
            f"with {shown!r})",
            url=url,
        )


def _expected_from_sums(dl: _Downloader, url: str, filename: str, to_dir: Path | None) -> tuple[str | None, str]:
    parts = urlsplit(url)
    sums_url = urlunsplit((parts.scheme, parts.netloc, parts.path.rsplit("/", 1)[0] + "/" + SUMS_NAME, "", ""))
    text = dl.small_text(sums_url)
    if text is not None:
        listed = parse_sums(text, sums_url).get(filename)
        if listed is not None:
            return listed, SOURCE_MIRROR
    if to_dir is None:
        return None, f"no --sha256, and no {SUMS_NAME} line for it on the mirror"
    local = to_dir / SUMS_NAME
    if local.exists():
        listed = read_sums(local).get(filename)
        if listed is not None:
            return listed, SOURCE_LOCAL
    return None, f"no --sha256, and no {SUMS_NAME} line for it on the mirror or in {to_dir}"


class _Downloader:
    def __init__(
        self, url: str, ca_bundle: str | None, out: Output | None, retries: int, timeout: float, backoff: float
    ) -> None:
        import requests

        from asrctl import __version__

        self.url = url
        self.out = out
        self.retries = max(0, retries)
        self.timeout = timeout
        self.backoff = backoff
        self.transferred = 0
        self.session = requests.Session()  # trust_env: HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE
        # Per request, not on the session: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        self.verify: str | bool = ca_bundle if ca_bundle else True
        self.session.headers["User-Agent"] = f"asrctl/{__version__}"

    def __enter__(self) -> _Downloader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    # -- errors ----------------------------------------------------------------------------------------------
    def _fatal(self, url: str, exc: Exception) -> AsrctlError | None:
        """A failure that retrying cannot mend, as the error to raise; None when retrying may help."""
        import requests

        if isinstance(exc, requests.exceptions.SSLError):
            return AsrctlError(
                "ASRCTL-E036",
                f"{url}: TLS failed ({_short(exc)})",
                remedy="If the mirror uses a private CA, pass --ca-bundle FILE (PEM) with that CA; check the "
                "clock and the name in the URL.",
                url=url,
            )
        if isinstance(exc, requests.exceptions.ProxyError):
            return AsrctlError(
                "ASRCTL-E036",
                f"{url}: the proxy failed ({_short(exc)})",
                remedy="Check HTTPS_PROXY and NO_PROXY (NO_PROXY should list the mirror if it is reached directly).",
                url=url,
            )
        if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
            return AsrctlError("ASRCTL-E002", f"{url}: {_short(exc)}")
        return None

    def _retrying(self, what: str, action: Callable[[], T], so_far: Callable[[], str] = str) -> T:
        """``action()``, again after a pause (exponential backoff) while it fails in a way that retrying can
        mend: dropped connections, timeouts, HTTP 408/425/429/5xx. ``so_far()`` says what is kept meanwhile."""
        import requests

        calls = 0

        def once() -> T:
            nonlocal calls
            calls += 1
            return action()

        def transient(exc: Exception) -> bool:
            if isinstance(exc, _Retry):
                return True
            return isinstance(exc, requests.RequestException) and self._fatal(self.url, exc) is None

        def on_retry(attempt: int, delay: float, exc: Exception) -> None:
            reason = _short(exc) + so_far()
            if self.out is not None:
                self.out.warn(
                    f"{what}: {reason}; retrying in {delay:.0f} s (attempt {attempt + 1} of {self.retries + 1})"
                )
            LOG.warning("%s: %s; retry %d in %.1f s", what, reason, attempt, delay)

        try:
            return retry(
                once,
                attempts=self.retries + 1,
                base_delay=self.backoff,
                max_delay=MAX_BACKOFF,
                is_transient=transient,
                on_retry=on_retry,
            )
        except (requests.RequestException, _Retry) as exc:
            fatal = self._fatal(self.url, exc) if isinstance(exc, requests.RequestException) else None
            if fatal is not None:
                raise fatal from None
            raise AsrctlError(
                "ASRCTL-E036", f"{what}: {_short(exc)} (gave up after {calls} attempts{so_far()})", url=what
            ) from None

    # -- SHA256SUMS on the mirror ----------------------------------------------------------------------------
    def small_text(self, url: str) -> str | None:
        """A small text file (SHA256SUMS) from the mirror, or None when it has none (any 4xx)."""

        def get() -> str | None:
            with self.session.get(url, stream=True, timeout=self.timeout, verify=self.verify) as r:
                if r.status_code in RETRY_STATUS:
                    raise _Retry(f"HTTP {r.status_code} {r.reason}")
                if 400 <= r.status_code < 500:
                    return None
                if r.status_code != 200:
                    raise AsrctlError("ASRCTL-E036", f"{url}: HTTP {r.status_code} {r.reason}", url=url)
                data = b""
                for chunk in r.iter_content(65536):
                    data += chunk
                    if len(data) > MAX_SUMS_BYTES:
                        raise AsrctlError("ASRCTL-E035", f"{url}: larger than {MAX_SUMS_BYTES} bytes")
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                raise AsrctlError("ASRCTL-E035", f"{url}: not UTF-8 text") from None

        return self._retrying(url, get)

    # -- the bundle ------------------------------------------------------------------------------------------
    def download(self, part: Path, validator_file: Path) -> int:
        """Bring ``part`` to the whole file, resuming what is there; the bytes transferred."""
        before = self.transferred

        def kept() -> str:
            have = part.stat().st_size if part.exists() else 0
            return f"; {have} bytes kept in {part.name}, the next attempt resumes from there" if have else ""

        self._retrying(self.url, lambda: self._attempt(part, validator_file), kept)
        return self.transferred - before

    def _attempt(self, part: Path, validator_file: Path) -> None:
        offset = part.stat().st_size if part.exists() else 0
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            validator = _read_validator(validator_file)
            if validator:
                headers["If-Range"] = validator
        with self.session.get(self.url, headers=headers, stream=True, timeout=self.timeout, verify=self.verify) as r:
            status = r.status_code
            if status == 416 and offset:
                total = _content_range_total(r.headers.get("Content-Range", ""))
                if total == offset:
                    return  # the part file is already whole
                _discard(part, validator_file)
                raise _Retry("the server cannot resume this file (HTTP 416); starting again")
            if status in RETRY_STATUS:
                raise _Retry(f"HTTP {status} {r.reason}")
            if status not in (200, 206):
                raise AsrctlError(
                    "ASRCTL-E036",
                    f"{self.url}: HTTP {status} {r.reason}",
                    remedy="Check the URL: the bundle must be on the mirror under exactly this name."
                    if status == 404
                    else None,
                    url=self.url,
                    status=status,
                )
            if status == 206:
                start = _content_range_start(r.headers.get("Content-Range", ""))
                if start != offset:
                    _discard(part, validator_file)
                    raise _Retry(f"the server resumed at byte {start}, not {offset}; starting again")
                mode = "ab"
            else:
                if offset:
                    LOG.info("the server sent the whole file instead of resuming at byte %d", offset)
                offset = 0
                mode = "wb"
                _write_validator(validator_file, r)
            length = r.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            self._receive(r, part, mode, offset, total)

    def _receive(self, r: requests.Response, part: Path, mode: str, offset: int, total: int | None) -> None:
        import requests

        received = 0
        name = part.name.lstrip(".").removesuffix(".part")
        progress_cm = (
            self.out.progress(f"Downloading {name}", total) if self.out is not None else contextlib.nullcontext()
        )
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "ab" else os.O_TRUNC), 0o600)
            with os.fdopen(fd, mode, buffering=0) as fh, progress_cm as progress:
                if progress is not None and offset:
                    progress.advance(offset)
                try:
                    for chunk in r.iter_content(CHUNK):
                        fh.write(chunk)
                        received += len(chunk)
                        self.transferred += len(chunk)
                        if progress is not None:
                            progress.advance(len(chunk))
                finally:
                    os.fsync(fh.fileno())
        except OSError as exc:
            if isinstance(exc, requests.RequestException):
                raise
            raise _local_error(part, exc) from None  # the disk, not the network
        if total is not None and offset + received < total:
            raise _Retry(f"the connection closed after {offset + received} of {total} bytes")


def _local_error(part: Path, exc: OSError) -> BaseException:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return AsrctlError("ASRCTL-E041", f"no space left for {part}: {exc.strerror}", path=str(part))
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return AsrctlError("ASRCTL-E040", f"cannot write {part}: {exc.strerror}", path=str(part))
    return exc


def _read_validator(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _write_validator(path: Path, r: requests.Response) -> None:
    """Strong ETag, else Last-Modified: what If-Range may carry on a later resume."""
    etag = r.headers.get("ETag", "")
    value = etag if etag and not etag.startswith("W/") else r.headers.get("Last-Modified", "")
    try:
        if value:
            path.write_text(value + "\n", encoding="utf-8")
        else:
            _discard(path)
    except OSError:
        pass


def _content_range_start(value: str) -> int | None:
    m = re.match(r"\s*bytes\s+(\d+)-\d+/(?:\d+|\*)", value)
    return int(m.group(1)) if m else None


def _content_range_total(value: str) -> int | None:
    m = re.match(r"\s*bytes\s+(?:\*|\d+-\d+)/(\d+)", value)
    return int(m.group(1)) if m else None


def _short(exc: BaseException) -> str:
    """requests' messages nest urllib3's; keep the last, most specific part."""
    text = str(exc) or type(exc).__name__
    m = re.search(r"\(Caused by (\w+)\((.*)\)\)\s*$", text)
    if m:
        inner = m.group(2)
        tail = re.search(r"'([^']*)'\s*\)*$", inner)
        text = f"{m.group(1)}: {tail.group(1) if tail else inner}"
    return text[:300]
