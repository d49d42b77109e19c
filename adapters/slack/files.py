"""Slack files as attachments: the bot token goes only to Slack's file host, size is checked before download."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.images import ImageRejected, human_bytes
from bot.proxies import EnvProxies


@dataclass(frozen=True, slots=True)
class SlackFile:
    """A file from an event's `files[]`, downloaded lazily with the bot token."""

    info: dict[str, Any]
    http: aiohttp.ClientSession
    token: str
    allowed_hosts: tuple[str, ...]
    proxies: EnvProxies

    @property
    def filename(self) -> str:
        return str(self.info.get("name") or self.info.get("title") or "file")

    @property
    def declared_mime(self) -> str | None:
        mime = self.info.get("mimetype")
        return str(mime) if mime else None

    @property
    def declared_size(self) -> int | None:
        size = self.info.get("size")
        return int(size) if isinstance(size, int) else None

    async def read(self, max_bytes: int) -> bytes:
        url = str(self.info.get("url_private_download") or self.info.get("url_private") or "")
        if not url:  # e.g. a Slack Connect file that files.info would not open for us
            raise ImageRejected(
                "unavailable", f"Slack gave me no way to download “{self.filename}”; attach it here again."
            )
        host = urlsplit(url).netloc.lower()
        if urlsplit(url).scheme not in ("https", "http") or host not in self.allowed_hosts:
            # Security: the bot token is only ever sent to Slack's own file host.
            raise ImageRejected("not_image", f"I can only fetch files Slack hosts; “{self.filename}” is elsewhere.")
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            return await self._download(url, headers, max_bytes)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ImageRejected(
                "unavailable", f"I couldn't download “{self.filename}”: Slack's file host didn't answer. Send it again."
            ) from exc

    async def _download(self, url: str, headers: dict[str, str], max_bytes: int) -> bytes:
        route = self.proxies.route(url)
        async with self.http.get(url, allow_redirects=False, **route.request(headers)) as response:
            content_type = response.headers.get("content-type", "")
            if 300 <= response.status < 400 or (response.status == 200 and content_type.startswith("text/html")):
                raise ImageRejected(  # Slack sends a token without files:read to its sign-in page
                    "not_image",
                    f"I couldn't download “{self.filename}” (Slack answered with a login page): "
                    "the app needs the files:read scope.",
                )
            if response.status in (403, 404, 410):
                raise ImageRejected(
                    "unavailable", f"“{self.filename}” is gone from Slack (deleted, or not shared with me)."
                )
            if response.status != 200:
                raise ImageRejected(
                    "unavailable",
                    f"I couldn't download “{self.filename}” (Slack answered HTTP {response.status}). Send it again.",
                )
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise ImageRejected(
                    "too_large",
                    f"“{self.filename}” is {human_bytes(int(declared))}; the limit is {human_bytes(max_bytes)}.",
                )
            chunks: list[bytes] = []
            total = 0
            async for chunk in response.content.iter_any():
                total += len(chunk)
                if total > max_bytes:
                    raise ImageRejected("too_large", f"“{self.filename}” is over the {human_bytes(max_bytes)} limit.")
                chunks.append(chunk)
        return b"".join(chunks)
