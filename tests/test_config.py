"""Config from TOML builds the tracer the file describes."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest

import tokentrace
from tokentrace import Config, ConfigError, HTTPServerConfig, Span, Tracer

TOML = """
[[transports]]
type = "file"
path = "{path}"

[[transports]]
type = "stdout"
compact = true

[[alerts]]
name = "hourly-cost-spike"
metric = "total_cost"
op = ">"
threshold = 5.0
window = "1h"
delivery = "stdout"
"""


def test_toml_builds_transports_and_alert_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_path = tmp_path / "tokentrace.toml"
    config_path.write_text(TOML.format(path=tmp_path / "t.jsonl"))
    config = Config.from_toml(config_path)
    assert [type(t).__name__ for t in config.transport or []] == ["FileTransport", "StdoutTransport"]  # type: ignore[union-attr]
    assert [(r.name, r.metric, r.threshold) for r in config.alerts] == [("hourly-cost-spike", "total_cost", 5.0)]
    tracer = Tracer.from_config(config_path)
    with tracer.trace("job") as t:
        t.record(Span(model="gpt-4o", provider="openai", prompt_tokens=512, comp_tokens=128))
    tracer.close()
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((tmp_path / "t.jsonl").read_text())
    assert printed == written and printed["cost_usd"] == 0.00256


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"transports": [{"type": "pigeon"}]},
            r"transports\[0\]\.type must be one of stdout, file, http, otlp; got 'pigeon'",
        ),
        (
            {"transports": [{"type": "file"}]},
            r"transports\[0\]\.path is required for a file transport \(a string\)",
        ),
        ({"transports": {"type": "file"}}, r"transports must be an array of tables \(\[\[transports\]\] in TOML\)"),
        ({"http_server": {"port": 1}}, "http_server: .*accepted: addr, token, insecure, max_spans, allowed_hosts$"),
        (
            {"http_server": {"allowed_hosts": "tt.example.com"}},
            r"^http_server\.allowed_hosts must be a list of host names such as \['tt\.example\.com'\], "
            r"got 'tt\.example\.com'$",
        ),
        (
            {"http_server": {"allowed_hosts": ["tt.example.com", "tt.example.com:8443"]}},
            r"^http_server\.allowed_hosts\[1\] must be a host name without scheme or port, such as tt\.example\.com, "
            r"\*\.example\.com for its subdomains, an IP address, or \* for any; got 'tt\.example\.com:8443'$",
        ),
        (
            {"http_server": {"allowed_hosts": [True]}},
            r"^http_server\.allowed_hosts\[0\] must be a host name .* got True$",
        ),
        ({"http_server": {"addr": "0.0.0.0:9090"}}, "listens beyond this machine; set token="),
        (
            {"http_server": {"addr": "0.0.0.0:9090", "insecure": "false"}},
            r"^http_server\.insecure must be true or false, got 'false'$",
        ),
        (
            {"transports": [{"type": "file", "path": "t.jsonl", "fsync": "no"}]},
            r"^transports\[0\]\.fsync must be true or false, got 'no'$",
        ),
        (
            {"transports": [{"type": "http", "url": "http://127.0.0.1:9", "deadline": "10"}]},
            r"^transports\[0\]\.deadline must be a number greater than 0, got '10'$",
        ),
        (
            {"transports": [{"type": "http", "url": "http://127.0.0.1:9", "timeout": float("nan")}]},
            r"^transports\[0\]\.timeout must be a number greater than 0, got nan$",
        ),
        ({"http_server": {"addr": 9090}}, r"^http_server\.addr must be a string, got 9090$"),
        ({"transports": [{"type": "http", "url": 5}]}, r"^transports\[0\]\.url must be a string, got 5$"),
        ({"transports": [{"type": "file", "path": 123}]}, r"^transports\[0\]\.path must be a string, got 123$"),
        ({"http_server": {"max_spans": "10"}}, r"^http_server\.max_spans must be an integer of at least 1, got '10'$"),
        ({"http_server": {"max_spans": True}}, r"^http_server\.max_spans must be an integer of at least 1, got True$"),
        (
            {"transports": [{"type": "otlp", "headers": {"x-key": 1}}]},
            r"^transports\[0\]\.headers must be a table of strings, got \{'x-key': 1\}$",
        ),
        (
            {"transports": [{"type": "otlp", "compression": "zstd"}]},
            r"^transports\[0\]: OTLPTransport compression must be one of gzip, deflate, none; got 'zstd'$",
        ),
        (
            {"transports": [{"type": "stdout", "compat": True}]},
            r"^transports\[0\]: unknown key\(s\) compat; accepted: type, compact$",
        ),
        (
            {"transport": [{"type": "stdout"}]},
            r"^unknown top-level key\(s\) transport; accepted: transports, http_server, alerts, exit_timeout, "
            r"max_queue$",
        ),
        ({"exit_timeout": "1"}, r"^exit_timeout must be a number of at least 0, got '1'$"),
        ({"max_queue": 0}, r"^max_queue must be an integer of at least 1, got 0$"),
        (
            {"http_server": {"addr": "127.0.0.1:99999"}},
            r"^http_server: addr must be host:port with a port from 0 to 65535, such as 127\.0\.0\.1:9090 or :9090; "
            r"got '127\.0\.0\.1:99999'$",
        ),
    ],
)
def test_bad_config_names_the_table_and_field(document: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_mapping(document)


def test_toml_sets_the_tracers_exit_timeout_and_max_queue(tmp_path: Path) -> None:
    config_path = tmp_path / "tokentrace.toml"
    config_path.write_text(
        'exit_timeout = 1.5\nmax_queue = 10\n\n[http_server]\naddr = "0.0.0.0:0"\ninsecure = false\ntoken = "t"\n'
        'max_spans = 5\nallowed_hosts = ["TT.example.com", "*.internal"]\n'
    )
    config = Config.from_toml(config_path)
    assert (config.exit_timeout, config.max_queue) == (1.5, 10)
    assert config.http_server == HTTPServerConfig(
        addr="0.0.0.0:0", token="t", insecure=False, max_spans=5, allowed_hosts=("tt.example.com", "*.internal")
    )


def test_config_is_exported() -> None:
    assert tokentrace.Config is Config


def test_config_holds_the_fields_tracer_takes_and_no_others() -> None:
    fields = [field.name for field in dataclasses.fields(Config)]
    assert fields == ["transport", "alerts", "http_server", "exit_timeout", "max_queue"]
    assert set(fields) <= set(inspect.signature(Tracer).parameters)
