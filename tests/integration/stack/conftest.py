"""Fixtures of the local-stack components' tests: a moto of their own (they reset and reconfigure it),
and a directory the embedded Postgres may use."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.moto import MotoServer
from stack.network import free_port


@pytest.fixture
def pgdata_parent() -> Iterator[Path]:
    # Not under pytest's temp dir, which is private to its user (0700): as root, pgserver runs
    # Postgres as an unprivileged user of its own, which must be able to reach the data dir.
    parent = Path(tempfile.mkdtemp(prefix="stack-components-pg-"))
    parent.chmod(0o755)
    yield parent
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(free_port(), log_path=tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield server
    server.stop()
