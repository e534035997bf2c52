"""The local stack: every component of the system on one machine, without Docker.

``python -m stack up`` (:mod:`stack.runner`) runs it in the foreground; ``python -m stack.prepare``
(:mod:`stack.prepare`) makes the database, topology, SES identity and certificates ready. One module
per thing it runs: :mod:`stack.processes` (child processes that die with us), :mod:`stack.network`
(ports, readiness), :mod:`stack.postgres` (embedded Postgres), :mod:`stack.moto` and
:mod:`stack.patched_moto`, :mod:`stack.localstack` (and its installation), :mod:`stack.wiremock_server`
(WireMock as the Slack API). The tests and benchmarks drive them through :mod:`harness`.
"""
