"""gateway/content/rendering.py: placeholders and personalisation."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.content.rendering import CompiledTemplate, placeholder_key
from gateway.errors import BadRequestError


def template(**content: Any) -> CompiledTemplate:
    return CompiledTemplate.compile(name="t", version=1, content=content, category=None)


def refusal(compiled: CompiledTemplate, personalisation: dict[str, Any]) -> BadRequestError:
    with pytest.raises(BadRequestError) as caught:
        compiled.render(personalisation)
    return caught.value


class TestPlaceholders:
    def test_each_once_in_template_order_as_first_spelled(self) -> None:
        compiled = template(
            sms="((Order ref)) for ((first name))",
            email={"subject": "((first_name)): ((gift??a gift))", "body": "((ORDER-REF)) ((address))"},
            slack="((extra))",
        )
        assert [p.name for p in compiled.placeholders] == ["Order ref", "first name", "gift", "address", "extra"]

    @pytest.mark.parametrize("name", ["First name", "first_name", "FIRST-NAME", "firstname", " first  name "])
    def test_keys_ignore_case_spaces_underscores_and_hyphens(self, name: str) -> None:
        assert placeholder_key(name) == "firstname"

    @pytest.mark.parametrize("text", ["(( ))", "((_))", "((-- __))"])
    def test_a_placeholder_needs_a_name(self, text: str) -> None:
        with pytest.raises(BadRequestError, match="placeholder without a name") as caught:
            template(sms=f"Hi {text}")
        assert caught.value.field == "sms"

    @pytest.mark.parametrize("text", ["((a?b))", "(single)", "((unclosed", "(( a (b) ))", "a)) b(("])
    def test_what_is_not_a_placeholder_is_text(self, text: str) -> None:
        compiled = template(sms=text)
        assert compiled.placeholders == ()
        assert compiled.render({}).sms.body == text


class TestRender:
    def test_values_fill_every_channel(self) -> None:
        compiled = template(
            sms="Hi ((first name)), order ((order ref)).",
            email={"subject": "Order ((order ref))", "body": "Dear ((First Name))"},
            slack="*((order ref))* for ((first name))",
        )
        content = compiled.render({"First_Name": "Ada", "order-ref": "A-1"})
        assert content.sms.body == "Hi Ada, order A-1."
        assert (content.email.subject, content.email.body) == ("Order A-1", "Dear Ada")
        assert content.slack.text == "*A-1* for Ada"

    def test_only_the_channels_asked_for(self) -> None:
        content = template(sms="((a))", slack="((a))").render({"a": "x"}, ["slack"])
        assert (content.sms, content.slack.text) == (None, "x")

    def test_missing_values_are_named_in_template_order(self) -> None:
        compiled = template(sms="((first_name)) ((order_ref))", slack="((Extra)) ((first_name))")
        error = refusal(compiled, {"extra": "x", "unused": "y"})
        assert (error.message, error.field) == ("Missing personalisation: first_name, order_ref", "personalisation")

    def test_null_is_missing_and_unknown_keys_are_ignored(self) -> None:
        assert refusal(template(sms="((a))"), {"a": None, "b": "x"}).message == "Missing personalisation: a"

    def test_every_placeholder_is_needed_whatever_channels_are_rendered(self) -> None:
        compiled = template(sms="((code))", slack="((name))")
        assert refusal(compiled, {"name": "x"}).message == "Missing personalisation: code"

    @pytest.mark.parametrize("value", [True, 1, 1.0, "yes", "YES", " true ", "True", "1"])
    def test_the_conditional_shows_its_text_when_true_ish(self, value: object) -> None:
        compiled = template(sms="Order shipped.((gift?? It is a gift.))")
        assert compiled.render({"gift": value}).sms.body == "Order shipped. It is a gift."

    @pytest.mark.parametrize("value", [False, 0, 2, "no", "", "y", [1], "gift"])
    def test_the_conditional_shows_nothing_otherwise(self, value: object) -> None:
        assert template(sms="Order shipped.((gift?? It is a gift.))").render({"gift": value}).sms.body == "Order shipped."

    def test_lists_render_one_item_per_line(self) -> None:
        content = template(sms="Items:\n((items))").render({"items": ["tea", 2, True, 1.5]})
        assert content.sms.body == "Items:\ntea\n2\ntrue\n1.5"

    def test_numbers_and_booleans_as_json_writes_them(self) -> None:
        assert template(sms="((a)) ((b)) ((c))").render({"a": 42, "b": False, "c": 0.25}).sms.body == "42 false 0.25"

    def test_slack_values_are_escaped_but_not_the_templates_markup(self) -> None:
        content = template(slack="<!here> *((name))*", sms="((name))").render({"name": "<b>Tom & Jerry</b>"})
        assert content.slack.text == "<!here> *&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;*"
        assert content.sms.body == "<b>Tom & Jerry</b>"

    def test_a_value_is_never_read_for_placeholders(self) -> None:
        compiled = template(sms="((a)) and ((b))")
        assert compiled.render({"a": "((b))", "b": "((a??yes))"}).sms.body == "((b)) and ((a??yes))"

    def test_two_keys_for_one_placeholder_are_refused(self) -> None:
        error = refusal(template(sms="((first name))"), {"first_name": "Ada", "First Name": "Bob"})
        assert error.field == "personalisation" and "first_name" in error.message and "First Name" in error.message

    def test_values_that_are_not_text_numbers_or_lists_of_those(self) -> None:
        assert "must be text" in refusal(template(sms="((a))"), {"a": {"nested": 1}}).message
        assert "must be text" in refusal(template(sms="((a))"), {"a": [["nested"]]}).message

    def test_unfilled_is_the_shortest_rendering(self) -> None:
        compiled = template(sms="Hi ((name))((vip?? VIP))!", email={"subject": "((s))", "body": "b((x))"})
        unfilled = compiled.render_unfilled()
        assert (unfilled.sms.body, unfilled.email.subject, unfilled.email.body) == ("Hi !", "", "b")
