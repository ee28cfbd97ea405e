"""TCP connections: to the configuration server, and to the process server's data port."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from asrctl.net.checks import (
    CURL_COULDNT_CONNECT,
    E_CONNECTIVITY,
    E_UNREACHABLE,
    FAIL,
    OK,
    WARN,
    Check,
    new_check,
    os_text,
    skipped,
)
from asrctl.net.dns import lookup
from asrctl.net.endpoint import Endpoint


def connect(addresses: Sequence[str], port: int, timeout: float) -> socket.socket:
    """Connect to the first address that answers; raise the first address's error when none does."""
    errors: list[OSError] = []
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
            return sock
        except OSError as exc:
            sock.close()
            exc.address = address  # type: ignore[attr-defined]
            errors.append(exc)
    if not errors:
        raise OSError("no address to connect to")
    first = errors[0]
    first.others = errors[1:]  # type: ignore[attr-defined]
    raise first


def net_reason(exc: BaseException, timeout: float) -> tuple[str, str]:
    """A stable reason token and the words for people."""
    import errno

    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(exc, TimeoutError):
        return "timeout", f"no answer within {timeout:g} s"
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return "reset", "the connection was reset"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable", "no route to the host" if exc.errno == errno.EHOSTUNREACH else "network unreachable"
    return "error", os_text(exc)


def net_remedy(reason: str, host: str, port: int, timeout: float) -> str:
    if reason == "refused":
        return (
            f"Nothing accepts connections on {host} port {port}, or a firewall rejects them: check that the server "
            f"is running and that TCP {port} is open from this machine to it."
        )
    if reason == "timeout":
        return (
            f"{host} did not answer on port {port} within {timeout:g} s: a firewall on the way probably drops the "
            f"traffic, or the host is down. Open TCP {port} from this machine to {host} (or raise the timeout)."
        )
    if reason == "unreachable":
        return f"This machine has no route to {host}: check its address, routes and default gateway."
    return f"Check the network path from this machine to {host} port {port}."


def tcp_check(name: str, ep: Endpoint, addresses: Sequence[str], timeout: float, *, role: str) -> Check:
    started = time.monotonic()
    try:
        sock = connect(addresses, ep.port, timeout)
    except OSError as exc:
        reason, words = net_reason(exc, timeout)
        detail = words
        others = getattr(exc, "others", [])
        if others:
            parts = [f"{getattr(e, 'address', '?')}: {net_reason(e, timeout)[1]}" for e in [exc, *others]]
            detail = "; ".join(parts)
        if role == "cs" and reason == "refused":
            detail += f" (the configurator logs this as '{CURL_COULDNT_CONNECT}')"
        return new_check(
            name,
            str(ep),
            FAIL,
            detail,
            net_remedy(reason, ep.host, ep.port, timeout),
            E_UNREACHABLE if role == "cs" else E_CONNECTIVITY,
            host=ep.host,
            port=ep.port,
            role=role,
            reason=reason,
        )
    peer = sock.getpeername()[0]
    sock.close()
    ms = (time.monotonic() - started) * 1000
    return new_check(name, str(ep), OK, f"connected to {peer} in {ms:.0f} ms", host=ep.host, port=ep.port, role=role)


def ps_check(
    ps: Endpoint,
    cs: Endpoint,
    cs_addresses: Sequence[str],
    timeout: float,
    resolve: Callable[[str, int], Sequence[str]],
    *,
    strict: bool,
) -> Check:
    """The process server's data port. A failure warns unless ``strict``: registration only needs 443 on the
    configuration server, and with a scale-out process server the built-in one on the CS host is not the one
    this machine will use (docs/CONNECTIVITY.md)."""
    if ps.host == cs.host:
        addresses = list(cs_addresses)
        if not addresses:
            return skipped("ps_tcp", str(ps), "not tried: the name does not resolve here")
    else:
        try:
            addresses = lookup(ps.host, ps.port, timeout, resolve)
        except (OSError, UnicodeError) as exc:
            why = str(exc) if isinstance(exc, TimeoutError) else os_text(exc)
            return _ps_result(
                new_check(
                    "ps_tcp",
                    str(ps),
                    FAIL,
                    f"cannot resolve {ps.host}: {why}",
                    "Check the process server's name, or give its IP address.",
                    E_CONNECTIVITY,
                    host=ps.host,
                    port=ps.port,
                    role="ps",
                    reason="dns",
                ),
                strict,
            )
    return _ps_result(tcp_check("ps_tcp", ps, addresses, timeout, role="ps"), strict)


def _ps_result(check: Check, strict: bool) -> Check:
    if check.status != FAIL:
        return check
    remedy = (check.remedy or "") + " Replication data goes to the process server on this port once protection is on."
    if strict:
        return replace(check, remedy=remedy, code=E_CONNECTIVITY)
    return replace(check, status=WARN, remedy=remedy, code=None)
