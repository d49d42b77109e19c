"""FakeGemini: a local aiohttp server that speaks the Gemini Developer API's generateContent (reference §12)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

from .bench import PhotoPool, probe_headers
from .errors import UNREGISTERED_CALLER, ApiError, api_key_invalid, invalid, model_not_found
from .faults import INTERNAL_MESSAGE, Fault, check_duration, fault_in_prompt, http_error
from .generate import generate
from .jsonbytes import dumps
from .models import DEFAULT_MODELS, ModelSpec
from .render import render_png
from .request import ImageRequest, to_request
from .responses import Outcome, body, content_outcome, response_id, stream_chunks, usage_metadata
from .signatures import SignatureBook
from .validate import check_request, probe_images
from .wire import normalize_request

JSON_TYPE = "application/json; charset=UTF-8"
_GENERATE = re.compile(
    r"/v1beta/(?P<name>(?:models|tunedModels)/[^/:]+):(?P<method>generateContent|streamGenerateContent)"
)
_MODEL_INFO = re.compile(r"/v1beta/models(?:/(?P<model>[^/:]+))?")
_HANG_SECONDS = 3600.0
_TRUNCATED = b'{"candidates": [{"content": {"role": "model", "parts": [{"text": "Here is your ima'


@dataclass(slots=True)
class RecordedRequest:
    """One request as the fake saw it; `status` is what it answered (0: no HTTP response, e.g. RESET or HANG)."""

    method: str
    path: str
    model: str | None
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int = 0
    peer: tuple[str, int] | None = None  # the client's address: one per connection it opened


_ANSWER_AT = web.RequestKey("answer_at", float)  # when a generate call's answer is due (time.monotonic())


class _Disconnect(Exception):
    """Close the connection without an HTTP response."""


class FakeGemini:
    """A faithful, scriptable Gemini Developer API on 127.0.0.1 for tests and manual runs.

    Args:
        api_key: the only key accepted (`x-goog-api-key` header or `?key=`).
        latency: seconds from a generate call's arrival to its answer (settable at runtime); the answer is made
            meanwhile, so the fake's own work adds nothing unless it takes longer than this.
        enforce_signatures: False mimics Vertex AI, which does not validate thought signatures.
        models: URL model id → ModelSpec; aliases map to the same spec.
        noise: fill images with random pixels so PNGs are large (upload-limit tests).
        max_request_bytes: inline request size limit (100 MB since Jan 2026, §7).
        bench: benchmark mode: photo-like PNGs from a pool rendered once per size (1–2 MB at 1K), request parsing
            off the event loop, no request bodies kept, and `X-Fake-Server-Seconds` (work done, latency excluded).
    """

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        latency: float = 0.0,
        enforce_signatures: bool = True,
        models: Mapping[str, ModelSpec] = DEFAULT_MODELS,
        noise: bool = False,
        max_request_bytes: int = 100 * 1024 * 1024,
        bench: bool = False,
    ) -> None:
        self.api_key = api_key
        self.latency = latency
        self.enforce_signatures = enforce_signatures
        self.models = dict(models)
        self.noise = noise
        self.max_request_bytes = max_request_bytes
        self.bench = bench
        self._pool = PhotoPool() if bench else None
        self.requests: list[RecordedRequest] = []
        self.signatures = SignatureBook()
        self._faults: deque[tuple[Fault, str]] = deque()
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._closing = asyncio.Event()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("FakeGemini is not started")
        return self._base_url

    def enqueue(self, fault: Fault, *, times: int = 1, retry_delay: str = "1s") -> None:
        """Play `fault` on the next `times` generate calls that get past auth, model lookup and JSON parsing."""
        check_duration(retry_delay)
        self._faults.extend([(fault, retry_delay)] * times)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(client_max_size=2 * self.max_request_bytes)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._closing = asyncio.Event()
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self._base_url = f"http://{host}:{bound}"

    async def stop(self) -> None:
        self._closing.set()  # wakes HANG and latency waits, which then drop their connections
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeGemini:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            model=None,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=None,
            peer=_peer(request),
        )
        self.requests.append(record)
        try:
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise self._too_large() from None
            record.body = None if self.bench else _json_or_none(raw)  # bench: megabytes per request add up
            response = await self._route(request, record, raw)
        except ApiError as e:
            response = await _json(e.body(), status=e.code)
        except _Disconnect:
            _reset(request)
            raise web.HTTPException() from None  # never written: the transport is gone
        record.status = response.status
        return response

    async def _route(self, request: web.Request, record: RecordedRequest, raw: bytes) -> web.StreamResponse:
        generate_match = _GENERATE.fullmatch(request.path)
        if generate_match and request.method == "POST":
            record.model = generate_match["name"].split("/", 1)[1]
            # The answer (or error) is worked out while the latency runs and leaves when it is over, as from a
            # server farm: a burst of requests is never queued behind the fake's own work.
            request[_ANSWER_AT] = time.monotonic() + self.latency
            started = time.perf_counter()
            try:
                response = await self._generate_call(request, generate_match, record.model, raw)
            except (ApiError, _Disconnect):
                await self._hold(request)
                raise
            worked = time.perf_counter() - started
            await self._hold(request)
            if self.bench:
                response.headers["X-Fake-Server-Seconds"] = f"{worked:.6f}"
            return response
        info_match = _MODEL_INFO.fullmatch(request.path)
        if info_match and request.method == "GET":
            self._authenticate(request)
            return await self._model_info(info_match["model"])
        raise ApiError(404, "Requested entity was not found.")

    async def _hold(self, request: web.Request) -> None:
        """Wait until the call's answer is due (streams call this before their first byte)."""
        if await self._wait(request[_ANSWER_AT] - time.monotonic()):
            raise _Disconnect

    async def _generate_call(
        self, request: web.Request, match: re.Match[str], model: str, raw: bytes
    ) -> web.StreamResponse:
        self._authenticate(request)
        spec = self.models.get(model) if match["name"].startswith("models/") else None
        if spec is None:
            raise model_not_found(model)
        return await self._generate(request, model, spec, raw, stream=match["method"] == "streamGenerateContent")

    def _too_large(self) -> ApiError:
        return invalid(f"Request payload size exceeds the limit: {self.max_request_bytes} bytes.")

    def _authenticate(self, request: web.Request) -> None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            raise ApiError(403, UNREGISTERED_CALLER)
        if key != self.api_key:
            raise api_key_invalid()

    async def _generate(
        self, request: web.Request, model: str, spec: ModelSpec, raw: bytes, *, stream: bool
    ) -> web.StreamResponse:
        if len(raw) > self.max_request_bytes:
            raise self._too_large()
        req = await asyncio.to_thread(_parse, raw) if self.bench else _parse(raw)
        fault, retry_delay = self._faults.popleft() if self._faults else (fault_in_prompt(req.prompt), "1s")
        if fault is not None and fault.is_http:
            return await self._play(request, fault, model=model, retry_delay=retry_delay, stream=stream)
        check_request(req, spec, model)
        if self.enforce_signatures and spec.signed:
            self.signatures.check(req, spec)
        input_sizes = await asyncio.to_thread(probe_headers if self.bench else probe_images, req)
        if fault is Fault.STREAM_ERROR and not stream:
            raise http_error(fault, model=model, retry_delay=retry_delay)
        if fault is not None and fault is not Fault.STREAM_ERROR:
            outcome = content_outcome(fault, req, spec)
            self.signatures.sign(outcome.parts, spec)
        else:
            outcome = await generate(
                req,
                spec,
                model=model,
                book=self.signatures,
                input_sizes=input_sizes,
                noise=self.noise,
                render=self._pool.picture if self._pool is not None else render_png,
            )
        return await self._answer(request, req, spec, outcome, model=model, stream=stream, fault=fault)

    async def _play(
        self, request: web.Request, fault: Fault, *, model: str, retry_delay: str, stream: bool
    ) -> web.StreamResponse:
        if fault is Fault.HANG:
            await self._wait(_HANG_SECONDS)
            raise _Disconnect
        if fault is Fault.RESET:
            raise _Disconnect
        if fault is Fault.MALFORMED_JSON:
            # A body cut off mid-string, as when a proxy truncates the answer.
            if stream and request.query.get("alt") == "sse":
                return await self._sse(request, [b"data: " + _TRUNCATED + b"\r\n\r\n"])
            return web.Response(body=_TRUNCATED, headers={"Content-Type": JSON_TYPE})
        raise http_error(fault, model=model, retry_delay=retry_delay)

    async def _answer(
        self,
        request: web.Request,
        req: ImageRequest,
        spec: ModelSpec,
        outcome: Outcome,
        *,
        model: str,
        stream: bool,
        fault: Fault | None,
    ) -> web.StreamResponse:
        usage = usage_metadata(req, spec, outcome)
        rid = response_id()
        if not stream:
            return await _json(body(outcome, usage, model=model, rid=rid))
        chunks: list[dict[str, Any]] = stream_chunks(outcome, usage, model=model, rid=rid)
        if fault is Fault.STREAM_ERROR:
            error = ApiError(500, INTERNAL_MESSAGE)
            chunks = [*chunks[:1], error.body()] if len(chunks) > 1 else [error.body()]
        if request.query.get("alt") != "sse":
            return await _json(chunks)
        events = await asyncio.to_thread(_encode_events, chunks)
        return await self._sse(request, events)

    async def _sse(self, request: web.Request, events: list[bytes]) -> web.StreamResponse:
        await self._hold(request)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in events:
            await response.write(event)
        await response.write_eof()
        return response

    async def _model_info(self, model: str | None) -> web.Response:
        if model is None:
            return await _json({"models": [_describe(name, spec) for name, spec in self.models.items()]})
        spec = self.models.get(model)
        if spec is None:
            raise ApiError(404, f"models/{model} is not found for API version v1beta.")
        return await _json(_describe(model, spec))

    async def _wait(self, seconds: float) -> bool:
        """Sleep, waking early when the server stops; True if it is stopping."""
        if seconds <= 0:
            return self._closing.is_set()
        try:
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True


def _describe(name: str, spec: ModelSpec) -> dict[str, Any]:
    return {
        "name": f"models/{name}",
        "version": "3.0" if spec.signed else "2.0",
        "displayName": spec.id,
        "inputTokenLimit": 65536 if spec.signed else 32768,
        "outputTokenLimit": 32768,
        "supportedGenerationMethods": ["generateContent", "countTokens", "batchGenerateContent"],
        "thinking": spec.thinking != "none",
    }


def _parse(raw: bytes) -> ImageRequest:
    try:
        decoded = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise invalid("Invalid JSON payload received. Unexpected token.") from None
    return to_request(normalize_request(decoded))


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


async def _json(obj: Any, *, status: int = 200) -> web.Response:
    data = await asyncio.to_thread(lambda: dumps(obj, indent=2))
    return web.Response(body=data, status=status, headers={"Content-Type": JSON_TYPE})


def _encode_events(chunks: list[dict[str, Any]]) -> list[bytes]:
    # Google frames SSE with CRLF; the SDK spots a mid-stream error by the prefix '{"error":' (§5.6).
    return [b"data: " + dumps(c, separators=(",", ":")) + b"\r\n\r\n" for c in chunks]


def _peer(request: web.Request) -> tuple[str, int] | None:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return (str(peer[0]), int(peer[1])) if peer else None


def _reset(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:  # linger 0: the peer sees a TCP RST, not an orderly FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
