"""The `python -m mtls` command line: init, issue, revoke, crl and list over ``mtls.pki``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from mtls import paths as pki_paths
from mtls import pki

# Rich tracebacks with locals could print key material from the frames of an unexpected error.
app = typer.Typer(
    help="Manage the mTLS certificates: our CA, the gateway's server certificate, client certificates and the CRL.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            envvar=pki_paths.DIRECTORY_ENV_VAR,
            help="Directory holding the certificates (default: the mtls/ folder).",
            file_okay=False,
        ),
    ] = None,
) -> None:
    ctx.obj = pki_paths.resolve_directory(directory)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the library's user-facing errors into a message and exit code 1, without a traceback."""
    try:
        yield
    except pki.PkiError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


@app.command()
def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Regenerate everything, invalidating every issued certificate.")] = False,
    san: Annotated[
        list[str] | None,
        typer.Option("--san", help="Extra subject alternative name for the server certificate (DNS name or IP); repeatable."),
    ] = None,
) -> None:
    """Create whatever is missing: CA, server certificate, the default client certificates and an empty CRL."""
    paths = pki_paths.PkiPaths.in_directory(ctx.obj)
    existed_before = {path for path in paths.all_files() if path.exists()}
    with _user_errors():
        lacking = {} if force or not paths.directory.is_dir() else pki.default_clients_lacking_roles(paths.directory)
        pki.init_pki(paths.directory, force=force, extra_sans=san or ())
    written = [path for path in paths.all_files() if force or path not in existed_before]
    for name, roles in lacking.items():
        typer.echo(f"Issued {paths.certificate_pair(name).cert.name} again: it lacked the role(s) {', '.join(roles)}.")
    if written:
        typer.echo(f"Wrote to {paths.directory}:")
        for path in written:
            typer.echo(f"  {path.name}")
    else:
        typer.echo(f"Nothing to do: every file already exists in {paths.directory} (use --force to regenerate).")
    if san and not force and paths.server_cert in existed_before:
        typer.echo(f"Kept the existing {paths.server_cert.name}: use --force to reissue it with the --san values.")


@app.command()
def issue(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Client name: the CN and the file names NAME.crt.pem / NAME.key.pem.")],
    role: Annotated[
        list[str],
        typer.Option("--role", help=f"Role granted to the client, one of: {', '.join(pki.ROLES)}; repeatable."),
    ],
    days: Annotated[int, typer.Option("--days", min=1, help="Validity in days.")] = pki.DEFAULT_CLIENT_DAYS,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing certificate of that name.")] = False,
) -> None:
    """Issue a client certificate carrying the given roles."""
    with _user_errors():
        cert_path, key_path = pki.issue_client_certificate(ctx.obj, name, role, days=days, force=force)
    typer.echo(f"Issued {name} (roles: {', '.join(dict.fromkeys(role))}, valid {days} days):")
    typer.echo(f"  certificate: {cert_path}")
    typer.echo(f"  private key: {key_path}")


@app.command()
def revoke(
    ctx: typer.Context,
    name_or_serial: Annotated[
        str,
        typer.Argument(metavar="NAME|SERIAL", help="Certificate name (reads NAME.crt.pem) or serial number in hex."),
    ],
) -> None:
    """Revoke a certificate: add its serial to the CRL and re-sign it."""
    with _user_errors():
        serial = pki.revoke_certificate(ctx.obj, name_or_serial)
    crl_path = pki_paths.PkiPaths.in_directory(ctx.obj).crl
    typer.echo(f"Revoked serial {serial:x}; wrote {crl_path}.")
    typer.echo("Running gateways pick the change up when they reload the CRL.")


@app.command()
def crl(
    ctx: typer.Context,
    days: Annotated[int, typer.Option("--days", min=1, help="Days until the CRL's nextUpdate.")] = pki.DEFAULT_CRL_DAYS,
) -> None:
    """Re-sign the CRL with fresh dates (run it before nextUpdate: an expired CRL rejects every client)."""
    with _user_errors():
        crl_path = pki.write_crl(ctx.obj, next_update_days=days)
    typer.echo(f"Wrote {crl_path} (valid for {days} days).")


@app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the certificates in the directory (all but the CA) with roles, validity and revocation."""
    with _user_errors():
        infos = pki.list_certificates(ctx.obj)
    if as_json:
        typer.echo(json.dumps([asdict(info) for info in infos], default=_json_value, indent=2))
        return
    if not infos:
        typer.echo(f"No certificates in {pki_paths.resolve_directory(ctx.obj)}.")
        return
    width = max(len(info.name) for info in infos)
    now = datetime.now(timezone.utc)
    for info in infos:
        status = _status(info, now)
        roles = ",".join(info.roles) or "-"
        typer.echo(
            f"{info.name:<{width}}  {status:<7}  until {info.not_after:%Y-%m-%d}  roles={roles}  serial={info.serial}"
        )


def _status(info: pki.CertificateInfo, now: datetime) -> str:
    if info.revoked:
        return "REVOKED"
    if now > info.not_after:
        return "EXPIRED"
    if now < info.not_before:
        return "NOT-YET"
    return "valid"


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")
