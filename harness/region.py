"""A deployment in one region of an emulator, on a database of its own: for the tests that lose
queues (``notifyctl reconcile``, disaster recovery) without touching what the other tests use.

Its topology is made by ``notifyctl topology create`` with ``AWS_REGION`` set, the command an
operator runs in a new region; its senders and gateway read that region too. Several of them can
share one database: a second region recovering the first one's deliveries.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from harness.gateway import Certificates, GatewayProcess, start_gateway
from harness.senders import Senders
from shared.channels import Channel
from shared.topology import queues_for
from stack.emulator import EMULATOR_CREDENTIALS
from stack.prepare import DEFAULT_EMAIL_FROM_ADDRESS

NOTIFYCTL = Path(sys.executable).parent / "notifyctl"
# Nothing here sends on Slack; a port nothing listens on, should a Slack sender be started.
NO_SLACK_API = "http://127.0.0.1:9/api"


@dataclass
class Region:
    name: str
    endpoint_url: str
    database_url: str
    log_dir: Path
    senders: Senders = field(init=False)
    gateways: list[GatewayProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.senders = Senders(
            database_url=self.database_url, aws_endpoint_url=self.endpoint_url, slack_api_url=NO_SLACK_API, log_dir=self.log_dir
        )

    @property
    def environment(self) -> dict[str, str]:
        """What notifyctl reads to work on this region's deployment."""
        return {
            **os.environ,
            # notifyctl by name, as the runbooks call it.
            "PATH": f"{NOTIFYCTL.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "DATABASE_URL": self.database_url,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.name,
            "AWS_ACCESS_KEY_ID": EMULATOR_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": EMULATOR_CREDENTIALS["aws_secret_access_key"],
        }

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.name, **EMULATOR_CREDENTIALS)

    def notifyctl(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(NOTIFYCTL), *arguments], env=self.environment, capture_output=True, text=True, timeout=120, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"notifyctl {' '.join(arguments)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def prepare(self) -> None:
        """The topology (with the operators' command) and the email sender's SES identity."""
        self.notifyctl("topology", "create")
        self.verify_email_identity()

    def verify_email_identity(self) -> None:
        """What the DR runbook has done ahead in a region (an identity verified there); moto verifies at once."""
        self.client("ses").verify_email_identity(EmailAddress=DEFAULT_EMAIL_FROM_ADDRESS)

    def start_gateway(self, certificates: Certificates) -> GatewayProcess:
        gateway = start_gateway(
            certificates=certificates,
            database_url=self.database_url,
            aws_endpoint_url=self.endpoint_url,
            log_dir=self.log_dir,
            name=f"gateway-{self.name}",
            extra_env={"AWS_REGION": self.name},
        )
        self.gateways.append(gateway)
        return gateway

    def start_senders(self, *channels: Channel, replicas: int = 1) -> None:
        for channel in channels:
            self.senders.start_many(replicas, channel, AWS_REGION=self.name)

    def queue_url(self, channel: Channel) -> str:
        return self.client("sqs").get_queue_url(QueueName=queues_for(channel).queue)["QueueUrl"]

    def queue_depth(self, channel: Channel) -> int:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url(channel), AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def stop(self) -> None:
        self.senders.stop_all()
        for gateway in self.gateways:
            gateway.stop()
        self.gateways.clear()
