"""Proxy routes from the environment: looked up once per origin; credentials where aiohttp's proxy reads them."""

from __future__ import annotations

import base64

import pytest
from yarl import URL

from bot.proxies import EnvProxies

CREDENTIALS = "Basic " + base64.b64encode(b"alice:s3cret").decode()


pytestmark = pytest.mark.usefixtures("no_proxies")


def test_an_https_origin_tunnels_and_its_credentials_go_with_the_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://alice:s3cret@proxy.internal:3128")
    options = EnvProxies().route("https://generativelanguage.googleapis.com/v1beta").request({"x-goog-api-key": "k"})
    assert options == {
        "headers": {"x-goog-api-key": "k"},
        "proxy": URL("http://proxy.internal:3128"),
        "proxy_headers": {"Proxy-Authorization": CREDENTIALS},
    }


def test_a_plain_http_origin_carries_the_credentials_in_its_own_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://alice:s3cret@proxy.internal:3128")
    options = EnvProxies().route("http://gemini.internal/v1beta").request({"a": "1"})
    assert options == {
        "headers": {"a": "1", "Proxy-Authorization": CREDENTIALS},
        "proxy": URL("http://proxy.internal:3128"),
    }


def test_no_proxy_and_no_variables_mean_straight_there(monkeypatch: pytest.MonkeyPatch) -> None:
    assert EnvProxies().route("https://files.slack.com/f").request({"a": "1"}) == {"headers": {"a": "1"}}
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", ".slack.com")
    assert EnvProxies().route("https://files.slack.com/f").proxy is None
    assert EnvProxies().route("https://example.org/").proxy == URL("http://proxy.internal:3128")


def test_each_origin_is_looked_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    proxies = EnvProxies()
    monkeypatch.setenv("HTTPS_PROXY", "http://first.internal:3128")
    assert proxies.route("https://files.slack.com/a").proxy == URL("http://first.internal:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://second.internal:3128")
    assert proxies.route("https://files.slack.com/b?x=1").proxy == URL("http://first.internal:3128")
    assert proxies.route("https://other.slack.com/").proxy == URL("http://second.internal:3128")
