"""Generated requests against the real gateway process: schemathesis reads its /openapi.json.

Every operation gets a few hundred generated cases, valid by the schema (positive) and not
(negative), sent over mutual TLS with a client certificate that holds every role, and every
check schemathesis has judges each answer: no server error, a status code, content type,
headers and body the schema documents, a request the schema forbids refused, and one it allows
accepted, except where the refusal is semantic (``SEMANTIC_REJECTIONS``: an unknown recipient,
a cursor the API never handed out, a phone number its country's numbering plan does not have).

The gateway here has a database of its own: the fuzzer creates thousands of recipients that
would slow down and disturb the other tests' listings. Some cases are steered to a recipient
and a notification that exist, so the success answers (200, 201, 204) are checked too and not
only the 400s and 404s that random names and ids produce.

What the fuzzer found (text Postgres cannot store reaching a query, cursors decoding to such
text, an undocumented 413) is fixed and kept as minimal reproductions in ``TestFoundByFuzzing``.
When it finds something new, reproduce it there as a strict xfail until the gateway is fixed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote

import jsonschema_rs
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import CHECKS as CHECKS_REGISTRY
from schemathesis.checks import CheckContext, load_all_checks, negative_data_rejection, positive_data_acceptance
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.transport import Response
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES
from schemathesis.schemas import BaseSchema

from gateway.recipients.schemas import NAME_PATTERN
from gateway.pagination import encode_cursor
from harness.gateway import Certificates, GatewayProcess, start_gateway
from harness.postgres import PostgresServer, fetch
from stack.moto import MotoServer
from stack.prepare import prepare_system

# (method, path) of every operation the gateway documents; a test checks the live schema has
# exactly these, so a new route cannot slip past the fuzzer.
OPERATIONS = (
    ("PUT", "/recipients/{name}"),
    ("GET", "/recipients/{name}"),
    ("DELETE", "/recipients/{name}"),
    ("GET", "/recipients"),
    ("PUT", "/recipients/{name}/preferences"),
    ("GET", "/recipients/{name}/preferences"),
    ("POST", "/notifications"),
    ("POST", "/notifications/batch"),
    ("GET", "/notifications/{notification_id}"),
    ("POST", "/notifications/{notification_id}/cancel"),
    ("PUT", "/templates/{name}"),
    ("GET", "/templates/{name}"),
    ("DELETE", "/templates/{name}"),
    ("GET", "/templates/{name}/versions/{version}"),
    ("GET", "/templates"),
    ("POST", "/templates/{name}/preview"),
    ("PUT", "/callbacks"),
    ("GET", "/callbacks"),
    ("POST", "/callbacks/rotate-secret"),
    ("DELETE", "/callbacks"),
    ("GET", "/suppressions"),
    ("DELETE", "/suppressions/{channel}/{address}"),
    ("POST", "/jobs"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{job_id}"),
    ("GET", "/jobs/{job_id}/notifications"),
    ("POST", "/jobs/{job_id}/cancel"),
)
# 19 x 250 = 4,750 cases, and the 3 below: the generation of bodies breaking a maxLength is most
# of the time.
CASES_PER_MODE = {GenerationMode.POSITIVE: 150, GenerationMode.NEGATIVE: 100}
# Operations that take no input at all (the caller's certificate says whose callback): there is
# one request to make, and no way to make it invalid by the schema.
NO_INPUT = {("GET", "/callbacks"), ("POST", "/callbacks/rotate-secret"), ("DELETE", "/callbacks")}
FUZZED = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in CASES_PER_MODE
    if not ((method, path) in NO_INPUT and mode is GenerationMode.NEGATIVE)
]


@schemathesis.check
def positive_data_acceptance_but_semantic(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """positive_data_acceptance, except for rejections no schema can rule out (SEMANTIC_REJECTIONS)."""
    if response.status_code == 400 and any(reason in response.text for reason in SEMANTIC_REJECTIONS):
        return None
    return positive_data_acceptance(ctx, response, case)


@schemathesis.check
def negative_data_rejection_but_unicode_names(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """negative_data_rejection, except for a recipient name that schemathesis mistakes for one the
    document forbids: the document's pattern says "a letter or digit" as ``\\p{L}\\p{N}`` (every
    script), which schemathesis reads as Latin letters only."""
    meta = case.meta
    name = case.path_parameters.get("name")
    if (
        meta is not None
        and isinstance(name, str)
        and meta.is_negative_at(ParameterLocation.PATH)
        and not any(meta.is_negative_at(location) for location in ParameterLocation if location is not ParameterLocation.PATH)
        and NAME_PATTERN.fullmatch(unquote(name))  # as sent: percent-encoded
    ):
        return None
    return negative_data_rejection(ctx, response, case)


# Every check schemathesis has, with the two exceptions above.
load_all_checks()
CHECKS = [check for check in CHECKS_REGISTRY.get_all() if check not in (positive_data_acceptance, negative_data_rejection)]
# 413 is a rejection too: schemathesis's default list lacks it, and a negative case whose message
# breaks maxLength with astral characters is over GATEWAY_MAX_BODY_BYTES once JSON-escaped.
FUZZ_CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]}}}
)
# Recipients and notifications that exist, in each shape the answers can take (optional fields
# present or not), for the generated cases steered to them.
KNOWN_RECIPIENTS = {
    "fuzz-all": {"phone_number": "+14155552671", "email": "known@example.com", "slack_id": "U0123456789"},
    "fuzz-sms": {"phone_number": "+14155552671"},
    "fuzz-email": {"email": "known@example.com"},
    "fuzz-slack": {"slack_id": "U0123456789"},
}
# Preferences PUT by the steered cases (no other case is steered to it), and a recipient that
# turned SMS off (its notifications have a skipped delivery).
PREFERENCES_TARGET = "fuzz-preferences"
OPTED_OUT = "fuzz-opted-out"
SUPPRESSED = [("email", f"fuzz-{index}@example.com") for index in range(40)] + [("sms", f"+1415555{index:04d}") for index in range(10)]
# Templates that exist: every channel without placeholders (any personalisation renders it), with
# placeholders and a category, Slack only.
KNOWN_TEMPLATES = {
    "fuzz-plain": {"sms": "hello", "email": {"subject": "Greetings", "body": "hello"}, "slack": "hello"},
    "fuzz-placeholders": {"sms": "Hi ((name))", "email": {"subject": "For ((name))", "body": "Dear ((name))((vip?? VIP))"}, "category": "orders"},
    "fuzz-slack": {"slack": "hello *there*"},
}
KNOWN_NOTIFICATIONS = (
    {"recipient": "fuzz-all", "message": "hello"},
    {"recipient": "fuzz-all", "message": "hello", "subject": "Greetings", "channels": ["email", "slack"]},
    {"recipient": "fuzz-sms", "message": "hello"},
    {"recipient": "fuzz-all", "template": "fuzz-placeholders", "personalisation": {"name": "Ada", "vip": True}},
    {"recipient": OPTED_OUT, "message": "hello", "category": "marketing"},
)
# A CSV POST /jobs takes with the template fuzz-plain (no placeholders), sent days ahead.
KNOWN_JOB_CSV = "email,note\nknown@example.com,1\n"
JOB_SEND_AT = (datetime.now(UTC) + timedelta(days=6)).isoformat()
# URLs PUT /callbacks takes (the gateway here has the local stack's localhost exemption), for
# the generated cases steered to them; a random host name does not resolve.
ACCEPTED_CALLBACK_URLS = ["https://203.0.114.10/fuzz", "http://localhost:9/fuzz?x=1", "https://[2001:4860::8888]:8443/a/b"]
MAX_BODY_BYTES = 65_536  # GATEWAY_MAX_BODY_BYTES's default, which the gateway here runs with
# Schema-valid requests the gateway rightly refuses (400). Whether they can succeed depends on
# what is stored, or on rules the document states in words because no JSON Schema can: a phone
# number valid for its country (the numbering plans), an email address's full syntax.
SEMANTIC_REJECTIONS = (
    "unknown recipient: ",  # POST /notifications to a name that is no recipient's
    "contact; its channels are: ",  # POST /notifications asking for a channel the recipient lacks
    "template not found: ",  # POST /notifications by a template that does not exist
    "has no version ",  # ... or a version it does not have
    "content; its channels are: ",  # ... asking for a channel the template has no content for
    "has none of them",  # ... whose channels the recipient has none of
    "Missing personalisation: ",  # POST /notifications, POST /templates/{name}/preview: the template's placeholders
    "personalisation has both ",  # two keys for one placeholder (case, spaces, _ and - aside)
    "too long for sms: ",  # a message (or rendering) SNS would refuse, for a recipient with a phone number
    "too long for slack: ",
    "email subject too long: ",  # a rendered subject
    "email subject must be one line",  # a rendered subject
    "placeholder without a name",  # PUT /templates/{name}: (( )) is no placeholder
    "placeholder name longer than",
    "cursor is not one this API returned",  # GET /recipients with a cursor it never handed out
    "is not a valid number for its country",  # PUT /recipients/{name}: the number's numbering plan
    "is not a phone number",
    "is not a valid address",  # PUT /recipients/{name}: email-validator's syntax
    # PUT /callbacks: where the URL's host is or resolves to (the document states the rule in
    # words), and what only parsing the URL finds (a port out of range, a malformed IPv6 literal).
    "url's host ",
    "url is not a valid URL",
    "url must be an https:// URL (http:// is allowed only for localhost",
    # POST /notifications: send_at relative to now (a generated date and time is rarely within
    # the next 7 days); PUT /recipients/{name}/preferences: a zone name the system does not
    # have, and an empty window.
    "send_at is in the past",
    "send_at is more than 7 days ahead",
    "unknown time zone: ",
    "quiet_hours start and end must differ",
    # POST /jobs: a generated text is rarely a CSV whose columns fit the template.
    "Missing column headers: ",
    "the CSV ",
    "rows have errors",
    "the header names the column",
    "of the header has no name",
    "give either a recipient column or address columns",
    "has a cell longer than",
    "both fill the placeholder",
)


@dataclass
class FuzzTarget:
    gateway: GatewayProcess
    schema: BaseSchema
    session: requests.Session
    notification_ids: list[str]
    job_ids: list[str]

    def send(self, method: str, path: str, *, body: str | bytes | None = None) -> requests.Response:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return self.session.request(method, self.gateway.base_url + path, data=body, headers=headers, timeout=15)

    def documented_statuses(self, method: str, path: str) -> set[str]:
        return set(self.schema.raw_schema["paths"][path][method.lower()]["responses"])


@pytest.fixture(scope="module")
def fuzz_gateway(
    postgres_server: PostgresServer, moto: MotoServer, certificates: Certificates, log_dir: Path
) -> Iterator[GatewayProcess]:
    database_url = postgres_server.create_database()
    asyncio.run(prepare_system(database_url=database_url, aws_endpoint_url=moto.endpoint_url, certs_dir=certificates.directory))
    # Suppressions as receipts write them, for the listing to page through and DELETE to lift (204).
    for channel, address in SUPPRESSED:
        fetch(database_url, "INSERT INTO suppressions (channel, address, reason) VALUES ($1, $2, 'complaint (abuse)')", channel, address)
    gateway = start_gateway(
        certificates=certificates, database_url=database_url, aws_endpoint_url=moto.endpoint_url, log_dir=log_dir, name="gateway-fuzz"
    )
    yield gateway
    gateway.process.stop()
    postgres_server.drop_database(database_url)


@pytest.fixture(scope="module")
def target(fuzz_gateway: GatewayProcess) -> Iterator[FuzzTarget]:
    client = fuzz_gateway.certificates.client()
    session = requests.Session()
    # Else requests lets REQUESTS_CA_BUNDLE (set on this machine) override session.verify.
    session.trust_env = False
    session.cert = (str(client.cert), str(client.key))
    session.verify = str(fuzz_gateway.certificates.ca)
    schema = schemathesis.openapi.from_url(
        f"{fuzz_gateway.base_url}/openapi.json", cert=session.cert, verify=session.verify, config=FUZZ_CONFIG
    )
    fuzz = FuzzTarget(fuzz_gateway, schema, session, notification_ids=[], job_ids=[])
    for name, contacts in {**KNOWN_RECIPIENTS, PREFERENCES_TARGET: {"email": "p@example.com"}, OPTED_OUT: KNOWN_RECIPIENTS["fuzz-all"]}.items():
        assert fuzz.send("PUT", f"/recipients/{name}", body=json.dumps(contacts)).status_code == 204
    # A callback, so that GET /callbacks and its rotation have one to answer about (200).
    assert fuzz.send("PUT", "/callbacks", body=json.dumps({"url": "https://203.0.114.10/fuzz"})).status_code == 200
    opt_out = {"channels": {"sms": False}, "categories": {"marketing": {"email": False}}}
    assert fuzz.send("PUT", f"/recipients/{OPTED_OUT}/preferences", body=json.dumps(opt_out)).status_code == 204
    for name, template in KNOWN_TEMPLATES.items():
        assert fuzz.send("PUT", f"/templates/{name}", body=json.dumps(template)).status_code == 201
    # Scheduled ones too, which a steered cancel cancels (200; again 200) and the others 409.
    scheduled = {"recipient": "fuzz-all", "message": "later", "send_at": (datetime.now(UTC) + timedelta(days=6)).isoformat()}
    for notification in (*KNOWN_NOTIFICATIONS, scheduled, {**scheduled, "recipient": "fuzz-slack"}):
        accepted = fuzz.send("POST", "/notifications", body=json.dumps(notification))
        assert accepted.status_code == 201, accepted.text
        fuzz.notification_ids.append(accepted.json()["id"])
    # Jobs held days ahead (nothing of them is released onto the session's queues), for the
    # steered reads and cancels.
    for _ in range(2):
        created = fuzz.session.post(
            fuzz.gateway.base_url + "/jobs", params={"template": "fuzz-plain", "send_at": JOB_SEND_AT}, data=KNOWN_JOB_CSV,
            headers={"Content-Type": "text/csv"}, timeout=15,
        )
        assert created.status_code == 201, created.text
        fuzz.job_ids.append(created.json()["id"])
    yield fuzz
    session.close()


# ---------------------------------------------------------------- generation


def cases_for(target: FuzzTarget, method: str, path: str, mode: GenerationMode) -> st.SearchStrategy[Case]:
    """Generated cases, and as many again steered to the recipients, templates and notifications that exist.

    Only positive cases are steered (negative ones are refused before any lookup), and only
    reads, POST /notifications, previews, the preferences of a recipient of their own and the
    lifting of suppressions put there for it: any other PUT or DELETE would change what the others
    are steered to.
    """
    operation = target.schema[path][method]
    strategy = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.POSITIVE:
        names = {
            ("GET", "/recipients/{name}"): list(KNOWN_RECIPIENTS),
            ("GET", "/recipients/{name}/preferences"): [*KNOWN_RECIPIENTS, OPTED_OUT],
            ("PUT", "/recipients/{name}/preferences"): [PREFERENCES_TARGET],
            ("GET", "/templates/{name}"): list(KNOWN_TEMPLATES),
            ("POST", "/templates/{name}/preview"): list(KNOWN_TEMPLATES),
        }.get((method, path))
        if names is not None:
            steered = st.sampled_from(names).flatmap(
                lambda name: operation.as_strategy(generation_mode=mode, path_parameters={"name": name})
            )
            strategy = st.one_of(strategy, steered)
        elif (method, path) == ("GET", "/templates/{name}/versions/{version}"):
            steered = st.sampled_from(list(KNOWN_TEMPLATES)).flatmap(
                lambda name: operation.as_strategy(generation_mode=mode, path_parameters={"name": name, "version": 1})
            )
            strategy = st.one_of(strategy, steered)
        elif (method, path) in (("GET", "/notifications/{notification_id}"), ("POST", "/notifications/{notification_id}/cancel")):
            steered = st.sampled_from(target.notification_ids).flatmap(
                lambda id_: operation.as_strategy(generation_mode=mode, path_parameters={"notification_id": id_})
            )
            strategy = st.one_of(strategy, steered)
        elif (method, path) == ("DELETE", "/suppressions/{channel}/{address}"):
            # Each lifts one suppression (the first DELETE of it 204, later ones 404).
            steered = st.sampled_from(SUPPRESSED).flatmap(
                lambda key: operation.as_strategy(generation_mode=mode, path_parameters={"channel": key[0], "address": key[1]})
            )
            strategy = st.one_of(strategy, steered)
        elif (method, path) == ("POST", "/notifications"):
            known = st.tuples(strategy, st.sampled_from(list(KNOWN_RECIPIENTS)), st.sampled_from(list(KNOWN_TEMPLATES)))
            strategy = st.one_of(strategy, known.map(_to_known_recipient_and_template))
        elif (method, path) == ("POST", "/notifications/batch"):
            # Items as POST /notifications's steered cases: the document says an item is anything
            # (each is judged on its own), so generated items alone would rarely be accepted.
            single = target.schema["/notifications"]["POST"].as_strategy(generation_mode=mode)
            known = st.tuples(single, st.sampled_from(list(KNOWN_RECIPIENTS)), st.sampled_from(list(KNOWN_TEMPLATES)))
            items = st.lists(known.map(_to_known_recipient_and_template).map(lambda case: case.body), min_size=1, max_size=3)
            strategy = st.one_of(strategy, st.tuples(strategy, items).map(_to_batch_of))
        elif (method, path) in (
            ("GET", "/jobs/{job_id}"),
            ("GET", "/jobs/{job_id}/notifications"),
            ("POST", "/jobs/{job_id}/cancel"),
        ):
            steered = st.sampled_from(target.job_ids).flatmap(
                lambda id_: operation.as_strategy(generation_mode=mode, path_parameters={"job_id": id_})
            )
            strategy = st.one_of(strategy, steered)
        elif (method, path) == ("POST", "/jobs"):
            strategy = st.one_of(strategy, strategy.map(_to_known_job))
        elif (method, path) == ("PUT", "/callbacks"):
            strategy = st.one_of(strategy, st.tuples(strategy, st.sampled_from(ACCEPTED_CALLBACK_URLS)).map(_to_accepted_url))
    return strategy


def _to_accepted_url(case_and_url: tuple[Case, str]) -> Case:
    case, url = case_and_url
    if isinstance(case.body, dict):
        case.body = {**case.body, "url": url}
    return case


def _to_known_job(case: Case) -> Case:
    """A CSV the template fuzz-plain takes, held days ahead (a dry run, when generated so)."""
    case.query = {**(case.query or {}), "template": "fuzz-plain", "send_at": JOB_SEND_AT}
    case.body = KNOWN_JOB_CSV
    return case


def _to_batch_of(case_and_items: tuple[Case, list[object]]) -> Case:
    case, items = case_and_items
    if isinstance(case.body, dict):
        case.body = {**case.body, "notifications": items}
    return case


def _to_known_recipient_and_template(case_recipient_template: tuple[Case, str, str]) -> Case:
    case, recipient, template = case_recipient_template
    if isinstance(case.body, dict):
        case.body = {**case.body, "recipient": recipient}
        if "template" in case.body:
            case.body["template"] = template
            case.body.pop("template_version", None)
    return case


def fuzz(target: FuzzTarget, strategy: st.SearchStrategy[Case], max_examples: int) -> Counter[int]:
    """Send ``max_examples`` generated cases and validate each answer; returns the statuses seen."""
    statuses: Counter[int] = Counter()

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,  # no .hypothesis directory in the work tree
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(case=strategy)
    def run(case: Case) -> None:
        # verify and cert again: schemathesis passes its own verify=True, which beats the session's.
        response = case.call_and_validate(
            base_url=target.gateway.base_url,
            session=target.session,
            checks=CHECKS,
            verify=target.session.verify,
            cert=target.session.cert,
            timeout=15,
        )
        statuses[response.status_code] += 1

    run()
    return statuses


# ---------------------------------------------------------------- tests


class TestSchema:
    def test_every_operation_is_fuzzed(self, target: FuzzTarget) -> None:
        live = {(operation.ok().method.upper(), operation.ok().path) for operation in target.schema.get_all_operations()}
        assert live == set(OPERATIONS)


class TestGeneratedRequests:
    @pytest.mark.parametrize(("method", "path", "mode"), FUZZED, ids=[f"{m} {p}-{mode}" for m, p, mode in FUZZED])
    def test_answers_conform_and_are_never_server_errors(self, target: FuzzTarget, method: str, path: str, mode: GenerationMode) -> None:
        started = time.monotonic()
        statuses = fuzz(target, cases_for(target, method, path, mode), CASES_PER_MODE[mode])
        sent = statuses.total()
        print(f"{method} {path} [{mode}]: {sent} cases in {time.monotonic() - started:.1f} s, statuses {dict(sorted(statuses.items()))}")
        # Hypothesis stops early only when it runs out of distinct inputs; only the operations
        # without inputs do (they have one).
        assert sent >= (1 if (method, path) in NO_INPUT else CASES_PER_MODE[mode]), f"only {sent} cases were generated"
        if mode is GenerationMode.POSITIVE:
            assert any(200 <= status < 300 for status in statuses), "no case reached a success answer"



class TestFoundByFuzzing:
    """Regression tests: minimal reproductions of what the fuzzer found, each now answered right."""

    @pytest.mark.parametrize(
        "body",
        [
            r'{"recipient": "fuzz-all", "message": "a\u0000b"}',
            r'{"recipient": "fuzz-all", "message": "hi", "subject": "a\u0000b"}',
            r'{"recipient": "a\u0000b", "message": "hi"}',
            r'{"recipient": "fuzz-all", "message": "a\ud800b"}',
            r'{"recipient": "a\ud800b", "message": "hi"}',
        ],
        ids=["nul-in-message", "nul-in-subject", "nul-in-recipient", "surrogate-in-message", "surrogate-in-recipient"],
    )
    def test_text_postgres_cannot_store(self, target: FuzzTarget, body: str) -> None:
        response = target.send("POST", "/notifications", body=body)
        assert response.status_code == 400, response.text

    @pytest.mark.parametrize(
        "url",
        [r"https://203.0.114.10/a\u0085b", r"https://203.0.114.10/a\u2028b", r"https://203.0.114.10/a\ud800b", r"https://203.0.114.10/a\u0000b"],
        ids=["c1-control-nel", "line-separator", "unpaired-surrogate", "nul"],
    )
    def test_callback_urls_with_what_no_url_may_hold(self, target: FuzzTarget, url: str) -> None:
        response = target.send("PUT", "/callbacks", body=f'{{"url": "{url}"}}')
        assert response.status_code == 400, response.text

    def test_cursor_naming_nul(self, target: FuzzTarget) -> None:
        response = target.send("GET", "/recipients?cursor=AA")  # base64 of b"\x00"
        assert response.status_code == 400, response.text

    @pytest.mark.parametrize(("path", "allowed"), [("/recipients/fuzz-all", {"GET", "PUT", "DELETE"}), ("/notifications", {"POST"})])
    def test_405_allows_every_method_of_the_resource(self, target: FuzzTarget, path: str, allowed: set[str]) -> None:
        response = target.send("OPTIONS", path)
        assert response.status_code == 405
        assert set(response.headers["Allow"].split(", ")) == allowed

    @pytest.mark.parametrize(
        "name", ["ª", "José Núñez", "甤", "𝐓𝐡𝐞 𝐪", "a.b", "_", "a'b", "x" * 128, "-x", "x ", "semi;colon", "tab\t", "\x89", "x" * 129]
    )
    def test_the_documented_name_pattern_is_the_gateways(self, target: FuzzTarget, name: str) -> None:
        parameter = target.schema.raw_schema["paths"]["/recipients/{name}"]["get"]["parameters"][0]["schema"]
        documented = jsonschema_rs.validator_for(parameter).is_valid(name)
        response = target.send("GET", f"/recipients/{quote(name, safe='')}")
        # A documented name is taken (404, or 200 where the fuzzer registered it earlier in this
        # module's database); any other is a 400.
        assert response.status_code in ({200, 404} if documented else {400}), (name, response.text)

    def test_the_longest_cursor_is_documented_and_taken(self, target: FuzzTarget) -> None:
        cursor = encode_cursor("\U0001d413" * 128)  # the last name of a page: 128 four-byte characters
        parameter = target.schema.raw_schema["paths"]["/recipients"]["get"]["parameters"][0]["schema"]
        assert jsonschema_rs.validator_for(parameter).is_valid(cursor)
        assert target.send("GET", f"/recipients?cursor={cursor}").status_code == 200

    @pytest.mark.parametrize(
        ("email", "status"),
        [("\u2000\x1c\u2028 " * 83, 204), ("x" * 316 + "@a.io", 400), ("jane@example.com", 204)],
        ids=["blank-longer-than-an-address", "address-over-320", "address"],
    )
    def test_the_documented_email_length_is_the_gateways(self, target: FuzzTarget, email: str, status: int) -> None:
        # A blank email of any length means "not set" (the Go gateway's ""); the 320 limit is an address's.
        body = {"slack_id": "U0123456", "email": email}
        document = target.schema.raw_schema
        body_schema = document["paths"]["/recipients/{name}"]["put"]["requestBody"]["content"]["application/json"]["schema"]
        documented = jsonschema_rs.validator_for({**body_schema, "components": document["components"]}).is_valid(body)
        response = target.send("PUT", "/recipients/fuzz-email-length", body=json.dumps(body))
        assert response.status_code == status, response.text
        assert documented == (status == 204)

    @pytest.mark.parametrize(("method", "path"), [("POST", "/notifications"), ("PUT", "/recipients/{name}"), ("PUT", "/templates/{name}")])
    def test_body_over_the_limit_is_documented(self, target: FuzzTarget, method: str, path: str) -> None:
        body = json.dumps({"recipient": "fuzz-all", "message": "x" * MAX_BODY_BYTES, "email": "x" * MAX_BODY_BYTES})
        response = target.send(method, path.replace("{name}", "fuzz-over-the-limit"), body=body)
        assert response.status_code == 413
        assert "413" in target.documented_statuses(method, path)
