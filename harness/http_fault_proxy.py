"""An HTTP reverse proxy that fails a share of the provider calls passing through it.

``FaultProxy`` (TCP) takes a whole dependency away; this one makes a provider *flaky*. It
forwards every request verbatim to its upstream, except that a ``failure_rate`` share of the
requests its rule picks are answered with a 5xx in the provider's own error format, *without*
being forwarded: the provider never saw the send, as when SNS, SES or Slack fail a request.

Rules:

- ``aws`` (in front of moto): SNS ``Publish`` to a ``PhoneNumber`` (an SMS) and SES
  ``SendEmail`` / ``SendRawEmail``. Both the query protocol (form bodies with ``Action``; SNS and
  SES today) and the JSON protocol (``X-Amz-Target``; SQS in recent botocore) are recognised.
  SQS, topic publishes and everything else pass untouched.
- ``slack`` (in front of WireMock): ``chat.postMessage``.
- ``twilio`` (in front of WireMock): Twilio's create-message call (an SMS), failed with a 500
  in Twilio's error format.

Rules combine: ``--rule slack,twilio`` picks what either picks (one proxy in front of the
WireMock that plays both).

It runs as a process of its own, so that its work does not compete for the GIL with the test
that drives the load::

    python -m harness.http_fault_proxy --upstream http://127.0.0.1:4566 --rule aws \\
        --failure-rate 0.1 --port 4600

Its admin API: ``GET /__fault_proxy/stats`` answers ``{"forwarded", "picked", "failed",
"failed_by_kind", "upstream_errors"}`` (picked: requests the rule chose from; failed: those
answered with an injected 5xx). ``GET /__fault_proxy/sends`` lists the picked requests the upstream accepted
(2xx) as ``{"t": <unix time of the answer>, "started": <unix time the request arrived>, "kind":
"sms" | "email" | "slack", "text": <the message>, "client_port": <the caller's TCP port>}``: when
the provider took each send (moto does not record it), how long it was under way and over which
connection. ``PUT /__fault_proxy/failure-rate`` with ``{"failure_rate": 0.2}`` changes the share
at run time; with ``"kind": "sms"`` only that kind's (an outage of one provider behind a proxy
that also carries another: SNS SMS down, SES not), and ``"failure_rate": null`` with a kind
gives the kind the common share again. ``HttpFaultProxy`` starts and drives such a process from
a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web

from stack.network import free_port, wait_for_http
from stack.processes import REPO_ROOT, ManagedProcess

ADMIN_PREFIX = "/__fault_proxy/"
# Not forwarded in either direction: they describe one connection, not the message.
HOP_BY_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)

AWS_FAILED_ACTIONS = frozenset({"SendEmail", "SendRawEmail"})


# ---------------------------------------------------------------- rules


@dataclass(frozen=True)
class InjectedFailure:
    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Pick:
    """A request the rule chose: the answer to give when it is failed, and the text it sends."""

    failure: InjectedFailure
    kind: str  # "sms", "email", "slack"
    text: str | None


Rule = Callable[[str, str, dict[str, str], bytes], Pick | None]
"""(method, path, headers, body) -> a Pick when the request is one the rule may fail."""

AWS_QUERY_FAILURE = InjectedFailure(
    500,
    b"<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>"
    b"<Message>injected fault: the request processing has failed</Message></Error>"
    b"<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>",
    "text/xml",
)
AWS_JSON_FAILURE = InjectedFailure(
    500,
    b'{"__type": "InternalFailure", "message": "injected fault: the request processing has failed"}',
    "application/x-amz-json-1.0",
)
SLACK_FAILURE = InjectedFailure(500, b'{"ok": false, "error": "internal_error"}', "application/json; charset=utf-8")
TWILIO_FAILURE = InjectedFailure(
    500,
    b'{"code": 20500, "message": "Internal Server Error", "more_info": "https://www.twilio.com/docs/errors/20500", "status": 500}',
    "application/json; charset=utf-8",
)
TWILIO_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/[^/]+/Messages\.json$")


def aws_rule(method: str, path: str, headers: dict[str, str], body: bytes) -> Pick | None:
    """SMS publishes and SES sends, in the query or the JSON protocol."""
    if method != "POST":
        return None
    target = _header(headers, "X-Amz-Target")
    if target:
        action = target.rsplit(".", 1)[-1]
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return None
        if action == "Publish" and params.get("PhoneNumber"):
            return Pick(AWS_JSON_FAILURE, "sms", params.get("Message"))
        if action in AWS_FAILED_ACTIONS:  # SES v1 speaks only the query protocol today
            return Pick(AWS_JSON_FAILURE, "email", None)
        return None
    if "x-www-form-urlencoded" not in (_header(headers, "Content-Type") or ""):
        return None
    params = parse_qs(body.decode("utf-8", errors="replace"))
    action = _first(params, "Action")
    if action == "Publish" and params.get("PhoneNumber"):
        return Pick(AWS_QUERY_FAILURE, "sms", _first(params, "Message"))
    if action in AWS_FAILED_ACTIONS:
        return Pick(AWS_QUERY_FAILURE, "email", _first(params, "Message.Body.Text.Data"))
    return None


def slack_rule(method: str, path: str, headers: dict[str, str], body: bytes) -> Pick | None:
    """chat.postMessage, answered as Slack does when it has trouble of its own."""
    if method != "POST" or not path.endswith("/chat.postMessage"):
        return None
    try:
        text = json.loads(body).get("text")
    except (ValueError, AttributeError):
        text = _first(parse_qs(body.decode("utf-8", errors="replace")), "text")
    return Pick(SLACK_FAILURE, "slack", text)


def twilio_rule(method: str, path: str, headers: dict[str, str], body: bytes) -> Pick | None:
    """Twilio's create-message call (form-encoded ``To``, ``From``, ``Body``)."""
    if method != "POST" or not TWILIO_MESSAGES_PATH.match(path):
        return None
    return Pick(TWILIO_FAILURE, "sms", _first(parse_qs(body.decode("utf-8", errors="replace")), "Body"))


RULES: dict[str, Rule] = {"aws": aws_rule, "slack": slack_rule, "twilio": twilio_rule}


def rule_named(names: str) -> Rule:
    """The rule ``names`` names (``aws``), or several together (``slack,twilio``): the first that picks."""
    rules = [RULES[name.strip()] for name in names.split(",")]
    if len(rules) == 1:
        return rules[0]

    def combined(method: str, path: str, headers: dict[str, str], body: bytes) -> Pick | None:
        return next((pick for rule in rules if (pick := rule(method, path, headers, body)) is not None), None)

    return combined


def _first(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _header(headers: dict[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lowered), None)


# ---------------------------------------------------------------- the proxy


class ProxyServer:
    """The aiohttp application: forward, or fail what the rule picks with ``failure_rate``."""

    def __init__(self, *, upstream: str, rule: Rule, failure_rate: float, seed: int | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.rule = rule
        self.failure_rate = failure_rate
        # Kinds failed at a share of their own ("sms": 1.0 while SNS SMS is down), else failure_rate.
        self.failure_rates: dict[str, float] = {}
        self._random = random.Random(seed)
        self.stats = {"forwarded": 0, "picked": 0, "failed": 0, "upstream_errors": 0}
        self.failed_by_kind: dict[str, int] = {}
        self.sends: list[dict[str, Any]] = []
        self._session: ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get(f"{ADMIN_PREFIX}stats", self._get_stats)
        app.router.add_get(f"{ADMIN_PREFIX}sends", self._get_sends)
        app.router.add_put(f"{ADMIN_PREFIX}failure-rate", self._put_failure_rate)
        app.router.add_route("*", "/{tail:.*}", self._proxy)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, _app: web.Application) -> None:
        # No total timeout: SQS long polls hold a request for their whole wait, by design.
        self._session = ClientSession(
            connector=TCPConnector(limit=0, force_close=False),
            timeout=ClientTimeout(total=None, sock_connect=5),
            auto_decompress=False,
        )

    async def _close(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def _get_stats(self, _request: web.Request) -> web.Response:
        return web.json_response({**self.stats, "failed_by_kind": self.failed_by_kind, "failure_rate": self.failure_rate, "failure_rates": self.failure_rates})

    async def _get_sends(self, _request: web.Request) -> web.Response:
        return web.json_response(self.sends)

    async def _put_failure_rate(self, request: web.Request) -> web.Response:
        body = await request.json()
        kind, rate = body.get("kind"), body["failure_rate"]
        if kind is None:
            self.failure_rate = float(rate)
        elif rate is None:
            self.failure_rates.pop(kind, None)
        else:
            self.failure_rates[kind] = float(rate)
        return web.json_response({"failure_rate": self.failure_rate, "failure_rates": self.failure_rates})

    async def _proxy(self, request: web.Request) -> web.StreamResponse:
        # Read first: once the client is gone (killed mid-call), the request has no transport.
        peer = request.transport.get_extra_info("peername") if request.transport else None
        started = time.time()
        body = await request.read()
        headers = {key: value for key, value in request.headers.items() if key.lower() not in HOP_BY_HOP_HEADERS}
        pick = self.rule(request.method, request.path, headers, body)
        if pick is not None:
            self.stats["picked"] += 1
            if self._random.random() < self.failure_rates.get(pick.kind, self.failure_rate):
                self.stats["failed"] += 1
                self.failed_by_kind[pick.kind] = self.failed_by_kind.get(pick.kind, 0) + 1
                failure = pick.failure
                return web.Response(status=failure.status, body=failure.body, headers={"Content-Type": failure.content_type})
        assert self._session is not None
        try:
            async with self._session.request(
                request.method,
                self.upstream + request.path_qs,
                headers=headers,  # Host included: the upstream sees the address its client used
                data=body,
                allow_redirects=False,
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            ) as upstream:
                payload = await upstream.read()
                response_headers = {
                    key: value for key, value in upstream.headers.items() if key.lower() not in HOP_BY_HOP_HEADERS
                }
                self.stats["forwarded"] += 1
                if pick is not None and upstream.status < 300:
                    self.sends.append(
                        {
                            "t": time.time(),
                            "started": started,
                            "kind": pick.kind,
                            "text": pick.text,
                            "client_port": peer[1] if peer else None,
                        }
                    )
                return web.Response(status=upstream.status, body=payload, headers=response_headers)
        except (ClientError, OSError, asyncio.TimeoutError) as exc:
            self.stats["upstream_errors"] += 1
            return web.Response(status=502, text=f"fault proxy: upstream unreachable: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------- driving it from a test


class HttpFaultProxy:
    """A proxy process started from a test; ``url`` is what the client under test should use."""

    def __init__(
        self,
        *,
        upstream: str,
        rule: str,
        failure_rate: float,
        log_path: Path,
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        if any(name.strip() not in RULES for name in rule.split(",")):
            raise ValueError(f"unknown rule {rule!r}; known: {', '.join(sorted(RULES))} (or several, comma-separated)")
        self.port = free_port()
        argv = [
            sys.executable, "-m", "harness.http_fault_proxy",
            "--upstream", upstream, "--rule", rule, "--failure-rate", str(failure_rate), "--port", str(self.port),
        ]
        if seed is not None:
            argv += ["--seed", str(seed)]
        self.process = ManagedProcess(name or f"http-fault-proxy-{rule.replace(',', '-')}", argv, cwd=REPO_ROOT, log_path=log_path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> HttpFaultProxy:
        self.process.start()
        try:
            wait_for_http(f"{self.url}{ADMIN_PREFIX}stats", timeout=timeout, process=self.process)
        except BaseException:
            self.process.stop()
            raise
        return self

    def stop(self) -> None:
        self.process.stop(5)

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}{ADMIN_PREFIX}stats", timeout=10) as response:
            return json.loads(response.read())

    def sends(self) -> list[dict[str, Any]]:
        """The sends the upstream accepted, oldest first: ``{"t", "kind", "text", "client_port"}``."""
        with urllib.request.urlopen(f"{self.url}{ADMIN_PREFIX}sends", timeout=60) as response:
            return json.loads(response.read())

    def set_failure_rate(self, failure_rate: float | None, *, kind: str | None = None) -> None:
        """The share of picked requests failed from now on; of one ``kind`` only when given
        (``None`` then gives it back the common share)."""
        request = urllib.request.Request(
            f"{self.url}{ADMIN_PREFIX}failure-rate",
            data=json.dumps({"failure_rate": failure_rate, **({"kind": kind} if kind else {})}).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def __enter__(self) -> HttpFaultProxy:
        return self.start()

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--upstream", required=True, help="base URL requests are forwarded to")
    parser.add_argument("--rule", required=True, help=f"one of {', '.join(sorted(RULES))}, or several comma-separated")
    parser.add_argument("--failure-rate", type=float, default=0.1)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    server = ProxyServer(upstream=args.upstream, rule=rule_named(args.rule), failure_rate=args.failure_rate, seed=args.seed)
    web.run_app(server.app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
