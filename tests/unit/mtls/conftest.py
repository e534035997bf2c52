"""Every mtls test works in a temporary directory: none may write into the real mtls/ folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _never_the_repository_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a test forgets to pass, it must not write into the real mtls/ folder."""
    monkeypatch.setenv("MTLS_DIR", str(tmp_path / "default-dir"))
