"""The real discord.py client against FakeDiscord: login, gateway, app commands, interactions, files, threads."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import discord
import pytest
import pytest_asyncio
from discord import app_commands
from PIL import Image

from tests.fakes.discord import MANAGE_GUILD, FakeDiscord, point_discord_py_at
from tests.fakes.discord.fixture import fake_discord  # noqa: F401

MiB = 1024 * 1024


def _png(size: int = 64) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (200, 180, 20)).save(out, format="PNG")
    return out.getvalue()


PNG = _png()


@pytest.fixture
def fake(fake_discord: FakeDiscord) -> FakeDiscord:  # noqa: F811 — the fixture imported above
    return fake_discord


@dataclass
class World:
    guild_id: str
    channel_id: str
    alice: str
    admin: str


@pytest.fixture
def world(fake: FakeDiscord) -> World:
    guild_id = fake.add_guild("Banana Lab")
    channel_id = fake.add_channel(guild_id, "general")
    alice = fake.add_user("alice")
    fake.add_member(guild_id, alice)
    admin = fake.add_user("carol")
    managers = fake.add_role(guild_id, "managers", permissions=MANAGE_GUILD)
    fake.add_member(guild_id, admin, roles=[managers])
    return World(guild_id, channel_id, alice, admin)


class RegenView(discord.ui.View):
    """Persistent: no timeout, fixed custom_id, registered with `client.add_view` in setup_hook."""

    def __init__(self, clicks: list[discord.Interaction]) -> None:
        super().__init__(timeout=None)
        self.clicks = clicks

    @discord.ui.button(label="Regenerate", custom_id="bb:regen", style=discord.ButtonStyle.primary)
    async def regen(self, interaction: discord.Interaction, button: discord.ui.Button[RegenView]) -> None:
        self.clicks.append(interaction)
        await interaction.response.send_message("again!", ephemeral=True)


@dataclass
class Seen:
    attachments: list[tuple[discord.Attachment, bytes]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    interactions: list[discord.Interaction] = field(default_factory=list)


class Bot(discord.Client):
    def __init__(self, guild_id: str, *, message_content: bool = True) -> None:
        intents = discord.Intents.default()
        intents.message_content = message_content
        super().__init__(intents=intents, guild_ready_timeout=0.05)
        self.guild = discord.Object(int(guild_id))
        self.tree = app_commands.CommandTree(self)
        self.ready = asyncio.Event()
        self.resumed = asyncio.Event()
        self.messages: list[discord.Message] = []
        self.new_threads: list[discord.Thread] = []
        self.clicks: list[discord.Interaction] = []
        self.seen = Seen()
        self.slow_ack = 0.0
        _add_commands(self)

    async def setup_hook(self) -> None:
        self.add_view(RegenView(self.clicks))

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        pass  # discord.py sleeps 5 s before every re-IDENTIFY; tests don't need to

    async def on_ready(self) -> None:
        self.ready.set()

    async def on_resumed(self) -> None:
        self.resumed.set()

    async def on_message(self, message: discord.Message) -> None:
        self.messages.append(message)

    async def on_thread_create(self, thread: discord.Thread) -> None:
        self.new_threads.append(thread)


def _add_commands(bot: Bot) -> None:
    @bot.tree.command(name="imagine", description="Draw something", guild=bot.guild)
    async def imagine(interaction: discord.Interaction, prompt: str, image: discord.Attachment | None = None) -> None:
        await interaction.response.defer(thinking=True)
        data = await image.read() if image else b""
        if image:
            bot.seen.attachments.append((image, data))
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="Regenerate", custom_id="bb:regen"))
        out = discord.File(io.BytesIO(data[::-1] or b"png"), filename="result.png")
        await interaction.followup.send(f"{prompt} [{len(data)} bytes]", file=out, view=view)

    @bot.tree.command(name="twice", description="Acknowledges twice", guild=bot.guild)
    async def twice(interaction: discord.Interaction) -> None:
        await asyncio.sleep(bot.slow_ack)
        bot.seen.interactions.append(interaction)
        try:
            await interaction.response.defer()
            await interaction.response.defer()
        except (discord.InteractionResponded, discord.HTTPException) as e:
            bot.seen.errors.append(e)

    @bot.tree.command(name="story", description="Answers in a thread on its own reply", guild=bot.guild)
    async def story(interaction: discord.Interaction, title: str) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.edit_original_response(content=f"Working on {title}…")
        original = await interaction.original_response()
        thread = await original.create_thread(name=title)  # reference §6.4: guild info comes from the interaction
        await thread.send("chapter 1")
        await asyncio.sleep(bot.slow_ack)
        try:
            await interaction.followup.send("the end")
        except discord.HTTPException as e:
            bot.seen.errors.append(e)

    @bot.tree.command(name="setup", description="Admins only", guild=bot.guild)
    @app_commands.default_permissions(manage_guild=True)
    async def setup(interaction: discord.Interaction, credits: app_commands.Range[int, 1, 100]) -> None:
        await interaction.response.send_message(f"credits={credits}", ephemeral=True)


@pytest_asyncio.fixture
async def bot(fake: FakeDiscord, world: World) -> AsyncIterator[Bot]:
    client = Bot(world.guild_id)
    task = asyncio.create_task(client.start(fake.token))
    try:
        await asyncio.wait_for(client.ready.wait(), timeout=5)
        await client.tree.sync(guild=client.guild)
        yield client
    finally:
        await client.close()
        await task


def _calls(fake: FakeDiscord, method: str, route: str) -> list[int]:
    return [c.status for c in fake.calls if c.method == method and c.route == route]


async def test_login_identify_and_guild_cache(fake: FakeDiscord, world: World, bot: Bot) -> None:
    guild = bot.get_guild(int(world.guild_id))
    assert guild is not None and guild.name == "Banana Lab"
    assert [c.name for c in guild.text_channels] == ["general"]
    assert guild.me is not None and guild.me.guild_permissions.attach_files
    assert bot.application_id == int(fake.application_id)
    assert guild.get_member(int(world.alice)) is None  # no members intent: GUILD_CREATE lists only the bot

    (identify,) = fake.gateway.identifies
    assert identify["intents"] & (1 << 15)  # message content
    assert fake.gateway.connects[0]["compress"] == "zlib-stream"  # served zlib-stream binary frames
    login = next(c for c in fake.calls if c.route == "/users/@me")
    assert login.headers["authorization"] == f"Bot {fake.token}"
    assert _calls(fake, "GET", "/oauth2/applications/@me") == [200]
    assert fake.unexpected_calls == []


async def test_tree_sync_registers_guild_commands(fake: FakeDiscord, world: World, bot: Bot) -> None:
    commands = {c["name"]: c for c in fake.commands(world.guild_id)}
    assert set(commands) == {"imagine", "twice", "story", "setup"}
    assert [(o["name"], o["type"], o.get("required", False)) for o in commands["imagine"]["options"]] == [
        ("prompt", 3, True),
        ("image", 11, False),
    ]
    assert commands["setup"]["default_member_permissions"] == str(MANAGE_GUILD)
    assert fake.commands() == []
    fetched = await bot.tree.fetch_commands(guild=bot.guild)
    assert {c.name for c in fetched} == set(commands)


async def test_slash_command_attachment_defer_and_followup_with_file_and_button(
    fake: FakeDiscord, world: World, bot: Bot
) -> None:
    sent = await fake.send_slash_command(
        world.guild_id, world.channel_id, world.alice, "imagine", {"prompt": "a cat"}, [("ref.png", "image/png", PNG)]
    )
    await fake.wait_for(lambda: len(sent.responses) >= 2)

    attachment, data = bot.seen.attachments[0]
    assert isinstance(attachment, discord.Attachment)
    assert (attachment.filename, attachment.content_type, attachment.size) == ("ref.png", "image/png", len(PNG))
    assert (attachment.width, attachment.height) == (64, 64)
    assert data == PNG
    download = next(c for c in fake.calls if c.path.startswith("/ephemeral-attachments/"))
    assert download.status == 200 and not download.authorized

    defer, followup = fake.interaction_responses(sent.id)
    assert (defer.kind, defer.type, defer.status) == ("callback", 5, 200)
    assert sent.ack_elapsed is not None and sent.ack_elapsed < 3
    assert followup.kind == "followup" and followup.status == 200
    assert followup.files[0] == ("result.png", "application/octet-stream", PNG[::-1])
    assert followup.body["components"][0]["components"][0]["custom_id"] == "bb:regen"

    (message,) = fake.messages_in(world.channel_id)  # the follow-up replaced the "thinking…" message
    assert message["id"] == sent.original_message_id and message["flags"] == 0
    assert message["content"] == f"a cat [{len(PNG)} bytes]"
    assert message["attachments"][0]["data"] == PNG[::-1]
    assert message["attachments"][0]["content_type"] == "image/png"
    assert message["interaction_metadata"]["user"]["id"] == world.alice


async def test_threads_created_by_the_bot_arrive_as_thread_create(fake: FakeDiscord, world: World, bot: Bot) -> None:
    channel = bot.get_channel(int(world.channel_id))
    assert isinstance(channel, discord.TextChannel)
    thread = await channel.create_thread(name="a cat", type=discord.ChannelType.public_thread)
    starter = await channel.send("a dog")
    from_message = await channel.create_thread(name="a dog", message=starter)

    await fake.wait_for(lambda: len(bot.new_threads) == 2)
    assert [t.id for t in bot.new_threads] == [thread.id, from_message.id]
    assert from_message.id == starter.id  # Discord reuses the message id
    threads = fake.threads_of(world.channel_id)
    assert [(t["name"], t["type"], t["owner_id"]) for t in threads] == [
        ("a cat", 11, fake.bot_id),
        ("a dog", 11, fake.bot_id),
    ]
    assert isinstance(bot.get_channel(thread.id), discord.Thread)  # cached, so messages there resolve to it


async def test_original_response_edit_fetch_and_thread(fake: FakeDiscord, world: World, bot: Bot) -> None:
    sent = await fake.send_slash_command(world.guild_id, world.channel_id, world.alice, "story", {"title": "cats"})
    await fake.wait_for(lambda: [r.kind for r in sent.responses] == ["callback", "edit", "get", "followup"])

    original, the_end = fake.messages_in(world.channel_id)
    assert (original["id"], original["content"], original["flags"]) == (
        sent.original_message_id,
        "Working on cats…",
        32,
    )
    assert the_end["content"] == "the end"  # the loading message was already replaced, so this one is new
    (thread,) = fake.threads_of(world.channel_id)
    assert thread["id"] == original["id"]
    assert [m["content"] for m in fake.messages_in(thread["id"])] == ["chapter 1"]


async def test_interaction_token_expires(fake: FakeDiscord, world: World, bot: Bot) -> None:
    fake.token_ttl = 0.1
    bot.slow_ack = 0.2
    await fake.send_slash_command(world.guild_id, world.channel_id, world.alice, "story", {"title": "dogs"})
    await fake.wait_for(lambda: bot.seen.errors)
    error = bot.seen.errors[0]
    assert isinstance(error, discord.HTTPException) and (error.status, error.code) == (401, 50027)


async def test_persistent_view_receives_a_click(fake: FakeDiscord, world: World, bot: Bot) -> None:
    # A message from "before the restart": only the persistent view registered in setup_hook can answer it.
    button = {"type": 2, "style": 1, "label": "Regenerate", "custom_id": "bb:regen"}
    message_id = fake.add_message(world.channel_id, content="a cat", components=[{"type": 1, "components": [button]}])
    click = await fake.send_button_click(world.guild_id, world.channel_id, message_id, world.alice, "bb:regen")
    await fake.wait_for(lambda: click.acknowledged)

    assert [(i.user.id, i.message.id) for i in bot.clicks] == [(int(world.alice), int(message_id))]  # type: ignore[union-attr]
    (answer,) = fake.interaction_responses(click.id)
    assert (answer.type, answer.body["data"]["flags"], answer.status) == (4, 64, 200)
    with pytest.raises(LookupError):
        await fake.send_button_click(world.guild_id, world.channel_id, message_id, world.alice, "nope")


async def test_on_message_in_a_thread_with_an_attachment(fake: FakeDiscord, world: World, bot: Bot) -> None:
    channel = bot.get_channel(int(world.channel_id))
    assert isinstance(channel, discord.TextChannel)
    thread = await channel.create_thread(name="a cat", type=discord.ChannelType.public_thread)
    await fake.send_message(str(thread.id), world.alice, "make it blue", [("ref.png", "image/png", PNG)])
    await fake.wait_for(lambda: any(m.author.id == int(world.alice) for m in bot.messages))

    message = next(m for m in bot.messages if m.author.id == int(world.alice))
    assert isinstance(message.channel, discord.Thread) and message.channel.id == thread.id
    assert message.content == "make it blue"
    assert await message.attachments[0].read() == PNG


async def test_without_message_content_intent_content_is_blanked(fake: FakeDiscord, world: World) -> None:
    client = Bot(world.guild_id, message_content=False)
    task = asyncio.create_task(client.start(fake.token))
    try:
        await asyncio.wait_for(client.ready.wait(), timeout=5)
        await fake.send_message(world.channel_id, world.alice, "secret")
        await fake.send_message(world.channel_id, world.alice, f"<@{fake.bot_id}> hi")
        await fake.wait_for(lambda: len(client.messages) == 2)
        assert [m.content for m in client.messages] == ["", f"<@{fake.bot_id}> hi"]
    finally:
        await client.close()
        await task


async def test_a_429_is_retried_transparently(fake: FakeDiscord, world: World, bot: Bot) -> None:
    channel = bot.get_channel(int(world.channel_id))
    assert isinstance(channel, discord.TextChannel)
    fake.rate_limit_next(f"/channels/{world.channel_id}/messages", retry_after=0.2)
    started = asyncio.get_running_loop().time()
    sent = await channel.send("hello")
    assert asyncio.get_running_loop().time() - started >= 0.2
    assert _calls(fake, "POST", "/channels/{channel_id}/messages") == [429, 200]
    assert [m["id"] for m in fake.messages_in(world.channel_id)] == [str(sent.id)]


async def test_oversized_upload_is_413(fake: FakeDiscord, world: World, bot: Bot) -> None:
    channel = bot.get_channel(int(world.channel_id))
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as caught:
        await channel.send(file=discord.File(io.BytesIO(bytes(12 * MiB)), filename="huge.png"))
    assert (caught.value.status, caught.value.code) == (413, 40005)
    assert fake.messages_in(world.channel_id) == []


async def test_double_acknowledgement(fake: FakeDiscord, world: World, bot: Bot) -> None:
    sent = await fake.send_slash_command(world.guild_id, world.channel_id, world.alice, "twice")
    await fake.wait_for(lambda: bot.seen.errors)
    assert isinstance(bot.seen.errors[0], discord.InteractionResponded)  # discord.py refuses locally

    url = f"{fake.api_url}/interactions/{sent.id}/{sent.token}/callback"
    async with aiohttp.ClientSession() as session, session.post(url, json={"type": 5}) as response:
        assert response.status == 400
        assert response.headers["Content-Type"] == "application/json"
        assert await response.json() == {"message": "Interaction has already been acknowledged.", "code": 40060}
    assert [r.status for r in fake.interaction_responses(sent.id)] == [200, 400]


async def test_late_acknowledgement_is_unknown_interaction(fake: FakeDiscord, world: World, bot: Bot) -> None:
    fake.ack_deadline = 0.1
    bot.slow_ack = 0.2
    sent = await fake.send_slash_command(world.guild_id, world.channel_id, world.alice, "twice")
    await fake.wait_for(lambda: bot.seen.errors)
    error = bot.seen.errors[0]
    assert isinstance(error, discord.NotFound) and error.code == 10062
    assert not sent.acknowledged


async def test_option_types_and_permissions_in_the_payload(fake: FakeDiscord, world: World, bot: Bot) -> None:
    sent = await fake.send_slash_command(world.guild_id, world.channel_id, world.admin, "setup", {"credits": 7})
    await fake.wait_for(lambda: sent.acknowledged)
    assert sent.payload["data"]["options"] == [{"name": "credits", "type": 4, "value": 7}]
    assert int(sent.payload["member"]["permissions"]) & MANAGE_GUILD
    assert fake.messages_in(world.channel_id)[0]["content"] == "credits=7"
    with pytest.raises(ValueError, match="out of range"):
        await fake.send_slash_command(world.guild_id, world.channel_id, world.admin, "setup", {"credits": 0})


async def test_reconnects_with_resume_and_replays_missed_events(fake: FakeDiscord, world: World, bot: Bot) -> None:
    await fake.drop_gateway()
    await fake.send_message(world.channel_id, world.alice, "while you were away")  # buffered
    await asyncio.wait_for(bot.resumed.wait(), timeout=10)
    (resume,) = fake.gateway.resumes
    assert resume["session_id"] in fake.gateway.sessions
    assert len(fake.gateway.identifies) == 1
    await fake.send_message(world.channel_id, world.alice, "welcome back")
    await fake.wait_for(lambda: len(bot.messages) == 2)
    assert [m.content for m in bot.messages] == ["while you were away", "welcome back"]


async def test_invalid_session_makes_the_client_identify_again(fake: FakeDiscord, world: World, bot: Bot) -> None:
    bot.ready.clear()
    await fake.invalidate_session(resumable=False)  # discord.py then dials DEFAULT_GATEWAY again, not the resume URL
    await asyncio.wait_for(bot.ready.wait(), timeout=5)
    assert len(fake.gateway.identifies) == 2 and fake.gateway.resumes == []
    await fake.send_message(world.channel_id, world.alice, "still here?")
    await fake.wait_for(lambda: [m.content for m in bot.messages] == ["still here?"])


async def test_rest_requires_the_bot_token_and_unknown_routes_are_recorded(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake.api_url}/users/@me") as response:
            assert (response.status, await response.json()) == (401, {"message": "401: Unauthorized", "code": 0})
        headers = {"Authorization": f"Bot {fake.token}"}
        async with session.get(f"{fake.api_url}/no/such/route", headers=headers) as response:
            assert (response.status, await response.json()) == (404, {"message": "404: Not Found", "code": 0})
    assert [c.path for c in fake.unexpected_calls] == ["/api/v10/no/such/route"]


async def test_auto_sharded_client_finds_the_gateway_through_rest(fake: FakeDiscord, world: World) -> None:
    # Only the REST base is redirected; AutoShardedClient asks GET /gateway/bot where to connect.
    with point_discord_py_at(fake.api_url, "wss://gateway.discord.gg/"):
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "wss://gateway.discord.gg/"
        client = discord.AutoShardedClient(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        ready = asyncio.Event()
        client.event(_set_on_ready(ready))
        task = asyncio.create_task(client.start(fake.token))
        try:
            await asyncio.wait_for(ready.wait(), timeout=5)
            assert client.get_guild(int(world.guild_id)) is not None
            assert _calls(fake, "GET", "/gateway/bot") == [200]
        finally:
            await client.close()
            await task


def _set_on_ready(ready: asyncio.Event):
    async def on_ready() -> None:
        ready.set()

    return on_ready
