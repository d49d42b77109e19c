"""Shared fixtures: the fake servers are pytest plugins."""

pytest_plugins = ["tests.fakes.gemini.fixture", "tests.fakes.slack.fixture"]
