"""gateway/outbox/sns_batch.py: the PublishBatch request signed exactly as botocore signs it, its
body decoding to what was given, and the answers of moto, LocalStack and AWS read (the calls
themselves are the integration tests', on both emulators)."""

from __future__ import annotations

import datetime
from urllib.parse import parse_qsl

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import ClientError

from gateway.outbox import sns_batch
from gateway.outbox.sns_batch import CONTENT_TYPE, BatchEntry, form_body, parse_answer, sigv4_headers

NOW = datetime.datetime(2026, 12, 2, 17, 4, 5, tzinfo=datetime.UTC)
TOPIC = "arn:aws:sns:us-east-1:000000000000:notifications"
AWKWARD = 'a+b&c=d;e%41f#g h\nü€😀 /?:@[]!$\'()*,"{}'

# What the emulators answered this module's calls (captured from moto 5.2.1 and LocalStack 4.14.0).
MOTO_SUCCESS = (
    b'<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishBatchResult><Successful>'
    b"<member><Id>0</Id><MessageId>33462984-36f7-44f6-92f8-17fb7134e27f</MessageId></member>"
    b"<member><Id>1</Id><MessageId>c75c9049-a983-479a-88bf-7f03326cbb04</MessageId></member></Successful><Failed/>"
    b"</PublishBatchResult><ResponseMetadata><RequestId>xJzbvBF4</RequestId></ResponseMetadata></PublishBatchResponse>"
)
LOCALSTACK_SUCCESS = (
    b"<?xml version='1.0' encoding='utf-8'?>\n"
    b'<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishBatchResult><Successful>'
    b"<member><Id>0</Id><MessageId>9e805f62-7d3a-4d50-83a2-ac627b52ca9f</MessageId></member>"
    b"<member><Id>1</Id><MessageId>4a2c00dc-3ea6-4102-9f1f-0edff5a2c5b2</MessageId></member></Successful><Failed />"
    b"</PublishBatchResult><ResponseMetadata><RequestId>e887aaf5</RequestId></ResponseMetadata></PublishBatchResponse>"
)
# AWS's documented shape of an entry it did not take (moto answers the same for a message too long).
PARTLY_FAILED = (
    b'<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishBatchResult>'
    b"<Successful><member><Id>0</Id><MessageId>1b8c1e3f</MessageId></member></Successful>"
    b"<Failed><member><Id>1</Id><Code>InternalError</Code><Message>try again</Message><SenderFault>false</SenderFault></member></Failed>"
    b"</PublishBatchResult></PublishBatchResponse>"
)
MOTO_ERROR = (
    b'<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>NotFound</Code>'
    b"<Message>Topic does not exist</Message><message>Topic does not exist</message></Error><RequestId>tAtT</RequestId></ErrorResponse>"
)
LOCALSTACK_ERROR = (
    b"<?xml version='1.0' encoding='utf-8'?>\n"
    b'<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Code>NotFound</Code>'
    b"<Message>Topic does not exist</Message><Type>Sender</Type></Error><RequestId>f165e699</RequestId></ErrorResponse>"
)


def botocore_signed(*, url: str, body: bytes, credentials: ReadOnlyCredentials, region: str) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": CONTENT_TYPE})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("botocore.auth.get_current_datetime", lambda: NOW.replace(tzinfo=None))
        SigV4Auth(credentials, "sns", region).add_auth(request)
    return dict(request.headers.items())


class TestSigv4Headers:
    @pytest.mark.parametrize(
        ("url", "host", "path"),
        [
            ("http://127.0.0.1:4566", "127.0.0.1:4566", "/"),
            ("https://sns.eu-west-2.amazonaws.com", "sns.eu-west-2.amazonaws.com", "/"),
            ("https://sns.eu-west-2.amazonaws.com:443/", "sns.eu-west-2.amazonaws.com", "/"),
        ],
    )
    @pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEBYaDH//token+with/odd=chars"])
    def test_the_same_as_botocores_sigv4auth(self, url: str, host: str, path: str, token: str | None) -> None:
        credentials = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
        body = form_body(TOPIC, [BatchEntry(AWKWARD, {})])
        ours = sigv4_headers(host=host, path=path, body=body, credentials=credentials, region="eu-west-2", now=NOW)
        theirs = botocore_signed(url=url, body=body, credentials=credentials, region="eu-west-2")
        assert ours.pop("Host") == host
        assert ours == theirs

    def test_the_signing_key_is_derived_once_a_day(self) -> None:
        credentials = ReadOnlyCredentials("AKID", "secret-of-its-own", None)
        sns_batch._signing_key.cache_clear()
        for second in range(3):
            sigv4_headers(host="h", path="/", body=b"", credentials=credentials, region="us-east-1", now=NOW.replace(second=second))
        next_day = NOW + datetime.timedelta(days=1)
        sigv4_headers(host="h", path="/", body=b"", credentials=credentials, region="us-east-1", now=next_day)
        assert sns_batch._signing_key.cache_info().misses == 2


class TestFormBody:
    def test_decodes_to_the_publish_batch_parameters(self) -> None:
        entries = [
            BatchEntry(AWKWARD, {"channels": {"DataType": "String.Array", "StringValue": '["sms","email"]'}, "lane": {"DataType": "String", "StringValue": "bulk"}}),
            BatchEntry("second", {}),
        ]
        assert parse_qsl(form_body(TOPIC, entries).decode(), keep_blank_values=True, strict_parsing=True) == [
            ("Action", "PublishBatch"),
            ("Version", "2010-03-31"),
            ("TopicArn", TOPIC),
            ("PublishBatchRequestEntries.member.1.Id", "0"),
            ("PublishBatchRequestEntries.member.1.Message", AWKWARD),
            ("PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Name", "channels"),
            ("PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.DataType", "String.Array"),
            ("PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.StringValue", '["sms","email"]'),
            ("PublishBatchRequestEntries.member.1.MessageAttributes.entry.2.Name", "lane"),
            ("PublishBatchRequestEntries.member.1.MessageAttributes.entry.2.Value.DataType", "String"),
            ("PublishBatchRequestEntries.member.1.MessageAttributes.entry.2.Value.StringValue", "bulk"),
            ("PublishBatchRequestEntries.member.2.Id", "1"),
            ("PublishBatchRequestEntries.member.2.Message", "second"),
        ]

    def test_nothing_that_splits_or_decodes_a_form_is_left_bare(self) -> None:
        body = form_body(TOPIC, [BatchEntry("&=+;% #\n", {})]).decode()
        message = body.split("PublishBatchRequestEntries.member.1.Message=", 1)[1]
        assert message == "%26%3D%2B%3B%25+%23%0A"


class TestParseAnswer:
    @pytest.mark.parametrize("answer", [MOTO_SUCCESS, LOCALSTACK_SUCCESS], ids=["moto", "localstack"])
    def test_every_entry_taken(self, answer: bytes) -> None:
        assert parse_answer(answer) == ({"0", "1"}, {})

    def test_an_entry_refused_with_its_code_and_message(self) -> None:
        assert parse_answer(PARTLY_FAILED) == ({"0"}, {"1": "InternalError: try again"})


class TestClientError:
    @pytest.mark.parametrize("answer", [MOTO_ERROR, LOCALSTACK_ERROR], ids=["moto", "localstack"])
    def test_snss_code_and_message_as_botocore_raised_them(self, answer: bytes) -> None:
        error = sns_batch._client_error(404, answer)
        assert isinstance(error, ClientError)
        assert str(error) == "An error occurred (NotFound) when calling the PublishBatch operation: Topic does not exist"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    def test_an_answer_that_is_not_xml(self) -> None:
        error = sns_batch._client_error(502, b"Bad Gateway")
        assert str(error) == "An error occurred (502) when calling the PublishBatch operation: Bad Gateway"


class TestEntrySize:
    def test_the_body_and_each_attributes_name_type_and_value_in_utf8_bytes(self) -> None:
        entry = BatchEntry("é" * 10, {"lane": {"DataType": "String", "StringValue": "bulk"}})
        assert entry.size() == 20 + len("lane") + len("String") + len("bulk")
