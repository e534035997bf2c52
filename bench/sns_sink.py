"""A stand-in for SNS that takes every message at once and keeps only their notification ids.

The gateway benchmark measures the gateway's CPU per notification, publishing included. Behind
moto, publishing is as slow as moto (around half a second per PublishBatch of 10 on the shared
2-core machine), the outbox backlog grows, and the relay publishes again what the immediate path
has not got to yet: the figure would then measure moto. Behind this sink the gateway does all of
its own publishing work (botocore serialises, signs, sends over aiohttp and parses the answer) and
nothing waits on an emulator. ``python -m bench.gateway --sns moto`` measures behind moto instead.

It speaks the SNS query protocol for the three calls the gateway makes (GetTopicAttributes,
Publish, PublishBatch) and answers ``GET /ids`` with the notification ids it received, one
per line, repeats included.

``python -m bench.sns_sink --port P``
"""

from __future__ import annotations

import argparse
import uuid
from urllib.parse import parse_qsl

import uvicorn

NAMESPACE = "http://sns.amazonaws.com/doc/2010-03-31/"


class SnsSink:
    def __init__(self) -> None:
        self.ids: list[str] = []

    async def __call__(self, scope: dict, receive, send) -> None:  # noqa: ANN001 - a bare ASGI app
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "GET" and scope["path"] == "/ids":
            await _answer(send, 200, "\n".join(self.ids).encode(), b"text/plain")
            return
        form = dict(parse_qsl(body.decode()))
        action = form.get("Action", "")
        if action == "Publish":
            self.ids.append(_notification_id(form, "MessageAttributes.entry"))
            result = f"<MessageId>{uuid.uuid4()}</MessageId>"
        elif action == "PublishBatch":
            members = []
            index = 1
            while (entry_id := form.get(f"PublishBatchRequestEntries.member.{index}.Id")) is not None:
                self.ids.append(_notification_id(form, f"PublishBatchRequestEntries.member.{index}.MessageAttributes.entry"))
                members.append(f"<member><Id>{entry_id}</Id><MessageId>{uuid.uuid4()}</MessageId></member>")
                index += 1
            result = f"<Successful>{''.join(members)}</Successful><Failed/>"
        elif action == "GetTopicAttributes":
            arn = form.get("TopicArn", "")
            result = f"<Attributes><entry><key>TopicArn</key><value>{arn}</value></entry></Attributes>"
        else:
            await _answer(send, 400, f"<ErrorResponse><Error><Code>InvalidAction</Code><Message>{action}</Message></Error></ErrorResponse>".encode())
            return
        xml = (
            f'<{action}Response xmlns="{NAMESPACE}"><{action}Result>{result}</{action}Result>'
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>"
        )
        await _answer(send, 200, xml.encode())


def _notification_id(form: dict[str, str], prefix: str) -> str:
    index = 1
    while (name := form.get(f"{prefix}.{index}.Name")) is not None:
        if name == "notification_id":
            return form.get(f"{prefix}.{index}.Value.StringValue", "")
        index += 1
    return ""


async def _answer(send, status: int, body: bytes, content_type: bytes = b"text/xml") -> None:  # noqa: ANN001
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(SnsSink(), host="127.0.0.1", port=args.port, loop="uvloop", http="httptools", access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
