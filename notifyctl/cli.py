"""``notifyctl``: the operators' command line.

Certificates (the same code as ``mtls/generate.sh``), recipients (and their preferences),
templates and notifications through the gateway over mutual TLS, the dead-letter queues, the SNS/SQS topology, and the channels' capacity
on AWS (ECS tasks and their autoscaling bounds) with the model that sizes them, and the reconciliation that
publishes again what a lost queue held. Exit codes are listed
in ``notifyctl/errors.py`` and in ``notifyctl --help``.
"""

from __future__ import annotations

import typer

from mtls.cli import app as certs_app
from notifyctl.api_commands import cancel, recipients_app, send, status, templates_app
from notifyctl.job_commands import jobs_app
from notifyctl.aws_commands import dlq_app, topology_app
from notifyctl.capacity_commands import capacity, scale
from notifyctl.reconcile_commands import reconcile

app = typer.Typer(
    help="Operate the notification system. Exit codes: 0 ok; 1 refused for its content (invalid, not found) or not "
    "completed; 2 bad command line; 3 certificate refused or lacking the role; 4 unreachable, rate-limited or 5xx "
    "(try again); 5 status --wait timed out. --json prints machine-readable output.",
    no_args_is_help=True,
    # Rich tracebacks with locals could print key material from the frames of an unexpected error.
    pretty_exceptions_show_locals=False,
)
app.add_typer(certs_app, name="certs", help="Issue, revoke and list client certificates; the gateway re-reads the CRL without a restart.")
app.add_typer(recipients_app, name="recipients")
app.add_typer(templates_app, name="templates")
app.add_typer(jobs_app, name="jobs")
app.command("send")(send)
app.command("status")(status)
app.command("cancel")(cancel)
app.add_typer(dlq_app, name="dlq")
app.add_typer(topology_app, name="topology")
app.command("capacity")(capacity)
app.command("scale")(scale)
app.command("reconcile")(reconcile)
