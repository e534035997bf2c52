"""shared/sender_service.py: no sender process imports SQLAlchemy (or Alembic): they reach Postgres through
shared/database.py's asyncpg layer, and SQLAlchemy's import alone cost each sender about 19 MB.

Each sender runs in a subprocess as ``python -m sender_<channel>`` would: its ``__main__`` module,
then the runtime itself for a moment (database pool, SQS client, ops port, queue lookups against
endpoints that refuse) and its provider's client opened and closed, after which the process
reports what it has imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = ("sqlalchemy", "alembic")

PROBE = """
import asyncio, importlib, json, sys
main = importlib.import_module(sys.argv[1] + ".__main__")
from shared.sender_service import serve

async def run():
    settings = main.__dict__[sys.argv[2]]()
    provider = getattr(importlib.import_module(sys.argv[1] + ".provider"), sys.argv[3])(settings)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(1.5, stop.set)
    await serve(settings=settings, provider=provider, stop=stop)
    await provider.open()
    await provider.close()

asyncio.run(run())
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in %r)))
""" % (FORBIDDEN,)


@pytest.mark.parametrize(
    ("package", "settings", "provider"),
    [
        ("sender_sms", "SmsSenderSettings", "SmsProvider"),
        ("sender_email", "EmailSenderSettings", "EmailProvider"),
        ("sender_slack", "SlackSenderSettings", "SlackProvider"),
    ],
)
def test_a_sender_process_imports_no_sqlalchemy(package: str, settings: str, provider: str) -> None:
    prefix = package.removeprefix("sender_").upper() + "_SENDER_"
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
        f"{prefix}OPS_PORT": "0",
        "LOG_LEVEL": "CRITICAL",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, package, settings, provider], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
