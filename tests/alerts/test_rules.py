"""Alert rules: accepted forms, validation messages, fingerprints, and loading from TOML."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tokentrace.alerts import AlertRule, CallbackDelivery, HTTPDelivery, Op, StdoutDelivery, load_rules
from tokentrace.spans import Span

STDOUT = StdoutDelivery()


def rule(**changes: Any) -> AlertRule:
    fields: dict[str, Any] = {
        "name": "hourly-cost-spike",
        "metric": "total_cost",
        "op": ">",
        "threshold": 5.00,
        "window": "1h",
        "delivery": STDOUT,
    }
    fields.update(changes)
    return AlertRule(**fields)


def test_the_seed_rule_and_its_defaults() -> None:
    r = AlertRule("hourly-cost-spike", "total_cost", Op.GT, 5.00, timedelta(hours=1), STDOUT)
    assert (r.name, r.metric, r.op, r.threshold, r.window) == (
        "hourly-cost-spike",
        "total_cost",
        Op.GT,
        Decimal("5.0"),
        3600.0,
    )
    assert (r.for_, r.cooldown, r.keep_firing_for, r.level, r.filters, r.notify_resolved) == (
        0.0, 3600.0, 0.0, "warning", {}, True,
    )  # fmt: skip
    assert r.delivery is STDOUT


@pytest.mark.parametrize("op", [Op.GT, ">", Op.GE, ">=", Op.LT, "<", Op.LE, "<="])
def test_op_takes_the_enum_or_its_text(op: Op | str) -> None:
    assert rule(op=op).op is Op(op)


@pytest.mark.parametrize("window", ["1h", 3600, 3600.0, timedelta(hours=1), "60m", "3600s"])
def test_window_takes_every_duration_form(window: object) -> None:
    assert rule(window=window).window == 3600.0


def test_durations_are_parsed() -> None:
    r = rule(for_="2m", cooldown="1h30m", keep_firing_for=timedelta(minutes=5))
    assert (r.for_, r.cooldown, r.keep_firing_for) == (120.0, 5400.0, 300.0)


def test_ops_compare_exactly() -> None:
    five = Decimal("5.0")
    assert Op.GT.holds(Decimal("5.12"), five) and not Op.GT.holds(Decimal("5.00"), five)
    assert Op.GE.holds(Decimal("5.00"), five) and Op.LT.holds(4.99, five) and Op.LE.holds(5, five)
    assert not rule().condition(None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"metric": "cost"},
            r"AlertRule\.metric must be one of total_cost, span_count, error_count, error_rate, "
            r"prompt_tokens, comp_tokens, total_tokens, latency_p50, latency_p95, latency_p99, latency_avg; got 'cost'",
        ),
        (
            {"op": "=>"},
            r"AlertRule\.op must be one of Op\.GT or '>', Op\.GE or '>=', Op\.LT or '<', Op\.LE or '<='; got '=>'",
        ),
        ({"window": "-1h"}, r"AlertRule\.window must be a non-negative duration"),
        ({"window": -5}, r"AlertRule\.window must be a non-negative duration"),
        ({"window": 0}, r"AlertRule\.window must be from 1s to 30d"),
        ({"window": "31d"}, r"AlertRule\.window must be from 1s to 30d"),
        ({"window": "an hour"}, r"AlertRule\.window must be a timedelta, a number of seconds, or a string"),
        ({"delivery": None}, r"AlertRule\.delivery is required: StdoutDelivery\(\), HTTPDelivery\(url\)"),
        ({"threshold": "5"}, r"AlertRule\.threshold must be a finite number"),
        ({"threshold": True}, r"AlertRule\.threshold must be a finite number"),
        ({"threshold": float("nan")}, r"AlertRule\.threshold must be a finite number"),
        ({"threshold": -1}, r"AlertRule\.threshold must be >= 0"),
        ({"metric": "error_rate", "threshold": 5}, r"error_rate is a fraction from 0 to 1"),
        ({"for_": "-2m"}, r"AlertRule\.for_ must be a non-negative duration"),
        ({"cooldown": 0}, r"AlertRule\.cooldown must be at least 1s"),
        ({"level": "urgent"}, r"AlertRule\.level must be one of info, warning, error, critical; got 'urgent'"),
        ({"filters": {"region": "eu"}}, r"AlertRule\.filters keys must be among model, provider, name"),
        ({"filters": {"model": ""}}, r"AlertRule\.filters\['model'\] must be a non-empty str"),
        ({"filters": ["gpt-4o"]}, r"AlertRule\.filters must be a mapping"),
        ({"name": ""}, r"AlertRule\.name must be a non-empty str"),
        ({"notify_resolved": "no"}, r"AlertRule\.notify_resolved must be True or False"),
    ],
)
def test_bad_fields_are_named_with_the_accepted_values(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rule(**changes)


def test_a_plain_callable_becomes_a_callback_delivery() -> None:
    assert isinstance(rule(delivery=print).delivery, CallbackDelivery)


def test_fingerprint_is_stable_and_tracks_identity() -> None:
    assert rule().fingerprint == rule(delivery=print, level="critical").fingerprint == "f52e68d057fd0ab5"
    assert rule(threshold=6).fingerprint != rule().fingerprint
    assert rule(threshold=5).fingerprint == rule(threshold=Decimal("5.00")).fingerprint == rule().fingerprint
    assert rule(threshold=500).fingerprint == rule(threshold=500.0).fingerprint != rule(threshold=5e2 + 1).fingerprint
    assert rule(filters={"model": "gpt-4o"}).fingerprint != rule().fingerprint


def test_filters_match_spans() -> None:
    r = rule(filters={"model": "gpt-4o", "name": "chat"})
    assert r.matches(Span(model="gpt-4o", provider="openai", name="chat"))
    assert not r.matches(Span(model="gpt-4o", provider="openai", name="summarize"))
    assert r.query() == {"model": "gpt-4o", "name": "chat"}


def test_to_dict_is_json_ready() -> None:
    assert rule(for_="2m", filters={"provider": "openai"}).to_dict() == {
        "name": "hourly-cost-spike",
        "metric": "total_cost",
        "op": ">",
        "threshold": 5.0,
        "window": "1h",
        "for": "2m",
        "cooldown": "1h",
        "keep_firing_for": "0s",
        "level": "warning",
        "filters": {"provider": "openai"},
        "notify_resolved": True,
        "delivery": "stdout",
        "fingerprint": rule(filters={"provider": "openai"}).fingerprint,
    }


# --- TOML ---------------------------------------------------------------------------------------

TOML = """
[[alerts]]
name = "hourly-cost-spike"
metric = "total_cost"
op = ">"
threshold = 5.0
window = "1h"
delivery = "stdout"

[[alerts]]
name = "slow-gpt-4o"
metric = "latency_p95"
op = ">="
threshold = 2000
window = "15m"
for = "2m"
cooldown = "30m"
keep_firing_for = "1m"
level = "critical"
notify_resolved = false
filters = { model = "gpt-4o" }
webhook = "https://hooks.example.com/tokentrace"
headers = { Authorization = "Bearer t0ken" }
secret_env = "TT_TEST_HOOK_SECRET"
timeout = 3
"""


def test_load_rules_from_a_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TT_TEST_HOOK_SECRET", "s3cret")
    path = tmp_path / "tokentrace.toml"
    path.write_text(TOML)
    seed, slow = load_rules(path)
    assert (seed.name, seed.threshold, seed.window, type(seed.delivery)) == (
        "hourly-cost-spike", Decimal("5.0"), 3600.0, StdoutDelivery,
    )  # fmt: skip
    assert (slow.op, slow.threshold, slow.window, slow.for_, slow.cooldown, slow.keep_firing_for) == (
        Op.GE, Decimal(2000), 900.0, 120.0, 1800.0, 60.0,
    )  # fmt: skip
    assert (slow.level, slow.notify_resolved, slow.filters) == ("critical", False, {"model": "gpt-4o"})
    assert isinstance(slow.delivery, HTTPDelivery)
    assert (slow.delivery.url, slow.delivery.timeout) == ("https://hooks.example.com/tokentrace", 3.0)
    assert slow.delivery.describe() == "webhook:https://hooks.example.com/tokentrace"


def test_load_rules_from_a_mapping() -> None:
    document = {
        "alerts": [
            {"name": "n", "metric": "span_count", "op": "<", "threshold": 1, "window": 600, "delivery": "stdout"}
        ]
    }
    (only,) = load_rules(document)
    assert (only.metric, only.op, only.window) == ("span_count", Op.LT, 600.0)
    assert load_rules({}) == []


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"metric": "total_cost", "op": ">", "threshold": 5, "window": "1h", "delivery": "stdout"},
         r"^alerts\[0\]: AlertRule\.name must be a non-empty str, got None"),
        ({"name": "n", "metric": "total_cost", "op": ">", "threshold": 5, "window": "1h"},
         r'^alerts\[0\]: set exactly one of delivery = "stdout" or webhook = "https://..."'),
        ({"name": "n", "metric": "total_cost", "op": ">", "threshold": 5, "window": "1h", "delivery": "email"},
         r'^alerts\[0\]: delivery must be "stdout"'),
        ({"name": "n", "metric": "total_cost", "op": ">", "threshold": 5, "window": "1h", "delivery": "stdout",
          "severity": "high"}, r"^alerts\[0\]: unknown key\(s\) severity; accepted: name, metric"),
        ({"name": "n", "metric": "total_cost", "op": ">", "threshold": 5, "window": "1h", "webhook": "ftp://x"},
         r"^alerts\[0\]: HTTPDelivery\.url must be an http:// or https:// URL"),
        ({"name": "n", "metric": "total_cost", "op": ">", "threshold": 5, "window": "1h", "webhook": "http://x",
          "secret_env": "TT_TEST_UNSET_SECRET"}, r"^alerts\[0\]: secret_env names 'TT_TEST_UNSET_SECRET'"),
    ],
)  # fmt: skip
def test_load_rules_names_the_table_and_the_field(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_rules({"alerts": [table]})


def test_alerts_must_be_an_array_of_tables() -> None:
    with pytest.raises(ValueError, match=r"alerts must be an array of tables \(\[\[alerts\]\] in TOML\)"):
        load_rules({"alerts": {"name": "n"}})
