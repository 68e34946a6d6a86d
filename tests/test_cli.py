"""The ``tokentrace`` command's option checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tokentrace.cli import cli


@pytest.mark.parametrize("command", ["serve", "run-demo"])
@pytest.mark.parametrize("addr", ["nonsense", "127.0.0.1:99999", "127.0.0.1:abc", ":-1", "127.0.0.1:", ":٣"])
def test_a_bad_addr_is_a_usage_error_naming_the_option(command: str, addr: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, [command, "--addr", addr, "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[-1] == (
        "Error: Invalid value for '--addr': addr must be host:port with a port from 0 to 65535, "
        f"such as 127.0.0.1:9090 or :9090; got {addr!r}"
    )
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("command", ["serve", "run-demo"])
@pytest.mark.parametrize("name", ["http://tt.example.com", "tt.example.com:8443", "", "a b"])
def test_a_bad_allow_host_is_a_usage_error_naming_the_option(command: str, name: str, tmp_path: Path) -> None:
    args = [command, "--allow-host", "tt.example.com", "--allow-host", name, "--db", str(tmp_path / "x.db")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[-1] == (
        "Error: Invalid value for '--allow-host': must be a host name without scheme or port, such as "
        f"tt.example.com, *.example.com for its subdomains, an IP address, or * for any; got {name!r}"
    )
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("command", ["serve", "run-demo"])
def test_allow_host_is_handed_to_the_collector_normalised(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokentrace.server import collector

    seen: dict[str, object] = {}
    monkeypatch.setattr(collector, "serve", lambda *args, **options: seen.update(options))
    args = [command, "--allow-host", "TT.Example.com.", "--allow-host", "*", "--db", str(tmp_path / "x.db")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert seen["allowed_hosts"] == ("tt.example.com", "*")
