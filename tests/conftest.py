"""Shared fixtures (the fake servers are pytest plugins) and a suite-wide guard: no log line carries a secret."""

from __future__ import annotations

import logging

import pytest

pytest_plugins = ["tests.fakes.gemini.fixture", "tests.fakes.slack.fixture"]

# Every credential the fakes hand out (tests that need another one use these too).
SECRETS = (
    "xoxb-1-fake-bot-token",  # FakeSlack bot token
    "xapp-1-A0APP-1-fake-app-token",  # FakeSlack app token
    "fake-signing-secret",  # FakeSlack signing secret
    "fake-bot-token",  # FakeDiscord token
    "AIzaSy-very-secret-key",  # the Gemini client test's key
)


class SecretWatch(logging.Handler):
    """Sees every record of the whole run, formatted as a handler would, tracebacks included."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        for secret in SECRETS:
            if secret in text:
                self.leaks.append(f"{record.name}: {text[:200]}")


WATCH = SecretWatch()
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy variables but those the test sets (the machine's own, in either case, would change each route)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def pytest_configure(config: pytest.Config) -> None:
    root = logging.getLogger()
    root.addHandler(WATCH)
    root.setLevel(min(root.level or logging.WARNING, logging.INFO))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if WATCH.leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"SECRET LEAKED INTO LOGS ({len(WATCH.leaks)}):", red=True)
            for leak in WATCH.leaks[:20]:
                reporter.write_line(f"  {leak}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
