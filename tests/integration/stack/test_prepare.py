"""stack/prepare.py: what the services need outside themselves, made ready, idempotently."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from harness.aws import aws_client
from harness.postgres import PostgresServer, fetch
from shared.aws import aws_clients
from shared.settings import ServiceSettings
from shared.topology import verify_topology
from stack.moto import MotoServer
from stack.postgres import EmbeddedPostgres
from stack.prepare import prepare_system
from stack.processes import REPO_ROOT


class TestPrepareSystem:
    async def test_prepares_everything_and_is_idempotent(
        self, pgdata_parent: Path, moto: MotoServer, tmp_path: Path
    ) -> None:
        postgres = EmbeddedPostgres(pgdata_parent / "pgdata")
        url = postgres.start()
        try:
            for _ in range(2):
                topology = await prepare_system(
                    database_url=url, aws_endpoint_url=moto.endpoint_url, certs_dir=tmp_path / "certs"
                )

            connection = await asyncpg.connect(url)
            tables = {row["tablename"] for row in await connection.fetch("SELECT tablename FROM pg_tables")}
            await connection.close()
        finally:
            postgres.stop()
        assert {"recipients", "notifications", "deliveries"} <= tables
        assert {"topic_arn", "sms_notifications", "email_notifications", "slack_notifications"} <= topology.keys()
        settings = ServiceSettings(aws_endpoint_url=moto.endpoint_url)
        async with aws_clients(settings, "sns", "sqs") as (sns, sqs):
            assert await verify_topology(sns, sqs) == []
        identities = aws_client("ses", moto.endpoint_url).list_identities()["Identities"]
        assert "sender@notifications.com" in identities
        for name in ("ca.crt.pem", "server.crt.pem", "server.key.pem", "client.crt.pem", "client.key.pem", "crl.pem"):
            assert (tmp_path / "certs" / name).is_file()

    def test_the_command_reads_the_services_settings(
        self, postgres_server: PostgresServer, moto: MotoServer, tmp_path: Path
    ) -> None:
        """``python -m stack.prepare``, as docker compose's init service runs it, twice."""
        with postgres_server.fresh_database() as database_url:
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "AWS_ENDPOINT_URL": moto.endpoint_url,
                "EMAIL_FROM_ADDRESS": "init@notifications.com",
                "EMAIL_SENDER_PROVIDERS": "ses,ses:eu-west-2",
                "MTLS_DIR": str(tmp_path / "not-these"),
            }
            argv = [sys.executable, "-m", "stack.prepare", "--certs-dir", str(tmp_path / "certs")]
            for _ in range(2):
                result = subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
                assert result.returncode == 0, result.stdout + result.stderr
            tables = {row["tablename"] for row in fetch(database_url, "SELECT tablename FROM pg_tables")}
        assert {"recipients", "notifications", "deliveries", "outbox"} <= tables
        assert "SES identity init@notifications.com verified (us-east-1, eu-west-2)" in result.stdout
        for region in ("us-east-1", "eu-west-2"):
            assert "init@notifications.com" in aws_client("ses", moto.endpoint_url, region=region).list_identities()["Identities"]
        assert (tmp_path / "certs" / "server.key.pem").is_file() and not (tmp_path / "not-these").exists()
