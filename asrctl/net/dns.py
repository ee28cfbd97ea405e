"""Name resolution, bounded by the timeout even when the resolver hangs."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence

from asrctl.net.checks import E_UNREACHABLE, FAIL, OK, WARN, Check, new_check, os_text
from asrctl.net.endpoint import Endpoint, as_ip


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def lookup(host: str, port: int, timeout: float, resolve: Callable[[str, int], Sequence[str]]) -> list[str]:
    """getaddrinfo has no timeout and a broken DNS server makes it hang for half a minute: run it in a thread
    and stop waiting after ``timeout``."""
    if as_ip(host) is not None:
        return [host]
    addresses: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            addresses.extend(resolve(host, port))
        except BaseException as exc:  # handed to the caller
            errors.append(exc)

    worker = threading.Thread(target=run, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"no answer from the name servers within {timeout:g} s")
    if errors:
        raise errors[0]
    return list(dict.fromkeys(addresses))


def dns_check(
    ep: Endpoint, timeout: float, resolve: Callable[[str, int], Sequence[str]], *, proxied: bool
) -> tuple[Check, list[str]]:
    target = str(ep)
    if ep.is_ip:
        return new_check(
            "cs_dns", target, OK, "an IP address: nothing to resolve", host=ep.host, port=ep.port, addresses=[ep.host]
        ), [ep.host]
    try:
        addresses = lookup(ep.host, ep.port, timeout, resolve)
    except (OSError, UnicodeError) as exc:
        timed_out = isinstance(exc, TimeoutError)
        reason = "dns_timeout" if timed_out else "dns"
        why = str(exc) if timed_out else os_text(exc)
        if proxied:
            return new_check(
                "cs_dns",
                target,
                WARN,
                f"{ep.host} does not resolve here ({why}); the proxy resolves it",
                "Nothing to do if the proxy can reach the configuration server; the proxy check below says.",
                host=ep.host,
                port=ep.port,
                reason=reason,
            ), []
        return new_check(
            "cs_dns",
            target,
            FAIL,
            f"cannot resolve {ep.host}: {why}",
            "Check the name and this machine's DNS settings (resolv.conf, the hosts file), or give the "
            "configuration server's IP address as the endpoint.",
            E_UNREACHABLE,
            host=ep.host,
            port=ep.port,
            reason=reason,
        ), []
    if not addresses:
        return new_check(
            "cs_dns",
            target,
            FAIL,
            f"{ep.host} resolves to no address",
            "Check the DNS record of the configuration server.",
            E_UNREACHABLE,
            host=ep.host,
            port=ep.port,
            reason="dns",
        ), []
    return new_check(
        "cs_dns", target, OK, ", ".join(addresses), host=ep.host, port=ep.port, addresses=addresses
    ), addresses
