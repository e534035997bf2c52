"""``python -m stack.prepare``: make what the services need outside themselves ready. Idempotent.

Migrates the database (creating it when missing), creates the SNS/SQS topology, asks SES to verify
the email sender's From address unless it already is verified, and generates the mTLS certificates
when they are missing (and issues a default client certificate again when it lacks a role, e.g.
``templates`` for a ``mtls/client.crt.pem`` made before that role existed). ``make up`` (through :mod:`stack.runner`), docker compose's ``init`` service
and the tests all prepare the system through :func:`prepare_system`.

The command reads the services' own settings: ``DATABASE_URL`` and ``AWS_ENDPOINT_URL`` (with
``AWS_REGION`` and credentials) as every service does, ``EMAIL_FROM_ADDRESS`` and
``EMAIL_SENDER_PROVIDERS`` (the SES regions to prepare) as the email sender does, and writes the certificates into ``--certs-dir``, else ``MTLS_DIR``, else ``mtls/``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtls.paths import PkiPaths, resolve_directory
from sender_email.settings import EmailSenderSettings
from shared.settings import ServiceSettings

DEFAULT_EMAIL_FROM_ADDRESS: str = EmailSenderSettings.model_fields["email_from_address"].default


async def prepare_system(
    *,
    database_url: str,
    aws_endpoint_url: str | None,
    certs_dir: Path,
    email_from_address: str = DEFAULT_EMAIL_FROM_ADDRESS,
    email_regions: Sequence[str] = (),
) -> dict[str, str]:
    """Migrate, create the topology, verify the SES identity and give it its configuration set (receipts), generate missing certificates.

    ``email_regions``: the SES regions the email sender sends from besides AWS_REGION
    (``EmailSenderSettings.ses_regions``; AWS_REGION itself may be among them). Each gets the
    identity, the configuration set, and an ``email_events`` topic of its own delivering to the
    primary region's queue.

    Returns the topology (topic ARN and queue URLs by name).
    """
    from mtls.pki import default_clients_lacking_roles, init_pki
    from shared.aws import aws_clients
    from shared.migrate import upgrade
    from shared.topology import create_email_event_destination, create_regional_email_events_topic, create_topology

    # upgrade() runs its own event loop (asyncio.run), so it needs a thread of its own.
    await asyncio.to_thread(upgrade, database_url)
    settings = ServiceSettings(database_url=database_url, aws_endpoint_url=aws_endpoint_url)
    async with aws_clients(settings, "sns", "sqs", "ses") as (sns, sqs, ses):
        topology = await create_topology(sns, sqs)
        await verify_email_identity(ses, email_from_address)
        await create_email_event_destination(ses, sns)
        for region in dict.fromkeys(email_regions):
            if region == settings.aws_region:
                continue
            async with aws_clients(settings.model_copy(update={"aws_region": region}), "sns", "ses") as (regional_sns, regional_ses):
                await verify_email_identity(regional_ses, email_from_address)
                await create_regional_email_events_topic(regional_sns, sqs)
                await create_email_event_destination(regional_ses, regional_sns)
    certs_dir = Path(certs_dir)
    certs_dir.mkdir(parents=True, exist_ok=True)
    lacking = await asyncio.to_thread(default_clients_lacking_roles, certs_dir)
    await asyncio.to_thread(init_pki, certs_dir, force=False)
    for name, roles in lacking.items():
        cert = PkiPaths.in_directory(certs_dir).certificate_pair(name).cert
        print(f"[prepare] issued {cert} again: it lacked the role(s) {', '.join(roles)}", flush=True)
    return topology


async def verify_email_identity(ses: Any, address: str) -> None:
    """Ask SES to verify ``address``, unless it is a verified identity already."""
    # Asking again for an identity that is already verified would make real SES mail the owner
    # another confirmation link; only ask when it is not verified yet. "Not yet" includes "not an
    # identity at all": LocalStack answers Success for any address it is asked about, verified or
    # not, yet refuses to send from one that VerifyEmailIdentity never saw.
    known = set()
    async for page in ses.get_paginator("list_identities").paginate(IdentityType="EmailAddress"):
        known.update(page.get("Identities", []))
    attributes = await ses.get_identity_verification_attributes(Identities=[address])
    status = attributes.get("VerificationAttributes", {}).get(address, {}).get("VerificationStatus")
    if address not in known or status != "Success":
        await ses.verify_email_identity(EmailAddress=address)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.prepare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--certs-dir", type=Path, help="where the certificates go (default: MTLS_DIR, else mtls/)")
    arguments = parser.parse_args(argv)
    settings = ServiceSettings()
    email = EmailSenderSettings()
    certs_dir = resolve_directory(arguments.certs_dir)
    topology = asyncio.run(
        prepare_system(
            database_url=settings.database_url,
            aws_endpoint_url=settings.aws_endpoint_url,
            certs_dir=certs_dir,
            email_from_address=email.email_from_address,
            email_regions=email.ses_regions,
        )
    )
    print(f"[prepare] database migrated; topic {topology['topic_arn']} and {len(topology) - 1} queues ready", flush=True)
    regions = ", ".join(dict.fromkeys((settings.aws_region, *email.ses_regions)))
    print(f"[prepare] SES identity {email.email_from_address} verified ({regions}); certificates in {certs_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
