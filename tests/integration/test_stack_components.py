"""The local-stack components against the real programs: pgserver's Postgres, moto, WireMock."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
from slack_sdk import WebClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.aws import aws_clients
from shared.settings import ServiceSettings, to_asyncpg_url
from shared.topology import verify_topology
from harness.aws import aws_client
from harness.postgres import PostgresServer, fetch
from stack.moto import MotoServer
from stack.network import free_port, port_in_use, wait_for_http, wait_for_port
from stack.postgres import EmbeddedPostgres
from stack.prepare import prepare_system
from stack.processes import REPO_ROOT, ManagedProcess
from stack.wiremock_server import WireMock


def _gone(pid: int) -> bool:
    """True when the process no longer runs (a zombie that no one reaped yet counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_until_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return _gone(pid)


def _group_members(pgid: int) -> list[int]:
    members = []
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(process.pid) == pgid and not _gone(process.pid):
                members.append(process.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def _wait_for_log_line(process: ManagedProcess, line: str, timeout: float = 10.0) -> None:
    """Wait for the child to print ``line`` (spelled differently in its argv, which the log header shows)."""
    deadline = time.monotonic() + timeout
    while line not in process.log_tail():
        assert process.running, f"{process.name} exited early:\n{process.log_tail()}"
        assert time.monotonic() < deadline, f"{line!r} never appeared in {process.log_path}"
        time.sleep(0.05)


class TestPorts:
    def test_free_port_is_free_and_port_in_use_sees_a_listener(self) -> None:
        port = free_port()
        assert not port_in_use(port)
        server = ManagedProcess(
            "listener", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
        ).start()
        try:
            wait_for_port(port, timeout=10)
            assert port_in_use(port)
            assert wait_for_http(f"http://127.0.0.1:{port}/", timeout=10) == 200
        finally:
            server.stop()

    def test_wait_for_port_times_out_with_the_port_in_the_message(self) -> None:
        port = free_port()
        with pytest.raises(TimeoutError, match=str(port)):
            wait_for_port(port, timeout=0.3)


class TestManagedProcess:
    def test_stop_ends_the_whole_process_group(self, tmp_path: Path) -> None:
        process = ManagedProcess(
            "sleepers",
            ["bash", "-c", "sleep 300 & sleep 300 & echo started-$((40 + 2)); wait"],
            log_path=tmp_path / "sleepers.log",
        ).start()
        _wait_for_log_line(process, "started-42")
        assert len(_group_members(process.pid)) == 3

        process.stop(timeout=5)

        assert not process.running
        assert _group_members(process.pid) == []

    def test_stop_kills_a_child_that_ignores_sigterm(self, tmp_path: Path) -> None:
        stubborn = textwrap.dedent(
            """
            import signal, time
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("ignoring", "SIGTERM", flush=True)
            time.sleep(300)
            """
        )
        process = ManagedProcess("stubborn", [sys.executable, "-c", stubborn], log_path=tmp_path / "s.log").start()
        _wait_for_log_line(process, "ignoring SIGTERM")

        started = time.monotonic()
        exit_code = process.stop(timeout=1)

        assert exit_code == -signal.SIGKILL
        assert time.monotonic() - started < 5
        assert _gone(process.pid)

    def test_kill_is_immediate_and_leaves_nothing(self, tmp_path: Path) -> None:
        process = ManagedProcess(
            "sleepers", ["bash", "-c", "sleep 300 & echo started-$((40 + 2)); wait"], log_path=tmp_path / "k.log"
        ).start()
        _wait_for_log_line(process, "started-42")

        assert process.kill() == -signal.SIGKILL
        assert _group_members(process.pid) == []

    def test_env_is_merged_into_the_parent_environment_and_output_is_logged(self, tmp_path: Path) -> None:
        process = ManagedProcess(
            "env",
            ["bash", "-c", 'echo "extra=$EXTRA_SETTING home=$HOME"'],
            env={"EXTRA_SETTING": "yes"},
            log_path=tmp_path / "env.log",
        ).start()
        assert process.wait(10) == 0
        assert f"extra=yes home={os.environ['HOME']}" in process.log_tail()

    def test_child_dies_when_its_parent_is_killed(self, tmp_path: Path) -> None:
        # A parent process that starts a ManagedProcess, reports the child's pid and waits forever.
        parent_script = textwrap.dedent(
            f"""
            import sys, time
            from pathlib import Path
            sys.path.insert(0, {str(REPO_ROOT)!r})
            from stack.processes import ManagedProcess
            child = ManagedProcess("orphan", ["sleep", "300"], log_path=Path({str(tmp_path / "orphan.log")!r}))
            child.start()
            print(child.pid, flush=True)
            time.sleep(300)
            """
        )
        parent = subprocess.Popen([sys.executable, "-c", parent_script], stdout=subprocess.PIPE, text=True)
        try:
            child_pid = int(parent.stdout.readline())  # type: ignore[union-attr]
            assert not _gone(child_pid)

            parent.send_signal(signal.SIGKILL)
            parent.wait(5)

            assert _wait_until_gone(child_pid), "the child outlived its SIGKILLed parent"
        finally:
            parent.kill()
            parent.wait()


@pytest.fixture
def pgdata_parent() -> Iterator[Path]:
    # Not under pytest's temp dir, which is private to its user (0700): as root, pgserver runs
    # Postgres as an unprivileged user of its own, which must be able to reach the data dir.
    parent = Path(tempfile.mkdtemp(prefix="stack-components-pg-"))
    parent.chmod(0o755)
    yield parent
    shutil.rmtree(parent, ignore_errors=True)


class TestEmbeddedPostgres:
    async def test_starts_stops_and_restarts_on_the_same_data_dir(self, pgdata_parent: Path) -> None:
        postgres = EmbeddedPostgres(pgdata_parent / "pgdata")
        url = postgres.start()
        try:
            assert url.startswith("postgresql://") and "/notifications?" in url
            connection = await asyncpg.connect(url)
            await connection.execute("CREATE TABLE kept (value text); INSERT INTO kept VALUES ('survives a restart')")
            await connection.close()
        finally:
            postgres.stop()
        assert not postgres.running

        # A second handle on the same directory, as after Ctrl-C and `make up` again.
        restarted = EmbeddedPostgres(pgdata_parent / "pgdata")
        url = restarted.start()
        try:
            connection = await asyncpg.connect(url)
            assert await connection.fetchval("SELECT value FROM kept") == "survives a restart"
            await connection.close()

            # The services reach the database through SQLAlchemy's asyncpg dialect.
            engine = create_async_engine(to_asyncpg_url(url))
            async with engine.connect() as sqlalchemy_connection:
                database = (await sqlalchemy_connection.execute(text("SELECT current_database()"))).scalar()
            await engine.dispose()
            assert database == "notifications"
        finally:
            restarted.stop()
        assert not restarted.running


class TestPrepareSystem:
    async def test_prepares_everything_and_is_idempotent(
        self, pgdata_parent: Path, moto: MotoServer, tmp_path: Path
    ) -> None:
        postgres = EmbeddedPostgres(pgdata_parent / "pgdata")
        url = postgres.start()
        try:
            for _ in range(2):
                topology = await prepare_system(
                    database_url=url, aws_endpoint_url=moto.endpoint_url, certs_dir=tmp_path / "certs"
                )

            connection = await asyncpg.connect(url)
            tables = {row["tablename"] for row in await connection.fetch("SELECT tablename FROM pg_tables")}
            await connection.close()
        finally:
            postgres.stop()
        assert {"recipients", "notifications", "deliveries"} <= tables
        assert {"topic_arn", "sms_notifications", "email_notifications", "slack_notifications"} <= topology.keys()
        settings = ServiceSettings(aws_endpoint_url=moto.endpoint_url)
        async with aws_clients(settings, "sns", "sqs") as (sns, sqs):
            assert await verify_topology(sns, sqs) == []
        identities = _boto3_client("ses", moto).list_identities()["Identities"]
        assert "sender@notifications.com" in identities
        for name in ("ca.crt.pem", "server.crt.pem", "server.key.pem", "client.crt.pem", "client.key.pem", "crl.pem"):
            assert (tmp_path / "certs" / name).is_file()

    def test_the_command_reads_the_services_settings(
        self, postgres_server: PostgresServer, moto: MotoServer, tmp_path: Path
    ) -> None:
        """``python -m stack.prepare``, as docker compose's init service runs it, twice."""
        with postgres_server.fresh_database() as database_url:
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "AWS_ENDPOINT_URL": moto.endpoint_url,
                "EMAIL_FROM_ADDRESS": "init@notifications.com",
                "MTLS_DIR": str(tmp_path / "not-these"),
            }
            argv = [sys.executable, "-m", "stack.prepare", "--certs-dir", str(tmp_path / "certs")]
            for _ in range(2):
                result = subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
                assert result.returncode == 0, result.stdout + result.stderr
            tables = {row["tablename"] for row in fetch(database_url, "SELECT tablename FROM pg_tables")}
        assert {"recipients", "notifications", "deliveries", "outbox"} <= tables
        assert "SES identity init@notifications.com verified" in result.stdout
        assert "init@notifications.com" in _boto3_client("ses", moto).list_identities()["Identities"]
        assert (tmp_path / "certs" / "server.key.pem").is_file() and not (tmp_path / "not-these").exists()


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(free_port(), log_path=tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def wiremock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireMock]:
    server = WireMock(free_port(), log_path=tmp_path_factory.mktemp("wiremock") / "wiremock.log").start()
    yield server
    server.stop()


def _boto3_client(service: str, moto: MotoServer):  # noqa: ANN202 - boto3 clients have no static type
    return aws_client(service, moto.endpoint_url)


class TestMotoServer:
    def test_sms_published_through_sns_is_read_back(self, moto: MotoServer) -> None:
        _boto3_client("sns", moto).publish(PhoneNumber="+14155552671", Message="Your code is 1234")

        assert {"phone_number": "+14155552671", "message": "Your code is 1234"}.items() <= moto.sent_sms()[-1].items()

    def test_email_sent_through_ses_v1_is_read_back(self, moto: MotoServer) -> None:
        ses = _boto3_client("ses", moto)
        ses.verify_email_identity(EmailAddress="sender@notifications.com")
        ses.send_email(
            Source="sender@notifications.com",
            Destination={"ToAddresses": ["demo@example.com"]},
            Message={"Subject": {"Data": "Greetings"}, "Body": {"Text": {"Data": "Hello, demo"}}},
        )

        sent = moto.sent_emails()[-1]
        assert sent["source"] == "sender@notifications.com"
        assert sent["destination"] == ["demo@example.com"]
        assert (sent["subject"], sent["body"]) == ("Greetings", "Hello, demo")

    def test_raw_email_is_parsed(self, moto: MotoServer) -> None:
        ses = _boto3_client("ses", moto)
        ses.verify_email_identity(EmailAddress="sender@notifications.com")
        ses.send_raw_email(
            Source="sender@notifications.com",
            Destinations=["demo@example.com"],
            RawMessage={"Data": "From: sender@notifications.com\nTo: demo@example.com\nSubject: Raw\n\nRaw body\n"},
        )

        sent = moto.sent_emails()[-1]
        assert sent["destination"] == ["demo@example.com"]
        assert (sent["subject"], sent["body"].strip()) == ("Raw", "Raw body")

    def test_reset_forgets_everything(self, moto: MotoServer) -> None:
        _boto3_client("sns", moto).publish(PhoneNumber="+14155552671", Message="before reset")
        moto.reset()
        assert moto.sent_sms() == []


class TestWireMock:
    def test_slack_sdk_posts_a_message_and_the_journal_shows_it(self, wiremock: WireMock) -> None:
        wiremock.reset_requests()
        client = WebClient(token="xoxb-local-test", base_url=wiremock.slack_api_url)

        response = client.chat_postMessage(channel="U0123456789", text='Deploy "42" is done\nall green')

        assert response["ok"] is True
        assert response["channel"] == "U0123456789"
        assert re.fullmatch(r"\d{10}\.\d{6}", response["ts"])
        assert response["message"]["text"] == 'Deploy "42" is done\nall green'
        headers = {name.lower(): value for name, value in response.headers.items()}
        assert headers["content-type"] in ("application/json; charset=utf-8", ["application/json; charset=utf-8"])
        (logged,) = wiremock.requests()
        assert (logged["method"], logged["path"]) == ("POST", "/api/chat.postMessage")
        assert logged["body"] == {"channel": "U0123456789", "text": 'Deploy "42" is done\nall green'}
        assert logged["headers"]["Authorization"] == "Bearer xoxb-local-test"

    def test_form_encoded_post_and_auth_test(self, wiremock: WireMock) -> None:
        client = WebClient(token="xoxb-local-test", base_url=wiremock.slack_api_url)
        assert client.auth_test()["ok"] is True

        answer = _post(f"{wiremock.slack_api_url}chat.postMessage", b"channel=C042&text=a%26b", form=True)

        assert (answer["ok"], answer["channel"], answer["message"]["text"]) == (True, "C042", "a&b")
        assert wiremock.requests()[-1]["body"] == {"channel": "C042", "text": "a&b"}

    def test_failures_then_success(self, wiremock: WireMock) -> None:
        url = f"{wiremock.slack_api_url}chat.postMessage"
        payload = json.dumps({"channel": "U0123456789", "text": "retry me"}).encode()
        mapping_ids = wiremock.add_failures_then_success(
            "/api/chat.postMessage", failures=2, status=429, headers={"Retry-After": "1"}
        )
        try:
            statuses = []
            for _ in range(3):
                try:
                    _post(url, payload)
                    statuses.append(200)
                except urllib.error.HTTPError as exc:
                    statuses.append(exc.code)
                    assert exc.headers["Retry-After"] == "1"
            assert statuses == [429, 429, 200]
        finally:
            for mapping_id in mapping_ids:
                wiremock.remove_mapping(mapping_id)
            wiremock.reset_mappings()

    def test_added_mapping_and_reset_back_to_the_files(self, wiremock: WireMock) -> None:
        wiremock.add_mapping(
            {
                "request": {"method": "POST", "urlPath": "/api/chat.postMessage"},
                "response": {"status": 200, "jsonBody": {"ok": False, "error": "ratelimited"}},
                "priority": 1,
            }
        )
        url = f"{wiremock.slack_api_url}chat.postMessage"
        payload = json.dumps({"channel": "U1", "text": "x"}).encode()
        assert _post(url, payload)["error"] == "ratelimited"

        wiremock.reset_mappings()

        assert _post(url, payload)["ok"] is True


def _post(url: str, body: bytes, *, form: bool = False) -> dict:
    content_type = "application/x-www-form-urlencoded" if form else "application/json; charset=utf-8"
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())
