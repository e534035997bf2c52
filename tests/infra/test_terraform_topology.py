"""terraform/ provisions what the Python code expects.

The messaging module must build the topology of shared/topology.py (names, redrive, timeouts, raw
delivery, filter policies, queue policy), and every environment variable the compute module gives
a container must be a real setting of that service. Both read the HCL with the parser checkov
ships (module ``hcl2``), without any provider.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest

from shared import topology
from shared.settings import environment_names

REPO = Path(__file__).resolve().parents[2]
MESSAGING = REPO / "terraform" / "modules" / "messaging" / "main.tf"
COMPUTE = REPO / "terraform" / "modules" / "compute" / "main.tf"
INTERPOLATION = re.compile(r"'\$\{(?P<reference>[^}]+)\}'")


def _parser_wraps_values() -> bool:
    # Some python-hcl2 versions wrap every attribute value in a one-element list.
    return hcl2.loads("a = 1\n")["a"] == [1]


WRAPPED = _parser_wraps_values()


def _unwrap(value: Any) -> Any:
    return value[0] if WRAPPED and isinstance(value, list) and len(value) == 1 else value


def _load(path: Path) -> dict[str, Any]:
    with path.open() as file:
        return hcl2.load(file)


def _locals(document: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in document.get("locals", []):
        merged.update({name: _unwrap(value) for name, value in block.items() if not name.startswith("__")})
    return merged


def _resource(document: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    for block in document.get("resource", []):
        if name in block.get(kind, {}):
            return {key: _unwrap(value) for key, value in block[kind][name].items()}
    raise AssertionError(f"{kind}.{name} is not in the module")


def _data(document: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    for block in document.get("data", []):
        if name in block.get(kind, {}):
            return block[kind][name]
    raise AssertionError(f"data.{kind}.{name} is not in the module")


def _evaluate(expression: Any, *, local_values: dict[str, Any], channel: str) -> Any:
    """Evaluate the few expression shapes the module uses, for one for_each key (`channel`: a key
    of ``local.queues``, the channel and ``_bulk`` for the bulk lane).

    ``${local.x}``, ``${each.key}`` and ``${each.value.x}`` become their values; ``jsonencode({...})``
    becomes the object it encodes, with other references left as ``${...}`` strings.
    """
    if not isinstance(expression, str) or not expression.startswith("${"):
        return expression

    def value_of(reference: str) -> Any:
        reference = reference.strip()
        if reference == "each.key":
            return channel
        if reference.startswith("each.value."):
            return local_values["queues"][channel][reference.removeprefix("each.value.")]
        if reference.startswith("local."):
            return local_values[reference.removeprefix("local.")]
        return "${" + reference.replace("each.key", channel) + "}"

    inner = expression[2:-1]
    match = re.fullmatch(r"jsonencode\((?P<body>.*)\)", inner, flags=re.DOTALL)
    if match is None:
        return value_of(inner)
    body = INTERPOLATION.sub(lambda m: repr(value_of(m["reference"])), match["body"])
    return ast.literal_eval(body)


@pytest.fixture(scope="module")
def messaging() -> dict[str, Any]:
    return _load(MESSAGING)


@pytest.fixture(scope="module")
def messaging_locals(messaging: dict[str, Any]) -> dict[str, Any]:
    return _locals(messaging)


def _key(queues: topology.LaneQueues) -> str:
    """The queue's key in the module's ``local.queues``."""
    return queues.channel.value if queues.lane is topology.Lane.STANDARD else f"{queues.channel.value}_bulk"


QUEUES = {_key(queues): queues for queues in topology.ALL_QUEUES}
CHANNELS = list(QUEUES)


class TestMessagingModule:
    def test_topic_name(self, messaging: dict[str, Any], messaging_locals: dict[str, Any]) -> None:
        topic = _resource(messaging, "aws_sns_topic", "notifications")
        assert _evaluate(topic["name"], local_values=messaging_locals, channel="") == topology.TOPIC_NAME

    def test_one_queue_and_dead_letter_queue_per_channel_with_the_topology_names(
        self, messaging_locals: dict[str, Any]
    ) -> None:
        expected = {
            key: {"channel": queues.channel.value, "lane": queues.lane.value, "queue": queues.queue, "dead_letter_queue": queues.dead_letter_queue}
            for key, queues in QUEUES.items()
        }
        assert messaging_locals["queues"] == expected

    @pytest.mark.parametrize("channel", CHANNELS)
    def test_queue_resources_are_named_from_the_channel_map(
        self, messaging: dict[str, Any], messaging_locals: dict[str, Any], channel: str
    ) -> None:
        queue = _resource(messaging, "aws_sqs_queue", "channel")
        dead_letter = _resource(messaging, "aws_sqs_queue", "dead_letter")
        assert queue["for_each"] == dead_letter["for_each"] == "${local.queues}"
        expected = QUEUES[channel]
        assert _evaluate(queue["name"], local_values=messaging_locals, channel=channel) == expected.queue
        assert _evaluate(dead_letter["name"], local_values=messaging_locals, channel=channel) == expected.dead_letter_queue

    @pytest.mark.parametrize("channel", CHANNELS)
    def test_redrive_to_the_channels_dead_letter_queue_after_max_receive_count(
        self, messaging: dict[str, Any], messaging_locals: dict[str, Any], channel: str
    ) -> None:
        queue = _resource(messaging, "aws_sqs_queue", "channel")
        redrive = _evaluate(queue["redrive_policy"], local_values=messaging_locals, channel=channel)
        assert redrive == {
            "deadLetterTargetArn": f"${{aws_sqs_queue.dead_letter[{channel}].arn}}",
            "maxReceiveCount": topology.MAX_RECEIVE_COUNT,
        }

    def test_queue_attributes_match_the_topology(self, messaging: dict[str, Any], messaging_locals: dict[str, Any]) -> None:
        queue = _resource(messaging, "aws_sqs_queue", "channel")
        dead_letter = _resource(messaging, "aws_sqs_queue", "dead_letter")
        expected = topology.queue_attributes("arn:placeholder")

        def attribute(resource: dict[str, Any], name: str) -> str:
            return str(_evaluate(resource[name], local_values=messaging_locals, channel=""))

        assert attribute(queue, "visibility_timeout_seconds") == expected["VisibilityTimeout"]
        assert attribute(queue, "message_retention_seconds") == expected["MessageRetentionPeriod"]
        assert attribute(queue, "receive_wait_time_seconds") == expected["ReceiveMessageWaitTimeSeconds"]
        assert attribute(dead_letter, "message_retention_seconds") == str(topology.DLQ_RETENTION_SECONDS)

    @pytest.mark.parametrize("channel", CHANNELS)
    def test_subscription_delivers_raw_messages_filtered_on_the_channel(
        self, messaging: dict[str, Any], messaging_locals: dict[str, Any], channel: str
    ) -> None:
        subscription = _resource(messaging, "aws_sns_topic_subscription", "channel")
        assert subscription["for_each"] == "${local.queues}"
        assert subscription["topic_arn"] == "${aws_sns_topic.notifications.arn}"
        assert subscription["protocol"] == "sqs"
        assert subscription["endpoint"] == "${aws_sqs_queue.channel[each.key].arn}"
        assert subscription["raw_message_delivery"] is True
        assert subscription["filter_policy_scope"] == "MessageAttributes"
        filter_policy = _evaluate(subscription["filter_policy"], local_values=messaging_locals, channel=channel)
        assert filter_policy == topology.filter_policy(QUEUES[channel].channel, QUEUES[channel].lane)

    def test_queue_policy_lets_only_the_topic_send(self, messaging: dict[str, Any]) -> None:
        queue_policy = _resource(messaging, "aws_sqs_queue_policy", "channel")
        assert queue_policy["policy"] == "${data.aws_iam_policy_document.allow_topic[each.key].json}"

        document = _data(messaging, "aws_iam_policy_document", "allow_topic")
        statements = document["statement"]
        assert len(statements) == 1, "the queue policy must hold only the statement for the topic"
        statement = {key: _unwrap(value) for key, value in statements[0].items()}
        expected = topology._allow_topic_policy("QUEUE_ARN", "TOPIC_ARN")["Statement"][0]

        principal = {key: _unwrap(value) for key, value in _unwrap(statement["principals"]).items()}
        condition = {key: _unwrap(value) for key, value in _unwrap(statement["condition"]).items()}
        assert statement["sid"] == expected["Sid"]
        assert statement["effect"] == expected["Effect"]
        assert statement["actions"] == [expected["Action"]]
        assert statement["resources"] == ["${aws_sqs_queue.channel[each.key].arn}"]
        assert {principal["type"]: principal["identifiers"]} == {
            kind: [identifier] for kind, identifier in expected["Principal"].items()
        }
        (test, variables), = expected["Condition"].items()
        (variable, _), = variables.items()
        assert (condition["test"], condition["variable"], condition["values"]) == (
            test,
            variable,
            ["${aws_sns_topic.notifications.arn}"],
        )

    def test_the_email_events_queue_admits_the_email_events_topic_of_any_region(self) -> None:
        """A second SES region's email_events topic delivers to the queue (compute module, ses.tf)."""
        receipts = _load(MESSAGING.parent / "receipts.tf")
        [statement] = _data(receipts, "aws_iam_policy_document", "allow_email_events_topic")["statement"]
        condition = {key: _unwrap(value) for key, value in _unwrap(statement["condition"]).items()}
        expected = topology._allow_topic_policy("QUEUE_ARN", topology.in_any_region("arn:aws:sns:us-east-1:123456789012:email_events"))
        [(test, variables)] = expected["Statement"][0]["Condition"].items()
        [(variable, arn)] = variables.items()
        assert (condition["test"], condition["variable"]) == (test, variable) == ("ArnLike", "aws:SourceArn")
        # in_any_region's ARN, with the partition and account interpolated.
        assert arn == "arn:aws:sns:*:123456789012:email_events"
        assert condition["values"] == [
            "arn:${data.aws_partition.current.partition}:sns:*:${data.aws_caller_identity.receipts.account_id}:${local.email_events_topic_name}"
        ]
        assert _locals(receipts)["email_events_topic_name"] == topology.EMAIL_EVENTS_TOPIC_NAME


# --- The compute module's container environments -------------------------------------------

# The environment key in terraform/modules/compute/main.tf => the settings class of that process.
SETTINGS_BY_SERVICE = {
    "gateway": ("gateway.settings", "GatewaySettings"),
    "sms": ("sender_sms.settings", "SmsSenderSettings"),
    "email": ("sender_email.settings", "EmailSenderSettings"),
    "slack": ("sender_slack.settings", "SlackSenderSettings"),
    "callbacks": ("callback_sender.settings", "CallbackSenderSettings"),
    "migrate": ("shared.settings", "ServiceSettings"),
}


def _settings_class(module_name: str, class_name: str) -> type:
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        pytest.fail(f"{module_name} does not exist (yet): cannot check the settings of its service ({exc})")
    return getattr(module, class_name)


@pytest.fixture(scope="module")
def compute_locals() -> dict[str, Any]:
    return _locals(_load(COMPUTE))


class TestComputeModule:
    def test_every_service_has_a_settings_class(self, compute_locals: dict[str, Any]) -> None:
        assert set(compute_locals["environment"]) == set(SETTINGS_BY_SERVICE)
        assert set(compute_locals["secrets"]) == set(SETTINGS_BY_SERVICE)

    @pytest.mark.parametrize("service", sorted(SETTINGS_BY_SERVICE))
    def test_container_environment_holds_only_real_settings(self, compute_locals: dict[str, Any], service: str) -> None:
        settings = _settings_class(*SETTINGS_BY_SERVICE[service])
        names = (
            set(compute_locals["common_environment"])
            | set(compute_locals["environment"][service])
            | set(compute_locals["secrets"][service])
        )
        unknown = sorted(names - environment_names(settings))
        assert not unknown, f"{service}: {unknown} are not settings of {settings.__name__}"

    def test_the_twilio_account_comes_from_its_secret_only_when_twilio_is_a_provider(self, compute_locals: dict[str, Any]) -> None:
        def bare(expression: str) -> str:  # the parser's spacing is not ours
            return re.sub(r"\s+", "", expression)

        secrets, environment = compute_locals["secrets"]["sms"], compute_locals["environment"]["sms"]
        for name, key in (("TWILIO_ACCOUNT_SID", "account_sid"), ("TWILIO_AUTH_TOKEN", "auth_token")):
            assert bare(secrets[name]) == bare(f'${{local.twilio ? "${{join("", aws_secretsmanager_secret.twilio[*].arn)}}:{key}::" : None}}')
        assert bare(environment["SMS_SENDER_PROVIDERS"]) == bare('${join(",", var.sms_providers)}')
        assert bare(compute_locals["twilio"]) == bare('${contains(var.sms_providers, "twilio")}')

    def test_the_email_sender_fails_over_to_the_second_ses_region_when_there_is_one(self, compute_locals: dict[str, Any]) -> None:
        expression = re.sub(r"\s+", "", compute_locals["environment"]["email"]["EMAIL_SENDER_PROVIDERS"])
        # The parser spells null None.
        assert expression == re.sub(r"\s+", "", '${var.ses_second_region == None ? "ses" : "ses,ses:${var.ses_second_region}"}')
        from sender_email.settings import EmailSenderSettings

        for value in ("ses", "ses,ses:eu-west-1"):  # what the expression gives, both valid settings
            assert ",".join(EmailSenderSettings(providers=value).providers) == value

    @pytest.mark.parametrize("channel", [channel.value for channel in topology.Channel])
    def test_sender_ops_ports_are_the_settings_defaults(self, compute_locals: dict[str, Any], channel: str) -> None:
        settings = _settings_class(*SETTINGS_BY_SERVICE[channel])
        assert compute_locals["senders"][channel]["ops_port"] == settings.model_fields["ops_port"].default

    def test_the_callback_senders_ops_port_is_its_settings_default(self, compute_locals: dict[str, Any]) -> None:
        settings = _settings_class(*SETTINGS_BY_SERVICE["callbacks"])
        assert compute_locals["callbacks_ops_port"] == settings.model_fields["ops_port"].default

    def test_gateway_ports_are_the_settings_defaults(self, compute_locals: dict[str, Any]) -> None:
        settings = _settings_class(*SETTINGS_BY_SERVICE["gateway"])
        assert compute_locals["gateway_port"] == settings.model_fields["port"].default
        assert compute_locals["gateway_ops_port"] == settings.model_fields["ops_port"].default
