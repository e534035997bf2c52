"""gateway/notifications/plan.py: one notification's plan, from the request, the recipient and the template."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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


# The clock these plans are made at (a Wednesday noon in Berlin).
NOW = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)


def plan(
    body: dict[str, Any],
    recipient: RecipientRecord | None = ALL,
    template: CompiledTemplate | None = None,
    critical: set[str] | None = None,
    now: datetime = NOW,
) -> Plan:
    return plan_notification(
        NotificationCreate.model_validate({"recipient": "jane", **body}),
        recipient=recipient,
        template=template,
        critical_categories=critical or {"security"},
        now=now,
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


BERLIN_NIGHTS = {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


class TestReleaseTime:
    def test_no_send_at_and_no_quiet_hours_is_at_once(self) -> None:
        assert plan({"message": "hi"}).release_at is None

    def test_send_at_ahead_is_held_until_then(self) -> None:
        assert plan({"message": "hi", "send_at": "2026-12-02T13:30:00+01:00"}).release_at == at("2026-12-02T12:30:00+00:00")

    def test_send_at_up_to_60_s_late_is_sent_at_once(self) -> None:
        assert plan({"message": "hi", "send_at": (NOW - timedelta(seconds=60)).isoformat()}).release_at is None
        assert plan({"message": "hi", "send_at": NOW.isoformat()}).release_at is None

    def test_send_at_further_in_the_past_is_refused(self) -> None:
        error = refused({"message": "hi", "send_at": (NOW - timedelta(seconds=61)).isoformat()})
        assert (error.field, error.message) == ("send_at", "send_at is in the past")

    def test_up_to_7_days_ahead(self) -> None:
        limit = NOW + timedelta(days=7)
        assert plan({"message": "hi", "send_at": limit.isoformat()}).release_at == limit
        error = refused({"message": "hi", "send_at": (limit + timedelta(seconds=1)).isoformat()})
        assert (error.field, error.message) == ("send_at", "send_at is more than 7 days ahead; the limit is 7 days")

    def test_every_channel_skipped_holds_nothing(self) -> None:
        recipient = preferring({"channels": {"sms": False, "email": False, "slack": False}})
        assert plan({"message": "hi", "send_at": "2026-12-02T13:30:00+01:00"}, recipient=recipient).release_at is None


class TestQuietHours:
    """Held until the window ends in the recipient's zone, by a clock the test sets."""

    def test_outside_the_window_at_once(self) -> None:
        assert plan({"message": "hi"}, recipient=preferring(BERLIN_NIGHTS)).release_at is None

    def test_before_midnight_held_until_the_morning(self) -> None:
        evening = at("2026-12-02T22:30:00+01:00")
        assert plan({"message": "hi"}, recipient=preferring(BERLIN_NIGHTS), now=evening).release_at == at("2026-12-03T07:00:00+01:00")

    def test_after_midnight_held_until_the_same_morning(self) -> None:
        night = at("2026-12-03T03:00:00+01:00")
        assert plan({"message": "hi"}, recipient=preferring(BERLIN_NIGHTS), now=night).release_at == at("2026-12-03T07:00:00+01:00")

    def test_the_end_itself_is_outside(self) -> None:
        assert plan({"message": "hi"}, recipient=preferring(BERLIN_NIGHTS), now=at("2026-12-03T07:00:00+01:00")).release_at is None

    def test_a_send_at_inside_the_window_is_held_too(self) -> None:
        planned = plan({"message": "hi", "send_at": "2026-12-02T23:00:00+01:00"}, recipient=preferring(BERLIN_NIGHTS))
        assert planned.release_at == at("2026-12-03T07:00:00+01:00")

    def test_the_night_the_clocks_go_forward(self) -> None:
        # 29 March 2026: 02:00 CET becomes 03:00 CEST; 07:00 is then 05:00 UTC, not 06:00.
        planned = plan({"message": "hi"}, recipient=preferring(BERLIN_NIGHTS), now=at("2026-03-28T22:30:00+01:00"))
        assert planned.release_at == at("2026-03-29T05:00:00+00:00")

    def test_the_night_the_clocks_go_back(self) -> None:
        # 25 October 2026: 03:00 CEST becomes 02:00 CET; 07:00 is then 06:00 UTC.
        planned = plan({"message": "hi"}, recipient=preferring(BERLIN_NIGHTS), now=at("2026-10-24T22:30:00+02:00"))
        assert planned.release_at == at("2026-10-25T06:00:00+00:00")

    def test_a_window_ending_at_a_time_the_clocks_skip_ends_when_they_jump(self) -> None:
        recipient = preferring({"quiet_hours": {"start": "01:00", "end": "02:30", "timezone": "Europe/Berlin"}})
        planned = plan({"message": "hi"}, recipient=recipient, now=at("2026-03-29T01:10:00+01:00"))
        assert planned.release_at == at("2026-03-29T03:00:00+02:00")

    def test_a_window_ending_at_a_time_shown_twice_ends_at_the_next_one(self) -> None:
        recipient = preferring({"quiet_hours": {"start": "01:00", "end": "02:30", "timezone": "Europe/Berlin"}})
        first_pass = plan({"message": "hi"}, recipient=recipient, now=at("2026-10-25T02:10:00+02:00"))
        second_pass = plan({"message": "hi"}, recipient=recipient, now=at("2026-10-25T02:10:00+01:00"))
        assert (first_pass.release_at, second_pass.release_at) == (at("2026-10-25T02:30:00+02:00"), at("2026-10-25T02:30:00+01:00"))

    def test_a_daytime_window_in_another_zone(self) -> None:
        recipient = preferring({"quiet_hours": {"start": "09:00", "end": "17:00", "timezone": "America/New_York"}})
        planned = plan({"message": "hi"}, recipient=recipient, now=at("2026-12-02T10:00:00-05:00"))
        assert planned.release_at == at("2026-12-02T17:00:00-05:00")

    def test_critical_categories_ignore_them(self) -> None:
        night = at("2026-12-02T23:00:00+01:00")
        assert plan({"message": "hi", "category": "security"}, recipient=preferring(BERLIN_NIGHTS), now=night).release_at is None


class TestDeliveryFirst:
    def test_the_channels_in_the_order_asked_and_only_the_first_published(self) -> None:
        planned = plan({"message": "hi", "channels": ["slack", "sms", "email"], "delivery": "first"})
        assert planned.channels == [Channel.SLACK, Channel.SMS, Channel.EMAIL]
        assert (planned.published, planned.skipped) == ([Channel.SLACK], {})

    def test_all_keeps_the_api_order_and_publishes_every_channel(self) -> None:
        planned = plan({"message": "hi", "channels": ["slack", "sms"]})
        assert planned.channels == planned.published == [Channel.SMS, Channel.SLACK]

    def test_a_channel_the_recipient_has_no_contact_for_is_skipped_over(self) -> None:
        planned = plan({"message": "hi", "channels": ["sms", "email"], "delivery": "first"}, recipient=EMAIL_ONLY)
        assert planned.channels == [Channel.SMS, Channel.EMAIL]
        assert planned.skipped == {Channel.SMS: "recipient has no sms contact"}
        assert planned.published == [Channel.EMAIL]
        assert planned.sms is not None  # targeted (and skipped): the status shows its size as for "all"

    def test_none_of_the_channels_is_a_400_as_for_all(self) -> None:
        error = refused({"message": "hi", "channels": ["sms", "slack"], "delivery": "first"}, recipient=EMAIL_ONLY)
        assert error.message == "recipient 'joe' has no sms, slack contact; its channels are: email"
        assert error.field == "channels"

    def test_an_opted_out_channel_is_skipped_over(self) -> None:
        planned = plan({"message": "hi", "channels": ["sms", "email"], "delivery": "first"}, recipient=preferring({"channels": {"sms": False}}))
        assert (planned.skipped, planned.published) == ({Channel.SMS: "recipient turned off sms"}, [Channel.EMAIL])

    def test_quiet_hours_hold_the_first_channel_and_all_skipped_holds_nothing(self) -> None:
        recipient = preferring({"channels": {"sms": False}, "quiet_hours": {"start": "00:00", "end": "23:59", "timezone": "UTC"}}, EMAIL_ONLY)
        planned = plan({"message": "hi", "channels": ["sms", "email"], "delivery": "first"}, recipient=recipient)
        assert planned.published == [Channel.EMAIL] and planned.release_at is not None  # held by the quiet hours
        none = plan({"message": "hi", "channels": ["sms"], "delivery": "first"}, recipient=preferring({"channels": {"sms": False}}))
        assert (none.published, none.release_at) == ([], None)

    def test_every_channel_that_may_be_sent_is_checked_against_its_limits(self) -> None:
        error = refused({"message": "x" * 2000, "channels": ["email", "sms"], "delivery": "first"})
        assert "too long for sms" in error.message

    def test_a_template_lacking_a_channel_is_still_a_400(self) -> None:
        error = refused({"template": "order", "personalisation": {"ref": "A1", "name": "J"}, "channels": ["slack", "sms"], "delivery": "first"}, template=ORDER)
        assert error.message == "template 'order' has no slack content; its channels are: sms, email"
