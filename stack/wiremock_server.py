"""WireMock standing in for the Slack Web API: the standalone jar (from npm), our mappings in ``stack/wiremock/``."""

from __future__ import annotations

import fcntl
import json
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

from stack.network import http_json, wait_for_http
from stack.processes import LOCAL_DIR, ChildServer, ComponentError, ManagedProcess

WIREMOCK_ROOT_DIR = Path(__file__).resolve().parent / "wiremock"
WIREMOCK_INSTALL_DIR = LOCAL_DIR / "wiremock"
# The Makefile checks for this version's jar; keep its WIREMOCK_VERSION in step.
WIREMOCK_NPM_VERSION = "3.13.2"


def ensure_wiremock_jar(install_dir: Path = WIREMOCK_INSTALL_DIR, version: str = WIREMOCK_NPM_VERSION) -> Path:
    """The WireMock standalone jar, installed from npm's ``wiremock`` package when missing."""
    jar = _find_wiremock_jar(install_dir, version)
    if jar is not None:
        return jar
    install_dir.mkdir(parents=True, exist_ok=True)
    # Parallel test processes and `make install` may get here together; one npm install at a time.
    with (install_dir / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        jar = _find_wiremock_jar(install_dir, version)
        if jar is not None:
            return jar
        result = subprocess.run(
            ["npm", "install", "--no-save", "--no-fund", "--no-audit", "--prefix", str(install_dir),
             f"wiremock@{version}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ComponentError(f"npm install wiremock@{version} failed:\n{result.stdout}\n{result.stderr}")
    jar = _find_wiremock_jar(install_dir, version)
    if jar is None:
        raise ComponentError(f"npm installed wiremock@{version} but no standalone jar is in {install_dir}")
    return jar


def _find_wiremock_jar(install_dir: Path, version: str) -> Path | None:
    package_dir = install_dir / "node_modules" / "wiremock"
    jars = sorted(package_dir.glob(f"build/wiremock-standalone-{version}.jar"))
    return jars[0] if jars else None



class WireMock(ChildServer):
    """WireMock standalone (Java) serving the mappings in ``root_dir``; the local Slack Web API.

    ``max_journal_entries=None`` runs it without a request journal (which costs WireMock CPU and
    memory per request); ``container_threads`` sizes Jetty's thread pool (see the benchmarks).
    """

    name = "wiremock"
    start_timeout = 60.0

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        root_dir: Path = WIREMOCK_ROOT_DIR,
        log_path: Path | None = None,
        max_journal_entries: int | None = 10_000,
        container_threads: int | None = None,
    ) -> None:
        super().__init__(port, host=host, log_path=log_path)
        self.root_dir = Path(root_dir).resolve()
        self._max_journal_entries = max_journal_entries
        self._container_threads = container_threads

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def slack_api_url(self) -> str:
        return f"{self.base_url}/api/"

    def _launch(self) -> ManagedProcess:
        """Install the jar first if needed, then start it."""
        argv = [
            "java",
            # The JVM would otherwise reserve a quarter of the machine's memory for a stub server.
            "-Xmx256m",
            "-jar", str(ensure_wiremock_jar()),
            "--port", str(self.port),
            "--bind-address", self.host,
            "--root-dir", str(self.root_dir),
            "--disable-banner",
        ]  # fmt: skip
        if self._max_journal_entries is None:
            argv.append("--no-request-journal")
        else:
            argv += ["--max-request-journal-entries", str(self._max_journal_entries)]
        if self._container_threads is not None:
            argv += ["--container-threads", str(self._container_threads)]
        return ManagedProcess(self.name, argv, log_path=self.log_path).start()

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        wait_for_http(f"{self.base_url}/__admin/health", timeout=timeout, process=self.process)

    def requests(self) -> list[dict[str, Any]]:
        """The request journal, oldest first.

        Each entry: ``{"id", "method", "url", "path", "headers", "body", "raw_body", "matched",
        "status", "logged_at"}`` (``status``: the response's); ``body`` is the parsed JSON or form fields when the body is either, else the text.
        """
        journal = http_json("GET", f"{self.base_url}/__admin/requests")
        return [_journal_entry(entry) for entry in reversed(journal.get("requests", []))]

    def find_requests(self, pattern: dict[str, Any], timeout: float = 120.0) -> list[dict[str, Any]]:
        """The journal's requests matching a WireMock request pattern, as WireMock gives them
        (``requests/find``: without the served responses the full journal carries, which take
        WireMock seconds to serialise for thousands of entries)."""
        return http_json("POST", f"{self.base_url}/__admin/requests/find", pattern, timeout=timeout)["requests"]

    def reset_requests(self) -> None:
        http_json("DELETE", f"{self.base_url}/__admin/requests")

    def add_mapping(self, mapping: dict[str, Any]) -> str:
        """Add a stub mapping (WireMock's JSON format); returns its id."""
        created = http_json("POST", f"{self.base_url}/__admin/mappings", mapping)
        return created["id"]

    def remove_mapping(self, mapping_id: str) -> None:
        http_json("DELETE", f"{self.base_url}/__admin/mappings/{mapping_id}")

    def reset_mappings(self) -> None:
        """Drop added mappings and scenario states: back to the files under ``root_dir``."""
        http_json("POST", f"{self.base_url}/__admin/mappings/reset")
        http_json("POST", f"{self.base_url}/__admin/scenarios/reset")

    def add_failures_then_success(
        self,
        url_path: str,
        *,
        failures: int,
        method: str = "POST",
        status: int = 500,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        scenario: str | None = None,
    ) -> list[str]:
        """Make the next ``failures`` requests to ``url_path`` fail, then let the usual mapping answer.

        A WireMock scenario steps through one state per failure; after the last one no mapping of
        the scenario matches any more and the file mapping (lower priority) answers again. Use
        ``status=429, headers={"Retry-After": "1"}`` for rate limiting, or ``status=200,
        json_body={"ok": False, "error": "..."}`` for a Slack-level error. Returns the mapping ids.
        """
        scenario = scenario or f"failures-{url_path}-{time.monotonic_ns()}"
        response: dict[str, Any] = {
            "status": status,
            "headers": {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        }
        if json_body is not None:
            response["jsonBody"] = json_body
        ids = []
        for failure in range(failures):
            ids.append(
                self.add_mapping(
                    {
                        "priority": 1,
                        "scenarioName": scenario,
                        "requiredScenarioState": "Started" if failure == 0 else f"failed-{failure}",
                        "newScenarioState": f"failed-{failure + 1}",
                        "request": {"method": method, "urlPath": url_path},
                        "response": response,
                    }
                )
            )
        return ids

def _journal_entry(entry: dict[str, Any]) -> dict[str, Any]:
    request = entry.get("request", {})
    raw_body = request.get("body", "")
    headers = {name: value for name, value in (request.get("headers") or {}).items()}
    content_type = next((value for name, value in headers.items() if name.lower() == "content-type"), "")
    return {
        "id": entry.get("id"),
        "method": request.get("method"),
        "url": request.get("url"),
        "path": urllib.parse.urlsplit(request.get("url", "")).path,
        "headers": headers,
        "body": _parse_body(raw_body, content_type),
        "raw_body": raw_body,
        "matched": entry.get("wasMatched"),
        "status": (entry.get("response") or {}).get("status"),
        "logged_at": request.get("loggedDateString"),
    }


def _parse_body(raw_body: str, content_type: str) -> Any:
    if not raw_body:
        return None
    if "application/x-www-form-urlencoded" in content_type:
        return dict(urllib.parse.parse_qsl(raw_body, keep_blank_values=True))
    try:
        return json.loads(raw_body)
    except ValueError:
        return raw_body
