"""The `bananabot` command: run, chat, doctor, quota, migrate."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import AliasChoices, ValidationError

from bot.adapter import load_adapters
from bot.config import Settings
from bot.logs import configure_logging
from bot.maintenance import run_maintenance
from bot.memory import freeze_startup_heap, tune_allocator
from bot.secret_text import shown_url
from bot.services import Services, build_services
from bot.store.postgres_dsn import redact

EXIT_NOT_CONFIGURED = 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{_variable(e['loc'])}: {e['msg']}" for e in exc.errors())
        print(f"bananabot: configuration error: {problems}", file=sys.stderr)  # noqa: T201
        return EXIT_NOT_CONFIGURED
    configure_logging(settings)
    if args.command == "run":
        tune_allocator()
    handler = {"run": _run, "chat": _chat, "doctor": _doctor, "quota": _quota, "migrate": _migrate}[args.command]
    return asyncio.run(handler(settings, args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bananabot", description="Gemini image sessions in Discord and Slack.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start every adapter whose credentials are set")
    chat = sub.add_parser("chat", help="an image session in this terminal")
    chat.add_argument("--session", default="default", help="session name (continues across runs)")
    chat.add_argument("--out", type=Path, default=None, help="folder for images (default BANANABOT_OUTPUT_DIR)")
    sub.add_parser("doctor", help="check configuration and database")
    sub.add_parser("migrate", help="apply database migrations")
    quota = sub.add_parser("quota", help="show or change a user's credits")
    quota.add_argument("action", choices=("show", "grant", "set", "block", "unblock", "exempt", "unexempt", "reset"))
    quota.add_argument("user", help="user key, e.g. discord:1234 or slack:U0123 or console:alice")
    quota.add_argument("amount", nargs="?", help="credits (grant) or daily limit (set)")
    return parser


def _variable(loc: tuple[int | str, ...]) -> str:
    """The environment variable a configuration error is about (GEMINI_API_KEY, BANANABOT_HTTP_PORT), not the
    field's name inside the code."""
    name = str(loc[0]) if loc else ""
    field = Settings.model_fields.get(name)
    if field is None:
        return name  # already an alias (GEMINI_API_KEY …) or something pydantic named itself
    alias = field.validation_alias
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"{Settings.model_config.get('env_prefix', '')}{name}".upper()


async def _open(settings: Settings) -> Services | None:
    """The services, or None after one line saying why the database could not be opened (no traceback, and the
    URL's password never shown)."""
    try:
        return await build_services(settings)
    except Exception as exc:
        url = redact(settings.database_url)
        detail = _without_password(f"{type(exc).__name__}: {exc}", settings.database_url)
        _say(f"bananabot: can't open the database {url}: {detail}", err=True)
        return None


def _say(text: str, *, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout)


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    adapters = [a for a in load_adapters().values() if a.configured(settings)]
    if not adapters or settings.gemini_api_key is None:
        needed = sorted({v for a in load_adapters().values() for v in a.required})
        _say("bananabot: nothing to run. Set GEMINI_API_KEY and the credentials of at least one platform:", err=True)
        for name in needed:
            _say(f"  {name}", err=True)
        _say("Or try it in a terminal: bananabot chat", err=True)
        return EXIT_NOT_CONFIGURED
    services = await _open(settings)
    if services is None:
        return EXIT_NOT_CONFIGURED
    freeze_startup_heap()
    for adapter in adapters:
        services.adapter_status[adapter.name] = "starting"
    if settings.http_port is not None and not any(
        a.name == "slack" and settings.slack_app_token is None for a in adapters
    ):
        try:
            await services.web.start(settings.http_port)
        except OSError as exc:  # the port is taken, or not ours to bind
            _say(
                f"bananabot: can't serve health checks on BANANABOT_HTTP_PORT={settings.http_port}: {exc.strerror}",
                err=True,
            )
            await services.close()
            return EXIT_NOT_CONFIGURED
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(a.run(services), name=a.name) for a in adapters]
    tasks.append(
        asyncio.create_task(run_maintenance(services, interval=settings.maintenance_seconds), name="maintenance")
    )
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopper and task.exception() is not None:
                _say(f"bananabot: adapter {task.get_name()} stopped: {task.exception()}", err=True)
                return 1
        return 0
    finally:
        for task in [*tasks, stopper]:
            task.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)
        await services.close()  # drains for BANANABOT_SHUTDOWN_GRACE_SECONDS


async def _chat(settings: Settings, args: argparse.Namespace) -> int:
    if settings.gemini_api_key is None:
        _say("bananabot: set GEMINI_API_KEY (and GEMINI_BASE_URL for a proxy or the fake server).", err=True)
        return EXIT_NOT_CONFIGURED
    console = load_adapters().get("console")
    if console is None:
        _say("bananabot: the console adapter is not installed.", err=True)
        return 1
    services = await _open(settings)
    if services is None:
        return EXIT_NOT_CONFIGURED
    # The same heartbeat as `run`: another process on this database would otherwise reclaim a long turn's holds.
    maintenance = asyncio.create_task(run_maintenance(services, interval=settings.maintenance_seconds))
    try:
        await console.chat(services, session=args.session, out_dir=args.out)
    finally:
        maintenance.cancel()
        await asyncio.gather(maintenance, return_exceptions=True)
        await services.close()
    return 0


async def _doctor(settings: Settings, args: argparse.Namespace) -> int:
    ok = True
    _say(f"GEMINI_API_KEY: {'set' if settings.gemini_api_key else 'MISSING'}")
    _say(f"GEMINI_BASE_URL: {shown_url(settings.gemini_base_url)}")
    _say(f"model: {settings.model}")
    ok = ok and settings.gemini_api_key is not None
    try:
        services = await build_services(settings)
    except Exception as exc:
        _say(f"database: NOT REACHABLE ({type(exc).__name__}: {exc})")
        return 1
    try:
        reachable = await services.store.ping()
        version = await services.store.schema_version()
        _say(
            f"database: {redact(settings.database_url)} {'reachable' if reachable else 'NOT REACHABLE'}, "
            f"schema version {version}"
        )
        ok = ok and reachable
    finally:
        await services.close()
    for adapter in load_adapters().values():
        for line in adapter.doctor(settings):
            _say(line)
    return 0 if ok else 1


async def _quota(settings: Settings, args: argparse.Namespace) -> int:
    from bot.errors import UserError
    from commands.admin import apply

    services = await _open(settings)
    if services is None:
        return EXIT_NOT_CONFIGURED
    try:
        _say(await apply(services, action=args.action, user_key=args.user, amount=args.amount, by="cli"))
        return 0
    except UserError as exc:
        _say(f"bananabot: {exc.user_message}", err=True)
        return 1
    finally:
        await services.close()


async def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    services = await _open(settings)
    if services is None:
        return EXIT_NOT_CONFIGURED
    try:
        _say(f"database at schema version {await services.store.schema_version()}")
    finally:
        await services.close()
    return 0


def _without_password(text: str, url: str) -> str:
    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    return text.replace(password, "***") if password else text
