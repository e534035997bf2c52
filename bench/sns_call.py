"""CPU per PublishBatch call of ten notifications: aiobotocore's ``publish_batch`` against the
gateway's hand-built call (``gateway/outbox/sns_batch.py``), and the parts of each.

    python -m bench.sns_call                 # 5 rounds of 300 calls per way, alternating
    python -m bench.sns_call --calls 1000 --rounds 3

Both ways publish the same ten messages (the gateway's own, ``NotificationMessage.to_json()``
and its attributes) to ``bench/sns_sink.py``, which answers every call at once, from one process
whose CPU (user + system) is what is measured, sequentially (one call at a time, so that nothing
else runs in the process). The botocore way is the client the gateway used before
(``parameter_validation`` off). Rounds alternate (botocore, hand-built, botocore, ...) so that a
neighbour's burst on this shared machine hits both. Also timed, in the same process without I/O:
encoding the form body (urllib, as botocore does, against yarl) and signing it (botocore's
``SigV4Auth`` on a prebuilt ``AWSRequest`` against ``sigv4_headers`` with its cached key).

Prints a table for people and, last, one JSON line for machines.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import ReadOnlyCredentials

from bench.system import load_average, work_directory
from gateway.outbox.sns_batch import CONTENT_TYPE, BatchEntry, SnsBatchClient, form_body, sigv4_headers
from shared.aws import CLIENT_CONFIG, aws_clients
from shared.messages import NotificationMessage, RecipientSnapshot
from shared.settings import ServiceSettings
from stack.network import free_port, wait_for_port
from stack.processes import REPO_ROOT, ManagedProcess

TOPIC_ARN = "arn:aws:sns:us-east-1:000000000000:notifications"
BATCH = 10


def messages() -> list[NotificationMessage]:
    return [
        NotificationMessage(
            notification_id=uuid.uuid4(),
            recipient=RecipientSnapshot(name="bench", phone_number="+14155552671", email="bench@example.com", slack_id="U0123456789"),
            message="Your order has shipped",
            channels=["sms", "email", "slack"],
            client="bench-client",
            created_at=datetime.datetime.now(datetime.UTC),
        )
        for _ in range(BATCH)
    ]


async def cpu_ms_per_call(call: Callable[[], Awaitable[Any]], calls: int) -> float:
    await call()  # a warm connection, warm caches
    started = time.process_time()
    for _ in range(calls):
        await call()
    return 1000 * (time.process_time() - started) / calls


def cpu_ms_per_run(function: Callable[[], Any], runs: int) -> float:
    started = time.process_time()
    for _ in range(runs):
        function()
    return 1000 * (time.process_time() - started) / runs


async def measure(endpoint_url: str, args: argparse.Namespace) -> dict[str, Any]:
    batch = messages()
    settings = ServiceSettings(aws_endpoint_url=endpoint_url)
    botocore_config = CLIENT_CONFIG.merge(Config(parameter_validation=False))
    rounds: dict[str, list[float]] = {"botocore": [], "hand-built": []}
    async with aws_clients(settings, "sns", config=botocore_config) as sns, SnsBatchClient.for_client(sns) as hand_built:

        async def botocore_call() -> Any:
            entries = [
                {"Id": str(index), "Message": message.to_json(), "MessageAttributes": message.sns_message_attributes()}
                for index, message in enumerate(batch)
            ]
            return await sns.publish_batch(TopicArn=TOPIC_ARN, PublishBatchRequestEntries=entries)

        async def hand_built_call() -> Any:
            return await hand_built.publish_batch(TOPIC_ARN, [BatchEntry(message.to_json(), message.sns_message_attributes()) for message in batch])

        for round_number in range(1, args.rounds + 1):
            for name, call in (("botocore", botocore_call), ("hand-built", hand_built_call)):
                rounds[name].append(await cpu_ms_per_call(call, args.calls))
                print(f"  round {round_number}: {name}: {rounds[name][-1]:.3f} CPU ms per call", file=sys.stderr)

    entries = [BatchEntry(message.to_json(), message.sns_message_attributes()) for message in batch]
    fields = {
        f"PublishBatchRequestEntries.member.{index + 1}.{name}": value
        for index, entry in enumerate(entries)
        for name, value in (("Id", str(index)), ("Message", entry.message))
    }
    body = form_body(TOPIC_ARN, entries)
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None)

    def botocore_sign() -> None:
        request = AWSRequest(method="POST", url="http://127.0.0.1:4566/", data=body, headers={"Content-Type": CONTENT_TYPE})
        SigV4Auth(credentials, "sns", "us-east-1").add_auth(request)

    def cached_key_sign() -> None:
        sigv4_headers(host="127.0.0.1:4566", path="/", body=body, credentials=credentials, region="us-east-1", now=datetime.datetime.now(datetime.UTC))

    parts = {
        "encode: urllib (botocore's, once; it encodes twice)": cpu_ms_per_run(lambda: urlencode(fields), args.calls * 3),
        "encode: yarl": cpu_ms_per_run(lambda: form_body(TOPIC_ARN, entries), args.calls * 3),
        "sign: botocore SigV4Auth on an AWSRequest": cpu_ms_per_run(botocore_sign, args.calls * 3),
        "sign: sigv4_headers, cached signing key": cpu_ms_per_run(cached_key_sign, args.calls * 3),
    }
    return {
        "calls_per_round": args.calls,
        "messages_per_call": BATCH,
        "message_bytes": len(batch[0].to_json()),
        "rounds_cpu_ms_per_call": rounds,
        "cpu_ms_per_call": {name: statistics.median(values) for name, values in rounds.items()},
        "parts_cpu_ms": parts,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--calls", type=int, default=300, help="calls per round and way (default 300)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per way, alternating (default 5)")
    args = parser.parse_args()
    load_before = load_average()
    with work_directory("bench-sns-call-", keep=False) as (work_dir, cleanup):
        port = free_port()
        sink = ManagedProcess(
            "sns-sink", [sys.executable, "-m", "bench.sns_sink", "--port", str(port)], cwd=REPO_ROOT, log_path=work_dir / "sns-sink.log"
        ).start()
        cleanup.callback(sink.stop)
        wait_for_port(port, timeout=30, process=sink)
        result = asyncio.run(measure(f"http://127.0.0.1:{port}", args))
    result["load_average"] = {"before": load_before, "after": load_average()}

    print()
    print(
        f"PublishBatch of {BATCH} notifications ({result['message_bytes']} bytes each) to bench/sns_sink.py: CPU ms per call, "
        f"median of {args.rounds} rounds of {args.calls}, alternating; load average {load_before} before, {result['load_average']['after']} after"
    )
    header = f"{'way':<48}{'CPU ms per call':>16}{'rounds':>40}"
    print(header)
    print("-" * len(header))
    for name, value in result["cpu_ms_per_call"].items():
        rounds = ", ".join(f"{v:.3f}" for v in result["rounds_cpu_ms_per_call"][name])
        print(f"{name:<48}{value:>16.3f}{rounds:>40}")
    print()
    print("parts, without I/O (CPU ms per call)")
    for name, value in result["parts_cpu_ms"].items():
        print(f"  {name:<56}{value:>8.3f}")
    saved = result["cpu_ms_per_call"]["botocore"] - result["cpu_ms_per_call"]["hand-built"]
    print(f"\nhand-built saves {saved:.3f} CPU ms per call ({saved / BATCH:.3f} per notification)")
    print(json.dumps({"benchmark": "sns_call", "settings": vars(args), **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
