"""Unit tests of the gateway's pure pieces: validation, cursors, ids, request fingerprints and the
client identity read from a certificate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.auth import identity_from_der
from gateway.errors import BadRequestError, describe_validation_error
from gateway.notifications.schemas import NotificationAccepted, NotificationCreate
from gateway.notifications.service import fingerprint, uuid7
from gateway.notifications.stored import StoredNotification
from gateway.recipients.schemas import NAME_PATTERN, RecipientContacts
from gateway.recipients.service import decode_cursor, encode_cursor
from shared.settings import to_asyncpg_url


class TestRecipientContacts:
    def test_valid_contacts_are_normalised(self) -> None:
        contacts = RecipientContacts(phone_number="+14155552671", email="Jane@Example.COM", slack_id="U0123456789")
        assert contacts.phone_number == "+14155552671"
        assert contacts.email == "Jane@example.com"  # the domain is case-insensitive, the local part is not
        assert contacts.has_contact

    def test_blank_values_mean_absent(self) -> None:
        contacts = RecipientContacts.model_validate({"phone_number": "", "email": "  ", "slack_id": None})
        assert not contacts.has_contact

    @pytest.mark.parametrize(
        ("field", "value", "fragment"),
        [
            ("phone_number", "4155552671", "E.164"),
            ("phone_number", "+1415555267100000", "E.164"),
            ("phone_number", "+10000000000", "not a valid number"),
            ("email", "a@b", "not a valid address"),
            ("slack_id", "#general", "not a Slack id"),
        ],
    )
    def test_invalid_values_are_explained(self, field: str, value: str, fragment: str) -> None:
        with pytest.raises(ValidationError) as caught:
            RecipientContacts.model_validate({field: value})
        message, named = describe_validation_error(caught.value.errors()[0])
        assert named == field
        assert fragment in message
        assert message.startswith(field) or message.startswith(f"invalid {field}")

    @pytest.mark.parametrize("name", ["jane", "Jane Doe", "ops.team+alerts", "x" * 128, "José", "o'brien", "a"])
    def test_good_names(self, name: str) -> None:
        assert NAME_PATTERN.fullmatch(name)

    @pytest.mark.parametrize("name", ["", " lead", "trail ", "x" * 129, "a/b", "a;b", "tab\there", "-x"])
    def test_bad_names(self, name: str) -> None:
        assert not NAME_PATTERN.fullmatch(name)


class TestNotificationCreate:
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"message": "m"}, "missing recipient"),
            ({"recipient": " ", "message": "m"}, "missing recipient"),
            ({"recipient": "r"}, "missing message"),
            ({"recipient": "r", "message": ""}, "missing message"),
        ],
    )
    def test_original_messages(self, body: dict, message: str) -> None:
        with pytest.raises(ValidationError) as caught:
            NotificationCreate.model_validate(body)
        assert describe_validation_error(caught.value.errors()[0])[0] == message

    def test_channels_must_be_distinct_and_known(self) -> None:
        with pytest.raises(ValidationError):
            NotificationCreate.model_validate({"recipient": "r", "message": "m", "channels": ["sms", "sms"]})
        with pytest.raises(ValidationError):
            NotificationCreate.model_validate({"recipient": "r", "message": "m", "channels": ["pager"]})

    def test_fingerprint_ignores_key_order_but_not_content(self) -> None:
        a = NotificationCreate.model_validate({"recipient": "r", "message": "m", "channels": ["sms"]})
        b = NotificationCreate.model_validate({"channels": ["sms"], "message": "m", "recipient": "r"})
        c = NotificationCreate.model_validate({"recipient": "r", "message": "m2", "channels": ["sms"]})
        assert fingerprint(a) == fingerprint(b) != fingerprint(c)


class TestAcceptedJson:
    @pytest.mark.parametrize("subject", [None, "Order update"])
    @pytest.mark.parametrize("created_at", [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)])
    def test_same_bytes_as_the_model(self, subject: str | None, created_at: datetime) -> None:
        row = {
            "id": uuid7(), "recipient": "José", "message": 'a "quoted" \\ line\nand 🎉', "subject": subject,
            "channels": ["sms", "email"], "created_at": created_at, "client": "acme",
            "phone_number": "+14155552671", "email": "jose@example.com", "slack_id": None,
        }
        stored = StoredNotification.from_row(row)
        assert stored.accepted_json() == NotificationAccepted(**row).model_dump_json(exclude_none=True).encode()


class TestValidationDescriptions:
    def test_invalid_json(self) -> None:
        assert describe_validation_error({"type": "json_invalid", "loc": ("body", 0)}) == ("the request body is not valid JSON", None)

    def test_builtin_errors_name_the_field(self) -> None:
        message, field = describe_validation_error({"type": "string_type", "loc": ("body", "recipient"), "msg": "Input should be a valid string"})
        assert (message, field) == ("invalid recipient: Input should be a valid string", "recipient")


class TestCursor:
    def test_round_trip(self) -> None:
        for name in ("jane", "José Núñez", "a+b@c"):
            assert decode_cursor(encode_cursor(name)) == name

    @pytest.mark.parametrize("cursor", ["!!!", "a", "%%%", "//=="])
    def test_garbage_is_a_bad_request(self, cursor: str) -> None:
        with pytest.raises(BadRequestError):
            decode_cursor(cursor)


class TestUuid7:
    def test_version_variant_and_order(self) -> None:
        ids = [uuid7() for _ in range(50)]
        assert all(value.version == 7 and value.variant == uuid.RFC_4122 for value in ids)
        milliseconds = [value.int >> 80 for value in ids]
        assert milliseconds == sorted(milliseconds)
        assert abs(milliseconds[0] / 1000 - datetime.now(UTC).timestamp()) < 5


class TestIdentity:
    def test_identity_from_a_real_certificate(self, tmp_path: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        from mtls import pki

        pki.init_pki(tmp_path)
        cert = x509.load_pem_x509_certificate((tmp_path / "client-notifications.crt.pem").read_bytes())
        identity = identity_from_der(cert.public_bytes(Encoding.DER))
        assert identity.common_name == "client-notifications"
        assert identity.roles == frozenset({"notifications"})
        assert identity.serial == format(cert.serial_number, "x")
        assert len(identity.fingerprint) == 64


class TestSettings:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("postgresql://u@h:5432/d", "postgresql+asyncpg://u@h:5432/d"),
            ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
            ("postgresql+asyncpg://u@/d?host=/tmp", "postgresql+asyncpg://u@/d?host=/tmp"),
        ],
    )
    def test_database_url_forms(self, url: str, expected: str) -> None:
        assert to_asyncpg_url(url) == expected

    def test_other_schemes_refused(self) -> None:
        with pytest.raises(ValueError, match="postgresql://"):
            to_asyncpg_url("mysql://x")


def test_client_certificate_validity_window_is_respected_by_issuer(tmp_path: Path) -> None:
    """Guards the test fixtures: an 'expired' certificate really is expired."""
    from cryptography import x509

    from mtls import pki

    pki.init_pki(tmp_path)
    now = datetime.now(UTC)
    cert_path, _ = pki.issue_client_certificate(tmp_path, "old", pki.ROLES, not_valid_before=now - timedelta(days=3), not_valid_after=now - timedelta(days=1))
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.not_valid_after_utc < now
