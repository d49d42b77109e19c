"""The official google-genai SDK against FakeGemini: if each accepts the other, the fake speaks the real protocol."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from google import genai
from google.genai import errors, types
from PIL import Image

from tests.fakes.gemini import FakeGemini, Fault
from tests.fakes.gemini.fixture import fake_gemini  # noqa: F401  (also registered by tests/conftest.py)

PRO, FLASH, NANO = "gemini-3-pro-image-preview", "gemini-3.1-flash-image-preview", "gemini-2.5-flash-image"
GEMINI_3 = (PRO, FLASH)
TROUBLESHOOTING = "https://developers.generativeai.google/guide/troubleshooting"
SIG_HELP = " Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures#model-behavior for more details."

# Reference §4, copied here independently of the fake's own table so that a typo on either side fails.
NANO_PX = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}
G3_PX = {  # 1K, 2K, 4K: identical for 3 Pro and 3.1 Flash
    "1:1": ((1024, 1024), (2048, 2048), (4096, 4096)),
    "2:3": ((848, 1264), (1696, 2528), (3392, 5056)),
    "3:2": ((1264, 848), (2528, 1696), (5056, 3392)),
    "3:4": ((896, 1200), (1792, 2400), (3584, 4800)),
    "4:3": ((1200, 896), (2400, 1792), (4800, 3584)),
    "4:5": ((928, 1152), (1856, 2304), (3712, 4608)),
    "5:4": ((1152, 928), (2304, 1856), (4608, 3712)),
    "9:16": ((768, 1376), (1536, 2752), (3072, 5504)),
    "16:9": ((1376, 768), (2752, 1536), (5504, 3072)),
    "21:9": ((1584, 672), (3168, 1344), (6336, 2688)),
}
FLASH_ONLY_PX = {  # 512, 1K, 2K, 4K
    "1:4": ((256, 1024), (512, 2048), (1024, 4096), (2048, 8192)),
    "1:8": ((192, 1536), (384, 3072), (768, 6144), (1536, 12288)),
    "4:1": ((1024, 256), (2048, 512), (4096, 1024), (8192, 2048)),
    "8:1": ((1536, 192), (3072, 384), (6144, 768), (12288, 1536)),
}
FLASH_512 = {
    "1:1": (512, 512), "2:3": (424, 632), "3:2": (632, 424), "3:4": (448, 600), "4:3": (600, 448),
    "4:5": (464, 576), "5:4": (576, 464), "9:16": (384, 688), "16:9": (688, 384), "21:9": (792, 336),
}  # fmt: skip
TOKENS = {
    NANO: {"1K": 1290},
    PRO: {"1K": 1120, "2K": 1120, "4K": 2000},
    FLASH: {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520},
}


def _expected_dimensions() -> dict[tuple[str, str, str], tuple[int, int]]:
    table = {(NANO, "1K", ratio): px for ratio, px in NANO_PX.items()}
    for model in GEMINI_3:
        for ratio, sizes in G3_PX.items():
            table |= {(model, size, ratio): px for size, px in zip(("1K", "2K", "4K"), sizes, strict=True)}
    table |= {(FLASH, "512", ratio): px for ratio, px in FLASH_512.items()}
    for ratio, sizes in FLASH_ONLY_PX.items():
        table |= {(FLASH, size, ratio): px for size, px in zip(("512", "1K", "2K", "4K"), sizes, strict=True)}
    return table


DIMENSIONS = _expected_dimensions()
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")


def png(width: int, height: int, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, fmt)
    return out.getvalue()


def sdk_client(fake: FakeGemini, **options: Any) -> genai.Client:
    return genai.Client(api_key=fake.api_key, http_options=types.HttpOptions(base_url=fake.base_url, **options))


@pytest_asyncio.fixture
async def client(fake_gemini: FakeGemini) -> AsyncIterator[genai.Client]:  # noqa: F811
    sdk = sdk_client(fake_gemini)
    yield sdk
    await sdk.aio.aclose()


def image_config(aspect_ratio: str | None = None, size: str | None = None) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(image_config=types.ImageConfig(aspect_ratio=aspect_ratio, image_size=size))


def images(response: types.GenerateContentResponse) -> list[Image.Image]:
    parts = response.candidates[0].content.parts if response.candidates and response.candidates[0].content else None
    return [Image.open(io.BytesIO(p.inline_data.data)) for p in parts or [] if p.inline_data and not p.thought]


def generate_calls(fake: FakeGemini) -> list[Any]:
    return [r for r in fake.requests if r.path.startswith("/v1beta/models/") and ":" in r.path]


async def post(
    fake: FakeGemini, model: str, body: Any, *, method: str = "generateContent", **kwargs: Any
) -> httpx.Response:
    headers = kwargs.pop("headers", {"x-goog-api-key": fake.api_key})
    async with httpx.AsyncClient(base_url=fake.base_url, timeout=60) as http:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await http.post(f"/v1beta/models/{model}:{method}", content=content, headers=headers, **kwargs)


def text_body(prompt: str, **generation: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}], "generationConfig": generation}


# 1. Dimensions: every (model, size, aspect ratio) renders a real PNG of the published size.


@pytest.mark.parametrize(("model", "size", "ratio"), sorted(DIMENSIONS), ids=["-".join(k) for k in sorted(DIMENSIONS)])
async def test_every_size_and_ratio_renders_a_real_png(fake_gemini: FakeGemini, model: str, size: str, ratio: str):  # noqa: F811
    response = await post(
        fake_gemini, model, text_body("a lighthouse", imageConfig={"aspectRatio": ratio, "imageSize": size})
    )
    assert response.status_code == 200, response.text
    body = response.json()
    (image_part,) = [p for p in body["candidates"][0]["content"]["parts"] if "inlineData" in p]
    assert image_part["inlineData"]["mimeType"] == "image/png"
    img = Image.open(io.BytesIO(base64.b64decode(image_part["inlineData"]["data"], validate=True)))
    img.load()
    assert (img.format, img.size) == ("PNG", DIMENSIONS[model, size, ratio])
    assert body["usageMetadata"]["candidatesTokensDetails"] == [
        {"modality": "IMAGE", "tokenCount": TOKENS[model][size]}
    ]


@pytest.mark.parametrize(("model", "size", "ratio"), [(NANO, None, "3:2"), (PRO, "2K", "16:9"), (FLASH, "512", "1:8")])
async def test_sdk_text_to_image_round_trip(fake_gemini: FakeGemini, client: genai.Client, model, size, ratio):  # noqa: F811
    response = await client.aio.models.generate_content(
        model=model, contents="a red fox", config=image_config(ratio, size)
    )
    (img,) = images(response)
    assert img.size == DIMENSIONS[model, size or "1K", ratio]
    (call,) = fake_gemini.requests
    assert (call.method, call.path, call.model, call.status) == (
        "POST",
        f"/v1beta/models/{model}:generateContent",
        model,
        200,
    )
    assert call.headers["x-goog-api-key"] == fake_gemini.api_key
    assert call.body["generationConfig"]["imageConfig"] == {"aspectRatio": ratio} | (
        {"imageSize": size} if size else {}
    )
    parts = response.candidates[0].content.parts
    assert [p.thought_signature is not None for p in parts] == [model != NANO] * len(parts)
    usage = response.usage_metadata
    total = usage.prompt_token_count + usage.candidates_token_count + (usage.thoughts_token_count or 0)
    assert usage.total_token_count == total
    assert (usage.thoughts_token_count is None) == (model == NANO)
    assert response.model_version == model and response.response_id


def test_default_table_matches_reference():
    from tests.fakes.gemini.models import CANONICAL_MODELS

    fake_table = {
        (spec.id, size, ratio): px
        for spec in CANONICAL_MODELS
        for size, row in spec.pixels.items()
        for ratio, px in row.items()
    }
    assert fake_table == DIMENSIONS


# 2. Response bodies validate strictly against the SDK's own types.


@pytest.mark.parametrize(
    ("model", "prompt", "generation"),
    [
        (PRO, "a dish", {"thinkingConfig": {"includeThoughts": True}, "imageConfig": {"aspectRatio": "1:1"}}),
        (FLASH, "a dish", {"responseModalities": ["IMAGE"]}),
        (NANO, "a dish", {}),
        *[(PRO, f"x [fault:{f.value}]", {}) for f in Fault if not f.is_http and f is not Fault.STREAM_ERROR],
    ],
)
async def test_bodies_validate_strictly(fake_gemini: FakeGemini, model: str, prompt: str, generation: dict):  # noqa: F811
    response = await post(fake_gemini, model, text_body(prompt, **generation))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    types.GenerateContentResponse.model_validate(response.json())
    streamed = await post(fake_gemini, model, text_body(prompt, **generation), method="streamGenerateContent")
    for chunk in streamed.json():  # without alt=sse the stream is one JSON array
        types.GenerateContentResponse.model_validate(chunk)


async def test_pro_thoughts_come_first_and_only_final_parts_are_signed(client: genai.Client):
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))
    response = await client.aio.models.generate_content(model=PRO, contents="a dish", config=config)
    shape = [(bool(p.thought), p.inline_data is not None, p.thought_signature is not None) for p in response.parts]
    assert shape == [(True, False, False), (True, True, False), (False, False, True), (False, True, True)]
    assert response.text.startswith("Here is your image")


# 3. Multi-turn chats: signatures come back URL-safe and the fake accepts them.


@pytest.mark.parametrize("model", GEMINI_3)
async def test_three_turn_chat_resends_signatures(fake_gemini: FakeGemini, client: genai.Client, model: str):  # noqa: F811
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))
    chat = client.aio.chats.create(model=model, config=config)
    for prompt in ("a castle", "make it night", "add a dragon"):
        response = await chat.send_message(prompt)
        assert len(images(response)) == 1
    calls = generate_calls(fake_gemini)
    assert [c.status for c in calls] == [200, 200, 200]
    assert "+chat" in calls[-1].headers["x-goog-api-client"]
    contents = calls[-1].body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "model", "user"]
    for content in (contents[1], contents[3]):
        final = [p for p in content["parts"] if not p.get("thought")]
        assert all("thoughtSignature" not in p for p in content["parts"] if p.get("thought"))
        signed = [final[0], *[p for p in final if "inlineData" in p]]
        for part in signed:
            wire = part["thoughtSignature"]
            assert wire.startswith("-_-_"), wire  # the SDK re-encodes URL-safe; the fake compares bytes
            raw = base64.urlsafe_b64decode(wire + "=" * (-len(wire) % 4))
            assert fake_gemini.signatures.issued[raw] == model
    data = contents[3]["parts"][-1]["inlineData"]["data"]  # the SDK resends image bytes URL-safe too
    img = Image.open(io.BytesIO(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))))
    assert img.size == DIMENSIONS[model, "1K", "1:1"]


# 4. A stripped or forged signature is rejected with the Developer API's exact text.


async def first_turn(client: genai.Client, model: str) -> list[types.Content]:
    response = await client.aio.models.generate_content(model=model, contents="a castle")
    model_turn = response.candidates[0].content
    return [types.Content(role="user", parts=[types.Part(text="a castle")]), model_turn]


@pytest.mark.parametrize(
    ("model", "strip", "message"),
    [
        (PRO, 1, "Image part is missing a thought_signature in content position 2, part position 2."),
        (PRO, 0, "Text part is missing a thought_signature in content position 2, part position 1."),
        (FLASH, 1, "Image part is missing a thought_signature in content position 2, part position 2." + SIG_HELP),
    ],
)
async def test_stripped_signature_is_a_400(client: genai.Client, model: str, strip: int, message: str):
    history = await first_turn(client, model)
    history[1].parts[strip].thought_signature = None
    with pytest.raises(errors.ClientError) as caught:
        await client.aio.models.generate_content(model=model, contents=[*history, "make it blue"])
    assert (caught.value.code, caught.value.status, caught.value.message) == (400, "INVALID_ARGUMENT", message)


async def test_forged_or_foreign_signature_is_corrupted(client: genai.Client):
    history = await first_turn(client, PRO)
    history[1].parts[1].thought_signature = b"not issued by this server"
    with pytest.raises(errors.ClientError, match="Corrupted thought signature"):
        await client.aio.models.generate_content(model=PRO, contents=[*history, "make it blue"])
    pro_history = await first_turn(client, PRO)  # signatures are model-specific
    with pytest.raises(errors.ClientError, match="Corrupted thought signature"):
        await client.aio.models.generate_content(model=FLASH, contents=[*pro_history, "make it blue"])


async def test_vertex_mode_and_nano_banana_skip_signature_checks(fake_gemini: FakeGemini, client: genai.Client):  # noqa: F811
    history = await first_turn(client, NANO)
    assert all(p.thought_signature is None for p in history[1].parts)
    await client.aio.models.generate_content(model=NANO, contents=[*history, "make it blue"])
    fake_gemini.enforce_signatures = False
    pro_history = await first_turn(client, PRO)
    for part in pro_history[1].parts:
        part.thought_signature = None
    response = await client.aio.models.generate_content(model=PRO, contents=[*pro_history, "make it blue"])
    assert len(images(response)) == 1


# 5. Streaming.


async def test_stream_ends_with_finish_reason(fake_gemini: FakeGemini, client: genai.Client):  # noqa: F811
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))
    stream = await client.aio.models.generate_content_stream(model=FLASH, contents="a kite", config=config)
    chunks = [chunk async for chunk in stream]
    assert len(chunks) == 3  # thoughts, caption, image
    assert [c.candidates[0].finish_reason for c in chunks] == [None, None, types.FinishReason.STOP]
    assert sum(len(images(c)) for c in chunks) == 1 and chunks[-1].usage_metadata.candidates_token_count
    (call,) = fake_gemini.requests
    assert call.path.endswith(":streamGenerateContent") and call.query == {"alt": "sse"}


async def test_sse_framing_and_mid_stream_error(fake_gemini: FakeGemini, client: genai.Client):  # noqa: F811
    raw = await post(fake_gemini, PRO, text_body("a kite"), method="streamGenerateContent", params={"alt": "sse"})
    assert raw.headers["content-type"] == "text/event-stream"
    events = raw.content.split(b"\r\n\r\n")
    assert events[-1] == b"" and all(e.startswith(b"data: {") for e in events[:-1])
    fake_gemini.enqueue(Fault.STREAM_ERROR)
    stream = await client.aio.models.generate_content_stream(model=PRO, contents="a kite")
    seen = []
    with pytest.raises(errors.ServerError) as caught:
        async for chunk in stream:
            seen.append(chunk)
    assert len(seen) == 1 and caught.value.code == 500


# 6. Faults as the SDK reports them.


@pytest.mark.parametrize(("fault", "quota"), [(Fault.RATE_LIMIT, "PerMinute"), (Fault.RATE_LIMIT_DAILY, "PerDay")])
async def test_rate_limits_carry_quota_failure_and_retry_info(fake_gemini: FakeGemini, client, fault, quota):  # noqa: F811
    fake_gemini.enqueue(fault, retry_delay="7s")
    with pytest.raises(errors.ClientError) as caught:
        await client.aio.models.generate_content(model=FLASH, contents="a kite")
    error = caught.value
    assert (error.code, error.status) == (429, "RESOURCE_EXHAUSTED")
    assert error.message.endswith("Please retry in 7s.")
    details = {d["@type"].rsplit(".", 1)[1]: d for d in error.details["error"]["details"]}
    assert details["RetryInfo"]["retryDelay"] == "7s"
    assert [quota in v["quotaId"] for v in details["QuotaFailure"]["violations"]] == [True]


@pytest.mark.parametrize(
    ("fault", "code", "message"),
    [
        (Fault.INTERNAL, 500, f"An internal error has occurred. Please retry or report in {TROUBLESHOOTING}"),
        (Fault.OVERLOADED, 503, "The model is overloaded. Please try again later."),
        (Fault.DEADLINE, 504, "Deadline expired before operation could complete."),
    ],
)
async def test_server_errors(fake_gemini: FakeGemini, client: genai.Client, fault: Fault, code: int, message: str):  # noqa: F811
    fake_gemini.enqueue(fault, times=2)
    for _ in range(2):
        with pytest.raises(errors.ServerError) as caught:
            await client.aio.models.generate_content(model=PRO, contents="a kite")
        assert (caught.value.code, caught.value.message) == (code, message)
    await client.aio.models.generate_content(model=PRO, contents="a kite")  # the queue is drained
    assert [r.status for r in fake_gemini.requests] == [code, code, 200]


async def test_malformed_json(fake_gemini: FakeGemini, client: genai.Client):  # noqa: F811
    fake_gemini.enqueue(Fault.MALFORMED_JSON)
    with pytest.raises(ValueError):  # json.JSONDecodeError or errors.UnknownApiResponseError
        await client.aio.models.generate_content(model=PRO, contents="a kite")


async def test_reset_is_a_transport_error(fake_gemini: FakeGemini):  # noqa: F811
    # The SDK's aiohttp path silently retries a dropped connection after 1–10 s; its httpx path surfaces it.
    sdk = sdk_client(fake_gemini, async_client_args={"transport": httpx.AsyncHTTPTransport()})
    fake_gemini.enqueue(Fault.RESET)
    with pytest.raises(httpx.TransportError):
        await sdk.aio.models.generate_content(model=PRO, contents="a kite")
    assert fake_gemini.requests[0].status == 0
    await sdk.aio.aclose()


async def test_hang_trips_the_client_timeout_and_stop_is_prompt():
    fake = FakeGemini()
    await fake.start()
    sdk = sdk_client(fake, timeout=500)
    fake.enqueue(Fault.HANG)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await sdk.aio.models.generate_content(model=FLASH, contents="a kite")
    assert time.monotonic() - started < 5
    await sdk.aio.aclose()
    started = time.monotonic()
    await fake.stop()
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault.IMAGE_SAFETY, types.FinishReason.IMAGE_SAFETY),
        (Fault.IMAGE_PROHIBITED_CONTENT, types.FinishReason.IMAGE_PROHIBITED_CONTENT),
        (Fault.IMAGE_RECITATION, types.FinishReason.IMAGE_RECITATION),
        (Fault.IMAGE_OTHER, types.FinishReason.IMAGE_OTHER),
    ],
)
async def test_image_filters(fake_gemini: FakeGemini, client: genai.Client, fault: Fault, reason):  # noqa: F811
    fake_gemini.enqueue(fault)
    response = await client.aio.models.generate_content(model=PRO, contents="a kite")
    candidate = response.candidates[0]
    assert candidate.finish_reason == reason
    assert candidate.finish_message is None  # SDK 2.19.0 drops finishMessage in Developer-API mode
    assert not candidate.content.parts and not images(response)
    assert response.usage_metadata.candidates_token_count == 0 and response.usage_metadata.thoughts_token_count
    raw = (await post(fake_gemini, PRO, text_body(f"a kite [fault:{fault.value}]"))).json()["candidates"][0]
    assert raw["content"] == {"role": "model"}
    assert raw["finishMessage"].startswith("Unable to show the generated image.")


async def test_blocked_prompt(fake_gemini: FakeGemini, client: genai.Client):  # noqa: F811
    fake_gemini.enqueue(Fault.BLOCKED_PROMPT)
    response = await client.aio.models.generate_content(model=NANO, contents="a kite")
    assert response.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT
    assert response.candidates is None
    assert response.usage_metadata.total_token_count == response.usage_metadata.prompt_token_count


@pytest.mark.parametrize(("fault", "reason"), [(Fault.TEXT_ONLY, "STOP"), (Fault.NO_IMAGE, "NO_IMAGE")])
async def test_text_without_image(fake_gemini: FakeGemini, client: genai.Client, fault: Fault, reason: str):  # noqa: F811
    fake_gemini.enqueue(fault)
    response = await client.aio.models.generate_content(model=FLASH, contents="a kite")
    assert response.candidates[0].finish_reason == reason
    assert "a kite" in response.text and not images(response)
    assert response.parts[0].thought_signature  # the first non-thought part of a Gemini 3 answer is signed


async def test_prompt_marker_scripts_a_fault(client: genai.Client):
    response = await client.aio.models.generate_content(model=PRO, contents="a kite [fault:image_safety]")
    assert response.candidates[0].finish_reason == types.FinishReason.IMAGE_SAFETY
    with pytest.raises(errors.ServerError) as caught:
        await client.aio.models.generate_content(model=PRO, contents="[fault:OVERLOADED] a kite")
    assert caught.value.code == 503
    with pytest.raises(errors.ClientError, match="unknown fault marker"):
        await client.aio.models.generate_content(model=PRO, contents="[fault:typo] a kite")


# 7. Auth, routing, parsing and per-model validation.


async def test_wrong_key_is_api_key_invalid(fake_gemini: FakeGemini):  # noqa: F811
    sdk = genai.Client(api_key="wrong", http_options=types.HttpOptions(base_url=fake_gemini.base_url))
    with pytest.raises(errors.ClientError) as caught:
        await sdk.aio.models.generate_content(model=PRO, contents="a kite")
    await sdk.aio.aclose()
    assert (caught.value.code, caught.value.message) == (400, "API key not valid. Please pass a valid API key.")
    assert caught.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert fake_gemini.requests[0].status == 400


async def test_missing_key_is_403_and_query_key_works(fake_gemini: FakeGemini):  # noqa: F811
    response = await post(fake_gemini, PRO, text_body("a kite"), headers={})
    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"
    assert response.json()["error"]["message"].startswith("Method doesn't allow unregistered callers")
    response = await post(fake_gemini, PRO, text_body("a kite"), headers={}, params={"key": fake_gemini.api_key})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "model", ["gemini-3.1-flash-image", "gemini-3-pro-image", "nano-banana-pro-preview", f"models/{NANO}"]
)
async def test_aliases_and_prefixed_names(fake_gemini: FakeGemini, client: genai.Client, model: str):  # noqa: F811
    response = await client.aio.models.generate_content(model=model, contents="a kite")
    assert len(images(response)) == 1
    assert fake_gemini.requests[0].model == model.removeprefix("models/")


async def test_unknown_model_is_404(client: genai.Client):
    with pytest.raises(errors.ClientError) as caught:
        await client.aio.models.generate_content(model="imagen-4.0-fast-generate-001", contents="a kite")
    assert caught.value.code == 404 and caught.value.status == "NOT_FOUND"
    assert caught.value.message.startswith("models/imagen-4.0-fast-generate-001 is not found for API version v1beta")


def edit(image: bytes, mime: str, prompt: str = "make it blue") -> list[Any]:
    return [types.Part.from_bytes(data=image, mime_type=mime), prompt]


@pytest.mark.parametrize(
    ("model", "contents", "config", "message"),
    [
        (FLASH, edit(png(8, 8, "GIF"), "image/gif"), None, "Unsupported MIME type: image/gif"),
        (FLASH, edit(b"definitely not an image", "image/png"), None,
         f"Unable to process input image. Please retry or report in {TROUBLESHOOTING}"),
        (NANO, ["a kite"], types.GenerateContentConfig(candidate_count=2),
         f"Multiple candidates is not enabled for models/{NANO}"),
        (PRO, ["a kite"], types.GenerateContentConfig(candidate_count=2),
         "Multiple candidates is not enabled for this model"),
        (NANO, ["a kite"], image_config("1:4"), "aspect_ratio must be one of '1:1', '2:3', "),
        (PRO, ["a kite"], image_config("8:1"), "aspect_ratio must be one of "),
        (FLASH, ["a kite"], image_config("7:3"), "aspect_ratio must be one of '1:1', '2:3', '3:2', '3:4', '4:3', "),
        (PRO, ["a kite"], image_config(size="512"), "image_size must be one of '1K', '2K', or '4K'."),
        (NANO, ["a kite"], image_config(size="2K"), "image_size must be one of '1K'."),
        (FLASH, ["a kite"], image_config(size="1k"), "image_size must be one of '512', '1K', '2K', or '4K'."),
        (FLASH, ["a kite"], image_config(size="512px"), "image_size must be one of"),
        (FLASH, ["a kite"], types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_level="LOW")),
         "thinking_level must be one of 'MINIMAL' or 'HIGH'"),
        (FLASH, ["a kite"], types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(thinking_level="HIGH", thinking_budget=1024)), "not both"),
        (NANO, ["a kite"], types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_level="HIGH")),
         "Thinking level is not supported for this model."),
        (NANO, [*[types.Part.from_bytes(data=png(4, 4), mime_type="image/png")] * 4, "merge"], None,
         "at most 3 input images"),
    ],
)  # fmt: skip
async def test_invalid_requests_are_400(fake_gemini: FakeGemini, client, model, contents, config, message):  # noqa: F811
    with pytest.raises(errors.ClientError) as caught:
        await client.aio.models.generate_content(model=model, contents=contents, config=config)
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert message in caught.value.message
    assert [r.status for r in fake_gemini.requests] == [400]


async def test_reference_images_within_the_cap_are_fine(client: genai.Client):
    parts = [
        types.Part.from_bytes(data=png(4, 4), mime_type=mime) for mime in ("image/png", "image/jpeg", "image/webp")
    ]
    parts[1] = types.Part.from_bytes(data=png(4, 4, "JPEG"), mime_type="image/jpeg")
    parts[2] = types.Part.from_bytes(data=png(4, 4, "WEBP"), mime_type="image/webp")
    response = await client.aio.models.generate_content(model=FLASH, contents=[*parts, parts[0], "merge them"])
    assert len(images(response)) == 1


async def test_edit_keeps_the_input_aspect_ratio(fake_gemini: FakeGemini, client: genai.Client):  # noqa: F811
    response = await client.aio.models.generate_content(model=PRO, contents=edit(png(1600, 900), "image/png"))
    assert images(response)[0].size == (1376, 768)  # 16:9 at 1K
    usage = response.usage_metadata
    assert {d.modality: d.token_count for d in usage.prompt_tokens_details}[types.MediaModality.IMAGE] == 560


async def test_snake_case_body_with_urlsafe_unpadded_base64(fake_gemini: FakeGemini):  # noqa: F811
    data = base64.urlsafe_b64encode(png(300, 400)).decode().rstrip("=")
    body = {
        "contents": [{"parts": [{"inline_data": {"mime_type": "image/png", "data": data}}, {"text": "make it blue"}]}],
        "generation_config": {
            "response_modalities": ["Image"],
            "image_config": {"aspect_ratio": "16:9", "image_size": "2K"},
            "thinking_config": {"thinking_level": "High", "include_thoughts": True},
        },
        "safety_settings": [{"category": "harm_category_harassment", "threshold": "BLOCK_ONLY_HIGH"}],
        "system_instruction": {"parts": [{"text": "You are an illustrator."}], "role": "user"},
        "tools": [{"google_search": {}}],
    }
    response = await post(fake_gemini, FLASH, body)
    assert response.status_code == 200, response.text
    parts = response.json()["candidates"][0]["content"]["parts"]
    final = [p for p in parts if not p.get("thought")]
    assert [("inlineData" in p, "thoughtSignature" in p) for p in final] == [(True, True)]  # IMAGE only: no caption
    img = Image.open(io.BytesIO(base64.b64decode(final[0]["inlineData"]["data"])))
    assert img.size == (2752, 1536)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (text_body("a kite", thinkingLevel="HIGH"),
         "Invalid JSON payload received. Unknown name \"thinkingLevel\" at 'generation_config': Cannot find field."),
        ({"prompt": "a kite"}, 'Invalid JSON payload received. Unknown name "prompt": Cannot find field.'),
        ({"contents": [{"parts": [{"text": "a", "inlineData": {"mimeType": "image/png", "data": "@@"}}]}]},
         "Invalid value at 'contents[0].parts[0].inline_data.data' (TYPE_BYTES), Base64 decoding failed for \"@@\""),
        ({"contents": []}, "* GenerateContentRequest.contents: contents is not specified\n"),
        ({"contents": [{"role": "assistant", "parts": [{"text": "a"}]}]}, "Please use a valid role: user, model."),
        (b'{"contents": [', "Invalid JSON payload received. Unexpected token."),
    ],
)  # fmt: skip
async def test_malformed_bodies_are_400(fake_gemini: FakeGemini, body: Any, message: str):  # noqa: F811
    response = await post(fake_gemini, FLASH, body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    assert response.json()["error"]["message"] == message


async def test_payload_size_limit():
    async with FakeGemini(max_request_bytes=1000) as fake:
        for size in (2000, 5000):  # within and beyond what the HTTP layer buffers
            response = await post(fake, NANO, text_body("x" * size))
            assert response.status_code == 400
            assert response.json()["error"]["message"] == "Request payload size exceeds the limit: 1000 bytes."
        assert [r.status for r in fake.requests] == [400, 400]


# 8. The SDK's own retry recovers from one overloaded answer; latency; noise; the CLI.


async def test_sdk_retry_recovers_from_one_overload(fake_gemini: FakeGemini):  # noqa: F811
    retry = types.HttpRetryOptions(attempts=3, initial_delay=0.05, max_delay=0.1)
    sdk = sdk_client(fake_gemini, retry_options=retry)
    fake_gemini.enqueue(Fault.OVERLOADED)
    response = await sdk.aio.models.generate_content(model=PRO, contents="a kite")
    await sdk.aio.aclose()
    assert len(images(response)) == 1
    assert [r.status for r in fake_gemini.requests] == [503, 200]


async def test_latency_does_not_block_the_loop(fake_gemini: FakeGemini):  # noqa: F811
    fake_gemini.latency = 0.3
    big = text_body("a long banner", imageConfig={"aspectRatio": "8:1", "imageSize": "4K"})
    started = time.monotonic()
    task = asyncio.ensure_future(post(fake_gemini, FLASH, big))
    worst = 0.0
    while not task.done():
        tick = time.monotonic()
        await asyncio.sleep(0.005)
        worst = max(worst, time.monotonic() - tick)
    assert (await task).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert worst < 0.25, f"event loop stalled for {worst:.3f}s"


async def test_noise_makes_large_pngs(fake_gemini: FakeGemini, client: genai.Client):  # noqa: F811
    fake_gemini.noise = True
    response = await client.aio.models.generate_content(model=NANO, contents="static")
    part = next(p for p in response.parts if p.inline_data)
    assert len(part.inline_data.data) > 3_000_000
    assert Image.open(io.BytesIO(part.inline_data.data)).size == (1024, 1024)


def test_module_runs_standalone():
    cmd = [sys.executable, "-m", "tests.fakes.gemini", "--port", "0", "--key", "k"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            base_url = proc.stdout.readline().strip()
            response = httpx.post(
                f"{base_url}/v1beta/models/{NANO}:generateContent",
                json=text_body("hello [fault:text_only]"),
                headers={"x-goog-api-key": "k"},
                timeout=30,
            )
            assert response.json()["candidates"][0]["content"]["parts"][0]["text"].startswith("Sure!")
        finally:
            proc.terminate()
