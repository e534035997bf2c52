"""The local stack: every component of the system on one machine, without Docker.

``python -m stack up`` runs it in the foreground; :mod:`stack.components` holds the pieces
(embedded Postgres, the moto AWS emulator, WireMock as the Slack API, managed child processes)
for tests that need some of them.
"""
