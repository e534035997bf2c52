"""gateway/recipients/schemas.py: contact validation and the recipient name pattern."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.errors import describe_validation_error
from gateway.recipients import schemas
from gateway.recipients.schemas import CONTACT_VALIDATORS, MAX_EMAIL_LENGTH, NAME_PATTERN, RecipientContacts, RecipientPreferences


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


def library_verdict(value: str) -> str:
    """What email-validator alone says of ``value``: the normalised address, or the refusal's sentence."""
    if len(value) > MAX_EMAIL_LENGTH:
        return f"email must be at most {MAX_EMAIL_LENGTH} characters"
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        return f"email {value!r} is not a valid address: {exc}"


def our_verdict(value: str) -> str:
    try:
        return CONTACT_VALIDATORS["email"](value)
    except ValueError as exc:
        return str(exc)


_ATEXT = "abcxyzABCXYZ0129_!#$%&'*+-/=?^`{|}~"
# Local parts: mostly dot-atom, with what leaves it (quotes, @, spaces, non-ASCII, misplaced dots)
# and the mailbox names email-validator lower-cases.
LOCAL_PARTS = st.one_of(
    st.text(alphabet=_ATEXT + ".", min_size=0, max_size=70),
    st.text(alphabet=_ATEXT + '."@ <>\\é\u0301', min_size=0, max_size=12),
    st.sampled_from(["Postmaster", "INFO", "abuse", "jane.doe", "x" * 200, '"quoted"', "a..b", ".a", "a."]),
)
# Domains: ASCII hostnames right and wrong (case, hyphens, R-LDH and Punycode labels, long labels
# and names, numeric and special-use TLDs), and a few that are not ASCII.
DOMAINS = st.one_of(
    st.text(alphabet="abcXYZ019.-", min_size=0, max_size=20),
    st.lists(st.text(alphabet="abZ09-", min_size=1, max_size=66), min_size=1, max_size=5).map(".".join),
    st.sampled_from([
        "example.com", "Example.COM", "EXAMPLE.com", "mail.example.co.uk", "a-b.example.com", "ab--c.example.com",
        "xn--bcher-kva.example", "XN--BCHER-KVA.example", "xn--zz.example", "example.123", "localhost", "example.test",
        "x.local", "x.invalid", "example.arpa", "-a.com", "a-.com", "a..com", ".a.com", "a.com.", "com",
        "b\u00fccher.example", "exa mple.com", ("a" * 63 + ".") * 3 + "com", "a" * 64 + ".com",
    ]),
)


class TestEmail:
    """The email validator's remembered domains (see ``_email``) change no verdict of email-validator's."""

    @settings(max_examples=600, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(local=LOCAL_PARTS, domain=DOMAINS, warm=st.booleans())
    def test_the_same_verdict_as_email_validator(self, local: str, domain: str, warm: bool) -> None:
        schemas._normalised_domains.clear()
        if warm:
            our_verdict(f"warm.up@{domain}")  # remembers the domain, if it is one
        value = f"{local}@{domain}"
        assert our_verdict(value) == library_verdict(value)
        assert our_verdict(value) == library_verdict(value)  # and again, the domain remembered now if it can be

    def test_a_domain_is_remembered_normalised(self) -> None:
        schemas._normalised_domains.clear()
        assert our_verdict("Jane@Example.COM") == "Jane@example.com"
        assert schemas._normalised_domains == {"Example.COM": "example.com"}
        assert our_verdict("Bob@Example.COM") == "Bob@example.com"
        assert our_verdict("Postmaster@Example.COM") == "postmaster@example.com"  # a mailbox name email-validator lower-cases

    def test_an_address_too_long_at_a_remembered_domain_is_refused(self) -> None:
        schemas._normalised_domains.clear()
        domain = ("a" * 63 + ".") * 3 + "com"
        assert our_verdict(f"jane@{domain}") == f"jane@{domain}"
        too_long = f"{'x' * 60}@{domain}"  # 256 characters; email-validator takes 254
        assert our_verdict(too_long) == library_verdict(too_long)
        assert "too long" in our_verdict(too_long)

    def test_a_refused_domain_is_not_remembered(self) -> None:
        schemas._normalised_domains.clear()
        assert our_verdict("jane@example.test") == library_verdict("jane@example.test")
        assert schemas._normalised_domains == {}


class TestQuietHours:
    def refusal(self, quiet_hours: object) -> tuple[str, str | None]:
        with pytest.raises(ValidationError) as caught:
            RecipientPreferences.model_validate({"quiet_hours": quiet_hours})
        error = caught.value.errors()[0]
        return describe_validation_error({**error, "loc": ("body", *error["loc"])})

    def test_stored_as_given(self) -> None:
        window = {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}
        assert RecipientPreferences.model_validate({"quiet_hours": window}).stored() == {"quiet_hours": window}

    def test_an_unknown_time_zone(self) -> None:
        assert self.refusal({"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}) == (
            "unknown time zone: 'Mars/Olympus'; give an IANA name such as Europe/Berlin",
            "quiet_hours",
        )

    @pytest.mark.parametrize("timezone", ["../../etc/passwd", "localtime", "", "europe/berlin"])
    def test_only_iana_names(self, timezone: str) -> None:
        assert self.refusal({"start": "22:00", "end": "07:00", "timezone": timezone})[0].startswith("unknown time zone")

    @pytest.mark.parametrize("start", ["24:00", "7:00", "07:60", "0700", 700])
    def test_times_are_hh_mm(self, start: object) -> None:
        assert self.refusal({"start": start, "end": "07:00", "timezone": "UTC"})[0] == "quiet_hours start must be a time as HH:MM, 00:00 to 23:59"

    def test_an_empty_window(self) -> None:
        assert self.refusal({"start": "07:00", "end": "07:00", "timezone": "UTC"})[0] == "quiet_hours start and end must differ"

    def test_every_field_is_needed_and_no_other(self) -> None:
        assert self.refusal({"start": "22:00", "timezone": "UTC"})[0] == "missing quiet_hours.end"
        assert self.refusal({"start": "22:00", "end": "07:00", "timezone": "UTC", "days": "weekdays"})[1] == "quiet_hours"
