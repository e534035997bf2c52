"""The client library against the real system (``system``: the gateway, the three senders, moto
and WireMock as processes, over real mutual TLS): every method, sync and async; retries through
real faults (a TCP proxy in front of a gateway that loses one answer or refuses connections, a
gateway's rate limit, its database cut away); and real signed status callbacks from
``python -m callback_sender``, verified with ``verify_callback``.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.callback_sender import CallbackSenderProcess, callback_sender
from harness.fault_proxy import FaultProxy
from harness.gateway import GatewayProcess, start_gateway
from harness.postgres import PostgresServer, fetch, url_through_proxy
from harness.ses_events import ses_bounce, ses_delivery
from harness.system import System
from harness.waiting import wait_until
from stack.localstack_install import find_uv
from stack.processes import REPO_ROOT
from notifications_client import (
    AsyncClient,
    CallbackEventType,
    CallbackVerificationError,
    Channel,
    Client,
    Conflict,
    DeliveryFailed,
    DeliveryStatus,
    Forbidden,
    NotFound,
    RetryPolicy,
    TransportError,
    ValidationError,
    WaitTimeout,
    mtls_context,
    verify_callback,
)

pytestmark = pytest.mark.timeout(240)

LIMITED_CLIENT = "acme-billing"  # the session's certificate with the role notifications only


def make_client(gateway: GatewayProcess, name: str = "client", **options: object) -> Client:
    pair = gateway.certificates.client(name)
    return Client(gateway.base_url, ops_url=gateway.ops_url, ca=gateway.certificates.ca, cert=pair.cert, key=pair.key, **options)  # type: ignore[arg-type]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def notifications_with(database_url: str, message: str) -> int:
    return fetch(database_url, "SELECT count(*) AS n FROM notifications WHERE message = $1", message)[0]["n"]


@pytest.fixture(scope="module")
def client(system: System) -> Iterator[Client]:
    system.reset()
    assert system.gateway is not None
    with make_client(system.gateway) as made:
        yield made


class TestRecipients:
    def test_put_get_list_iterate_preferences_delete(self, client: Client) -> None:
        names = sorted(unique("lib-r") for _ in range(3))
        for name in names:
            client.put_recipient(name, email=f"{name}@example.com", slack_id="U0LIB0001")
        assert client.get_recipient(names[0]).model_dump(exclude_none=True) == {
            "name": names[0], "email": f"{names[0]}@example.com", "slack_id": "U0LIB0001",
        }
        listed = [recipient.name for recipient in client.iter_recipients(limit=2)]
        assert [name for name in listed if name in names] == names
        first = client.list_recipients(limit=1)
        assert len(first.items) == 1 and first.next_cursor

        client.put_preferences(names[0], {"channels": {"sms": False}, "categories": {"marketing": {"email": False}}})
        preferences = client.get_preferences(names[0])
        assert (preferences.channels.sms, preferences.channels.email, preferences.categories["marketing"].email) == (False, True, False)

        client.delete_recipient(names[0])
        with pytest.raises(NotFound):
            client.get_recipient(names[0])

    def test_refusals_carry_the_gateways_message_and_field(self, client: Client, system: System) -> None:
        with pytest.raises(ValidationError) as invalid:
            client.put_recipient(unique("lib-bad"), phone_number="12345")
        assert invalid.value.status == 400 and invalid.value.field == "phone_number"
        assert invalid.value.message.startswith("phone_number must be an E.164 number")
        with pytest.raises(NotFound) as missing:
            client.get_preferences(unique("lib-nobody"))
        assert "no recipient named" in missing.value.message
        assert system.gateway is not None
        with make_client(system.gateway, LIMITED_CLIENT) as notifier, pytest.raises(Forbidden, match="lacks the role 'recipients'"):
            notifier.list_recipients()


class TestTemplates:
    def test_versions_listing_preview_delete(self, client: Client) -> None:
        name = unique("lib-t")
        first = client.put_template(name, sms="Hi ((first name)), order ((order ref)) shipped.", category="orders")
        assert (first.version, first.created, first.placeholders) == (1, True, ["first name", "order ref"])
        second = client.put_template(name, {"sms": "Hello ((first name)): ((order ref)).", "slack": "*((order ref))*"})
        assert (second.version, second.created) == (2, False)
        assert client.get_template(name).slack == "*((order ref))*"
        assert client.get_template(name, version=1).category == "orders"
        assert name in [template.name for template in client.iter_templates(limit=50)]
        assert name in [template.name for template in client.list_templates(limit=1000).items]

        rendered = client.preview_template(name, {"First_Name": "Ada", "order ref": "<A-1>"})
        assert rendered.sms is not None and rendered.sms.body == "Hello Ada: <A-1>." and rendered.sms.fragments == 1
        assert rendered.slack is not None and rendered.slack.text == "*&lt;A-1&gt;*"
        with pytest.raises(ValidationError, match="Missing personalisation: order ref"):
            client.preview_template(name, {"first name": "Ada"})

        client.delete_template(name)
        with pytest.raises(NotFound, match=f"template not found: {name}"):
            client.get_template(name)


class TestNotifications:
    def test_a_template_sent_and_waited_for(self, client: Client) -> None:
        recipient, template = unique("lib-n"), unique("lib-nt")
        client.put_recipient(recipient, phone_number="+14155552671", email=f"{recipient}@example.com", slack_id="U0LIB0002")
        client.put_template(template, sms="SMS ((code))", email={"subject": "Code ((code))", "body": "Your code: ((code))"}, slack="Code ((code))")
        accepted = client.send(recipient, template=template, personalisation={"code": 1234}, category="security")
        assert accepted.template is not None and (accepted.template.name, accepted.template.version) == (template, 1)
        assert accepted.channels == [Channel.SMS, Channel.EMAIL, Channel.SLACK] and accepted.replayed is False

        final = client.wait_for(accepted.id, status="sent", timeout=60)
        assert {channel: delivery.status for channel, delivery in final.deliveries.items()} == {
            Channel.SMS: DeliveryStatus.SENT, Channel.EMAIL: DeliveryStatus.SENT, Channel.SLACK: DeliveryStatus.SENT,
        }
        assert final.content is not None and final.content.email is not None and final.content.email.subject == "Code 1234"
        assert final.client == "client" and final.deliveries[Channel.SMS].provider_message_id

    def test_slack_is_delivered_once_sent_and_a_message_by_keyword(self, client: Client) -> None:
        recipient = unique("lib-s")
        client.put_recipient(recipient, slack_id="U0LIB0003")
        accepted = client.send(recipient, message="plain text", subject="ignored by slack", idempotency_key=unique("lib-key"))
        # Slack has no receipts: sent is final, so waiting for delivered ends there.
        assert client.wait_for(accepted.id, status="delivered", timeout=60).deliveries[Channel.SLACK].status == DeliveryStatus.SENT

    def test_idempotency_and_refusals(self, client: Client) -> None:
        recipient, key = unique("lib-i"), unique("lib-key")
        client.put_recipient(recipient, email=f"{recipient}@example.com")
        first = client.send(recipient, message="once", idempotency_key=key)
        again = client.send(recipient, message="once", idempotency_key=key)
        assert (again.id, again.replayed) == (first.id, True)
        with pytest.raises(Conflict):
            client.send(recipient, message="another body", idempotency_key=key)
        with pytest.raises(ValidationError) as unknown:
            client.send(unique("lib-nobody"), message="hi")
        assert unknown.value.field == "recipient" and unknown.value.message.startswith("unknown recipient")
        with pytest.raises(NotFound, match="no notification with id"):
            client.get_notification(uuid.uuid4())
        assert client.get_notification(first.id).id == first.id

    def test_a_batch_judged_item_by_item_and_replayed_with_its_key(self, client: Client) -> None:
        recipient, key = unique("lib-b"), unique("lib-batch")
        client.put_recipient(recipient, slack_id="U0LIB0012")
        items = [
            {"recipient": recipient, "message": "first of the batch", "reference": "order-1"},
            {"recipient": unique("lib-nobody"), "message": "to nobody"},
        ]
        results = client.send_batch(items, idempotency_key=key)
        assert [(result.index, result.status) for result in results.results] == [(0, 201), (1, 400)]
        accepted, refused = results.results
        assert accepted.id is not None and accepted.reference == "order-1" and results.replayed is False
        assert refused.id is None and refused.message is not None and refused.message.startswith("unknown recipient")
        again = client.send_batch(items, idempotency_key=key)
        assert again.results[0].id == accepted.id and again.replayed is True
        delivered = client.wait_for(accepted.id, status="sent", timeout=60)
        assert delivered.reference == "order-1" and delivered.deliveries[Channel.SLACK].provider == "slack"
        with pytest.raises(ValidationError, match="at least one notification"):
            client.send_batch([])

    def test_a_scheduled_send_cancelled(self, client: Client) -> None:
        recipient = unique("lib-later")
        client.put_recipient(recipient, email=f"{recipient}@example.com", slack_id="U0LIB0010")
        send_at = datetime.now(UTC) + timedelta(hours=1)
        accepted = client.send(recipient, message="in an hour", send_at=send_at)
        assert accepted.send_at is not None and abs((accepted.send_at - send_at).total_seconds()) < 0.001
        held = client.get_notification(accepted.id)
        assert {delivery.status for delivery in held.deliveries.values()} == {DeliveryStatus.SCHEDULED}
        with pytest.raises(WaitTimeout, match="email=scheduled"):
            client.wait_for(accepted.id, timeout=0)
        cancelled = client.cancel(accepted.id)
        assert {delivery.status for delivery in cancelled.deliveries.values()} == {DeliveryStatus.CANCELLED}
        assert client.cancel(accepted.id).id == accepted.id, "cancelling again answers it again"
        with pytest.raises(DeliveryFailed, match="did not arrive on email, slack"):
            client.wait_for(accepted.id, status="sent")

    def test_cancelling_a_released_notification_is_a_conflict(self, client: Client) -> None:
        recipient = unique("lib-now")
        client.put_recipient(recipient, slack_id="U0LIB0011")
        accepted = client.send(recipient, message="at once")
        client.wait_for(accepted.id, status="sent", timeout=60)
        with pytest.raises(Conflict, match="already released"):
            client.cancel(accepted.id)
        with pytest.raises(NotFound):
            client.cancel(uuid.uuid4())

    def test_delivered_by_its_receipt_and_a_bounce_suppresses(self, client: Client, system: System) -> None:
        delivered, bounced = unique("lib-ok"), unique("lib-bounce")
        for name in (delivered, bounced):
            client.put_recipient(name, email=f"{name}@example.com")
        ok = client.wait_for(client.send(delivered, message="arrives").id, status="sent", timeout=60)
        system.aws.publish_email_event(ses_delivery(ok.deliveries[Channel.EMAIL].provider_message_id or "", f"{delivered}@example.com"))
        final = client.wait_for(ok.id, status="delivered", timeout=60)
        email = final.deliveries[Channel.EMAIL]
        assert email.delivered_at is not None and [receipt.event for receipt in email.receipts] == ["Delivery"]

        lost = client.wait_for(client.send(bounced, message="bounces").id, status="sent", timeout=60)
        system.aws.publish_email_event(ses_bounce(lost.deliveries[Channel.EMAIL].provider_message_id or "", f"{bounced}@example.com"))
        with pytest.raises(DeliveryFailed, match="email failed"):
            client.wait_for(lost.id, status="delivered", timeout=60)
        suppressed = {item.address: item for item in client.iter_suppressions(channel="email", limit=2)}
        assert suppressed[f"{bounced}@example.com"].notification_id == lost.id
        assert all(item.channel == Channel.EMAIL for item in suppressed.values())
        assert f"{bounced}@example.com" in [item.address for item in client.list_suppressions(limit=1000).items]
        client.lift_suppression("email", f"{bounced}@example.com")
        assert f"{bounced}@example.com" not in {item.address for item in client.iter_suppressions(channel=Channel.EMAIL)}
        with pytest.raises(NotFound):
            client.lift_suppression(Channel.EMAIL, f"{bounced}@example.com")

    async def test_the_async_client(self, system: System) -> None:
        assert system.gateway is not None
        pair = system.certificates.client()
        context = mtls_context(ca=system.certificates.ca, cert=pair.cert, key=pair.key)
        async with AsyncClient(system.gateway.base_url, ops_url=system.gateway.ops_url, ssl_context=context) as client:
            recipient = unique("lib-a")
            await client.put_recipient(recipient, slack_id="U0LIB0004")
            assert (await client.get_recipient(recipient)).slack_id == "U0LIB0004"
            assert recipient in [r.name async for r in client.iter_recipients(limit=500)]
            accepted = await client.send(recipient, message="from asyncio")
            final = await client.wait_for(accepted.id, status="sent", timeout=60)
            assert final.deliveries[Channel.SLACK].status == DeliveryStatus.SENT
            assert (await client.health()).ready


class TestTransport:
    def test_a_certificate_of_another_ca_is_refused(self, system: System, caplog: pytest.LogCaptureFixture) -> None:
        assert system.gateway is not None
        foreign = system.certificates.directory / "foreign"
        caplog.set_level(logging.INFO, logger="notifications_client")

        def refused(context: ssl.SSLContext) -> TransportError:
            with Client(system.gateway.base_url, ssl_context=context, retry=RetryPolicy(max_attempts=2, base_seconds=0.1)) as stranger:  # type: ignore[union-attr]
                with pytest.raises(TransportError) as raised:
                    stranger.get_recipient("anyone")
            return raised.value

        context = mtls_context(ca=system.certificates.ca, cert=foreign / "client.crt.pem", key=foreign / "client.key.pem")
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        # TLS 1.2 refuses in the handshake: an SSL error, never retried.
        assert refused(context).cause_of(ssl.SSLError) is not None and retries_logged(caplog) == []
        # TLS 1.3 refuses after the handshake by closing the connection, which cannot be told
        # from a broken one: retried as one, then raised.
        context = mtls_context(ca=system.certificates.ca, cert=foreign / "client.crt.pem", key=foreign / "client.key.pem")
        assert "disconnected" in str(refused(context)) and len(retries_logged(caplog)) == 1

    def test_nothing_listening_is_retried_then_raised(self, caplog: pytest.LogCaptureFixture, system: System) -> None:
        caplog.set_level(logging.INFO, logger="notifications_client")
        pair = system.certificates.client()
        policy = RetryPolicy(max_attempts=3, base_seconds=0.1)
        with Client("https://localhost:1", ca=system.certificates.ca, cert=pair.cert, key=pair.key, retry=policy) as nowhere:
            with pytest.raises(TransportError, match="cannot reach the gateway at https://localhost:1"):
                nowhere.list_templates()
        assert len(retries_logged(caplog)) == 2


class TestHealth:
    def test_ready_with_its_checks(self, client: Client) -> None:
        health = client.health()
        assert health.ready and health.checks == {"database": "ok", "sns": "ok"}


# -- status callbacks -------------------------------------------------------------------------


@dataclass
class RawCallback:
    headers: dict[str, str]
    body: bytes


class RawReceiver:
    """A client's receiver on 127.0.0.1 that keeps each request's headers and bytes as they came."""

    def __init__(self) -> None:
        received: list[RawCallback] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(RawCallback(dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def for_notification(self, notification_id: uuid.UUID) -> list[RawCallback]:
        return [callback for callback in self.received if str(notification_id).encode() in callback.body]


@pytest.fixture(scope="module")
def receiver() -> Iterator[RawReceiver]:
    server = RawReceiver()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="module")
def sender(system: System) -> Iterator[CallbackSenderProcess]:
    process = callback_sender(database_url=system.database_url, log_dir=system.log_dir, name="callback_sender-client", callbacks_allow_localhost=True).start()
    yield process
    process.stop()


class TestCallbacks:
    def test_set_verify_rotate_delete(self, system: System, client: Client, receiver: RawReceiver, sender: CallbackSenderProcess) -> None:
        assert system.gateway is not None
        recipient = unique("lib-cb")
        client.put_recipient(recipient, slack_id="U0LIB0005")
        # Callbacks are the calling client's: this one's, so that no other module's is touched.
        with make_client(system.gateway, LIMITED_CLIENT) as notifier:
            created = notifier.put_callback(receiver.url, events=["delivery.sent"])
            assert created.secret.startswith("whsec_") and created.events == [CallbackEventType.SENT]
            try:
                first = notifier.send(recipient, message="call me back")
                callback = wait_until(lambda: receiver.for_notification(first.id), timeout=60, what="the signed callback")[0]
                event = verify_callback(callback.headers, callback.body, created.secret)
                assert (event.type, event.data.notification_id, event.data.status) == (CallbackEventType.SENT, first.id, DeliveryStatus.SENT)
                # The sender records the 2xx just after the receiver has answered it.
                state = wait_until(lambda: (got := notifier.get_callback()).last_success_at and got, timeout=30, what="the recorded success")
                assert state.url == receiver.url and state.events == [CallbackEventType.SENT]

                rotated = notifier.rotate_callback_secret()
                assert rotated.secret != created.secret
                second = notifier.send(recipient, message="call me back again")
                callback = wait_until(lambda: receiver.for_notification(second.id), timeout=60, what="a callback after the rotation")[0]
                assert verify_callback(callback.headers, callback.body, rotated.secret).data.notification_id == second.id
                tampered = callback.body.replace(b'"sent"', b'"failed"')
                with pytest.raises(CallbackVerificationError):
                    verify_callback(callback.headers, tampered, rotated.secret)
            finally:
                notifier.delete_callback()
            with pytest.raises(NotFound, match="no callback is set for the client 'acme-billing'"):
                notifier.get_callback()


# -- retries through real faults --------------------------------------------------------------


@dataclass
class FaultyGateway:
    """A gateway of its own on the system's database, reached through ``proxy`` (its port) and
    reaching Postgres through ``database_proxy``; LIMITED_CLIENT is held to one request per 2 s."""

    gateway: GatewayProcess
    proxy: FaultProxy
    database_proxy: FaultProxy

    def client(self, name: str = "client", *, tls12: bool = False, retry: RetryPolicy | None = None) -> Client:
        pair = self.gateway.certificates.client(name)
        context = mtls_context(ca=self.gateway.certificates.ca, cert=pair.cert, key=pair.key)
        if tls12:
            context.maximum_version = ssl.TLSVersion.TLSv1_2
        return Client(f"https://localhost:{self.proxy.port}", ssl_context=context, retry=retry or RetryPolicy(max_attempts=10))


@pytest.fixture(scope="module")
def faulty(system: System, postgres_server: PostgresServer) -> Iterator[FaultyGateway]:
    database_proxy = postgres_server.proxy()
    gateway = start_gateway(
        certificates=system.certificates,
        database_url=url_through_proxy(system.database_url, database_proxy),
        aws_endpoint_url=system.emulator.endpoint_url,
        log_dir=system.log_dir,
        name="gateway-client-faults",
        extra_env={"GATEWAY_RATE_LIMIT_ENABLED": "true", "GATEWAY_RATE_LIMIT_OVERRIDES": json.dumps({LIMITED_CLIENT: {"rate": 0.5, "burst": 1}})},
    )
    proxy = FaultProxy(upstream_host="127.0.0.1", upstream_port=gateway.port).start()
    yield FaultyGateway(gateway, proxy, database_proxy)
    proxy.stop()
    gateway.stop()
    database_proxy.stop()


def retries_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "notifications_client" and "retrying" in record.getMessage()]


class TestRetries:
    def test_an_answer_lost_on_a_cut_connection_is_retried_with_the_same_key_and_sent_once(
        self, faulty: FaultyGateway, client: Client, system: System, caplog: pytest.LogCaptureFixture
    ) -> None:
        recipient = unique("lib-lost")
        client.put_recipient(recipient, slack_id="U0LIB0006")
        # Larger than a TLS 1.2 handshake: the proxy lets the whole request through, the gateway
        # stores it, and the connection is reset as the 201 starts.
        message = f"{recipient} " + "x" * 9000
        caplog.set_level(logging.INFO, logger="notifications_client")
        with faulty.client(tls12=True) as retrying:
            faulty.proxy.drop_next_answer(after_request_bytes=6000)
            accepted = retrying.send(recipient, message=message)
        assert faulty.proxy.answers_dropped == 1
        assert accepted.replayed is True, "the retry was answered from the stored first attempt"
        assert notifications_with(system.database_url, message) == 1
        assert len(retries_logged(caplog)) == 1
        assert client.wait_for(accepted.id, status="sent", timeout=60).deliveries[Channel.SLACK].status == DeliveryStatus.SENT

    def test_refused_connections_are_retried_until_the_gateway_is_back(self, faulty: FaultyGateway, client: Client, system: System) -> None:
        recipient = unique("lib-refused")
        client.put_recipient(recipient, slack_id="U0LIB0007")
        message = f"{recipient} while the gateway is away"
        faulty.proxy.cut()
        restore = threading.Timer(1.5, faulty.proxy.restore)
        restore.start()
        try:
            with faulty.client() as retrying:
                started = time.monotonic()
                accepted = retrying.send(recipient, message=message)
            assert time.monotonic() - started >= 1.4
        finally:
            restore.join()
        assert accepted.replayed is False and notifications_with(system.database_url, message) == 1

    def test_429_waits_for_retry_after(self, faulty: FaultyGateway, client: Client, caplog: pytest.LogCaptureFixture) -> None:
        recipient = unique("lib-429")
        client.put_recipient(recipient, slack_id="U0LIB0008")
        caplog.set_level(logging.INFO, logger="notifications_client")
        with faulty.client(LIMITED_CLIENT) as limited:
            limited.send(recipient, message="takes the one token")
            started = time.monotonic()
            limited.send(recipient, message="waits for the next")
            waited = time.monotonic() - started
        logged = retries_logged(caplog)
        assert logged and all("429 (Retry-After: " in line for line in logged)
        retry_after = sum(float(line.split("Retry-After: ")[1].rstrip(")")) for line in logged)
        assert retry_after >= 1 and waited >= retry_after

    def test_503_while_the_database_is_away_is_retried_after_retry_after_and_stored_once(
        self, faulty: FaultyGateway, client: Client, system: System, caplog: pytest.LogCaptureFixture
    ) -> None:
        recipient = unique("lib-503")
        client.put_recipient(recipient, slack_id="U0LIB0009")
        message = f"{recipient} through a database outage"
        caplog.set_level(logging.INFO, logger="notifications_client")
        faulty.database_proxy.cut()
        restore = threading.Timer(3.0, faulty.database_proxy.restore)
        restore.start()
        try:
            with faulty.client() as retrying:
                accepted = retrying.send(recipient, message=message)
        finally:
            restore.join()
        logged = retries_logged(caplog)
        assert any("503 (Retry-After: 2)" in line and "in 2.00 s" in line for line in logged), logged
        assert accepted.replayed is False and notifications_with(system.database_url, message) == 1


def test_installable_on_its_own(tmp_path: Path) -> None:
    """The package's own wheel, installed alone in a fresh virtualenv (its dependencies from the
    suite's, none of the services'), imports and makes a client: it needs nothing of this repository."""
    uv = find_uv()
    assert uv is not None, "uv is needed to build the wheel (make install bootstraps it)"

    def run(*argv: str | Path, **env: str) -> str:
        result = subprocess.run([str(arg) for arg in argv], capture_output=True, text=True, timeout=120, cwd=tmp_path, env={**os.environ, **env}, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout

    run(uv, "build", "--offline", "-q", "--wheel", "--out-dir", tmp_path / "dist", REPO_ROOT / "notifications_client")
    (wheel,) = (tmp_path / "dist").glob("notifications_client-*.whl")
    run(uv, "venv", "-q", "--offline", "--python", sys.executable, tmp_path / "venv")
    python = tmp_path / "venv" / "bin" / "python"
    run(uv, "pip", "install", "-q", "--offline", "--no-deps", "--python", python, wheel)
    # httpx, pydantic and standardwebhooks from the suite's site-packages: on PYTHONPATH its .pth
    # files (the services' editable installs) are not read.
    dependencies = next(path for path in map(Path, sys.path) if path.name == "site-packages" and (path / "httpx").is_dir())
    probe = (
        "import importlib.util, ssl, notifications_client as n; "
        "c = n.Client(ssl_context=ssl.create_default_context()); c.close(); "
        "print(n.__file__, [m for m in ('gateway', 'shared', 'notifyctl') if importlib.util.find_spec(m)])"
    )
    printed = run(python, "-c", probe, PYTHONPATH=str(dependencies))
    assert printed.startswith(str(tmp_path / "venv")) and printed.rstrip().endswith("[]"), printed


class TestJobs:
    def test_dry_run_create_read_list_page_and_cancel(self, client: Client) -> None:
        template = unique("lib-job")
        client.put_template(template, {"email": {"subject": "For ((name))", "body": "Dear ((name))"}, "slack": "Hi ((name))"})
        csv = "email,slack_id,name\na@example.com,U0LIBJOB01,Ada\n,U0LIBJOB02,Bob\n"
        dry = client.create_job(csv, template=template, dry_run=True)
        assert (dry.rows, dry.channels, dry.errors) == (2, {Channel.SMS: 0, Channel.EMAIL: 1, Channel.SLACK: 2}, [])
        job = client.create_job(csv, template=template, name="lib", send_at=datetime.now(UTC) + timedelta(days=1))
        assert (job.name, job.rows, job.status, job.template.name) == ("lib", 2, "scheduled", template)
        assert client.job(job.id).counts == {"email": {"scheduled": 1}, "slack": {"scheduled": 2}}
        assert job.id in [listed.id for listed in client.jobs(limit=1000).items]
        page = client.job_notifications(job.id, limit=1)
        assert len(page.items) == 1 and page.next_cursor
        assert page.items[0].model_extra["job_id"] == str(job.id)
        cancelled = client.cancel_job(job.id)
        assert cancelled.status == "cancelled"
        assert cancelled.counts == {"email": {"cancelled": 1}, "slack": {"cancelled": 2}}

    def test_row_errors_are_a_validation_error_listing_them(self, client: Client) -> None:
        template = unique("lib-job")
        client.put_template(template, {"slack": "Hi"})
        with pytest.raises(ValidationError) as refused:
            client.create_job("slack_id\nlowercase\n", template=template)
        assert refused.value.message == "1 rows have errors"
        assert [(error["row"], error["column"]) for error in refused.value.body["errors"]] == [(2, "slack_id")]
        with pytest.raises(NotFound):
            client.job(uuid.uuid4())
