"""Is the certificate trusted here? A verified HTTPS request with ``requests``, through the same proxy, against the
system CA store (what OpenSSL or Windows trusts; not certifi's bundle) or the ``--ca-bundle`` given instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asrctl.errors import AsrctlError
from asrctl.net.checks import os_text, short
from asrctl.net.endpoint import Endpoint
from asrctl.net.proxy import proxy_context

if TYPE_CHECKING:
    import ssl


# X509 verify codes that mean the chain itself was trusted (OpenSSL checks the name and then the dates only
# after it built a chain to a trust anchor).
_X509_HOSTNAME_MISMATCH = frozenset({62, 64})
_X509_TIME = frozenset({9, 10})


@dataclass
class Verdict:
    trusted: bool | None  # None: could not tell
    error: str | None
    http_status: int | None
    name_mismatch: bool = False
    verify_code: int | None = None


def verify(ep: Endpoint, timeout: float, trust: ssl.SSLContext, proxy: str | None) -> Verdict:
    """A verified HTTPS request with requests, through the same proxy, against ``trust``."""
    import http.client
    import ssl

    import requests
    from requests.adapters import HTTPAdapter

    class TrustAdapter(HTTPAdapter):
        """Verify with our context (system store or --ca-bundle), not with certifi's bundle."""

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["ssl_context"] = trust
            super().init_poolmanager(*args, **kwargs)

        def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
            kwargs["ssl_context"] = trust
            kwargs["proxy_ssl_context"] = proxy_context()  # an https:// proxy's own certificate
            return super().proxy_manager_for(*args, **kwargs)

        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
            conn.ca_certs = None
            conn.ca_cert_dir = None

    from asrctl import __version__

    session = requests.Session()
    session.trust_env = False
    session.mount("https://", TrustAdapter())
    try:
        response = session.get(
            ep.url,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
            proxies={"https": proxy} if proxy else {},
            headers={"User-Agent": f"asrctl/{__version__} connectivity-check"},
        )
        response.close()
        return Verdict(True, None, response.status_code)
    except requests.exceptions.SSLError as exc:
        verify_error = find_cause(exc, ssl.SSLCertVerificationError)
        if verify_error is None:
            return Verdict(None, short(exc), None)
        code = getattr(verify_error, "verify_code", None)
        message = getattr(verify_error, "verify_message", None) or str(verify_error)
        if code in _X509_HOSTNAME_MISMATCH:
            return Verdict(True, message, None, name_mismatch=True, verify_code=code)
        if code in _X509_TIME:
            return Verdict(True, message, None, verify_code=code)
        return Verdict(False, message, None, verify_code=code)
    except requests.exceptions.ReadTimeout:
        return Verdict(True, None, None)  # the request was sent: the verified handshake had succeeded
    except requests.RequestException as exc:
        if find_cause(exc, http.client.RemoteDisconnected) is not None:
            return Verdict(True, None, None)  # hung up after the handshake, without an answer
        return Verdict(None, short(exc), None)
    finally:
        session.close()


def find_cause(exc: BaseException, cls: type[BaseException]) -> BaseException | None:
    """The first ``cls`` in an exception's causes, contexts, arguments and urllib3 ``reason``s."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, cls):
            return item
        todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return None


def trust_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The trust anchors of the verified attempt: ``ca_bundle`` (a PEM file or a hashed directory) instead of
    the system store, like curl's --cacert."""
    import os
    import ssl

    if not ca_bundle:
        return ssl.create_default_context()
    try:
        if os.path.isdir(ca_bundle):
            return ssl.create_default_context(capath=ca_bundle)
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise AsrctlError(
            "ASRCTL-E002",
            f"bad --ca-bundle {ca_bundle!r}: {os_text(exc)}",
            remedy="Give a readable PEM file of CA certificates (or a directory prepared with c_rehash).",
        ) from None
