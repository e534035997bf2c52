"""A TCP proxy the tests can cut and restore, to take a dependency away from a real process.

Cutting closes every open connection and stops listening, so the process under test sees
exactly what it would see if the dependency went down: resets, then refused connections.
``drop_next_answer`` loses one answer instead: the upstream gets a whole request and acts on it,
and the connection is reset as its answer starts, so the client cannot know what happened (what
an idempotent retry is for).
The upstream may be a TCP address or a Unix socket (the embedded Postgres listens on one).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from pathlib import Path


class FaultProxy:
    def __init__(self, *, upstream_host: str | None = None, upstream_port: int | None = None, upstream_unix: Path | None = None) -> None:
        if upstream_unix is None and (upstream_host is None or upstream_port is None):
            raise ValueError("give upstream_host and upstream_port, or upstream_unix")
        self._upstream_host, self._upstream_port, self._upstream_unix = upstream_host, upstream_port, upstream_unix
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._drop_answer_after: int | None = None
        self.answers_dropped = 0
        self.port = _free_port()

    def start(self) -> FaultProxy:
        self._thread.start()
        self.restore()
        return self

    @property
    def is_cut(self) -> bool:
        return self._server is None

    def cut(self) -> None:
        asyncio.run_coroutine_threadsafe(self._cut(), self._loop).result(10)

    def restore(self) -> None:
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    def drop_next_answer(self, *, after_request_bytes: int) -> None:
        """Reset the next connection whose client has sent at least ``after_request_bytes`` as soon
        as the upstream sends anything after that (once; ``answers_dropped`` counts it). Through
        TLS, the request must be larger than the client's handshake, and the client must use TLS
        1.2: TLS 1.3 servers send session tickets after the handshake, which would be taken for
        the answer."""
        self._drop_answer_after = after_request_bytes

    def stop(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            # Abort rather than close: the peer sees a reset, as when the far side dies.
            writer.transport.abort()
        self._writers.clear()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            if self._upstream_unix is not None:
                upstream_reader, upstream_writer = await asyncio.open_unix_connection(str(self._upstream_unix))
            else:
                upstream_reader, upstream_writer = await asyncio.open_connection(self._upstream_host, self._upstream_port)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.update((client_writer, upstream_writer))
        sent = 0

        def count_request(data: bytes) -> bool:
            nonlocal sent
            sent += len(data)
            return True

        def pass_answer(_data: bytes) -> bool:
            if self._drop_answer_after is None or sent < self._drop_answer_after:
                return True
            self._drop_answer_after = None
            self.answers_dropped += 1
            client_writer.transport.abort()
            upstream_writer.transport.abort()
            return False

        await asyncio.gather(_pipe(client_reader, upstream_writer, count_request), _pipe(upstream_reader, client_writer, pass_answer))
        self._writers.discard(client_writer)
        self._writers.discard(upstream_writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, forward: Callable[[bytes], bool]) -> None:
    """Copy until either side closes, or ``forward`` says no to a chunk (it has aborted both)."""
    try:
        while (data := await reader.read(65536)) and forward(data):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
