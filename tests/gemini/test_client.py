"""The project's own Gemini client against the fake server: outcomes, multi-turn signatures, retries, secrets."""

from __future__ import annotations

import asyncio
import base64
import gc
import io
import logging
import os
import socket
import time
import tracemalloc
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from PIL import Image

from bot.catalog import FLASH_25, FLASH_31, MODELS, PRO_3
from bot.gemini import Content, GeminiClient, ImageRequest, Part, RetryPolicy, UnsupportedOptionError
from bot.gemini import errors as e
from bot.gemini.outcomes import Filtered, ImagesDelivered, PromptBlocked, TextOnly, Unfinished
from tests.fakes.gemini import DEFAULT_MODELS, FakeGemini, Fault

FAST = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.2, deadline=10.0, attempt_timeout=5.0)


class RecordingSleep:
    """Records each backoff the client asks for (and does not wait, so tests stay fast)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def client(fake_gemini: FakeGemini, sleeps: RecordingSleep):
    gemini = GeminiClient(api_key=fake_gemini.api_key, base_url=fake_gemini.base_url, policy=FAST, sleep=sleeps)
    yield gemini
    await gemini.aclose()


def ask(text: str, model: str = FLASH_31.id, **options) -> ImageRequest:
    return ImageRequest(model=model, contents=(Content.user(text),), **options)


def png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(out, "PNG")
    return out.getvalue()


def signatures_sent(body: dict) -> list[bytes]:
    found = []
    for content in body["contents"]:
        for part in content["parts"]:
            if "thoughtSignature" in part:
                raw = part["thoughtSignature"].replace("-", "+").replace("_", "/")
                found.append(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    return found


@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.id)
async def test_text_to_image_delivers_a_real_png_with_usage_and_cost(client, fake_gemini, spec) -> None:
    outcome = await client.generate(ask("a banana on the moon", spec.id, aspect_ratio="16:9", image_size="1K"))

    assert isinstance(outcome, ImagesDelivered)
    assert outcome.attempts == 1
    image = Image.open(io.BytesIO(outcome.images[0].data or b""))
    assert image.size == spec.dimensions("1K", "16:9")
    assert outcome.usage.image_tokens == spec.image_tokens["1K"]
    assert outcome.usage.prompt_tokens > 0
    assert outcome.usage.cost_usd >= spec.usd_per_image("1K") * 0.99
    sent = fake_gemini.requests[-1]
    assert sent.headers["x-goog-api-key"] == fake_gemini.api_key
    assert sent.path == f"/v1beta/models/{spec.id}:generateContent"
    assert sent.body["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "1K"}
    assert sent.status == 200


@pytest.mark.parametrize("spec", [FLASH_31, PRO_3], ids=lambda s: s.id)
async def test_three_turn_edit_sends_every_signature_back(client, fake_gemini, spec) -> None:
    history: tuple[Content, ...] = ()
    received: list[bytes] = []
    for turn, prompt in enumerate(["a red bicycle", "make it blue", "add a basket"], start=1):
        user = Content.user(prompt, ((png(), "image/png"),) if turn == 2 else ())
        outcome = await client.generate(ImageRequest(spec.id, (*history, user), image_size="2K", include_thoughts=True))
        assert isinstance(outcome, ImagesDelivered), outcome
        assert outcome.content is not None
        sent = signatures_sent(fake_gemini.requests[-1].body)
        assert sent == received  # every signature received so far went back, byte for byte
        received += [p.signature for p in outcome.content.parts if p.signature is not None]
        history = (*history, user, outcome.content)
    assert all(r.status == 200 for r in fake_gemini.requests)
    assert len(received) >= 6  # a signed text part and a signed image per turn
    assert len(fake_gemini.requests[-1].body["contents"]) == 5


async def test_a_dropped_signature_is_refused_by_the_fake_and_not_retried(client, fake_gemini) -> None:
    first = await client.generate(ask("a lighthouse", PRO_3.id))
    assert isinstance(first, ImagesDelivered) and first.content is not None
    stripped = Content("model", tuple(Part(p.text, p.mime_type, p.data, p.thought, None) for p in first.content.parts))

    with pytest.raises(e.SignatureRejectedError) as caught:
        await client.generate(
            ImageRequest(PRO_3.id, (Content.user("a lighthouse"), stripped, Content.user("at night")))
        )

    assert "missing a thought_signature in content position 2" in caught.value.detail
    assert caught.value.attempts == 1
    assert [r.status for r in fake_gemini.requests] == [200, 400]


@pytest.mark.parametrize(
    ("fault", "outcome_type", "reason"),
    [
        (Fault.IMAGE_SAFETY, Filtered, "IMAGE_SAFETY"),
        (Fault.IMAGE_PROHIBITED_CONTENT, Filtered, "IMAGE_PROHIBITED_CONTENT"),
        (Fault.IMAGE_RECITATION, Filtered, "IMAGE_RECITATION"),
        (Fault.IMAGE_OTHER, Unfinished, "IMAGE_OTHER"),
        (Fault.NO_IMAGE, TextOnly, "NO_IMAGE"),
        (Fault.TEXT_ONLY, TextOnly, "STOP"),
        (Fault.BLOCKED_PROMPT, PromptBlocked, "PROHIBITED_CONTENT"),
    ],
)
async def test_answers_without_an_image_are_typed_and_never_retried(
    client, fake_gemini, fault, outcome_type, reason
) -> None:
    fake_gemini.enqueue(fault)
    outcome = await client.generate(ask("a cat"))

    assert type(outcome) is outcome_type
    assert not outcome.delivered
    assert getattr(outcome, "finish_reason", None) == reason or getattr(outcome, "reason", None) == reason
    assert outcome.user_message and "went wrong" not in outcome.user_message
    assert len(fake_gemini.requests) == 1


async def test_text_only_keeps_the_models_words(client, fake_gemini) -> None:
    fake_gemini.enqueue(Fault.TEXT_ONLY)
    outcome = await client.generate(ask("a cat"))
    assert isinstance(outcome, TextOnly)
    assert outcome.text and outcome.text in outcome.user_message


async def test_429_honours_retry_info_then_succeeds(client, fake_gemini, sleeps) -> None:
    fake_gemini.enqueue(Fault.RATE_LIMIT, retry_delay="0.7s")
    outcome = await client.generate(ask("a cat"))

    assert isinstance(outcome, ImagesDelivered)
    assert outcome.attempts == 2
    assert [r.status for r in fake_gemini.requests] == [429, 200]
    assert len(sleeps.delays) == 1 and sleeps.delays[0] >= 0.7  # never sooner than Gemini asked


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        (Fault.RATE_LIMIT, e.RateLimitedError, 429),
        (Fault.INTERNAL, e.ServerFailedError, 500),
        (Fault.OVERLOADED, e.OverloadedError, 503),
        (Fault.DEADLINE, e.TimedOutError, 504),
        (Fault.RESET, e.UnreachableError, None),
        (Fault.MALFORMED_JSON, e.MalformedResponseError, 200),
    ],
)
async def test_transient_faults_are_retried_with_full_jitter_up_to_the_attempt_limit(
    client, fake_gemini, sleeps, fault, error, status
) -> None:
    fake_gemini.enqueue(fault, times=10, retry_delay="0.01s")
    with pytest.raises(error) as caught:
        await client.generate(ask("a cat"))

    assert caught.value.attempts == FAST.max_attempts
    assert len(fake_gemini.requests) == FAST.max_attempts
    assert len(sleeps.delays) == FAST.max_attempts - 1
    for retry, delay in enumerate(sleeps.delays, start=1):
        assert 0 <= delay <= max(min(FAST.max_delay, FAST.base_delay * 2 ** (retry - 1)), 0.01)
    if status is not None:
        assert {r.status for r in fake_gemini.requests} == {status}
    assert caught.value.user_message


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        ("daily", e.DailyQuotaError),
        ("bad_key", e.KeyInvalidError),
        ("unknown_model", e.ModelNotFoundError),
        ("gif", e.BadImageError),
    ],
)
async def test_final_errors_are_never_retried(fake_gemini, sleeps, setup, error) -> None:
    key = "wrong-key-123456" if setup == "bad_key" else fake_gemini.api_key
    if setup == "unknown_model":
        fake_gemini.models = {k: v for k, v in DEFAULT_MODELS.items() if "2.5" not in k}
    if setup == "daily":
        fake_gemini.enqueue(Fault.RATE_LIMIT_DAILY)
    gemini = GeminiClient(api_key=key, base_url=fake_gemini.base_url, policy=FAST, sleep=sleeps)
    model = FLASH_25.id if setup == "unknown_model" else FLASH_31.id
    images = ((b"GIF89a" + b"\x00" * 20, "image/gif"),) if setup == "gif" else ()
    try:
        with pytest.raises(error) as caught:
            await gemini.generate(ImageRequest(model, (Content.user("a cat", images),)))
    finally:
        await gemini.aclose()
    assert caught.value.attempts == 1
    assert len(fake_gemini.requests) == 1
    assert sleeps.delays == []


async def test_a_hanging_model_ends_at_the_deadline(fake_gemini) -> None:
    fake_gemini.enqueue(Fault.HANG, times=5)
    policy = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.02, deadline=1.0, attempt_timeout=0.4)
    gemini = GeminiClient(api_key=fake_gemini.api_key, base_url=fake_gemini.base_url, policy=policy)
    started = time.monotonic()
    try:
        with pytest.raises(e.TimedOutError) as caught:
            await gemini.generate(ask("a cat"))
    finally:
        await gemini.aclose()
    elapsed = time.monotonic() - started
    assert elapsed < policy.deadline + 0.5
    assert 2 <= caught.value.attempts <= 3


async def test_a_retry_delay_beyond_the_deadline_gives_up_at_once(fake_gemini, sleeps) -> None:
    fake_gemini.enqueue(Fault.RATE_LIMIT, retry_delay="37s")
    policy = RetryPolicy(max_attempts=4, deadline=5.0)
    gemini = GeminiClient(api_key=fake_gemini.api_key, base_url=fake_gemini.base_url, policy=policy, sleep=sleeps)
    try:
        with pytest.raises(e.RateLimitedError) as caught:
            await gemini.generate(ask("a cat"))
    finally:
        await gemini.aclose()
    assert caught.value.retry_after == 37.0
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (ask("x", PRO_3.id, image_size="512"), "can't make 512"),
        (ask("x", FLASH_25.id, image_size="2K"), "can't make 2K"),
        (ask("x", PRO_3.id, aspect_ratio="8:1"), "aspect ratio 8:1"),
        (ask("x", FLASH_31.id, aspect_ratio="7:3"), "aspect ratio 7:3"),
        (ImageRequest(FLASH_25.id, (Content.user("x", ((png(), "image/png"),) * 4),)), "at most 3 reference"),
        (ask("x", PRO_3.id, thinking_level="high"), "thinking level"),
    ],
)
async def test_unsupported_combinations_are_refused_before_sending(client, fake_gemini, request_, words) -> None:
    with pytest.raises(UnsupportedOptionError) as caught:
        await client.generate(request_)
    assert words in caught.value.user_message
    assert fake_gemini.requests == []


async def test_base_url_may_carry_the_version_and_a_trailing_slash(fake_gemini) -> None:
    gemini = GeminiClient(api_key=fake_gemini.api_key, base_url=f"{fake_gemini.base_url}/v1beta/", policy=FAST)
    try:
        assert (await gemini.generate(ask("a cat"))).delivered
    finally:
        await gemini.aclose()
    assert fake_gemini.requests[0].path.startswith("/v1beta/models/")


async def test_the_key_never_reaches_logs_or_errors(fake_gemini, caplog) -> None:
    secret = "AIzaSy-very-secret-key-0123456789"
    caplog.set_level(logging.DEBUG)
    gemini = GeminiClient(api_key=secret, base_url=fake_gemini.base_url, policy=FAST)
    fake_gemini.api_key = secret
    fake_gemini.enqueue(Fault.OVERLOADED, times=5)
    try:
        with pytest.raises(e.OverloadedError) as caught:
            await gemini.generate(ask("a cat"))
    finally:
        await gemini.aclose()
    assert secret not in caught.value.user_message
    assert secret not in str(caught.value) and secret not in repr(gemini)
    assert secret not in caplog.text
    assert any("retrying" in r.getMessage() for r in caplog.records)


async def test_memory_does_not_grow_with_calls(client, fake_gemini) -> None:
    noise = Image.frombytes("RGB", (580, 580), os.urandom(580 * 580 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    reference = (buffer.getvalue(), "image/png")
    assert len(reference[0]) > 1_000_000
    fake_gemini.enqueue(Fault.TEXT_ONLY, times=30)
    await client.generate(ImageRequest(FLASH_31.id, (Content.user("warm up", (reference,)),)))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(10):
            await client.generate(ImageRequest(FLASH_31.id, (Content.user("again", (reference,)),)))
            fake_gemini.requests.clear()  # the fake's own record is not the client's memory
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 3_000_000  # ten 1 MB requests (1.3 MB as base64 each): at most one still in flight


async def test_answers_beyond_the_receive_limit_wait_their_turn_and_all_arrive(fake_gemini) -> None:
    gemini = GeminiClient(api_key=fake_gemini.api_key, base_url=fake_gemini.base_url, policy=FAST, receive_at_once=1)
    try:
        outcomes = await asyncio.gather(*(gemini.generate(ask(f"cat #{i}")) for i in range(6)))
        fake_gemini.enqueue(Fault.INTERNAL)  # an error answer passes through the same gate and frees it
        after_error = await gemini.generate(ask("one more"))
    finally:
        await gemini.aclose()
    assert all(isinstance(o, ImagesDelivered) for o in (*outcomes, after_error))
    assert after_error.attempts == 2


async def test_a_hung_call_never_holds_the_receive_gate(fake_gemini) -> None:
    policy = RetryPolicy(max_attempts=1, deadline=0.5, attempt_timeout=0.5)
    gemini = GeminiClient(api_key=fake_gemini.api_key, base_url=fake_gemini.base_url, policy=policy, receive_at_once=1)
    try:
        fake_gemini.enqueue(Fault.HANG)
        hung = asyncio.create_task(gemini.generate(ask("never answered")))
        await asyncio.sleep(0.05)
        with pytest.raises(e.TimedOutError):
            await hung
        outcome = await gemini.generate(ask("answered"))
    finally:
        await gemini.aclose()
    assert isinstance(outcome, ImagesDelivered)


async def test_a_burst_never_opens_more_connections_than_allowed(fake_gemini) -> None:
    fake_gemini.latency = 0.2  # so the burst needs every connection at once
    gemini = GeminiClient(api_key=fake_gemini.api_key, base_url=fake_gemini.base_url, policy=FAST, max_connections=5)
    try:
        outcomes = await asyncio.gather(*(gemini.generate(ask(f"cat #{i}")) for i in range(15)))
    finally:
        await gemini.aclose()
    assert all(isinstance(o, ImagesDelivered) for o in outcomes)
    peers = {r.peer for r in fake_gemini.requests}
    assert None not in peers
    assert 2 <= len(peers) <= 5  # connections are reused, never more than the limit


async def test_the_body_goes_with_its_length_not_chunked(client, fake_gemini) -> None:
    reference = (png(300, 200), "image/png")
    await client.generate(ImageRequest(FLASH_31.id, (Content.user("edit", (reference,)),)))
    headers = fake_gemini.requests[0].headers
    assert "transfer-encoding" not in headers
    sent = bytes(ImageRequest(FLASH_31.id, (Content.user("edit", (reference,)),)).body())
    assert int(headers["content-length"]) == len(sent)  # the whole body, base64 image included
    assert fake_gemini.requests[0].status == 200


class Redirector:
    """A Gemini stand-in that answers every call with a redirect to `target`, and a target that records callers."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.calls = 0
        self.runners: list[web.AppRunner] = []

    async def serve(self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    async def close(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_never_followed_with_the_key(status) -> None:
    secret = "AIzaSy-redirected-key-0123456789"
    servers = Redirector()

    async def record(request: web.Request) -> web.Response:
        servers.seen.append(dict(request.headers))
        return web.json_response({}, status=500)  # followed, it would fail here: the check below decides

    async def redirect(request: web.Request) -> web.Response:
        servers.calls += 1
        return web.Response(status=status, headers={"Location": f"{target}/steal"})

    try:
        target = await servers.serve(record)
        origin = await servers.serve(redirect)
        gemini = GeminiClient(api_key=secret, base_url=origin, policy=FAST)
        try:
            with pytest.raises(e.GeminiError) as caught:
                await gemini.generate(ask("a cat"))
        finally:
            await gemini.aclose()
    finally:
        await servers.close()
    assert servers.seen == []
    assert isinstance(caught.value, e.RedirectedError) and servers.calls == 1  # a configuration error: no retry
    assert "GEMINI_BASE_URL" in caught.value.user_message and secret not in caught.value.user_message


async def test_a_closed_client_refuses_new_calls(fake_gemini) -> None:
    gemini = GeminiClient(api_key=fake_gemini.api_key, base_url=fake_gemini.base_url, policy=FAST)
    await gemini.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await gemini.generate(ask("a cat"))
    assert fake_gemini.requests == []


async def test_a_stalled_upload_ends_each_attempt_at_the_attempt_timeout() -> None:
    """The server takes the connection and never reads: each attempt ends after the attempt timeout (per piece
    sent), not at the deadline, so the retry policy still gets its turns."""
    stalled: list[asyncio.StreamWriter] = []

    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stalled.append(writer)

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    for sock in server.sockets:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # so the client's send buffer fills up
    port = server.sockets[0].getsockname()[1]
    policy = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01, deadline=20.0, attempt_timeout=0.5)
    gemini = GeminiClient(api_key="k", base_url=f"http://127.0.0.1:{port}", policy=policy)
    big = (os.urandom(12_000_000), "image/png")  # more than loopback's socket buffers hold
    started = time.monotonic()
    try:
        with pytest.raises(e.TimedOutError) as caught:
            await gemini.generate(ImageRequest(FLASH_31.id, (Content.user("edit", (big,)),)))
    finally:
        await gemini.aclose()
        for writer in stalled:
            writer.close()
        server.close()
        await server.wait_closed()
    assert caught.value.attempts == 2
    assert time.monotonic() - started < 8  # two attempts of ~0.5 s each, not the 20 s deadline
