"""How a service process stops: SIGTERM or SIGINT sets its ``stop`` event (a second one is only
noted), and its ops port's /readyz turns 503 as soon as it is draining."""

from __future__ import annotations

import asyncio
import signal

from shared.logging import get_logger
from shared.ops_server import OpsServer

log = get_logger(__name__)


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (call from inside the service's event loop)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _request_stop, stop, signum)


async def drain_on_stop(stop: asyncio.Event, ops: OpsServer) -> None:
    """Run as a task: marks the ops server draining once ``stop`` is set."""
    await stop.wait()
    ops.draining = True


def _request_stop(stop: asyncio.Event, signum: int) -> None:
    if stop.is_set():
        log.info("already shutting down", signal=signal.Signals(signum).name)
        return
    log.info("shutdown requested", signal=signal.Signals(signum).name)
    stop.set()
