"""What a Slack message brings in: its words as people typed them, its files, and what is said when they fail."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from adapters.slack.translate import plain_text, slack_escaped
from tests.adapters.slack.test_slack_e2e import ALICE_KEY, credits, ephemeral, idle, uploads
from tests.core.conftest import png_bytes
from tests.fakes.gemini import FakeGemini
from tests.fakes.slack import CHANNEL, HUMAN, FakeSlack


@pytest.mark.parametrize(
    ("wire", "typed"),
    [
        ("Fish &amp; Chips &lt;3 &gt;_&lt;", "Fish & Chips <3 >_<"),
        ("&amp;lt; stays as typed", "&lt; stays as typed"),
        ("draw <@U0BOB|bob> and <@U0ANN> in <#C0DESIGN|design>", "draw @bob and @U0ANN in #design"),
        (
            "like <https://example.com/a?b=1&amp;c=2|this poster> or <https://example.com>",
            "like this poster or https://example.com",
        ),
        ("<!here> a <!subteam^S01|@artists> fox", "@here a @artists fox"),
    ],
)
def test_slack_markup_becomes_the_words_people_saw(wire: str, typed: str) -> None:
    assert plain_text(wire) == typed


def test_text_posted_back_is_escaped_and_only_the_askers_mention_stays_a_mention() -> None:
    posted = slack_escaped("“<!channel> & <b> <@U0BOSS>” — <@U0ALICE>", asker="U0ALICE")
    assert posted == "“&lt;!channel&gt; &amp; &lt;b&gt; &lt;@U0BOSS&gt;” — <@U0ALICE>"


@pytest.mark.parametrize("mode", ["socket"])
async def test_escaped_characters_reach_gemini_as_typed_and_the_caption_pings_nobody(
    slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    typed = 'a shop sign that says "Fish & Chips <3 <!channel> <@U0BOSS>"'
    wire = typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    await slack_bot.deliver(fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> {wire}"))
    [upload] = await uploads(fake_slack, 1)

    assert fake_gemini.requests[0].body["contents"][-1]["parts"][-1]["text"] == typed
    assert wire in (upload.initial_comment or "")  # quoted as the user wrote it: no @channel, no broken markup
    assert f"<@{HUMAN}>" in (upload.initial_comment or "")


@pytest.mark.parametrize("mode", ["socket"])
async def test_a_deleted_file_is_said_to_be_gone_not_blamed_on_a_scope(
    slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    gone = fake_slack.add_file("gone.png", "image/png", png_bytes())
    del fake_slack.state.files[gone["id"]]  # deleted between the message and the download: Slack answers 404
    await slack_bot.deliver(
        fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> use this", files=[gone])
    )
    refusal = await ephemeral(fake_slack, HUMAN, "gone.png")

    assert "is gone from Slack" in refusal["text"] and "files:read" not in refusal["text"]
    assert fake_gemini.requests == [] and await credits(slack_bot, ALICE_KEY) == 0


@pytest.mark.parametrize("mode", ["socket"])
async def test_a_file_host_that_does_not_answer_names_the_file(
    make_slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    bot = await make_slack_bot(slack_file_hosts=f"{urlsplit(fake_slack.base_url).netloc},{dead}")
    photo = fake_slack.add_file("photo.png", "image/png", png_bytes())
    photo["url_private_download"] = photo["url_private"] = f"http://{dead}/files-pri/T0TEAM-{photo['id']}/photo.png"
    await bot.deliver(fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> use this", files=[photo]))
    refusal = await ephemeral(fake_slack, HUMAN, "photo.png")
    await idle(bot)

    assert "couldn't download “photo.png”" in refusal["text"] and "went wrong" not in refusal["text"]
    assert fake_gemini.requests == [] and await credits(bot, ALICE_KEY) == 0


async def test_slash_imagine_with_an_option_the_model_lacks_posts_no_session_message(
    slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    await slack_bot.deliver(fake_slack.slash_command("/imagine", "a fox --size 512 --model pro", HUMAN, CHANNEL))
    await ephemeral(fake_slack, HUMAN, "can't make 512 images")
    await idle(slack_bot)

    assert fake_gemini.requests == []
    assert [m for m in fake_slack.history(CHANNEL) if "started an image session" in m.get("text", "")] == []


@pytest.mark.parametrize("mode", ["socket"])
async def test_a_slack_connect_file_is_looked_up_with_files_info_and_used(
    slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    # Slack Connect: the event's file carries only its id and file_access "check_file_info" (see the reference).
    hosted = fake_slack.add_file("partner.png", "image/png", png_bytes(96, 64))
    stub = {"id": hosted["id"], "mode": "file_access", "file_access": "check_file_info", "user": HUMAN}
    await slack_bot.deliver(
        fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> use this", files=[stub])
    )
    await uploads(fake_slack, 1)

    assert fake_slack.ephemerals(HUMAN) == []
    assert any("inlineData" in part for part in fake_gemini.requests[0].body["contents"][-1]["parts"])


@pytest.mark.parametrize("mode", ["socket"])
async def test_a_slack_connect_file_slack_will_not_open_is_named(
    slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    stub = {"id": "F0NOTHERE", "mode": "file_access", "file_access": "check_file_info", "user": HUMAN}
    await slack_bot.deliver(
        fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> use this", files=[stub])
    )
    refusal = await ephemeral(fake_slack, HUMAN, "no way to download")

    assert "attach it here again" in refusal["text"]
    assert fake_gemini.requests == [] and await credits(slack_bot, ALICE_KEY) == 0


@pytest.mark.parametrize("mode", ["socket"])
async def test_a_files_info_lookup_that_loses_its_connection_still_answers(
    slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    fake_slack.hang_up_next("files.info", times=5)  # the connection drops, retries included
    stub = {"id": "F0PARTNER", "mode": "file_access", "file_access": "check_file_info", "user": HUMAN}
    mention = fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> use this", files=[stub])
    await slack_bot.deliver(mention)
    refusal = await ephemeral(fake_slack, HUMAN, "no way to download")

    assert fake_gemini.requests == [] and await credits(slack_bot, ALICE_KEY) == 0
    assert "attach it here again" in refusal["text"]
