"""``asrctl kernel lists fetch URL`` against a loopback HTTPS mirror (a throwaway CA from trustme, 127.0.0.1 only,
port 0): the tree arrives verified and whole, replaces the old one whole, and every bad archive leaves the old
tree as it was and nothing beside it."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import ssl
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from asrctl.cli import run

REPO = Path(__file__).resolve().parents[2]
LISTS = REPO / "tests/fixtures/supported-kernels"
URL_PATH = "/asr/SupportedKernels.tar.gz"


def archive(extra: dict[str, bytes] | None = None, rename: tuple[str, str] | None = None, skip: str = "") -> bytes:
    """A .tar.gz of the fixture tree (MobilityAgent/...), with changes for a test."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path in sorted(LISTS.rglob("*")):
            rel = str(path.relative_to(LISTS))
            if path.is_dir() or rel == "README.md" or (skip and skip in rel):
                continue
            name = rel.replace(*rename) if rename else rel
            info = tarfile.TarInfo(name)
            data = path.read_bytes()
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = self.server.files.get(self.path)  # type: ignore[attr-defined]
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def mirror(ca: trustme.CA, tmp_path: Path) -> Iterator[tuple[dict[str, bytes], str, str]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    files: dict[str, bytes] = {}
    server.files = files  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    yield files, f"https://127.0.0.1:{server.server_address[1]}{URL_PATH}", str(ca_file)
    server.shutdown()
    server.server_close()
    thread.join(5)


def publish(files: dict[str, bytes], data: bytes, sums: bool = True) -> str:
    digest = hashlib.sha256(data).hexdigest()
    files[URL_PATH] = data
    if sums:
        files["/asr/SHA256SUMS"] = f"{digest}  SupportedKernels.tar.gz\n".encode()
    else:
        files.pop("/asr/SHA256SUMS", None)
    return digest


def fetch(root: Path, url: str, ca_file: str, capsys, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = run(
        [
            "--json",
            "--root",
            str(root),
            "kernel",
            "lists",
            "fetch",
            url,
            "--ca-bundle",
            ca_file,
            "--retries",
            "0",
            *args,
        ]
    )
    return code, json.loads(capsys.readouterr().out)


def tree_files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_fetch_verify_replace_whole(mirror, tmp_path: Path, capsys) -> None:
    files, url, ca_file = mirror
    root = tmp_path / "root"
    root.mkdir()
    digest = publish(files, archive())
    code, doc = fetch(root, url, ca_file, capsys)
    assert code == 0 and doc["changed"] is True, doc
    data = doc["data"]
    target = root / "var/lib/asrctl/supported-kernels"
    assert data["directory"] == str(target) and data["verified"] is True and data["sha256"] == digest
    assert data["lists"] == 17 and "AzureToAzure/9.66.7789.1" in data["builds"]
    assert "SLES15-64" in data["tags"]
    assert (target / "MobilityAgent/AzureToAzure/SupportedKernels/9.66.7789.1").is_dir()
    # The fetched tree is where `kernel check` looks without --lists (here a planning question on another tag).
    capsys.readouterr()
    argv = [
        "--json",
        "--root",
        str(root),
        "kernel",
        "check",
        "--tag",
        "UBUNTU-22.04-64",
        "--kernel",
        "5.15.0-1103-azure",
    ]
    assert run(argv) == 0
    answer = json.loads(capsys.readouterr().out)["data"]["kernels"][0]
    assert answer["decided_by"] == "lists" and answer["lists"]["directory"] == str(target)

    code, doc = fetch(root, url, ca_file, capsys)  # the same archive again: nothing to do
    assert code == 0 and doc["changed"] is False

    # Microsoft relabels build directories: the new tree replaces the old one whole, the old name is gone.
    publish(files, archive(rename=("9.66.7789.1", "9.66.7790.1")))
    code, doc = fetch(root, url, ca_file, capsys)
    assert code == 0 and doc["changed"] is True
    assert not (target / "MobilityAgent/AzureToAzure/SupportedKernels/9.66.7789.1").exists()
    assert (target / "MobilityAgent/AzureToAzure/SupportedKernels/9.66.7790.1").is_dir()
    assert sorted(p.name for p in target.parent.iterdir()) == ["supported-kernels", ".supported-kernels.download"][::-1]


@pytest.mark.parametrize(
    ("make", "args", "code", "error"),
    [
        (lambda: (archive(), False, "0" * 64), (), 5, "ASRCTL-E030"),
        (lambda: (archive(extra={"../evil.txt": b"x"}), True, None), (), 5, "ASRCTL-E032"),
        (lambda: (archive(extra={"/etc/evil": b"x"}), True, None), (), 5, "ASRCTL-E032"),
        # Synthetic damage (not Microsoft's bytes): a list with CRLF line endings.
        (
            lambda: (
                archive(
                    skip="9.66.7604.1/DEBIAN12",
                    extra={
                        "MobilityAgent/OnPremiseToAzure/SupportedKernels/9.66.7604.1/DEBIAN12-64_supported_kernels.txt": b"6.1.0-35-amd64\r\n"
                    },
                ),
                True,
                None,
            ),
            (),
            5,
            "ASRCTL-E094",
        ),
        (lambda: (archive(), False, None), ("--require-digest",), 5, "ASRCTL-E031"),
        (lambda: (b"<html>captive portal</html>", False, None), (), 5, "ASRCTL-E036"),
        (
            lambda: (archive(skip="MobilityAgent", extra={"README": b"no lists here\n"}), True, None),
            (),
            2,
            "ASRCTL-E095",
        ),
    ],
    ids=["digest-mismatch", "traversal", "absolute", "crlf-list", "no-digest-required", "html-page", "no-tree"],
)
def test_a_bad_archive_leaves_the_old_tree(mirror, tmp_path: Path, capsys, make, args, code: int, error: str) -> None:
    files, url, ca_file = mirror
    root = tmp_path / "root"
    root.mkdir()
    target = tmp_path / "kernels"
    publish(files, archive())
    assert fetch(root, url, ca_file, capsys, "--to", str(target))[0] == 0
    before = tree_files(target)
    data, sums, sha = make()
    publish(files, data, sums=sums)
    got, doc = fetch(root, url, ca_file, capsys, "--to", str(target), *(["--sha256", sha] if sha else []), *args)
    assert (got, doc["error"]["code"]) == (code, error), doc
    assert tree_files(target) == before
    assert (
        sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".kernels.") and p.name != ".kernels.download")
        == []
    )


def test_a_directory_of_other_files_is_never_replaced(mirror, tmp_path: Path, capsys) -> None:
    files, url, ca_file = mirror
    publish(files, archive())
    target = tmp_path / "srv"
    target.mkdir()
    (target / "precious.txt").write_text("keep me\n")
    code, doc = fetch(tmp_path, url, ca_file, capsys, "--to", str(target))
    assert code == 6 and doc["error"]["code"] == "ASRCTL-E037"
    assert (target / "precious.txt").read_text() == "keep me\n"


@pytest.mark.parametrize("url", ["ftp://mirror/x.tar.gz", "https://127.0.0.1:1/lists.zip"])
def test_bad_urls_are_usage_errors(tmp_path: Path, capsys, url: str) -> None:
    capsys.readouterr()
    assert run(["--json", "--root", str(tmp_path), "kernel", "lists", "fetch", url]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "ASRCTL-E002"


LIST = "MobilityAgent/AzureToAzure/SupportedKernels/9.65.7460.1/DEBIAN12-64_supported_kernels.txt"


def _with_member(info: tarfile.TarInfo, data: bytes | None = None) -> bytes:
    """The fixture archive with one more member of any type (``archive`` adds regular files only)."""
    src = tarfile.open(fileobj=io.BytesIO(archive()), mode="r:gz")
    out = io.BytesIO()
    with src, tarfile.open(fileobj=out, mode="w:gz") as tar:
        for member in src.getmembers():
            tar.addfile(member, src.extractfile(member))
        info.size = len(data or b"")
        tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.DIRTYPE], ids=["symlink-to-a-list", "directory"])
def test_an_archive_holding_the_source_record_as_no_file_is_refused(mirror, tmp_path: Path, capsys, kind) -> None:
    """The mirror's archive may hold ``.asrctl-source.json`` itself: as a link to a list, writing the record would
    overwrite that list after it was parsed; as a directory, the write failed as an internal error (exit 1)."""
    files, url, ca_file = mirror
    target = tmp_path / "kernels"
    publish(files, archive())
    assert fetch(tmp_path, url, ca_file, capsys, "--to", str(target))[0] == 0
    before = tree_files(target)
    member = tarfile.TarInfo(".asrctl-source.json")
    member.type = kind
    member.linkname = LIST if kind == tarfile.SYMTYPE else ""
    publish(files, _with_member(member))
    code, doc = fetch(tmp_path, url, ca_file, capsys, "--to", str(target))
    assert (code, doc["error"]["code"]) == (5, "ASRCTL-E032"), doc
    assert ".asrctl-source.json" in doc["error"]["message"]
    assert tree_files(target) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".kernels.")) == [".kernels.download"]


def test_a_source_record_in_the_archive_is_replaced_never_written_through(mirror, tmp_path: Path, capsys) -> None:
    """A mirror that republishes a fetched tree carries the record as a file; one hard-linked to a list must not
    carry the new record into that list."""
    files, url, ca_file = mirror
    target = tmp_path / "kernels"
    member = tarfile.TarInfo(".asrctl-source.json")
    member.type = tarfile.LNKTYPE
    member.linkname = LIST
    digest = publish(files, _with_member(member))
    code, doc = fetch(tmp_path, url, ca_file, capsys, "--to", str(target))
    assert code == 0, doc
    assert (target / LIST).read_bytes() == (LISTS / LIST).read_bytes()
    assert json.loads((target / ".asrctl-source.json").read_text())["sha256"] == digest


def test_a_password_in_the_url_is_in_no_output_log_or_record(mirror, tmp_path: Path, capsys) -> None:
    """https://user:password@mirror/...: the password authenticates the download and appears nowhere: not in the
    JSON result, not on stderr, not in the record beside the fetched tree (asrctl's log masks URL passwords by their
    shape: tests/unit/test_redact.py)."""
    files, url, ca_file = mirror
    secret = "Mirr0r-Pa55"
    root = tmp_path / "root"
    root.mkdir()
    publish(files, archive())
    with_password = url.replace("https://", f"https://fetcher:{secret}@")
    capsys.readouterr()
    code = run(["--json", "--root", str(root), "kernel", "lists", "fetch", with_password, "--ca-bundle", ca_file])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["data"]["url"].startswith("https://fetcher:") and doc["data"]["lists"] == 17
    record = root / "var/lib/asrctl/supported-kernels/.asrctl-source.json"
    for where, text in (("stdout", out), ("stderr", err), ("record", record.read_text())):
        assert secret not in text, f"the URL's password is in the {where}"
