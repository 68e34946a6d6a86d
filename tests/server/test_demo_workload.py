"""The demo workload and ``tokentrace run-demo``: realistic traffic that trips a cost alert."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.collector_kit import running
from tokentrace.server.collector import Collector
from tokentrace.server.demo import SERVICES, demo_rules, run_demo


def test_demo_sends_every_service_over_several_models_and_trips_the_cost_alert(tmp_path: Path) -> None:
    collector = Collector(tmp_path / "demo.db", rules=demo_rules(threshold_usd=1.0))
    try:
        with running(collector.app) as url:
            stats = run_demo(url, duration=1.0, backfill_s=600, seed=5)
            with httpx.Client(base_url=url) as http:
                cost = http.get("/metrics/cost", params={"window": "1h"}).json()
                alerts = {a["name"]: a for a in http.get("/alerts").json()["alerts"]}
    finally:
        collector.close()
    assert set(stats) == {s.name for s in SERVICES}
    sent = sum(s.spans for s in stats.values())
    assert cost["span_count"] == sent
    assert cost["error_count"] == sum(s.errors for s in stats.values())
    assert cost["error_count"] > 0
    assert cost["total_usd"] == float(sum(s.cost for s in stats.values()))
    assert len(cost["by_model"]) == 8
    assert set(cost["by_provider"]) == {"openai", "anthropic", "google"}
    assert alerts["demo-cost-spike"]["state"] == "firing"


def test_run_demo_prints_the_urls_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tokentrace", "run-demo", "--addr", "127.0.0.1:0", "--db", str(tmp_path / "d.db"),
         "--backfill", "2m"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Press Ctrl-C"):
            break
    text = "".join(lines)
    dashboard = re.search(r"dashboard:\s+(http://\S+)/", text)
    assert dashboard is not None, text
    assert f"cost:        {dashboard.group(1)}/metrics/cost?window=1h" in text
    for _ in range(100):
        if httpx.get(dashboard.group(1) + "/metrics/cost").json()["span_count"] > 0:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
