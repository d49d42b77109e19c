"""Bad input, generated: prompts, options, payload text and image bytes never crash; each refusal is specific.

Case counts (CI): options 4,000 + Slack text 2,500 + button ids 1,500 + image bytes 2,500 = 10,500.
"""

from __future__ import annotations

import asyncio
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from adapters.discord.translate import thread_name, turn_of_message
from adapters.slack.translate import parse_flags, strip_mention
from bot.catalog import MODELS, lookup
from bot.errors import UserError
from bot.gemini import Content, ImageRequest
from bot.images import ImageRejected, check_declared, prepare_reference
from bot.intake import check_prompt
from bot.models import Button
from bot.targets import aspect_option, size_option


def cases(n: int) -> settings:
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


UNICODE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",))
    | st.sampled_from("\u200b\u200f\u202e\u2066\ufeff\u0627\u05d0"),
    max_size=300,
)
OPTION = st.one_of(
    st.none(),
    UNICODE,
    st.sampled_from(["16:9", "1:1", "8:1", "21:9", "0:0", "99:1", "16x9", "1K", "2k", "512", "512px", "4K", "8K"]),
    st.sampled_from([m.id for m in MODELS] + ["pro", "flash", "dall-e", "models/gemini-3-pro-image-preview"]),
)


def specific(message: str) -> None:
    assert message.strip() and "Something went wrong" not in message and len(message) < 600


@cases(4000)
@given(
    prompt=st.one_of(
        UNICODE,
        st.tuples(st.integers(7990, 20000), st.sampled_from("a\u200b\u05d0é🍌")).map(lambda spec: spec[1] * spec[0]),
    ),
    model=OPTION,
    size=OPTION,
    aspect=OPTION,
    references=st.integers(0, 20),
)
def test_options_are_accepted_or_refused_specifically(prompt, model, size, aspect, references) -> None:
    try:
        text = check_prompt(prompt, images=references)
        spec = lookup(model or MODELS[0].id)
        request = ImageRequest(
            spec.id,
            (Content.user(text, ((b"x", "image/png"),) * references),),
            aspect_ratio=aspect_option(aspect),
            image_size=size_option(size),
        )
        request.validate()
    except UserError as refused:
        specific(refused.user_message)
        return
    assert request.size in spec.sizes and (request.aspect_ratio is None or request.aspect_ratio in spec.aspect_ratios)


@cases(2500)
@given(
    text=st.one_of(UNICODE, st.integers(0, 20000).map(lambda n: "‮x --ar 16:9 " * (n // 12))),
    bot=st.one_of(st.none(), st.from_regex(r"U[A-Z0-9]{8}")),
)
def test_slack_text_translation_never_crashes(text, bot) -> None:
    prompt, options = parse_flags(strip_mention(text, bot))
    assert set(options) <= {"aspect_ratio", "size", "model"}
    assert isinstance(prompt, str) and (bot is None or f"<@{bot}>" not in prompt)


@cases(1500)
@given(custom_id=st.one_of(UNICODE, st.from_regex(r"bb:[a-z_0-9]{0,12}:[0-9a-f]{0,40}")), name=UNICODE)
def test_button_ids_and_thread_names_never_crash(custom_id, name) -> None:
    found = Button.command_for(custom_id)
    if found is not None:
        command, options = found
        assert command in {"retry", "undo", "upscale", "variations"} and custom_id.endswith(":" + options["turn"])
    assert 1 <= len(thread_name(name)) <= 100
    assert turn_of_message(_Message()) is None


class _Message:
    components: tuple[object, ...] = ()


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (9, 9, 9)).save(out, "PNG")
    return out.getvalue()


SEED_IMAGES = [_png(40, 30), _png(3, 300)]


@cases(2500)
@given(
    data=st.one_of(
        st.binary(max_size=2048),
        st.sampled_from(SEED_IMAGES).flatmap(lambda png: st.integers(0, len(png)).map(lambda n: png[:n])),
        st.sampled_from(SEED_IMAGES).flatmap(
            lambda png: st.tuples(st.integers(0, len(png) - 1), st.integers(0, 255)).map(
                lambda edit: png[: edit[0]] + bytes([edit[1]]) + png[edit[0] + 1 :]
            )
        ),
    ),
    declared=st.one_of(st.none(), st.sampled_from(["image/png", "image/jpeg", "application/pdf", "text/html", ""])),
    size=st.one_of(st.none(), st.integers(-1, 10**9)),
)
def test_image_intake_refuses_specifically(data, declared, size) -> None:
    try:
        check_declared(filename="f.png", declared_mime=declared, size=size, max_bytes=20_000_000)
        prepared = asyncio.run(
            prepare_reference(data, filename="f.png", max_bytes=20_000_000, max_pixels=1_000_000, max_side=256)
        )
    except ImageRejected as refused:
        specific(refused.user_message)
        return
    assert prepared.mime in {"image/png", "image/jpeg", "image/webp"} and max(prepared.width, prepared.height) <= 300
