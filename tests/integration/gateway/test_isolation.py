"""Per-client isolation: a client reads only its own notifications; a certificate with the role
``audit`` reads everyone's. Recipients stay shared (the README says so)."""

from __future__ import annotations

import secrets
import uuid

from harness.gateway import GatewayProcess


def _notification(gateway: GatewayProcess, client: str, recipient: str) -> str:
    with gateway.client(client) as http:
        answer = http.post("/notifications", json={"recipient": recipient, "message": f"isolation {secrets.token_hex(4)}"})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def _recipient(gateway: GatewayProcess) -> str:
    name = f"iso-{secrets.token_hex(4)}"
    with gateway.client("client") as http:
        assert http.put(f"/recipients/{name}", json={"email": f"{name}@example.com"}).status_code == 204
    return name


class TestReadingNotifications:
    def test_another_clients_notification_is_answered_as_an_unknown_id(self, gateway: GatewayProcess) -> None:
        recipient = _recipient(gateway)  # created by one client, used by another: recipients are shared
        theirs = _notification(gateway, "client-notifications", recipient)
        mine = _notification(gateway, "acme-billing", recipient)
        unknown = str(uuid.uuid4())
        with gateway.client("acme-billing") as http:
            refused = http.get(f"/notifications/{theirs}")
            not_found = http.get(f"/notifications/{unknown}")
            own = http.get(f"/notifications/{mine}")
        assert refused.status_code == not_found.status_code == 404
        assert refused.json() == {"message": f"no notification with id {theirs}"}
        assert not_found.json() == {"message": f"no notification with id {unknown}"}
        assert refused.headers["content-type"] == not_found.headers["content-type"]
        assert own.status_code == 200 and own.json()["client"] == "acme-billing"
        with gateway.client("client-notifications") as http:
            assert http.get(f"/notifications/{mine}").status_code == 404
            assert http.get(f"/notifications/{theirs}").status_code == 200

    def test_the_audit_role_reads_every_clients_notifications(self, gateway: GatewayProcess) -> None:
        recipient = _recipient(gateway)
        ids = {client: _notification(gateway, client, recipient) for client in ("client-notifications", "acme-billing")}
        # The local stack's client.crt.pem has every role, audit included.
        with gateway.client("client") as http:
            assert all(http.get(f"/notifications/{notification_id}").status_code == 200 for notification_id in ids.values())
        with gateway.client("auditor") as http:
            for client, notification_id in ids.items():
                answer = http.get(f"/notifications/{notification_id}")
                assert answer.status_code == 200, answer.text
                assert answer.json()["client"] == client
            # Reading is all it may do.
            sent = http.post("/notifications", json={"recipient": recipient, "message": "hi"})
            assert sent.status_code == 403
            assert "lacks the role 'notifications'" in sent.json()["message"]
            assert http.get("/callbacks").status_code == 403

    def test_without_either_role_reading_is_forbidden(self, gateway: GatewayProcess) -> None:
        with gateway.client("client-recipients") as http:
            answer = http.get(f"/notifications/{uuid.uuid4()}")
        assert answer.status_code == 403
        assert "lacks the role 'notifications' or 'audit'" in answer.json()["message"]
