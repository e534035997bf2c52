"""What the tests and the benchmarks drive: the system's pieces started, wired and read back.

Everything is real: Postgres (:mod:`harness.postgres`: fresh databases on DATABASE_URL's server or
an embedded one), the emulators and WireMock (from :mod:`stack`), the gateway and the senders as
processes with their clients (:mod:`harness.gateway`: httpx and curl with client certificates;
:mod:`harness.senders`), the whole system at once (:mod:`harness.system`), and what landed where
(:mod:`harness.aws`, :mod:`harness.slack`, :mod:`harness.database`). :mod:`harness.fault_proxy`
(TCP) and :mod:`harness.http_fault_proxy` (flaky providers) take dependencies away. pytest
fixtures live in ``tests/``, as thin wrappers over these.
"""
