"""A process that exits without flush() still delivers, and never hangs on a dead collector."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.receiver import Answer, Receiver, free_port

PROGRAM = """
import sys, tokentrace
tracer = tokentrace.Tracer(transport=[tokentrace.FileTransport(sys.argv[1]), tokentrace.HTTPTransport(sys.argv[2],
                           deadline=float(sys.argv[3]))], exit_timeout=float(sys.argv[3]))
for i in range(100):
    t = tracer.start("exit-test")
    t.record(tokentrace.Span(model="gpt-4o", provider="openai", prompt_tokens=i))
    t.end()
"""


def run(path: Path, url: str, deadline: float) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", PROGRAM, str(path), url, str(deadline)], check=True, timeout=60)
    return time.monotonic() - started


def test_exit_without_flush_delivers_every_span(tmp_path: Path) -> None:
    with Receiver([Answer(202)]) as rx:
        run(tmp_path / "t.jsonl", rx.url, 5.0)
    lines = (tmp_path / "t.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["prompt_tokens"] for line in lines) == list(range(100))
    received = [s for r in rx.requests for s in json.loads(r.body)["spans"]]
    assert sorted(s["prompt_tokens"] for s in received) == list(range(100))


def test_exit_with_the_collector_down_stays_within_the_deadline(tmp_path: Path) -> None:
    elapsed = run(tmp_path / "t.jsonl", f"http://127.0.0.1:{free_port()}", 2.0)
    assert elapsed < 2.0 + 1.0 + 1.5  # deadline + 1 s, plus interpreter start-up
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) == 100


STALLED = """
import sys, tokentrace
tracer = tokentrace.Tracer(transport=tokentrace.HTTPTransport(sys.argv[1], deadline=30), exit_timeout=1)
for i in range(3000):
    t = tracer.start("exit-test")
    t.record(tokentrace.Span(model="gpt-4o", provider="openai"))
    t.end()
"""


def test_exit_warning_counts_the_queued_spans_and_the_batch_being_sent() -> None:
    with Receiver([Answer(202, delay=4)]) as rx:
        run = subprocess.run([sys.executable, "-c", STALLED, rx.url], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0
    assert "exited with 3000 span(s) undelivered" in run.stderr, run.stderr
    assert "shutdown_in_flight" in run.stderr


STALLED_OTLP = STALLED.replace("HTTPTransport(sys.argv[1], deadline=30)", "OTLPTransport(sys.argv[1], timeout=30)")


def test_exit_warning_counts_what_the_otlp_transport_could_not_send() -> None:
    with Receiver([Answer(503)]) as rx:
        run = subprocess.run([sys.executable, "-c", STALLED_OTLP, rx.url], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0
    assert run.stderr.splitlines()[-1] == "tokentrace exited with 3000 span(s) undelivered", run.stderr
    assert "shutdown_in_flight" in run.stderr  # the batch it kept retrying
