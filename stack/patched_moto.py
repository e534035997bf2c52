"""moto's server with fixes to its SQS, for runs that push thousands of messages through it.

1. **It loses messages under concurrency.** ``Queue.delete_message`` rebuilds the queue's
   message list without the lock ``Queue.add_message`` appends under, so a message sent (SNS
   fan-out included) while another thread deletes can vanish: SendMessage answered 200, and no
   receive ever returns it. Measured: 3 of 4,000 messages lost with 8 threads sending and 4
   receiving and deleting one by one. Likewise two receives moving the same message to the DLQ
   race (``list.remove(x): x not in list``, a 500). Here deletes and receives hold the queue's
   lock (a ``Condition`` over an ``RLock``: the long poll's wait still releases it).
2. **It slows down with queue depth.** Whether a message is visible is decided by reading
   ``moto.core.utils.unix_time_millis``, which builds two datetimes per call (about 10 µs on the
   2-core test machine), for every message of the queue on every ``ApproximateNumberOfMessages*``
   count; and moto computes all those counts for every message it sends, and again for every
   message a receive returns (to read the queue's retention period). Measured per received
   message: 3 ms at depth 0, 156 ms at 500, 222 ms at 1,500, so the backlog of an SNS outage
   brings the emulator to a crawl, which SQS never does. Here the SQS models read the same wall
   clock with ``time.time()`` (0.2 µs, same values) and the retention check reads the retention
   period alone: 2.3 / 1.1 / 1.5 ms at those depths.
3. **It keeps every SQS message forever.** moto registers each instance of its models for its
   ``/moto-api/data.json`` dump, every SQS message and every copy ``receive_message`` makes of
   one included, and the dump renders each: after a run of 10,000 notifications
   ``MotoServer.sent_sms()`` did not answer within its 10 s timeout. Here SQS messages are not
   registered (nothing reads them from the dump; the queues are unchanged).

It also drops werkzeug's line per request (errors are still logged): under load, request threads
queue for the log handler's lock before they answer. Nothing else changes. Use
``MotoServer(port, patched=True)`` where a test would use ``MotoServer``, or run it as
``python -m stack.patched_moto -H 127.0.0.1 -p 4566`` (moto.server's arguments).
"""

from __future__ import annotations

import functools
import logging
import runpy
import sys
import time
from datetime import datetime
from typing import Any


def install() -> None:
    import moto.core.utils as moto_utils
    import moto.sqs.models as sqs_models

    slow_unix_time = moto_utils.unix_time

    def unix_time(dt: datetime | None = None) -> float:
        return time.time() if dt is None else slow_unix_time(dt)

    def unix_time_millis(dt: datetime | None = None) -> float:
        return unix_time(dt) * 1000.0

    sqs_models.unix_time = unix_time
    sqs_models.unix_time_millis = unix_time_millis

    delete_message = sqs_models.Queue.delete_message

    @functools.wraps(delete_message)
    def locked_delete_message(self: Any, receipt_handle: str) -> None:
        with self._messages_lock:
            delete_message(self, receipt_handle)

    receive_message = sqs_models.SQSBackend.receive_message

    @functools.wraps(receive_message)
    def locked_receive_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        with self.get_queue(queue_name)._messages_lock:
            return receive_message(self, queue_name, *args, **kwargs)

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_seconds = int(self.get_queue(queue_name).message_retention_period)
        return retention_seconds + message.sent_timestamp / 1000 > unix_time()

    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period
    sqs_models.Queue.delete_message = locked_delete_message
    sqs_models.SQSBackend.receive_message = locked_receive_message
    sqs_models.Message.instances_tracked = _Untracked()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


class _Untracked(list):  # type: ignore[type-arg]
    """An instance registry that registers nothing."""

    def append(self, _item: object) -> None:
        pass


def main() -> None:
    install()
    sys.argv[0] = "moto.server"
    runpy.run_module("moto.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
