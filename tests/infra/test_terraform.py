"""Offline checks of terraform/: formatting, checkov's security checks, and the README.

`terraform validate` and `plan` need the AWS provider, which cannot be downloaded here, so they do
not run in CI; terraform/README.md says what is and is not checked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO / "terraform"
README = TERRAFORM_DIR / "README.md"

# Names in `#checkov:skip=CKV_AWS_91:reason` comments; the reason must say something.
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(?P<check>[^:\s]+)(?::(?P<reason>.*))?")
MIN_REASON_LENGTH = 30


def _terraform_files() -> list[Path]:
    return sorted(path for path in TERRAFORM_DIR.rglob("*.tf") if ".terraform" not in path.parts)


class TestTerraformFmt:
    def test_every_file_is_formatted(self) -> None:
        terraform = shutil.which("terraform")
        if terraform is None:
            pytest.skip(
                "the terraform CLI is not on PATH, so `terraform fmt -check` cannot run: neither Debian nor "
                "PyPI packages Terraform (HashiCorp's BSL licence); install it from HashiCorp's releases to run this check"
            )
        result = subprocess.run(
            [terraform, "fmt", "-check", "-recursive", "-diff", "-no-color", str(TERRAFORM_DIR)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "CHECKPOINT_DISABLE": "1"},
        )
        assert result.returncode == 0, f"run `terraform fmt -recursive terraform/`:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    checkov = Path(sys.executable).parent / "checkov"
    command = [
        str(checkov if checkov.exists() else "checkov"),
        "-d", str(TERRAFORM_DIR),
        "--framework", "terraform",
        "--quiet", "--compact",
        "-o", "json",
        # Offline: no guideline links or severities from Prisma Cloud.
        "--skip-download",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON report (exit {result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-4000:]}")
    # One framework gives one report; be tolerant of checkov wrapping it in a list.
    return report[0] if isinstance(report, list) else report


class TestCheckov:
    def test_no_check_fails(self, checkov_report: dict[str, Any]) -> None:
        failed = checkov_report.get("results", {}).get("failed_checks", [])
        lines = [
            f"{check['check_id']} {check['check_name']}: {check['resource']} "
            f"({check['file_path']}:{check['file_line_range'][0]})"
            for check in failed
        ]
        assert not failed, "checkov failed checks (fix them, or skip one inline with a reason):\n" + "\n".join(lines)

    def test_everything_was_parsed_and_scanned(self, checkov_report: dict[str, Any]) -> None:
        summary = checkov_report["summary"]
        assert summary["parsing_errors"] == 0
        # A module that silently stopped being scanned would shrink these numbers a lot.
        assert summary["resource_count"] >= 100, summary
        assert summary["passed"] >= 300, summary


class TestCheckovSkips:
    def test_every_skip_names_a_check_and_gives_a_reason(self) -> None:
        bad = []
        for path in _terraform_files():
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                match = SKIP_COMMENT.search(line)
                if match is None:
                    continue
                reason = (match["reason"] or "").strip()
                if not re.fullmatch(r"CKV2?_[A-Z]+_\d+", match["check"]) or len(reason) < MIN_REASON_LENGTH:
                    bad.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
        assert not bad, "each skip needs #checkov:skip=CKV_...:<why this check does not apply>:\n" + "\n".join(bad)


class TestReadme:
    @staticmethod
    def _declared(kind: str, path: Path) -> list[str]:
        return re.findall(rf'^{kind} "([^"]+)"', path.read_text(), flags=re.MULTILINE)

    @pytest.mark.parametrize("kind, file_name", [("variable", "variables.tf"), ("output", "outputs.tf")])
    def test_documents_every_variable_and_output(self, kind: str, file_name: str) -> None:
        readme = README.read_text()
        names = self._declared(kind, TERRAFORM_DIR / file_name)
        assert names, f"no {kind} found in terraform/{file_name}"
        missing = [name for name in names if f"`{name}`" not in readme]
        assert not missing, f"terraform/README.md does not describe these {kind}s: {', '.join(missing)}"
