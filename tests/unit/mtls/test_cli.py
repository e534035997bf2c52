"""mtls/cli.py (``python -m mtls``) and mtls/generate.sh, its wrapper."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

from typer.testing import CliRunner

from mtls import load_crl
from mtls.cli import app


REPO_ROOT = Path(__file__).resolve().parents[3]


GENERATE_SH = REPO_ROOT / "mtls" / "generate.sh"


class TestCli:
    runner = CliRunner()

    def invoke(self, directory: Path, *args: str) -> tuple[int, str]:
        result = self.runner.invoke(app, ["--dir", str(directory), *args])
        return result.exit_code, result.output

    def test_init_issue_revoke_list(self, tmp_path: Path) -> None:
        code, output = self.invoke(tmp_path, "init", "--san", "api.example.com")
        assert code == 0, output
        assert "ca.crt.pem" in output and "crl.pem" in output
        code, output = self.invoke(tmp_path, "issue", "billing", "--role", "recipients", "--role", "notifications", "--days", "30")
        assert code == 0, output
        assert str(tmp_path / "billing.crt.pem") in output and str(tmp_path / "billing.key.pem") in output
        code, output = self.invoke(tmp_path, "revoke", "billing")
        assert code == 0, output
        assert "crl.pem" in output
        code, output = self.invoke(tmp_path, "list", "--json")
        assert code == 0, output
        listed = {entry["name"]: entry for entry in json.loads(output)}
        assert listed["billing"]["revoked"] is True
        assert listed["billing"]["roles"] == ["recipients", "notifications"]
        assert listed["client"]["revoked"] is False
        assert "ca" not in listed
        code, output = self.invoke(tmp_path, "list")
        assert code == 0 and "REVOKED" in output

    def test_user_errors_exit_1_without_traceback(self, tmp_path: Path) -> None:
        assert self.invoke(tmp_path, "init")[0] == 0
        for args, message in [
            (("issue", "x", "--role", "admin"), "unknown role(s) admin"),
            (("issue", "client", "--role", "recipients"), "client.crt.pem already exists"),
            (("revoke", "nobody"), "neither a certificate name"),
        ]:
            code, output = self.invoke(tmp_path, *args)
            assert code == 1, output
            assert message in output
            assert "Traceback" not in output

    def test_without_a_ca_says_to_run_init(self, tmp_path: Path) -> None:
        code, output = self.invoke(tmp_path, "crl")
        assert code == 1 and "run `init` first" in output

    def test_crl_days(self, tmp_path: Path) -> None:
        self.invoke(tmp_path, "init")
        code, output = self.invoke(tmp_path, "crl", "--days", "3")
        assert code == 0, output
        crl = load_crl(tmp_path)
        assert crl is not None
        assert timedelta(days=3, minutes=-1) < crl.next_update_utc - datetime.now(timezone.utc) <= timedelta(days=3)


class TestGenerateSh:
    def test_is_executable_and_shows_help(self) -> None:
        assert os.access(GENERATE_SH, os.X_OK)
        result = subprocess.run(["bash", str(GENERATE_SH), "--help"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        for command in ("init", "issue", "revoke", "crl", "list"):
            assert command in result.stdout

    def test_without_a_command_runs_init_in_a_directory_relative_to_the_caller(self, tmp_path: Path) -> None:
        environment = {**os.environ, "MTLS_DIR": "relative-certs"}
        result = subprocess.run(
            [str(GENERATE_SH)], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "relative-certs" / "client.crt.pem").exists()
