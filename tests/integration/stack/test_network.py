"""stack/network.py: free ports, and waiting for a real server's port and HTTP answer."""

from __future__ import annotations

import sys

import pytest

from stack.network import free_port, port_in_use, wait_for_http, wait_for_port
from stack.processes import ManagedProcess


class TestPorts:
    def test_free_port_is_free_and_port_in_use_sees_a_listener(self) -> None:
        port = free_port()
        assert not port_in_use(port)
        server = ManagedProcess(
            "listener", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
        ).start()
        try:
            wait_for_port(port, timeout=10)
            assert port_in_use(port)
            assert wait_for_http(f"http://127.0.0.1:{port}/", timeout=10) == 200
        finally:
            server.stop()

    def test_wait_for_port_times_out_with_the_port_in_the_message(self) -> None:
        port = free_port()
        with pytest.raises(TimeoutError, match=str(port)):
            wait_for_port(port, timeout=0.3)
