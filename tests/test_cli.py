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
