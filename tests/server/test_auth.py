"""Bearer-token auth on every endpoint but /health, loopback by default, tokens kept out of logs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.collector_kit import JSON_BODY, CollectorProcess, make_span, post_spans, running
from tokentrace.exceptions import ConfigError
from tokentrace.server.collector import Collector, check_bind
from tokentrace.server.config import HTTPServerConfig
from tokentrace.spans import encode_batch

TOKEN = "s3cret-token-for-tests"
PROTECTED_GETS = [
    "/metrics/cost",
    "/metrics/latency",
    "/metrics/tokens",
    "/metrics/errors",
    "/metrics/timeseries",
    "/metrics",
    "/traces",
    "/traces/recent",
    "/traces/some-trace",
    "/alerts",
    "/openapi.json",
]
WRONG = [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": TOKEN},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"bearer  {TOKEN}"},
]


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[str]:
    collector = Collector(tmp_path / "auth.db", token=TOKEN)
    with running(collector.app) as url:
        yield url
    collector.close()


@pytest.mark.parametrize("headers", WRONG)
def test_every_protected_endpoint_needs_the_token(secured: str, headers: dict) -> None:
    with httpx.Client(base_url=secured, headers=headers) as http:
        for path in PROTECTED_GETS:
            response = http.get(path)
            assert response.status_code == 401, path
            assert response.json() == {"error": "missing or wrong bearer token"}
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="tokentrace"'
        response = http.post("/v1/spans", content=encode_batch([make_span()]), headers=JSON_BODY)
        assert response.status_code == 401


def test_health_and_the_dashboard_page_are_open(secured: str) -> None:
    assert httpx.get(secured + "/health").json() == {"status": "ok"}
    page = httpx.get(secured + "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")


def test_the_right_token_opens_everything(secured: str) -> None:
    with httpx.Client(base_url=secured, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        assert post_spans(http, [make_span(trace_id="t-auth")]).status_code == 202
        for path in PROTECTED_GETS:
            expected = 404 if path == "/traces/some-trace" else 200
            assert http.get(path).status_code == expected, path
        doc = http.get("/openapi.json").json()
        assert doc["security"] == [{"bearer": []}]
    assert httpx.get(secured + "/alerts", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


def test_default_bind_is_loopback() -> None:
    assert HTTPServerConfig().host == "127.0.0.1"
    assert HTTPServerConfig(addr=":9090").host == "127.0.0.1"
    with pytest.raises(ValueError, match="listens beyond this machine"):
        HTTPServerConfig(addr="0.0.0.0:9090")
    assert HTTPServerConfig(addr="0.0.0.0:9090", token=TOKEN).host == "0.0.0.0"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"addr": "0.0.0.0:9090", "insecure": "false"}, "HTTPServerConfig.insecure must be True or False, got 'false'"),
        ({"addr": 9090}, "HTTPServerConfig.addr must be a str such as '127.0.0.1:9090', got 9090"),
        ({"token": ""}, "HTTPServerConfig.token must be a non-empty str, or None"),
        ({"max_spans": "10"}, "HTTPServerConfig.max_spans must be an int, got '10'"),
    ],
)
def test_server_settings_of_the_wrong_type_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        HTTPServerConfig(**fields)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_public_bind_without_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="--insecure"):
        check_bind("0.0.0.0:9090", None, False)
    check_bind("0.0.0.0:9090", TOKEN, False)
    check_bind("0.0.0.0:9090", None, True)
    check_bind("127.0.0.1:9090", None, False)


def test_serve_refuses_a_public_bind_without_token(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tokentrace", "serve", "--addr", "0.0.0.0:0", "--db", str(tmp_path / "x.db")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "listens beyond this machine without a token" in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_the_token_never_reaches_the_log(tmp_path: Path) -> None:
    proc = CollectorProcess(tmp_path / "log.db", "--token", TOKEN, "--log-level", "debug")
    try:
        with httpx.Client(base_url=proc.url) as http:
            assert http.get("/metrics/cost").status_code == 401
            assert http.get("/metrics/cost", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
            authorized = {**JSON_BODY, "Authorization": f"Bearer {TOKEN}"}
            assert http.post("/v1/spans", content=b"{", headers=authorized).status_code == 400
    finally:
        proc.stop()
    log = "".join(proc.log)
    assert "listening on http://127.0.0.1:" in log
    assert "bearer token required" in log
    assert TOKEN not in log
