"""The Host check against DNS rebinding: loopback names by default, allowed_hosts, "*", /health."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

import tokentrace
from tests.collector_kit import JSON_BODY, CollectorProcess, make_span, post_spans, running
from tokentrace.server.collector import Collector
from tokentrace.server.config import HTTPServerConfig, hosts_to_check
from tokentrace.spans import encode_batch

TOKEN = "host-check-token"
GETS = [
    "/",
    "/dashboard",
    "/openapi.json",
    "/metrics",
    "/metrics/cost",
    "/metrics/latency",
    "/metrics/tokens",
    "/metrics/errors",
    "/metrics/timeseries",
    "/traces",
    "/traces/recent",
    "/traces/some-trace",
    "/alerts",
]
FOREIGN = ["evil.example", "evil.example:9090", "localhost.evil.example", "127.0.0.1.nip.io:9090", "[::2]", "10.1.2.3"]
LOOPBACK = ["localhost", "localhost:9090", "LocalHost.", "app.localhost:9090", "127.0.0.1", "127.0.0.1:9090",
            "127.1.2.3:80", "[::1]", "[::1]:9090", "[0:0:0:0:0:0:0:1]:9090"]  # fmt: skip


def refusal(host: str, *, extra: bool = False) -> dict[str, str]:
    names = "localhost, *.localhost, 127.0.0.0/8, [::1] and the names in allowed_hosts" if extra else (
        "localhost, *.localhost, 127.0.0.0/8 and [::1]"
    )  # fmt: skip
    return {
        "error": f"the Host header {host!r} is not a name this server answers to: it answers to {names} only "
        "(a guard against DNS rebinding); add the name to allowed_hosts (tokentrace serve --allow-host NAME) "
        "to allow it, or '*' to allow any"
    }


@contextmanager
def serving(tmp_path: Path, allowed_hosts: Sequence[str] | None, **options: object) -> Iterator[httpx.Client]:
    collector = Collector(tmp_path / "hosts.db", allowed_hosts=allowed_hosts, **options)  # type: ignore[arg-type]
    try:
        with running(collector.app) as url, httpx.Client(base_url=url, timeout=30) as http:
            yield http
    finally:
        collector.close()


@pytest.fixture
def loopback_only(tmp_path: Path) -> Iterator[httpx.Client]:
    with serving(tmp_path, hosts_to_check("127.0.0.1", ())) as http:
        yield http


@pytest.mark.parametrize("host", FOREIGN)
def test_a_foreign_host_is_refused_on_every_path_but_health(loopback_only: httpx.Client, host: str) -> None:
    for path in GETS:
        response = loopback_only.get(path, headers={"Host": host})
        assert response.status_code == 421, path
        assert response.json() == refusal(host), path
    response = loopback_only.post("/v1/spans", content=encode_batch([make_span()]), headers={**JSON_BODY, "Host": host})
    assert (response.status_code, response.json()) == (421, refusal(host))
    assert loopback_only.get("/traces").json() == {"traces": []}  # nothing was stored
    health = loopback_only.get("/health", headers={"Host": host})
    assert (health.status_code, health.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_names_are_answered(loopback_only: httpx.Client, host: str) -> None:
    assert post_spans(loopback_only, [make_span(trace_id="t-host")], Host=host).status_code == 202
    for path in GETS:
        expected = 404 if path == "/traces/some-trace" else 200
        assert loopback_only.get(path, headers={"Host": host}).status_code == expected, path


def test_the_host_check_comes_before_the_token(tmp_path: Path) -> None:
    with serving(tmp_path, (), token=TOKEN) as http:
        assert http.get("/alerts", headers={"Host": "evil.example"}).status_code == 421
        authorized = {"Host": "evil.example", "Authorization": f"Bearer {TOKEN}"}
        assert http.get("/alerts", headers=authorized).json() == refusal("evil.example")
        assert http.get("/alerts", headers={**authorized, "Host": "localhost"}).status_code == 200
        assert http.get("/alerts", headers={"Host": "localhost"}).status_code == 401


def test_a_request_without_host_is_answered(loopback_only: httpx.Client) -> None:
    """HTTP/1.0 needs no Host; a browser always sends one, so no web page sends such a request."""
    address = urlsplit(str(loopback_only.base_url))
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(b"GET /alerts HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b'{"alerts":[]}')


def test_allowed_hosts_are_answered_too(tmp_path: Path) -> None:
    allowed = ["tt.example.com", "*.internal", "10.0.0.5", "FE80::1", "proxy.example."]
    with serving(tmp_path, allowed) as http:
        for host in ["tt.example.com", "TT.Example.com:443", "a.b.internal:9090", "10.0.0.5:9090",
                     "[fe80::1]:9090", "proxy.example", "localhost:9090", "127.0.0.1"]:  # fmt: skip
            assert http.get("/alerts", headers={"Host": host}).status_code == 200, host
        for host in ["internal", "tt.example.com.evil.example", "example.com", "10.0.0.6", "[fe80::2]"]:
            response = http.get("/alerts", headers={"Host": host})
            assert (response.status_code, response.json()) == (421, refusal(host, extra=True)), host


def test_a_star_turns_the_check_off(tmp_path: Path) -> None:
    assert hosts_to_check("127.0.0.1", ("*",)) is None
    with serving(tmp_path, ["tt.example.com", "*"]) as http:
        assert http.get("/alerts", headers={"Host": "evil.example"}).status_code == 200
        assert "421" not in http.get("/openapi.json").json()["paths"]["/alerts"]["get"]["responses"]


def test_the_openapi_document_lists_the_refusal_only_when_hosts_are_checked(
    loopback_only: httpx.Client, tmp_path: Path
) -> None:
    paths = loopback_only.get("/openapi.json").json()["paths"]
    assert paths["/alerts"]["get"]["responses"]["421"]["content"]["application/json"]
    assert "421" in paths["/v1/spans"]["post"]["responses"]
    assert "421" not in paths["/health"]["get"]["responses"]
    with serving(tmp_path / "unchecked", None) as http:
        assert "421" not in http.get("/openapi.json").json()["paths"]["/alerts"]["get"]["responses"]


@pytest.mark.parametrize(
    ("bind", "allowed", "checked"),
    [
        ("127.0.0.1", (), ()),
        ("127.0.0.2", (), ()),
        ("::1", (), ()),
        ("localhost", ("tt.example.com",), ("tt.example.com",)),
        ("127.0.0.1", ("tt.example.com", "*"), None),
        ("0.0.0.0", (), None),
        ("::", (), None),
        ("192.168.1.5", ("tt.example.com",), ("tt.example.com",)),
        ("0.0.0.0", ("*",), None),
    ],
)
def test_hosts_are_checked_on_a_loopback_bind_and_elsewhere_only_when_given(
    bind: str, allowed: tuple[str, ...], checked: tuple[str, ...] | None
) -> None:
    assert hosts_to_check(bind, allowed) == checked


def _embedded(config: HTTPServerConfig, *hosts: str, **headers: str) -> list[int]:
    tracer = tokentrace.Tracer(http_server=config)
    try:
        url = (tracer.server_url or "").replace("0.0.0.0", "127.0.0.1")
        return [httpx.get(url + "/alerts", headers={"Host": h, **headers}).status_code for h in hosts]
    finally:
        tracer.close()


def test_the_embedded_server_answers_loopback_names_only_by_default() -> None:
    assert _embedded(HTTPServerConfig(addr="127.0.0.1:0"), "evil.example", "localhost:9090") == [421, 200]
    allowed = HTTPServerConfig(addr="127.0.0.1:0", allowed_hosts=["tt.example.com"])
    assert _embedded(allowed, "evil.example", "tt.example.com", "127.0.0.1") == [421, 200, 200]
    assert _embedded(HTTPServerConfig(addr="127.0.0.1:0", allowed_hosts=["*"]), "evil.example") == [200]


def test_a_public_bind_with_a_token_answers_any_host_unless_allowed_hosts_are_given() -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    public = HTTPServerConfig(addr="0.0.0.0:0", token=TOKEN)
    assert _embedded(public, "evil.example", "10.1.2.3:9090", "localhost", **auth) == [200, 200, 200]
    named = HTTPServerConfig(addr="0.0.0.0:0", token=TOKEN, allowed_hosts=["tt.example.com"])
    assert _embedded(named, "evil.example", "tt.example.com", "localhost", **auth) == [421, 200, 200]


@pytest.mark.parametrize(
    ("allowed", "message"),
    [
        ("tt.example.com", "HTTPServerConfig.allowed_hosts must be a list of host names such as ['tt.example.com'], "
                           "got 'tt.example.com'"),
        (None, "HTTPServerConfig.allowed_hosts must be a list of host names such as ['tt.example.com'], got None"),
        (["ok.example", "tt.example.com:8443"], "HTTPServerConfig.allowed_hosts[1] must be a host name without "
         "scheme or port, such as tt.example.com, *.example.com for its subdomains, an IP address, or * for any; "
         "got 'tt.example.com:8443'"),
        (["http://tt.example.com"], "HTTPServerConfig.allowed_hosts[0] must be a host name without scheme or "
         "port, such as tt.example.com, *.example.com for its subdomains, an IP address, or * for any; "
         "got 'http://tt.example.com'"),
        ([9090], "HTTPServerConfig.allowed_hosts[0] must be a host name without scheme or port, such as "
         "tt.example.com, *.example.com for its subdomains, an IP address, or * for any; got 9090"),
        ([""], "HTTPServerConfig.allowed_hosts[0] must be a host name without scheme or port, such as "
         "tt.example.com, *.example.com for its subdomains, an IP address, or * for any; got ''"),
        (["*example.com"], "HTTPServerConfig.allowed_hosts[0] must be a host name without scheme or port, such "
         "as tt.example.com, *.example.com for its subdomains, an IP address, or * for any; got '*example.com'"),
    ],
)  # fmt: skip
def test_bad_allowed_hosts_are_refused_naming_the_field(allowed: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        HTTPServerConfig(allowed_hosts=allowed)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_allowed_hosts_are_kept_normalised() -> None:
    config = HTTPServerConfig(allowed_hosts=["TT.Example.com.", "[FE80::0:1]", " *.Internal "])
    assert config.allowed_hosts == ("tt.example.com", "fe80::1", "*.internal")
    assert config == HTTPServerConfig(allowed_hosts=("tt.example.com", "fe80::1", "*.internal"))
    assert HTTPServerConfig().allowed_hosts == ()


def test_serve_answers_loopback_names_and_allow_host(tmp_path: Path) -> None:
    proc = CollectorProcess(tmp_path / "serve.db", "--allow-host", "tt.example.com", "--allow-host", "*.internal")
    try:
        with httpx.Client(base_url=proc.url) as http:
            for host, status in [("evil.example", 421), ("tt.example.com", 200), ("a.internal:9090", 200),
                                 ("localhost", 200), ("127.0.0.1", 200)]:  # fmt: skip
                assert http.get("/alerts", headers={"Host": host}).status_code == status, host
            assert http.get("/alerts", headers={"Host": "evil.example"}).json() == refusal("evil.example", extra=True)
            assert http.get("/health", headers={"Host": "evil.example"}).status_code == 200
    finally:
        proc.stop()
    log = "".join(proc.log)
    assert "no auth, Host: loopback names and --allow-host" in log
    assert "refused a request for Host 'evil.example': not a name it answers to" in log
    assert log.count("refused a request for Host") == 1  # once per name, not per request
