"""The collector over loopback: ingest rate, metric query latency, /health rate, memory.

A real ``tokentrace serve`` subprocess on a SQLite file (WAL, ``synchronous=FULL``) is driven by
raw keep-alive HTTP/1.1 connections (TCP_NODELAY, one ``sendall`` per request) from this process.
Both share this machine's cores, so the figures are what one box does end to end.

1. Ingest: batches of 500 spans from 4 connections; every 202 means committed to disk.
2. ``/metrics/latency?window=1h`` with 1M spans in the window: per-request latency on one
   keep-alive connection (p50 / p99).
3. ``/health`` requests per second on one keep-alive connection; the dashboard's
   ``/metrics/timeseries`` and ``/traces`` with the same data.
4. Collector RSS: empty, after 1M spans were ingested, and after a restart (memory must not grow
   with the store); the restart's time until it answers, after a clean stop (its windows taken
   back as kept) and after a kill (rebuilt from the 1M stored spans).

Run: ``python benchmarks/bench_server.py [--quick]`` (``--quick``: 100k spans instead of 1M).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).parent))

from _util import row

BATCH = 500
CONNECTIONS = 4
_URL = re.compile(r"listening on http://([\d.]+):(\d+)")
_MODELS = (("gpt-4o", "openai"), ("gpt-4o-mini", "openai"), ("claude-sonnet-4-5", "anthropic"), ("o3-mini", "openai"))


class Collector:
    """``python -m tokentrace serve`` on a free port."""

    def __init__(self, db: Path) -> None:
        command = [sys.executable, "-m", "tokentrace", "serve", "--addr", "127.0.0.1:0", "--db", str(db)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.started = time.monotonic()
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            match = _URL.search(line)
            if match:
                self.host, self.port = match.group(1), int(match.group(2))
                break
        else:
            raise RuntimeError("the collector did not start")
        self.ready_s = time.monotonic() - self.started
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]

    def cpu_s(self) -> float:
        """CPU seconds the collector has used, all threads, user + system."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


class RawHTTP:
    """A minimal keep-alive HTTP/1.1 client: one write per request, Nagle off."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host = f"{host}:{port}"  # its own address: on a loopback bind it answers to loopback names only
        self.buffer = b""

    def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
        self.sock.sendall(head.encode() + b"Content-Type: application/json\r\n\r\n" + body)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        header, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: (\d+)", header).group(1))  # type: ignore[union-attr]
        while len(self.buffer) < length:
            self.buffer += self.sock.recv(65536)
        payload, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(header[9:12]), payload

    def close(self) -> None:
        self.sock.close()


_MAX_BACK_S = 16  # seconds a span may have started before the second it is sent in


def batch_body(seed: int) -> bytes:
    """500 wire spans with lognormal latencies, timestamped by :func:`stamp` when sent.

    Timestamps are written as ``@NN@.mmmZ`` (NN seconds before the send) so a prebuilt body
    is made current with a few ``bytes.replace`` calls: the collector sees live traffic, as
    from an ``HTTPTransport``, without the sender paying for timestamps in the timed loop.
    """
    rng = random.Random(seed)
    spans = []
    for _ in range(BATCH):
        model, provider = rng.choice(_MODELS)
        prompt, comp = rng.randint(50, 8000), rng.randint(0, 1200)
        latency = min(max(1, int(rng.lognormvariate(6.7, 0.6))), (_MAX_BACK_S - 1) * 1000)
        ended = _MAX_BACK_S * 1000 + rng.randrange(1000)  # within the send second
        started = ended - latency
        spans.append({
            "trace_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "span_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "name": "bench", "model": model, "provider": provider, "prompt_tokens": prompt, "comp_tokens": comp,
            "total_tokens": prompt + comp, "cost_usd": None, "latency_ms": latency, "status": "ok",
            "started_at": _marker(started), "ended_at": _marker(ended),
        })  # fmt: skip
    return msgspec.json.encode({"spans": spans})


def _marker(ms: int) -> str:
    return f"@{_MAX_BACK_S - ms // 1000:02d}@.{ms % 1000:03d}Z"


def stamp(body: bytes, now_s: int) -> bytes:
    for back in range(_MAX_BACK_S + 1):
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_s - back)).encode()
        body = body.replace(b"@%02d@" % back, prefix)
    return body


def ingest(collector: Collector, first: int, batches: int, connections: int) -> float:
    """Send ``batches`` prebuilt batches from ``connections`` connections; the wall-clock seconds it took."""
    bodies = [batch_body(first + i) for i in range(batches)]
    indexes = iter(range(batches))
    lock = threading.Lock()

    def sender() -> None:
        http = RawHTTP(collector.host, collector.port)
        while True:
            with lock:
                i = next(indexes, None)
            if i is None:
                break
            status, payload = http.request("POST", "/v1/spans", stamp(bodies[i], int(time.time())))
            if status != 202:
                raise RuntimeError(f"ingest answered {status}: {payload[:200]!r}")
        http.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=sender) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def latencies_ms(collector: Collector, path: str, count: int) -> list[float]:
    http = RawHTTP(collector.host, collector.port)
    out = []
    for _ in range(count):
        started = time.perf_counter()
        status, _ = http.request("GET", path)
        out.append((time.perf_counter() - started) * 1000)
        assert status == 200, status
    http.close()
    return out


def health_rate(collector: Collector, count: int) -> float:
    http = RawHTTP(collector.host, collector.port)
    started = time.perf_counter()
    for _ in range(count):
        http.request("GET", "/health")
    elapsed = time.perf_counter() - started
    http.close()
    return count / elapsed


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[max(0, round(q * len(values)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k spans instead of 1M")
    parser.add_argument("--connections", type=int, default=CONNECTIONS, help="concurrent senders (default 4)")
    args = parser.parse_args()
    total = 100_000 if args.quick else 1_000_000
    print(f"bench_server: {total:,} spans, batches of {BATCH}, {args.connections} connections, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        collector = Collector(db)
        try:
            empty_rss = collector.rss_mb()
            measure_live(collector, total, args.connections)
            full_rss = collector.rss_mb()
        finally:
            collector.stop()
        print(row("collector RSS, empty (MB)", f"{empty_rss:.0f}"))
        print(row(f"collector RSS after ingesting {total:,} spans (MB)", f"{full_rss:.0f}"))
        print(row("database size (MB)", f"{sum(f.stat().st_size for f in Path(tmp).iterdir()) / 2**20:.0f}"))
        for label in (
            "after a clean stop, windows taken back as kept",
            "after a kill -9, windows rebuilt from the spans",
        ):
            if "kill" in label:
                with sqlite3.connect(db) as kept:  # what a kill leaves: nothing kept since the last start
                    kept.execute("DELETE FROM meta WHERE key = 'windows'")
            restarted = Collector(db)
            try:
                print(row(f"restart {label}: until it answers (s)", f"{restarted.ready_s:.1f}"))
                print(row("  collector RSS then (MB)", f"{restarted.rss_mb():.0f}"))
            finally:
                restarted.stop()


def measure_live(collector: Collector, total: int, connections: int) -> None:
    first = min(400, total // BATCH // 2)
    for start, count in ((0, first), (first, total // BATCH - first)):
        cpu = collector.cpu_s()
        elapsed = ingest(collector, start, count, connections)
        cpu = collector.cpu_s() - cpu
        label = f"ingest, durable, store at {start * BATCH:,} -> {(start + count) * BATCH:,} spans (spans/s)"
        print(row(label, f"{count * BATCH / elapsed:,.0f}", "target >= 20,000"))
        print(row("  collector CPU per span, all threads (us)", f"{cpu / (count * BATCH) * 1e6:.1f}"))
    print(row("  machine load average (1 min) after ingest", f"{os.getloadavg()[0]:.1f}"))
    waits = latencies_ms(collector, "/metrics/latency?window=1h", 2000)
    print(row("/metrics/latency?window=1h, 1 connection: p50 (ms)", f"{statistics.median(waits):.2f}"))
    p99 = f"{_pct(waits, 0.99):.2f}"
    print(row(f"/metrics/latency?window=1h, {total:,} spans in window: p99 (ms)", p99, "target <= 20"))
    series = latencies_ms(collector, "/metrics/timeseries?window=24h&step=5m", 50)
    print(row("/metrics/timeseries?window=24h&step=5m (4 models): p50 (ms)", f"{statistics.median(series):.1f}"))
    traces = latencies_ms(collector, "/traces?limit=50", 200)
    both = f"{statistics.median(traces):.1f} / {_pct(traces, 0.99):.1f}"
    print(row(f"/traces?limit=50 with {total:,} stored: p50 / p99 (ms)", both))
    health = f"{health_rate(collector, 20_000):,.0f}"
    print(row("/health on one keep-alive connection (req/s)", health, "target >= 5,000"))


if __name__ == "__main__":
    main()
