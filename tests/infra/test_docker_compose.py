"""docker-compose.yml and the Dockerfile, checked offline (no Docker engine needed).

The compose file must be valid by the Compose Specification's JSON schema (vendored in
tests/infra/schemas/, see SOURCE.md there), build only targets the Dockerfile has, run only
modules the repository has, and set on each of our services only variables that are real
settings of that service (a misspelt setting would be ignored silently and fall back to its
local default).
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mtls.paths import PkiPaths
from shared.settings import environment_names

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
COMPOSE_SCHEMA = Path(__file__).resolve().parent / "schemas" / "compose-spec.json"

# Dockerfile target => the settings classes of what runs in it. init runs python -m stack.prepare:
# the migrations and the topology (ServiceSettings), the SES identity the email sender sends from.
SETTINGS_BY_TARGET: dict[str, list[tuple[str, str]]] = {
    "gateway": [("gateway.settings", "GatewaySettings")],
    "sender-sms": [("sender_sms.settings", "SmsSenderSettings")],
    "sender-email": [("sender_email.settings", "EmailSenderSettings")],
    "sender-slack": [("sender_slack.settings", "SlackSenderSettings")],
    "callback-sender": [("callback_sender.settings", "CallbackSenderSettings")],
    "init": [("shared.settings", "ServiceSettings"), ("sender_email.settings", "EmailSenderSettings")],
}

# The variables the third-party images document that we may set, by image repository.
THIRD_PARTY_VARIABLES: dict[str, set[str]] = {
    "localstack/localstack": {
        "SERVICES", "EAGER_SERVICE_LOADING", "DEBUG", "LS_LOG", "PERSISTENCE", "LOCALSTACK_HOST",
        "GATEWAY_LISTEN", "LOCALSTACK_AUTH_TOKEN", "AWS_DEFAULT_REGION", "SQS_ENDPOINT_STRATEGY",
    },
    "postgres": {
        "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "POSTGRES_INITDB_ARGS",
        "POSTGRES_HOST_AUTH_METHOD", "PGDATA",
    },
    "wiremock/wiremock": {"JAVA_TOOL_OPTIONS", "uid"},
    "prom/prometheus": set(),
}  # fmt: skip

# Variables the Dockerfile sets for Python and uv themselves, not for our settings.
RUNTIME_VARIABLES = re.compile(r"^(PATH|PYTHON\w*|UV_\w*)$")


def _load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


COMPOSE = _load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
OUR_SERVICES = sorted(name for name, service in SERVICES.items() if "build" in service)
THIRD_PARTY_SERVICES = sorted(name for name, service in SERVICES.items() if "build" not in service)


def _stages(dockerfile: str) -> dict[str, str]:
    """Each named stage's text, from its FROM line to the next one."""
    stages: dict[str, str] = {}
    name = None
    for line in dockerfile.splitlines():
        match = re.match(r"^FROM\s+\S+(?:\s+AS\s+(\S+))?\s*$", line, flags=re.IGNORECASE)
        if match:
            name = match[1]
            if name:
                stages[name] = ""
            continue
        if name:
            stages[name] += line + "\n"
    return stages


STAGES = _stages(DOCKERFILE.read_text())


def _target(service: dict[str, Any]) -> str:
    build = service["build"]
    return build.get("target", "") if isinstance(build, dict) else ""


def _environment(service: dict[str, Any]) -> dict[str, Any]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in environment)
    return environment


def _settings_names(target: str) -> set[str]:
    if target not in SETTINGS_BY_TARGET:
        pytest.fail(f"no settings class is known for the {target!r} image: add it to SETTINGS_BY_TARGET")
    names: set[str] = set()
    for module_name, class_name in SETTINGS_BY_TARGET[target]:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            pytest.fail(f"{module_name} does not exist (yet): cannot check the variables of the {target} image ({exc})")
        names |= environment_names(getattr(module, class_name))
    return names


def _commands(service: dict[str, Any]) -> list[str]:
    parts = []
    for key in ("command", "entrypoint"):
        value = service.get(key)
        if value:
            parts.append(" ".join(value) if isinstance(value, list) else value)
    test = (service.get("healthcheck") or {}).get("test")
    if test:
        parts.append(" ".join(test) if isinstance(test, list) else test)
    return parts


def _python_modules(text: str) -> set[str]:
    # Both `python -m x` and the exec form ["python", "-m", "x"].
    flat = re.sub(r'[\[\]",]', " ", text)
    return set(re.findall(r"\bpython3?\s+-m\s+([A-Za-z_][\w.]*)", flat))


def _module_problem(module: str) -> str | None:
    if module.split(".")[0] in sys.stdlib_module_names:  # python -m compileall and the like
        return None
    path = REPO / Path(*module.split("."))
    if path.is_dir():
        return None if (path / "__main__.py").is_file() else f"{path.relative_to(REPO)}/__main__.py does not exist"
    return None if path.with_suffix(".py").is_file() else f"{path.relative_to(REPO)}.py does not exist"


class TestComposeSpecification:
    def test_compose_file_is_valid(self) -> None:
        schema = json.loads(COMPOSE_SCHEMA.read_text())
        validator = jsonschema.Draft7Validator(schema)
        errors = sorted(validator.iter_errors(COMPOSE), key=lambda error: list(error.absolute_path))
        messages = [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}" for error in errors]
        assert not messages, "docker-compose.yml breaks the Compose Specification:\n" + "\n".join(messages)

    def test_the_schema_rejects_what_compose_rejects(self) -> None:
        # Guards against a vendored schema that accepts anything.
        schema = json.loads(COMPOSE_SCHEMA.read_text())
        broken = {"services": {"gateway": {"build": {"context": ".", "taget": "gateway"}}}}
        assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


class TestBuildTargets:
    @pytest.mark.parametrize("service", OUR_SERVICES)
    def test_target_is_a_dockerfile_stage(self, service: str) -> None:
        build = SERVICES[service]["build"]
        assert isinstance(build, dict) and build.get("context") == ".", f"{service}: build the repository root"
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile"
        target = _target(SERVICES[service])
        assert target in set(STAGES), f"{service}: the Dockerfile has no stage {target!r}"

    def test_dockerfile_has_every_image_target(self) -> None:
        assert set(SETTINGS_BY_TARGET) <= set(STAGES)


class TestPythonModules:
    def test_every_module_run_by_the_dockerfile_exists(self) -> None:
        modules = _python_modules(DOCKERFILE.read_text())
        assert {"gateway", "sender_sms", "sender_email", "sender_slack"} <= modules
        problems = {module: _module_problem(module) for module in sorted(modules)}
        missing = [f"python -m {module}: {problem}" for module, problem in problems.items() if problem]
        assert not missing, "the Dockerfile runs modules the repository does not have:\n" + "\n".join(missing)

    @pytest.mark.parametrize("service", sorted(SERVICES))
    def test_every_module_run_by_compose_exists(self, service: str) -> None:
        modules = set().union(*(_python_modules(command) for command in _commands(SERVICES[service])))
        missing = [f"python -m {module}: {problem}" for module in sorted(modules) if (problem := _module_problem(module))]
        assert not missing, "\n".join(missing)


class TestEnvironment:
    @pytest.mark.parametrize("service", OUR_SERVICES)
    def test_our_services_set_only_real_settings(self, service: str) -> None:
        target = _target(SERVICES[service])
        unknown = sorted(set(_environment(SERVICES[service])) - _settings_names(target))
        assert not unknown, f"{service} sets {unknown}, which no settings class of the {target} image reads"

    @pytest.mark.parametrize("target", sorted(SETTINGS_BY_TARGET))
    def test_dockerfile_sets_only_real_settings(self, target: str) -> None:
        stage = STAGES[target]
        assigned = set(re.findall(r"^ENV\s+(\w+)=", stage, flags=re.MULTILINE))
        read_by_healthcheck = set(re.findall(r"os\.environ\.get\('(\w+)'", stage))
        unknown = sorted(name for name in assigned | read_by_healthcheck if not RUNTIME_VARIABLES.match(name))
        unknown = sorted(set(unknown) - _settings_names(target))
        assert not unknown, f"the {target} stage uses {unknown}, which are not settings of that image"

    @pytest.mark.parametrize("service", THIRD_PARTY_SERVICES)
    def test_third_party_services_set_only_documented_variables(self, service: str) -> None:
        image = SERVICES[service]["image"]
        repository = image.rsplit(":", 1)[0]
        assert repository in THIRD_PARTY_VARIABLES, f"{service}: no known variables for image {image}"
        unknown = sorted(set(_environment(SERVICES[service])) - THIRD_PARTY_VARIABLES[repository])
        assert not unknown, f"{service} sets {unknown}, which {repository} does not document"


class TestStartOrder:
    def test_init_waits_for_healthy_localstack_and_postgres(self) -> None:
        depends_on = SERVICES["init"]["depends_on"]
        assert depends_on == {
            "localstack": {"condition": "service_healthy"},
            "postgres": {"condition": "service_healthy"},
        }

    @pytest.mark.parametrize("service", sorted(set(OUR_SERVICES) - {"init"}))
    def test_services_start_after_init_completed(self, service: str) -> None:
        assert SERVICES[service]["depends_on"]["init"] == {"condition": "service_completed_successfully"}

    @pytest.mark.parametrize("service", sorted(set(SERVICES) - {"init"}))
    def test_every_long_running_service_has_a_healthcheck(self, service: str) -> None:
        assert SERVICES[service].get("healthcheck", {}).get("test"), f"{service} has no healthcheck"

    @pytest.mark.parametrize("service", sorted(set(OUR_SERVICES) - {"init"}))
    def test_healthcheck_asks_the_services_own_ops_port(self, service: str) -> None:
        environment = _environment(SERVICES[service])
        (ops_port,) = [value for name, value in environment.items() if name.endswith("OPS_PORT")]
        (ops_host,) = [value for name, value in environment.items() if name.endswith("OPS_HOST")]
        test = " ".join(SERVICES[service]["healthcheck"]["test"])
        assert f"127.0.0.1:{ops_port}/readyz" in test
        assert ops_host == "0.0.0.0", "the ops port must listen beyond the container's loopback"

    @pytest.mark.parametrize("service", THIRD_PARTY_SERVICES)
    def test_third_party_images_are_pinned(self, service: str) -> None:
        image = SERVICES[service]["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image else ""
        assert tag and tag != "latest", f"{service}: pin {image} to a version"


class TestInit:
    """The init service prepares the system with the one command `make up` and the tests use."""

    def _script(self) -> str:
        stage = STAGES["init"]
        match = re.search(r"^COPY\b.*<<'EOF' (\S+)\n(.*?)^EOF$", stage, flags=re.MULTILINE | re.DOTALL)
        assert match, "the init stage writes its script with a COPY heredoc"
        assert re.search(rf'^CMD \["{re.escape(Path(match[1]).name)}"\]', stage, flags=re.MULTILINE), "and runs it"
        return match[2]

    def test_the_image_runs_stack_prepare_and_nothing_of_its_own(self) -> None:
        script = self._script()
        assert _python_modules(script) == {"stack.prepare"}
        assert re.search(r'^python -m stack\.prepare --certs-dir "\$certs"$', script, flags=re.MULTILINE)
        assert re.search(r"^certs=/run/mtls$", script, flags=re.MULTILINE)
        # What the prepare step does is not written again here.
        assert not re.search(r"migrate|topology|verify_email_identity|aws_clients|python -\s*<<", script)

    def test_the_service_runs_the_images_command_with_the_certificates_mounted(self) -> None:
        init = SERVICES["init"]
        assert "command" not in init and "entrypoint" not in init
        assert "./mtls:/run/mtls" in init["volumes"]
        assert set(_environment(init)) >= {"DATABASE_URL", "AWS_ENDPOINT_URL", "EMAIL_FROM_ADDRESS"}


class TestCertificatePaths:
    def test_the_gateway_reads_the_file_names_mtls_writes(self) -> None:
        gateway = SERVICES["gateway"]
        assert "./mtls:/run/mtls:ro" in gateway["volumes"]
        files = PkiPaths.in_directory("/run/mtls")
        environment = _environment(gateway)
        assert {name: environment[name] for name in ("GATEWAY_TLS_CA", "GATEWAY_TLS_CERT", "GATEWAY_TLS_KEY", "GATEWAY_TLS_CRL")} == {
            "GATEWAY_TLS_CA": str(files.ca_cert),
            "GATEWAY_TLS_CERT": str(files.server_cert),
            "GATEWAY_TLS_KEY": str(files.server_key),
            "GATEWAY_TLS_CRL": str(files.crl),
        }

    def test_the_init_script_makes_the_server_key_readable_by_its_file_name(self) -> None:
        key = PkiPaths.in_directory("/run/mtls").server_key.name
        assert f'chmod g+r "$certs"/{key}' in TestInit()._script()


class TestTwilioAccount:
    def test_the_sms_senders_twilio_settings_come_from_the_environment_with_the_settings_defaults(self) -> None:
        from sender_sms.settings import SmsSenderSettings

        environment = _environment(_load_compose()["services"]["sender-sms"])
        defaults = {
            "TWILIO_ACCOUNT_SID": SmsSenderSettings.model_fields["twilio_account_sid"].default,
            "TWILIO_AUTH_TOKEN": SmsSenderSettings.model_fields["twilio_auth_token"].default.get_secret_value(),
            "TWILIO_FROM": SmsSenderSettings.model_fields["twilio_from"].default,
        }
        for name, default in defaults.items():
            assert environment[name] == f"${{{name}:-{default}}}", f"{name}: read from the environment / .env, else the local default"
        assert environment["TWILIO_BASE_URL"] == "${TWILIO_BASE_URL:-http://wiremock:8080}"
