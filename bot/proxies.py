"""Proxies from the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), looked up once per origin.

aiohttp's `trust_env=True` looks them up on a worker thread for every request, and reads ~/.netrc on another: two
thread hand-offs and a file read per call, each waiting its turn on a busy event loop. The environment does not
change under a running bot, so each origin is looked up once, on the loop (on Linux it only reads `os.environ`),
and the answer goes with every request.

~/.netrc is never read. Every call here carries its own credentials (Gemini's key header, Slack's bearer token);
a netrc entry would add Basic credentials to Gemini calls, and one for Slack's file host made aiohttp refuse the
download outright (an Authorization header and netrc auth can't be combined).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp.hdrs import PROXY_AUTHORIZATION
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

MAX_ORIGINS = 256  # Slack's file hosts and Gemini's root: a handful in practice


@dataclass(frozen=True, slots=True)
class Route:
    """How to reach an origin: straight (`proxy` None) or through a proxy, with its credentials if any."""

    proxy: URL | None = None
    credentials: str | None = None  # a Proxy-Authorization value
    tunnel: bool = False  # an https origin: the proxy is asked to CONNECT, and the credentials go with that

    def request(self, headers: Mapping[str, str]) -> dict[str, Any]:
        """aiohttp request arguments for this route: `headers`, and the proxy's. aiohttp 3.14 deprecates
        `proxy_auth`, and sends `proxy_headers` only with a CONNECT; to a plain-http origin the credentials go
        in the request's own headers, as the proxy reads them there."""
        if self.proxy is None:
            return {"headers": headers}
        if self.credentials is None:
            return {"headers": headers, "proxy": self.proxy}
        if self.tunnel:
            return {"headers": headers, "proxy": self.proxy, "proxy_headers": {PROXY_AUTHORIZATION: self.credentials}}
        return {"headers": {**headers, PROXY_AUTHORIZATION: self.credentials}, "proxy": self.proxy}


DIRECT = Route()


class EnvProxies:
    """The proxy route per origin, read from the environment the first time each origin is asked for."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str, int | None], Route] = {}

    def route(self, url: str | URL) -> Route:
        target = URL(url)
        origin = (target.scheme, target.host or "", target.port)
        known = self._routes.get(origin)
        if known is None:
            known = _lookup(target)
            if len(self._routes) >= MAX_ORIGINS:
                self._routes.clear()
            self._routes[origin] = known
        return known


def _lookup(url: URL) -> Route:
    try:
        proxy, auth = get_env_proxy_for_url(url)
    except LookupError:  # NO_PROXY exempts the host, or no proxy is set for its scheme
        return DIRECT
    return Route(proxy, None if auth is None else auth.encode(), tunnel=url.scheme in ("https", "wss"))
