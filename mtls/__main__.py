"""`python -m mtls ...` runs the certificate CLI."""

from mtls.cli import app

app(prog_name="mtls")
