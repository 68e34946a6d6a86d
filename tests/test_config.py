"""Config from TOML builds the tracer the file describes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tokentrace
from tokentrace import Config, Span, Tracer

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
            r"transports\[0\]: FileTransport.__init__\(\) missing 1 required positional argument: 'path'",
        ),
        ({"transports": {"type": "file"}}, r"transports must be an array of tables \(\[\[transports\]\] in TOML\)"),
        ({"http_server": {"port": 1}}, "http_server: .*accepted: addr, token, insecure, max_spans"),
        ({"http_server": {"addr": "0.0.0.0:9090"}}, "listens beyond this machine; set token="),
    ],
)
def test_bad_config_names_the_table_and_field(document: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Config.from_mapping(document)


def test_config_is_exported() -> None:
    assert tokentrace.Config is Config
