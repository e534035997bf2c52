"""gateway/notifications/plan.py: one notification's plan, from the request, the recipient and the template."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.content.rendering import CompiledTemplate
from gateway.errors import BadRequestError
from gateway.notifications.plan import Plan, RecipientRecord, plan_notification
from gateway.notifications.schemas import NotificationCreate
from gateway.recipients.preferences import Preferences
from shared.channels import Channel

ALL = RecipientRecord("jane", "+14155552671", "jane@example.com", "U0123456789")
EMAIL_ONLY = RecipientRecord("joe", None, "joe@example.com", None)
ORDER = CompiledTemplate.compile(
    name="order",
    version=3,
    content={"sms": "Order ((ref)) shipped", "email": {"subject": "Order ((ref))", "body": "Dear ((name))"}},
    category="orders",
)


def plan(body: dict[str, Any], recipient: RecipientRecord | None = ALL, template: CompiledTemplate | None = None, critical: set[str] | None = None) -> Plan:
    return plan_notification(
        NotificationCreate.model_validate({"recipient": "jane", **body}),
        recipient=recipient,
        template=template,
        critical_categories=critical or {"security"},
    )


def refused(*args: Any, **kwargs: Any) -> BadRequestError:
    with pytest.raises(BadRequestError) as caught:
        plan(*args, **kwargs)
    return caught.value


def preferring(document: dict[str, Any], recipient: RecipientRecord = ALL) -> RecipientRecord:
    return RecipientRecord(recipient.name, recipient.phone_number, recipient.email, recipient.slack_id, Preferences(document))


class TestChannels:
    def test_a_message_goes_to_every_channel_the_recipient_has(self) -> None:
        planned = plan({"message": "hi"})
        assert (planned.channels, planned.published, planned.category, planned.content) == (list(Channel), list(Channel), "general", None)

    def test_a_template_to_those_it_has_content_for(self) -> None:
        planned = plan({"template": "order", "personalisation": {"ref": "A1", "name": "Jane"}}, template=ORDER)
        assert planned.channels == [Channel.SMS, Channel.EMAIL]
        assert planned.content is not None and planned.content.sms.body == "Order A1 shipped"
        assert planned.category == "orders"

    def test_a_requested_channel_the_template_lacks_is_named(self) -> None:
        error = refused({"template": "order", "personalisation": {"ref": "A1", "name": "J"}, "channels": ["slack"]}, template=ORDER)
        assert (error.field, error.message) == ("channels", "template 'order' has no slack content; its channels are: sms, email")

    def test_no_channel_in_common_with_the_template(self) -> None:
        slack_only = RecipientRecord("sam", None, None, "U0123456789")
        error = refused({"template": "order", "personalisation": {"ref": "A1", "name": "J"}}, recipient=slack_only, template=ORDER)
        assert error.field == "template" and "has none of them" in error.message

    def test_unknown_recipient_and_missing_contact(self) -> None:
        assert refused({"message": "hi"}, recipient=None).message == "unknown recipient: 'jane'"
        error = refused({"message": "hi", "channels": ["sms"]}, recipient=EMAIL_ONLY)
        assert error.message == "recipient 'joe' has no sms contact; its channels are: email"

    def test_the_request_category_wins_over_the_templates(self) -> None:
        planned = plan({"template": "order", "personalisation": {"ref": "A1", "name": "J"}, "category": "billing"}, template=ORDER)
        assert planned.category == "billing"


class TestLimits:
    def test_too_long_for_sms_names_the_channel_the_length_and_the_limit(self) -> None:
        error = refused({"message": "x" * 2000})
        assert error.field == "message"
        assert error.message == "message too long for sms: 2,000 bytes as GSM-7 (14 fragments); SNS takes at most 1,600 bytes"

    def test_fine_without_sms(self) -> None:
        assert plan({"message": "x" * 2000}, recipient=EMAIL_ONLY).channels == [Channel.EMAIL]
        assert plan({"message": "x" * 2000, "channels": ["email", "slack"]}).sms is None

    def test_fine_when_sms_is_turned_off(self) -> None:
        planned = plan({"message": "x" * 2000}, recipient=preferring({"channels": {"sms": False}}))
        assert planned.skipped == {Channel.SMS: "recipient turned off sms"}

    def test_the_sms_length_is_reported(self) -> None:
        assert plan({"message": "ж" * 71}).sms.fragments == 2  # type: ignore[union-attr]

    def test_a_rendered_template_too_long_for_sms(self) -> None:
        error = refused({"template": "order", "personalisation": {"ref": "€" * 800, "name": "J"}}, template=ORDER)
        assert error.field == "template" and error.message.startswith("the rendered template too long for sms: 1,614 bytes as GSM-7")

    def test_a_rendered_subject_with_a_line_break(self) -> None:
        error = refused({"template": "order", "personalisation": {"ref": ["A1", "A2"], "name": "J"}, "channels": ["email"]}, template=ORDER)
        assert error.message == "email subject must be one line, without CR or LF"

    def test_a_rendered_slack_text_too_long(self) -> None:
        long = CompiledTemplate.compile(name="long", version=1, content={"slack": "((text))"}, category=None)
        error = refused({"template": "long", "personalisation": {"text": "x" * 40_001}}, template=long)
        assert "too long for slack: 40,001 characters; Slack takes at most 40,000" in error.message


class TestPreferences:
    def test_a_channel_turned_off_is_skipped_with_the_reason(self) -> None:
        planned = plan({"message": "hi"}, recipient=preferring({"channels": {"email": False, "sms": True}}))
        assert planned.skipped == {Channel.EMAIL: "recipient turned off email"}
        assert planned.published == [Channel.SMS, Channel.SLACK]

    def test_a_channel_turned_off_for_a_category(self) -> None:
        recipient = preferring({"categories": {"marketing": {"email": False}}})
        assert plan({"message": "hi", "category": "marketing"}, recipient=recipient).skipped == {
            Channel.EMAIL: "recipient turned off email for marketing"
        }
        assert plan({"message": "hi", "category": "orders"}, recipient=recipient).skipped == {}

    def test_every_channel_skipped_is_still_a_plan(self) -> None:
        planned = plan({"message": "hi"}, recipient=preferring({"channels": {"sms": False, "email": False, "slack": False}}))
        assert planned.published == [] and len(planned.skipped) == 3

    def test_critical_categories_ignore_opt_outs(self) -> None:
        recipient = preferring({"channels": {"sms": False}, "categories": {"security": {"email": False}}})
        assert plan({"message": "reset", "category": "security"}, recipient=recipient).skipped == {}
        assert plan({"message": "x", "category": "fraud"}, recipient=recipient, critical={"fraud"}).skipped == {}


class TestSuppressions:
    def suppressed(self, reasons: dict[str, str], document: dict[str, Any] | None = None) -> RecipientRecord:
        return RecipientRecord(
            ALL.name, ALL.phone_number, ALL.email, ALL.slack_id, Preferences(document) if document else None, suppressed=reasons
        )

    def test_a_suppressed_address_is_skipped_with_the_suppressions_reason(self) -> None:
        planned = plan({"message": "hi"}, recipient=self.suppressed({"email": "complaint (abuse)"}))
        assert planned.skipped == {Channel.EMAIL: "address suppressed: complaint (abuse)"}
        assert planned.published == [Channel.SMS, Channel.SLACK]

    def test_a_critical_category_does_not_override_a_suppression(self) -> None:
        recipient = self.suppressed({"sms": "opted out: Phone is currently opted out"}, {"channels": {"email": False}})
        assert plan({"message": "reset", "category": "security"}, recipient=recipient).skipped == {
            Channel.SMS: "address suppressed: opted out: Phone is currently opted out"
        }

    def test_the_suppression_is_the_reason_given_when_the_channel_is_also_turned_off(self) -> None:
        recipient = self.suppressed({"email": "bounced (Permanent/General)"}, {"channels": {"email": False, "slack": False}})
        assert plan({"message": "hi"}, recipient=recipient).skipped == {
            Channel.EMAIL: "address suppressed: bounced (Permanent/General)",
            Channel.SLACK: "recipient turned off slack",
        }

    def test_a_suppression_of_a_channel_not_targeted_changes_nothing(self) -> None:
        planned = plan({"message": "hi", "channels": ["slack"]}, recipient=self.suppressed({"email": "complaint"}))
        assert planned.skipped == {} and planned.published == [Channel.SLACK]


class TestContentSize:
    def test_a_value_repeated_past_what_sns_takes_stops_the_rendering(self) -> None:
        repeated = CompiledTemplate.compile(name="r", version=1, content={"email": {"subject": "s", "body": "((a))" * 1000}}, category=None)
        error = refused({"template": "r", "personalisation": {"a": "x" * 60_000}}, template=repeated)
        assert error.field == "personalisation" and "over 256,000 characters" in error.message

    def test_content_over_what_an_sns_message_takes(self) -> None:
        wide = CompiledTemplate.compile(name="w", version=1, content={"email": {"subject": "s", "body": "((a))((b))"}}, category=None)
        error = refused({"template": "w", "personalisation": {"a": "é" * 100_000, "b": "é" * 100_000}}, template=wide)
        assert error.field == "template"
        assert error.message.startswith("the rendered template is 400,0") and "at most 256,000" in error.message
