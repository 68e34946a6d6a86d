"""The ``tokentrace`` command: run the collector, send it demo traffic, or both.

``tokentrace serve`` runs the collector on a SQLite file; ``tokentrace demo --target URL``
sends simulated traffic to a collector; ``tokentrace run-demo`` does both in one process and
prints the URLs to open. The bearer token may come from ``TOKENTRACE_TOKEN``; it is never
logged.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from ._version import __version__
from .durations import parse_duration
from .exceptions import ConfigError
from .store.base import StoreError

__all__ = ["cli", "main"]

_log = logging.getLogger("tokentrace.cli")
_TOKEN_ENV = "TOKENTRACE_TOKEN"
_RUN_DEMO_DB = "./.tokentrace/tokentrace.db"


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpcore"):  # one line per request would drown the collector's own
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))


def _seconds(value: str, option: str, *, zero: bool = False) -> float:
    try:
        seconds = parse_duration(value, option)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    if seconds <= 0 and not (zero and seconds == 0):
        raise click.BadParameter(f"must be a positive duration such as 30d, got {value!r}", param_hint=option)
    return seconds


def _load_rules(path: str | None) -> list[Any]:
    if path is None:
        return []
    from .alerts import load_rules

    try:
        return list(load_rules(path))
    except (OSError, ValueError, TypeError) as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from None


@click.group()
@click.version_option(__version__, prog_name="tokentrace")
def cli() -> None:
    """tokentrace: tracing, pricing and alerting for LLM inference calls."""


def _check_addr(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    from .server.config import parse_addr

    try:
        parse_addr(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _check_hosts(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    from .server.hosts import allowed_host

    try:
        return tuple(allowed_host(name) for name in value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


_addr = click.option(
    "--addr", default="127.0.0.1:9090", show_default=True, callback=_check_addr, help="host:port to listen on."
)
_allow_host = click.option(
    "--allow-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    callback=_check_hosts,
    help="Also answer requests for this Host name (repeatable; *.example.com for subdomains, * for any). "
    "Only loopback names are answered by default on a loopback --addr (against DNS rebinding); "
    "on other addresses, any name unless this is given.",
)
_token = click.option("--token", envvar=_TOKEN_ENV, default=None, help=f"Bearer token required (or {_TOKEN_ENV}).")
_log_level = click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)


@cli.command()
@_addr
@click.option(
    "--db", default="./tokentrace.db", show_default=True, type=click.Path(dir_okay=False), help="SQLite file."
)
@click.option("--config", "config", type=click.Path(exists=True, dir_okay=False), help="TOML with [[alerts]] rules.")
@_token
@click.option("--retention", default="30d", show_default=True, help="Delete stored spans older than this.")
@click.option("--insecure", is_flag=True, help="Allow a non-loopback --addr without a token.")
@_allow_host
@_log_level
def serve(
    addr: str,
    db: str,
    config: str | None,
    token: str | None,
    retention: str,
    insecure: bool,
    allowed_hosts: tuple[str, ...],
    log_level: str,
) -> None:
    """Run the collector: ingest, metrics, traces, alerts and the dashboard on one port."""
    from .server.collector import serve as run

    _setup_logging(log_level)
    retention_s = _seconds(retention, "--retention")
    rules = _load_rules(config)
    try:
        run(addr, db, rules=rules, token=token, retention_s=retention_s, insecure=insecure, allowed_hosts=allowed_hosts)
    except (ConfigError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
@click.option("--target", required=True, help="The collector's base URL, e.g. http://127.0.0.1:9090.")
@_token
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds of live traffic [default: until Ctrl-C].",
)
@click.option("--backfill", default="0s", show_default=True, help="History to send first, e.g. 1h.")
@click.option("--seed", type=int, default=None, help="Make the traffic reproducible.")
@_log_level
def demo(
    target: str, token: str | None, duration: float | None, backfill: str, seed: int | None, log_level: str
) -> None:
    """Send simulated traffic from a few services (several models, errors, a cost alert)."""
    from .server.demo import DemoWorkload, demo_rules

    _setup_logging(log_level)
    rules = {"doc-pipeline": demo_rules("doc-pipeline", threshold_usd=2.0, errors=False)}
    workload = DemoWorkload(
        token=token, duration=duration, backfill_s=_seconds(backfill, "--backfill", zero=True), seed=seed, rules=rules
    )
    click.echo(f"tokentrace demo sending to {target} (Ctrl-C to stop)")
    workload.start(target)
    try:
        while not workload.wait(0.2):
            pass
    except KeyboardInterrupt:
        click.echo("stopping: flushing what is queued...")
    for name, s in workload.stop().items():
        click.echo(f"  {name}: {s.traces} traces, {s.spans} spans, {s.errors} errors, ${float(s.cost):.4f}")


@cli.command("run-demo")
@_addr
@click.option("--db", default=_RUN_DEMO_DB, show_default=True, type=click.Path(dir_okay=False), help="SQLite file.")
@click.option("--backfill", default="1h", show_default=True, help="History the demo sends first.")
@_allow_host
@_log_level
def run_demo_command(addr: str, db: str, backfill: str, allowed_hosts: tuple[str, ...], log_level: str) -> None:
    """Run the collector and the demo workload against it; print the URLs to open."""
    from .server.collector import serve as run
    from .server.demo import DemoWorkload, demo_rules

    _setup_logging(log_level)
    workload = DemoWorkload(backfill_s=_seconds(backfill, "--backfill", zero=True))
    Path(db).parent.mkdir(parents=True, exist_ok=True)

    def start_workload(url: str) -> None:
        _print_urls(url)
        workload.start(url)

    try:  # the workload stops while the collector still answers, so its last spans land
        run(
            addr,
            db,
            rules=demo_rules(),
            allowed_hosts=allowed_hosts,
            on_ready=start_workload,
            before_exit=workload.stop,
        )
    except (ConfigError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        workload.stop()


def _print_urls(url: str) -> None:
    click.echo(
        f"\ntokentrace collector with a demo workload is running.\n"
        f"  dashboard:   {url}/\n"
        f"  cost:        {url}/metrics/cost?window=1h\n"
        f"  latency:     {url}/metrics/latency?window=1h\n"
        f"  alerts:      {url}/alerts\n"
        f"  prometheus:  {url}/metrics\n"
        f"Press Ctrl-C to stop.\n"
    )


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="tokentrace")
