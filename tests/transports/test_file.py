"""The JSONL file transport: whole lines under concurrency, crashes and bad paths."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tokentrace import FileTransport, Span, Tracer


def test_creates_parent_folders_and_appends(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "traces.jsonl"
    for _ in range(2):
        tracer = Tracer(transport=FileTransport(path))
        with tracer.trace("t") as t:
            t.record(Span(model="gpt-4o", provider="openai", prompt_tokens=3))
        tracer.close()
    lines = path.read_text().splitlines()
    assert [json.loads(line)["prompt_tokens"] for line in lines] == [3, 3]


def test_sync_writes_before_end_returns_and_default_after_flush(tmp_path: Path) -> None:
    for sync in (True, False):
        path = tmp_path / f"{sync}.jsonl"
        tracer = Tracer(transport=FileTransport(path, sync=sync))
        trace = tracer.start("t")
        trace.record(Span(model="gpt-4o", provider="openai"))
        trace.record(Span(model="gpt-4o", provider="openai"))
        trace.end()
        if not sync:
            assert tracer.flush(10)
        spans = [json.loads(line) for line in path.read_text().splitlines()]
        assert [s["cost_usd"] for s in spans] == [0, 0] and spans[0]["trace_id"] == spans[1]["trace_id"]
        tracer.close()


def test_eight_threads_write_exactly_twenty_thousand_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    tracer = Tracer(transport=FileTransport(path))

    def work() -> None:
        for _ in range(2500):
            trace = tracer.start("load")
            trace.record(Span(model="gpt-4o", provider="openai", prompt_tokens=100, comp_tokens=20, latency_ms=5))
            trace.end()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    tracer.close()
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    spans = [json.loads(line) for line in lines[:-1]]
    assert len(spans) == 20_000
    assert len({s["span_id"] for s in spans}) == 20_000
    assert len({s["trace_id"] for s in spans}) == 20_000


def test_unwritable_path_fails_at_construction(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=r"FileTransport cannot open '.*a-file/t.jsonl' for appending: "):
        FileTransport(blocker / "t.jsonl")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_counted_not_raised() -> None:
    tracer = Tracer(transport=FileTransport("/dev/full"))
    with tracer.trace("t") as t:
        t.record(Span(model="gpt-4o", provider="openai"))
    assert tracer.flush(10)
    assert tracer.stats()["dropped"] == {"write_error": 1}
    tracer.close()


def _write_one(tracer: Tracer, tokens: int, sync: bool) -> None:
    with tracer.trace("t") as t:
        t.record(Span(model="gpt-4o", provider="openai", prompt_tokens=tokens))
    if not sync:  # with sync=True the line is written when the trace ends
        assert tracer.flush(10)


def _tokens(path: Path) -> list[int]:
    return [json.loads(line)["prompt_tokens"] for line in path.read_text().splitlines()]


@pytest.mark.parametrize("sync", [False, True])
def test_a_rotated_file_is_followed_by_a_new_file_at_the_path(tmp_path: Path, sync: bool) -> None:
    path = tmp_path / "logs" / "t.jsonl"
    tracer = Tracer(transport=FileTransport(path, sync=sync))
    _write_one(tracer, 1, sync)
    path.rename(path.with_name("t.jsonl.1"))
    _write_one(tracer, 2, sync)
    _write_one(tracer, 3, sync)
    assert _tokens(path.with_name("t.jsonl.1")) == [1]
    assert _tokens(path) == [2, 3]
    tracer.close()


@pytest.mark.parametrize("sync", [False, True])
def test_a_deleted_folder_is_created_again(tmp_path: Path, sync: bool) -> None:
    path = tmp_path / "logs" / "t.jsonl"
    tracer = Tracer(transport=FileTransport(path, sync=sync))
    _write_one(tracer, 1, sync)
    shutil.rmtree(tmp_path / "logs")
    _write_one(tracer, 2, sync)
    assert _tokens(path) == [2]
    assert tracer.stats()["written"] == 2 and tracer.stats()["dropped"] == {}
    tracer.close()


@pytest.mark.parametrize("sync", [False, True])
def test_a_path_that_cannot_be_reopened_drops_the_batch_and_counts_it(tmp_path: Path, sync: bool) -> None:
    path = tmp_path / "logs" / "t.jsonl"
    tracer = Tracer(transport=FileTransport(path, sync=sync))
    _write_one(tracer, 1, sync)
    shutil.rmtree(tmp_path / "logs")
    (tmp_path / "logs").write_text("a file where the folder was")
    _write_one(tracer, 2, sync)
    assert tracer.stats()["written"] == 1 and tracer.stats()["dropped"] == {"open_error": 1}
    (tmp_path / "logs").unlink()  # writable again: the next batch goes to a new file
    _write_one(tracer, 3, sync)
    assert _tokens(path) == [3]
    tracer.close()


def test_fsync_option_writes_the_same_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    tracer = Tracer(transport=FileTransport(path, fsync=True))
    with tracer.trace("t") as t:
        t.record(Span(model="gpt-4o", provider="openai"))
    tracer.close()
    assert json.loads(path.read_text())["model"] == "gpt-4o"


WRITER = """
import sys, tokentrace
tracer = tokentrace.Tracer(transport=tokentrace.FileTransport(sys.argv[1]))
print("ready", flush=True)
while True:
    t = tracer.start("crash")
    for _ in range(5):
        t.record(tokentrace.Span(model="gpt-4o", provider="openai", prompt_tokens=10, attributes={"pad": "x" * 300}))
    t.end()
"""


def test_sigkill_during_writes_leaves_only_whole_lines_but_maybe_the_last(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    deadline = time.monotonic() + 20
    while (not path.exists() or path.stat().st_size < 200_000) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    lines = path.read_bytes().split(b"\n")
    assert len(lines) > 100
    for line in lines[:-1]:
        assert json.loads(line)["name"] == "crash"


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for this")


def test_an_attribute_that_cannot_be_encoded_costs_its_span_that_attribute_alone(tmp_path: Path) -> None:
    looped: dict[str, object] = {}
    looped["self"] = looped
    tracer = Tracer(transport=FileTransport(tmp_path / "t.jsonl"))
    for i in range(50):
        with tracer.trace(f"job-{i}") as t:
            t.record(Span(model="gpt-4o", provider="openai", latency_ms=10))
    with tracer.trace("odd") as t:
        t.record(Span(model="gpt-4o", provider="openai", attributes={"loop": looped}))
        t.record(Span(model="gpt-4o", provider="openai", attributes={"thing": _Unprintable(), "n": 1}))
    assert tracer.flush(10)
    assert tracer.stats()["dropped"] == {}
    tracer.close()
    lines = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert len(lines) == 52
    assert lines[50]["attributes"] == {"tokentrace.attributes_not_encoded": "RecursionError"}
    assert lines[51]["attributes"] == {"thing": "<_Unprintable>", "n": 1}


def test_attributes_that_are_not_a_mapping_cost_their_span_its_attributes_alone(tmp_path: Path) -> None:
    from collections import OrderedDict

    tracer = Tracer(transport=FileTransport(tmp_path / "t.jsonl"))
    with tracer.trace("odd") as t:
        for attributes in ("abc", 5, [("a", 1)], OrderedDict(a=1), None):
            t.record(Span(model="gpt-4o", provider="openai", attributes=attributes))  # type: ignore[arg-type]
    tracer.close()
    assert tracer.stats()["dropped"] == {}
    lines = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    not_a_mapping = {"tokentrace.attributes_not_encoded": "TypeError"}
    assert [line.get("attributes") for line in lines] == [not_a_mapping] * 3 + [{"a": 1}, None]
