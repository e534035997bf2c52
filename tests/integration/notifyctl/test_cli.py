"""``notifyctl`` as operators run it: the installed console script (``.venv/bin/notifyctl``) as a
subprocess, against a real stack: Postgres, moto, WireMock standing in for Slack, the Slack sender
and gateways as processes (the ``sender_stack`` fixture's, plus gateways of our own
on its database and moto).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harness.gateway import Certificates, GatewayProcess, start_gateway
from harness.slack import slack_error
from harness.system import System as SenderStack
from harness.waiting import wait_until
from mtls import pki
from shared.topology import Channel, queues_for

pytestmark = pytest.mark.timeout(240)

NOTIFYCTL = Path(sys.executable).parent / "notifyctl"
LIMITED_CLIENT = "cli-limited"


@dataclass
class Cli:
    """Runs notifyctl with the environment of this stack."""

    env: dict[str, str]

    def __call__(self, *args: str, input: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(NOTIFYCTL), *args],
            capture_output=True,
            text=True,
            timeout=120,
            input=input,
            env={**os.environ, **self.env, **env},
            check=False,
        )

    def json(self, *args: str, **env: str) -> Any:
        result = self(*args, "--json", **env)
        assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
        return json.loads(result.stdout)


@dataclass
class CliStack:
    stack: SenderStack
    certificates: Certificates
    gateway: GatewayProcess
    limited_gateway: GatewayProcess
    cli: Cli


@pytest.fixture(scope="module")
def cli_stack(sender_stack: SenderStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliStack]:
    certificates = Certificates(tmp_path_factory.mktemp("notifyctl-certs"))
    pki.init_pki(certificates.directory)
    pki.issue_client_certificate(certificates.directory, LIMITED_CLIENT, pki.ROLES)
    log_dir = sender_stack.senders.log_dir
    common = {"certificates": certificates, "database_url": sender_stack.db.url, "aws_endpoint_url": sender_stack.emulator.endpoint_url, "log_dir": log_dir}
    gateway = start_gateway(name="gateway-notifyctl", **common)
    limited = None
    try:
        limited = start_gateway(
            name="gateway-notifyctl-limited",
            extra_env={
                "GATEWAY_RATE_LIMIT_ENABLED": "true",
                "GATEWAY_RATE_LIMIT_OVERRIDES": json.dumps({LIMITED_CLIENT: {"rate": 0.1, "burst": 1}}),
            },
            **common,
        )
        env = {
            "NOTIFYCTL_GATEWAY_URL": gateway.base_url,
            "NOTIFYCTL_CA": str(certificates.ca),
            "NOTIFYCTL_CERT": str(certificates.client().cert),
            "NOTIFYCTL_KEY": str(certificates.client().key),
            "MTLS_DIR": str(certificates.directory),
            "DATABASE_URL": sender_stack.db.url,
            "AWS_ENDPOINT_URL": sender_stack.emulator.endpoint_url,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "COLUMNS": "200",
        }
        yield CliStack(sender_stack, certificates, gateway, limited, Cli(env))
    finally:
        for process in (gateway, limited):
            if process is not None:
                process.process.stop()


class TestCertificates:
    def test_issue_use_revoke_refused(self, cli_stack: CliStack) -> None:
        cli, certs = cli_stack.cli, cli_stack.certificates
        issued = cli("certs", "issue", "ops-bot", "--role", "recipients", "--role", "notifications")
        assert issued.returncode == 0, issued.stderr
        bot = {"NOTIFYCTL_CERT": str(certs.client("ops-bot").cert), "NOTIFYCTL_KEY": str(certs.client("ops-bot").key)}

        stored = cli.json("recipients", "put", "cli-ada", "--email", "ada@example.com", "--slack-id", "C0ADA0001", **bot)
        assert stored == {"name": "cli-ada", "email": "ada@example.com", "slack_id": "C0ADA0001"}
        accepted = cli.json("send", "cli-ada", "hello from the bot", "--channel", "email", **bot)
        assert accepted["channels"] == ["email"] and accepted["replayed"] is False

        listed = {c["name"]: c for c in cli.json("certs", "list")}
        assert listed["ops-bot"]["roles"] == ["recipients", "notifications"] and not listed["ops-bot"]["revoked"]

        assert cli("certs", "revoke", "ops-bot").returncode == 0
        assert {c.name: c for c in pki.list_certificates(certs.directory)}["ops-bot"].revoked
        # The gateway re-reads the CRL on its own (every 0.5 s here): no restart.
        refused = wait_until(
            lambda: (r := cli("recipients", "get", "cli-ada", **bot)).returncode == 3 and r,
            timeout=15,
            what="the revoked certificate to be refused",
        )
        assert "refused the client certificate" in refused.stderr
        assert cli("recipients", "get", "cli-ada").returncode == 0, "other clients are unaffected"


class TestGatewayErrors:
    def test_exit_codes_scripts_rely_on(self, cli_stack: CliStack) -> None:
        cli, certs = cli_stack.cli, cli_stack.certificates
        unknown = cli("send", "cli-nobody", "hi", "--json")
        assert unknown.returncode == 1
        error = json.loads(unknown.stderr)["error"]
        assert (error["status"], error["message"], error["field"]) == (400, "unknown recipient: 'cli-nobody'", "recipient")

        missing = cli("recipients", "get", "cli-nobody")
        assert (missing.returncode, missing.stderr.startswith("error: ")) == (1, True)
        assert cli("status", str(uuid.uuid4())).returncode == 1

        notifier = {"NOTIFYCTL_CERT": str(certs.client("client-notifications").cert), "NOTIFYCTL_KEY": str(certs.client("client-notifications").key)}
        lacking = cli("recipients", "list", **notifier)
        assert lacking.returncode == 3 and "lacks the role 'recipients'" in lacking.stderr

        unreachable = cli("recipients", "list", NOTIFYCTL_GATEWAY_URL="https://localhost:1")
        assert unreachable.returncode == 4 and "cannot reach the gateway" in unreachable.stderr

        assert cli("send", "cli-nobody", "hi", "--channel", "fax").returncode == 2

    def test_send_and_wait_for_the_status(self, cli_stack: CliStack) -> None:
        cli = cli_stack.cli
        cli_stack.stack.senders.only(Channel.SLACK)
        cli.json("recipients", "put", "cli-grace", "--slack-id", "C0GRACE01")
        sent = cli("send", "cli-grace", "status please", "--idempotency-key", "cli-key-1")
        assert sent.returncode == 0 and sent.stderr == "accepted for cli-grace on slack\n"
        notification_id = str(uuid.UUID(sent.stdout.strip()))  # the id alone: id=$(notifyctl send ...) works
        repeat = cli.json("send", "cli-grace", "status please", "--idempotency-key", "cli-key-1")
        assert (repeat["id"], repeat["replayed"]) == (notification_id, True)
        final = cli.json("status", notification_id, "--wait", "--timeout", "30")
        assert final["deliveries"]["slack"]["status"] == "sent"
        human = cli("status", notification_id)
        assert human.returncode == 0 and "slack  sent" in human.stdout

    def test_send_at_then_cancel(self, cli_stack: CliStack) -> None:
        cli = cli_stack.cli
        cli.json("recipients", "put", "cli-ivan", "--slack-id", "C0IVAN001")
        send_at = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
        sent = cli("send", "cli-ivan", "later please", "--send-at", send_at.isoformat())
        assert sent.returncode == 0 and f"held until {send_at.isoformat().replace('+00:00', 'Z')}" in sent.stderr, sent.stderr
        notification_id = sent.stdout.strip()
        assert "slack  scheduled" in cli("status", notification_id).stdout
        cancelled = cli.json("cancel", notification_id)
        assert cancelled["deliveries"]["slack"]["status"] == "cancelled"
        late = cli("send", "cli-ivan", "too late", "--send-at", "2020-01-01T00:00:00Z")
        assert late.returncode == 1 and "send_at is in the past" in late.stderr
        released = cli("cancel", cli.json("send", "cli-ivan", "at once")["id"])
        assert released.returncode == 1 and "already released" in released.stderr

    def test_rate_limit_429_and_recovery(self, cli_stack: CliStack) -> None:
        cli, certs = cli_stack.cli, cli_stack.certificates
        limited = {
            "NOTIFYCTL_GATEWAY_URL": cli_stack.limited_gateway.base_url,
            "NOTIFYCTL_CERT": str(certs.client(LIMITED_CLIENT).cert),
            "NOTIFYCTL_KEY": str(certs.client(LIMITED_CLIENT).key),
        }
        # One token, refilled every 10 s: a request from here takes it, so the CLI (which takes a
        # moment to start) is refused, and gets through again after Retry-After.
        with cli_stack.limited_gateway.client(LIMITED_CLIENT) as client:
            assert client.get("/recipients").status_code == 200
        refused = cli("recipients", "list", "--json", **limited)
        assert refused.returncode == 4, refused.stdout
        error = json.loads(refused.stderr)["error"]
        assert error["status"] == 429 and 1 <= error["retry_after_seconds"] <= 10
        assert error["message"].startswith(f"rate limit exceeded for client '{LIMITED_CLIENT}'")
        time.sleep(error["retry_after_seconds"])
        assert cli("recipients", "list", **limited).returncode == 0


class TestTemplatesAndPreferences:
    def test_a_template_put_previewed_sent_and_deleted(self, cli_stack: CliStack, tmp_path: Path) -> None:
        cli = cli_stack.cli
        cli_stack.stack.senders.only(Channel.SLACK)
        created = cli.json("templates", "put", "cli-shipped", "--slack", "Order *((order ref))* for ((name)):\n((items))", "--category", "orders")
        assert (created["version"], created["created"], created["placeholders"]) == (1, True, ["order ref", "name", "items"])
        same = cli.json("templates", "put", "cli-shipped", "--slack", "Order *((order ref))* for ((name)):\n((items))", "--category", "orders")
        assert (same["version"], same["created"]) == (1, False)
        assert cli.json("templates", "get", "cli-shipped")["category"] == "orders"
        assert "cli-shipped" in [t["name"] for t in cli.json("templates", "list", "--all")["items"]]

        values = tmp_path / "values.json"
        values.write_text(json.dumps({"Order Ref": 42, "name": "Ada"}))
        preview = cli.json("templates", "preview", "cli-shipped", "--personalisation-file", str(values), "-p", "items=tea", "-p", "items=<cake>")
        assert preview == {"slack": {"text": "Order *42* for Ada:\ntea\n&lt;cake&gt;"}}
        missing = cli("templates", "preview", "cli-shipped", "-p", "name=Ada", "--json")
        assert missing.returncode == 1
        assert json.loads(missing.stderr)["error"]["message"] == "Missing personalisation: order ref, items"

        cli.json("recipients", "put", "cli-heidi", "--slack-id", "C0HEIDI01")
        sent = cli("send", "cli-heidi", "--template", "cli-shipped", "-p", "order ref=7", "-p", "name=Heidi", "-p", "items=tea")
        assert sent.returncode == 0, sent.stderr
        final = cli.json("status", sent.stdout.strip(), "--wait", "--timeout", "30")
        assert final["deliveries"]["slack"]["status"] == "sent"
        assert (final["template"], final["content"]["slack"]["text"]) == ({"name": "cli-shipped", "version": 1}, "Order *7* for Heidi:\ntea")
        assert [p["text"] for p in cli_stack.stack.slack.posts(channel="C0HEIDI01")] == ["Order *7* for Heidi:\ntea"]

        assert cli.json("templates", "delete", "cli-shipped") == {"deleted": "cli-shipped"}
        gone = cli("send", "cli-heidi", "--template", "cli-shipped", "-p", "order ref=7", "--json")
        assert gone.returncode == 1 and json.loads(gone.stderr)["error"]["message"] == "template not found: cli-shipped"
        assert cli("send", "cli-heidi", "text", "--template", "cli-shipped").returncode == 2
        assert cli("send", "cli-heidi").returncode == 2

    def test_preferences_set_and_get(self, cli_stack: CliStack) -> None:
        cli = cli_stack.cli
        cli.json("recipients", "put", "cli-ivan", "--email", "ivan@example.com", "--slack-id", "C0IVAN001")
        stored = cli.json("recipients", "preferences", "set", "cli-ivan", "--off", "sms", "--off", "marketing:email")
        assert stored == {
            "channels": {"sms": False, "email": True, "slack": True},
            "categories": {"marketing": {"sms": True, "email": False, "slack": True}},
        }
        human = cli("recipients", "preferences", "get", "cli-ivan")
        assert human.stdout.splitlines() == ["every notification: sms=off email=on slack=on", "marketing: sms=on email=off slack=on"]
        accepted = cli.json("send", "cli-ivan", "sale!", "--category", "marketing")
        status = cli.json("status", accepted["id"])
        assert (status["deliveries"]["email"]["status"], status["deliveries"]["email"]["last_error"]) == (
            "skipped",
            "recipient turned off email for marketing",
        )
        assert cli("recipients", "preferences", "set", "cli-ivan", "--off", "fax").returncode == 2


class TestTopology:
    def test_verify_reports_a_difference_and_create_repairs_it(self, cli_stack: CliStack) -> None:
        cli, aws = cli_stack.cli, cli_stack.stack.aws
        email_queue = aws.queue_url(queues_for(Channel.EMAIL).queue)
        aws.sqs.set_queue_attributes(QueueUrl=email_queue, Attributes={"VisibilityTimeout": "7"})
        broken = cli("topology", "verify")
        assert broken.returncode == 1
        assert "email_notifications: VisibilityTimeout is '7', expected '60'" in broken.stdout
        assert "topic_arn" in cli.json("topology", "create")
        assert cli.json("topology", "verify") == {"matches": True, "differences": []}


class TestDeadLetters:
    def test_failing_provider_fills_the_dlq_then_redrive_delivers_each_once(self, cli_stack: CliStack, stack: SenderStack) -> None:
        cli, aws = cli_stack.cli, stack.aws
        # A sender whose circuit breaker stays closed for these 15 failures: with it open the
        # channel would pause (an outage keeps its messages), and its probes come 30 s apart.
        stack.senders.only()
        sender = stack.senders.start(Channel.SLACK, BREAKER_FAILURE_THRESHOLD="100")
        stack.slack.always("C0DLQ.*", slack_error(503))
        dlq = queues_for(Channel.SLACK).dead_letter_queue
        texts = [f"dead letter {index} {uuid.uuid4().hex[:6]}" for index in range(3)]
        with cli_stack.gateway.client() as client:
            assert client.put("/recipients/cli-dlq", json={"slack_id": "C0DLQ0001"}).status_code == 204
            ids = [client.post("/notifications", json={"recipient": "cli-dlq", "message": text}).json()["id"] for text in texts]
        wait_until(lambda: aws.queue_depth(dlq) == 3, timeout=90, interval=1, what="three dead letters")

        [stats] = cli.json("dlq", "stats", "--channel", "slack")
        assert (stats["dead_letter_queue"], stats["dead_letters"]) == (dlq, 3)
        assert stats["oldest_dead_letter_age_seconds"] >= 0

        # Something no sender can use sits in the DLQ too: peek shows it, redrive leaves it.
        aws.sqs.send_message(
            QueueUrl=aws.queue_url(dlq),
            MessageBody="not json",
            MessageAttributes={"sender_error": {"DataType": "String", "StringValue": "unparseable message: invalid JSON"}},
        )
        by_id = {letter["notification_id"]: letter for letter in cli.json("dlq", "peek", "slack", "-n", "10")}
        assert set(by_id) == {*ids, None}
        for notification_id, text in zip(ids, texts, strict=True):
            letter = by_id[notification_id]
            assert (letter["recipient"], letter["message"], letter["delivery_status"]) == ("cli-dlq", text, "failed")
            assert letter["last_error"] == "gave up after 5 attempts: Slack answered HTTP 503"
        assert by_id[None]["sender_error"] == "unparseable message: invalid JSON"
        human = cli("dlq", "peek", "slack")
        assert human.returncode == 0 and "reason:    gave up after 5 attempts: Slack answered HTTP 503" in human.stdout
        assert aws.queue_depth(dlq) == 4, "peeking consumes nothing"

        duplicates_before = sender.metric("sender_duplicates_skipped_total", channel="slack")
        stack.slack.wiremock.reset_mappings()  # Slack recovers
        stack.slack.wiremock.reset_requests()
        result = cli.json("dlq", "redrive", "slack")
        assert result == {
            "channel": "slack", "method": "copy", "moved": 3, "deliveries_reset": 3, "left_unparseable": 1, "failed": 0, "late": [],
        }
        stack.db.wait_for_all([uuid.UUID(i) for i in ids], Channel.SLACK, "sent", timeout=60)
        for text in texts:
            assert len(stack.slack.posts(text=text)) == 1, "delivered exactly once"
        time.sleep(1)  # a stray second copy would be skipped as a duplicate by now
        assert sender.metric("sender_duplicates_skipped_total", channel="slack") == duplicates_before
        assert aws.queue_depth(dlq) == 1

        kept = cli("dlq", "purge", "slack", input="n\n")
        assert kept.returncode == 1 and aws.queue_depth(dlq) == 1
        assert cli.json("dlq", "purge", "slack", "--yes") == {"channel": "slack", "lane": "standard", "purged": 1}
        wait_until(lambda: aws.queue_depth(dlq) == 0, timeout=10, what="the DLQ to be empty")


class TestSendFirst:
    def test_send_first_in_the_order_given(self, cli_stack: CliStack) -> None:
        cli = cli_stack.cli
        assert cli("recipients", "put", "cli-first", "--email", "first@example.com", "--slack-id", "C0FIRST01").returncode == 0
        sent = cli("send", "cli-first", "first that works", "--first", "--channel", "slack", "--channel", "email")
        assert sent.returncode == 0, sent.stderr
        assert "on slack then email (the first that works)" in sent.stderr
        accepted = cli.json("send", "cli-first", "first that works", "--first", "--channel", "email", "--channel", "slack")
        assert (accepted["delivery"], accepted["channels"]) == ("first", ["email", "slack"])

    def test_first_needs_channels(self, cli_stack: CliStack) -> None:
        refused = cli_stack.cli("send", "cli-first", "hi", "--first")
        assert refused.returncode == 2
        assert "--first needs the channels to try" in refused.stderr


class TestJobs:
    def test_dry_run_create_status_with_progress_list_and_cancel(self, cli_stack: CliStack, tmp_path: Path) -> None:
        cli = cli_stack.cli
        cli_stack.stack.senders.only(Channel.SLACK)
        cli.json("templates", "put", "cli-job", "--slack", "Hello ((name))")
        rows = tmp_path / "rows.csv"
        rows.write_text("slack_id,name\nC0JOBCLI01,Ada\nC0JOBCLI02,Bob\n")
        dry = cli("jobs", "create", str(rows), "--template", "cli-job", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "2 rows would send: sms 0, email 0, slack 2" in dry.stdout
        job = cli.json("jobs", "create", str(rows), "--template", "cli-job")
        assert (job["name"], job["rows"]) == ("rows.csv", 2)
        watched = cli("jobs", "status", job["id"], "--wait")
        assert watched.returncode == 0, watched.stderr
        assert "finished" in watched.stdout and "100% 2/2 deliveries final" in watched.stdout
        assert job["id"] in [item["id"] for item in cli.json("jobs", "list", "--limit", "1000")["items"]]
        released = cli("jobs", "cancel", job["id"], "--json")
        assert released.returncode == 1 and json.loads(released.stderr)["error"]["message"] == "already released"

        rows.write_text("slack_id,name\nlowercase,Ada\n")
        refused = cli("jobs", "create", str(rows), "--template", "cli-job")
        assert refused.returncode == 1
        assert "row 2, column slack_id: slack_id 'lowercase' is not a Slack id" in refused.stderr
