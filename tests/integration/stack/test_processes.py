"""stack/processes.py against real child processes: process groups, SIGKILL, dying with the parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

from stack.processes import REPO_ROOT, ManagedProcess


def _gone(pid: int) -> bool:
    """True when the process no longer runs (a zombie that no one reaped yet counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_until_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return _gone(pid)


def _group_members(pgid: int) -> list[int]:
    members = []
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(process.pid) == pgid and not _gone(process.pid):
                members.append(process.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def _group_gone(pgid: int, timeout: float = 5.0) -> list[int]:
    """The group's members still alive once they all died or ``timeout`` passed: SIGKILL to a group
    is delivered at once, but a busy machine may take a moment to end each member."""
    deadline = time.monotonic() + timeout
    while (members := _group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return members


def _wait_for_log_line(process: ManagedProcess, line: str, timeout: float = 10.0) -> None:
    """Wait for the child to print ``line`` (spelled differently in its argv, which the log header shows)."""
    deadline = time.monotonic() + timeout
    while line not in process.log_tail():
        assert process.running, f"{process.name} exited early:\n{process.log_tail()}"
        assert time.monotonic() < deadline, f"{line!r} never appeared in {process.log_path}"
        time.sleep(0.05)


class TestManagedProcess:
    def test_stop_ends_the_whole_process_group(self, tmp_path: Path) -> None:
        process = ManagedProcess(
            "sleepers",
            ["bash", "-c", "sleep 300 & sleep 300 & echo started-$((40 + 2)); wait"],
            log_path=tmp_path / "sleepers.log",
        ).start()
        _wait_for_log_line(process, "started-42")
        assert len(_group_members(process.pid)) == 3

        process.stop(timeout=5)

        assert not process.running
        assert _group_gone(process.pid) == []

    def test_stop_kills_a_child_that_ignores_sigterm(self, tmp_path: Path) -> None:
        stubborn = textwrap.dedent(
            """
            import signal, time
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("ignoring", "SIGTERM", flush=True)
            time.sleep(300)
            """
        )
        process = ManagedProcess("stubborn", [sys.executable, "-c", stubborn], log_path=tmp_path / "s.log").start()
        _wait_for_log_line(process, "ignoring SIGTERM")

        started = time.monotonic()
        exit_code = process.stop(timeout=1)

        assert exit_code == -signal.SIGKILL
        assert time.monotonic() - started < 5
        assert _gone(process.pid)

    def test_kill_is_immediate_and_leaves_nothing(self, tmp_path: Path) -> None:
        process = ManagedProcess(
            "sleepers", ["bash", "-c", "sleep 300 & echo started-$((40 + 2)); wait"], log_path=tmp_path / "k.log"
        ).start()
        _wait_for_log_line(process, "started-42")

        assert process.kill() == -signal.SIGKILL
        assert _group_gone(process.pid) == []

    def test_env_is_merged_into_the_parent_environment_and_output_is_logged(self, tmp_path: Path) -> None:
        process = ManagedProcess(
            "env",
            ["bash", "-c", 'echo "extra=$EXTRA_SETTING home=$HOME"'],
            env={"EXTRA_SETTING": "yes"},
            log_path=tmp_path / "env.log",
        ).start()
        assert process.wait(10) == 0
        assert f"extra=yes home={os.environ['HOME']}" in process.log_tail()

    def test_child_dies_when_its_parent_is_killed(self, tmp_path: Path) -> None:
        # A parent process that starts a ManagedProcess, reports the child's pid and waits forever.
        parent_script = textwrap.dedent(
            f"""
            import sys, time
            from pathlib import Path
            sys.path.insert(0, {str(REPO_ROOT)!r})
            from stack.processes import ManagedProcess
            child = ManagedProcess("orphan", ["sleep", "300"], log_path=Path({str(tmp_path / "orphan.log")!r}))
            child.start()
            print(child.pid, flush=True)
            time.sleep(300)
            """
        )
        parent = subprocess.Popen([sys.executable, "-c", parent_script], stdout=subprocess.PIPE, text=True)
        try:
            child_pid = int(parent.stdout.readline())  # type: ignore[union-attr]
            assert not _gone(child_pid)

            parent.send_signal(signal.SIGKILL)
            parent.wait(5)

            assert _wait_until_gone(child_pid), "the child outlived its SIGKILLed parent"
        finally:
            parent.kill()
            parent.wait()
