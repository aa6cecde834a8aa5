"""The connection pool under every HTTP provider's ``httpx.AsyncClient``: aiohttp's.

Providers talk ``httpx`` (requests, auth, redirects, event hooks, ``MockTransport`` in tests);
underneath, :class:`PooledTransport` hands the bytes to an aiohttp ``TCPConnector`` through
``httpx-aiohttp`` (kept by the httpx maintainers). Why not httpcore's own pool: its request
assignment is quadratic in the number of waiting requests — 1,000 concurrent calls to a 100 ms
upstream take 11-18 s through httpcore on this machine and ~0.3 s through aiohttp
(``benchmarks/pipeline.py``), and a single call is ~80 µs cheaper.

``httpx-aiohttp`` maps aiohttp's errors onto httpx's, but it maps every
``ClientConnectionError`` — including a connection the server closed *after* our request went
out — to ``httpx.ConnectTimeout``, which would tell the retry layer "nothing was sent" and let it
repeat a write. :func:`never_sent` decides from the original aiohttp error instead.
"""

from __future__ import annotations

import ssl
import urllib.request

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["PooledTransport", "env_proxies", "never_sent"]

# aiohttp errors raised before a request could reach the server: the connection was never
# established (refused, DNS, TLS handshake) or no pooled connection was free in time.
_BEFORE_SEND = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


class PooledTransport(AiohttpTransport):
    """One aiohttp connector per provider instance, sized by ``maxConnections``."""

    def __init__(self, *, verify: ssl.SSLContext | bool, max_connections: int,
                 keepalive_s: float = 30.0) -> None:
        # trust_env: SSL_CERT_FILE/SSL_CERT_DIR apply as with plain httpx.
        super().__init__(verify=verify, trust_env=True,
                         limits=httpx.Limits(max_connections=max_connections,
                                             max_keepalive_connections=max_connections,
                                             keepalive_expiry=keepalive_s))


def env_proxies() -> bool:
    """Whether HTTP(S)_PROXY/ALL_PROXY are set. httpx honours them (with NO_PROXY) only on its own
    transports, so behind such a proxy the providers keep httpx's pool."""
    return any(scheme in ("http", "https", "all") for scheme in urllib.request.getproxies())


def never_sent(exc: httpx.TransportError) -> bool:
    """True when ``exc`` proves the request never left this process."""
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError):
        return isinstance(cause, _BEFORE_SEND)
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
