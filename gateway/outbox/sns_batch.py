"""SNS's PublishBatch built, signed and sent by hand: every publication the gateway makes.

Why not botocore's ``publish_batch``: measured on the development machine, a call for ten
notifications cost about 1.8 CPU ms in aiobotocore (``bench/sns_call.py``: its request
serialisation percent-encodes the form body with urllib, twice, once to sign it and once to send
it; its event hooks; SigV4Auth), about a third of all the gateway spent per notification. The
figures of this path beside it are in the README's Performance section.

The request is SNS's query protocol, a form-encoded POST::

    Action=PublishBatch&Version=2010-03-31&TopicArn=...
    &PublishBatchRequestEntries.member.N.Id=...&PublishBatchRequestEntries.member.N.Message=...
    &PublishBatchRequestEntries.member.N.MessageAttributes.entry.M.Name=...
    &...MessageAttributes.entry.M.Value.DataType=...&...MessageAttributes.entry.M.Value.StringValue=...

encoded by yarl (a C quoter), signed with Signature Version 4 (``sigv4_headers``: the signing key
derived once a day per secret and region), and sent over one aiohttp session with the timeouts and
pool size of ``shared/aws.py``'s ``CLIENT_CONFIG``. The credentials are the SNS client's, frozen
again for every call (they may refresh). Its answer lists each entry under ``Successful`` or
``Failed`` (with SNS's code and message); an entry under neither counts as not taken.

Failures, as botocore reported them: SNS refusing the whole call (an HTTP error) raises botocore's
``ClientError`` with SNS's error code and message; a connection that breaks before any answer (a
pooled keep-alive connection the server had just closed, a reset) is tried once more at once, as
botocore's retries did; anything else (a timeout, a second connection failure) propagates. The
caller (``SnsPublisher``) leaves what was not taken to the outbox relay, which retries with backoff.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import hmac
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import aiohttp
from botocore.exceptions import ClientError
from botocore.httpsession import get_cert_path
from yarl import URL

from shared.aws import CLIENT_CONFIG

SNS_API_VERSION = "2010-03-31"
SNS_BATCH_LIMIT = 10  # PublishBatch takes at most 10 entries
SIGNING_SERVICE = "sns"
CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
_ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class BatchEntry:
    """One message of a PublishBatch call: its body and message attributes (name ->
    ``{"DataType": ..., "StringValue": ...}``)."""

    message: str
    attributes: Mapping[str, Mapping[str, str]]

    def size(self) -> int:
        """Its bytes as SNS counts them against a call's limit: the body and every attribute's
        name, type and value."""
        return len(self.message.encode()) + sum(
            len(name.encode()) + len(value["DataType"].encode()) + len(value["StringValue"].encode())
            for name, value in self.attributes.items()
        )


class SnsBatchClient:
    """PublishBatch calls on one SNS endpoint (the module docstring tells how and why)."""

    def __init__(self, *, endpoint_url: str, region: str, credentials: Any, session: aiohttp.ClientSession) -> None:
        url = URL(endpoint_url)
        self._url, self._region, self._credentials, self._session = url, region, credentials, session
        # Signed as botocore signs it (the default port left out) and sent as signed.
        self._host, self._path = url.host_port_subcomponent or "", url.path or "/"

    @classmethod
    @contextlib.asynccontextmanager
    async def for_client(cls, sns: Any) -> AsyncIterator[SnsBatchClient]:
        """One on the endpoint, region and credentials of the aiobotocore SNS client ``sns``."""
        # botocore's own way to the client's credentials; documented as private, so a botocore
        # upgrade that changes it fails every test that publishes, at start-up.
        credentials = sns._get_credentials()
        if credentials is None:
            raise RuntimeError("no AWS credentials for SNS: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a role")
        connector = aiohttp.TCPConnector(
            limit=CLIENT_CONFIG.max_pool_connections, ssl=ssl.create_default_context(cafile=get_cert_path(True))
        )
        timeout = aiohttp.ClientTimeout(sock_connect=CLIENT_CONFIG.connect_timeout, sock_read=CLIENT_CONFIG.read_timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            yield cls(endpoint_url=sns.meta.endpoint_url, region=sns.meta.region_name, credentials=credentials, session=session)

    async def publish_batch(self, topic_arn: str, entries: Sequence[BatchEntry]) -> dict[int, str]:
        """Publish up to ten entries in one call; those SNS did not take (their index in
        ``entries``), each with its reason."""
        body = form_body(topic_arn, entries)
        for attempt in (1, 2):
            frozen = await self._credentials.get_frozen_credentials()
            headers = sigv4_headers(
                host=self._host, path=self._path, body=body, credentials=frozen, region=self._region, now=_utc_now()
            )
            try:
                async with self._session.post(self._url, data=body, headers=headers) as response:
                    status, answer = response.status, await response.read()
                break
            except aiohttp.ClientConnectionError as exc:
                if attempt == 2 or isinstance(exc, TimeoutError):
                    raise
        if status >= 300:
            raise _client_error(status, answer)
        # An entry's id in the call is its index.
        successful, failed = parse_answer(answer)
        return {
            index: failed.get(str(index), "MissingFromAnswer: SNS's answer listed it neither as successful nor as failed")
            for index in range(len(entries))
            if str(index) not in successful
        }


def form_body(topic_arn: str, entries: Sequence[BatchEntry]) -> bytes:
    """The PublishBatch request's form-encoded body; each entry's id is its index."""
    fields = [("Action", "PublishBatch"), ("Version", SNS_API_VERSION), ("TopicArn", topic_arn)]
    for index, entry in enumerate(entries):
        prefix = f"PublishBatchRequestEntries.member.{index + 1}."
        fields += [(prefix + "Id", str(index)), (prefix + "Message", entry.message)]
        for position, (name, value) in enumerate(entry.attributes.items(), start=1):
            attribute = f"{prefix}MessageAttributes.entry.{position}."
            fields += [
                (attribute + "Name", name),
                (attribute + "Value.DataType", value["DataType"]),
                (attribute + "Value.StringValue", value["StringValue"]),
            ]
    return URL.build(query=fields).raw_query_string.encode()


def sigv4_headers(*, host: str, path: str, body: bytes, credentials: Any, region: str, now: datetime.datetime) -> dict[str, str]:
    """The headers of a SigV4-signed form POST (``credentials``: botocore's frozen ones), as
    botocore's ``SigV4Auth`` signs it: Content-Type, Host, X-Amz-Date, X-Amz-Security-Token (with
    temporary credentials) and Authorization."""
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {"Content-Type": CONTENT_TYPE, "Host": host, "X-Amz-Date": amz_date}
    if credentials.token:
        headers["X-Amz-Security-Token"] = credentials.token
    signed = ";".join(name.lower() for name in headers)
    canonical_headers = "".join(f"{name.lower()}:{value}\n" for name, value in headers.items())
    canonical_request = f"POST\n{path}\n\n{canonical_headers}\n{signed}\n{hashlib.sha256(body).hexdigest()}"
    scope = f"{day}/{region}/{SIGNING_SERVICE}/aws4_request"
    string_to_sign = f"{_ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
    signature = hmac.new(_signing_key(credentials.secret_key, day, region), string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = f"{_ALGORITHM} Credential={credentials.access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
    return headers


@functools.lru_cache(maxsize=16)
def _signing_key(secret_key: str, day: str, region: str) -> bytes:
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, SIGNING_SERVICE, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def parse_answer(answer: bytes) -> tuple[set[str], dict[str, str]]:
    """PublishBatch's XML answer: the ids SNS took, and those it did not with "Code: Message"."""
    successful: set[str] = set()
    failed: dict[str, str] = {}
    for element in ElementTree.fromstring(answer).iter():
        kind = _local_name(element.tag)
        if kind not in ("Successful", "Failed"):
            continue
        for member in element:
            fields = {_local_name(child.tag): child.text or "" for child in member}
            if kind == "Successful":
                successful.add(fields.get("Id", ""))
            else:
                failed[fields.get("Id", "")] = f"{fields.get('Code')}: {fields.get('Message', '')}"
    return successful, failed


def _client_error(status: int, answer: bytes) -> ClientError:
    """SNS's refusal of a whole call, as botocore raised it (``ErrorResponse/Error/Code, Message``)."""
    code, message = str(status), answer.decode(errors="replace")[:500]
    with contextlib.suppress(ElementTree.ParseError):
        fields = {_local_name(element.tag): element.text or "" for element in ElementTree.fromstring(answer).iter()}
        code, message = fields.get("Code", code), fields.get("Message", message)
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PublishBatch")


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
