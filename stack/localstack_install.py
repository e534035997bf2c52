"""LocalStack's installation: a virtualenv of its own (Python 3.12+) in ``.local/localstack/<version>``.

``make test`` installs it before the tests run (``python -m stack.localstack --install-only``);
:class:`stack.localstack.LocalStackServer` installs it on its first start otherwise.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

from stack.processes import LOCAL_DIR, REPO_ROOT, ComponentError

LOCALSTACK_INSTALL_DIR = LOCAL_DIR / "localstack"
LOCALSTACK_VERSION = "4.14.0"
# localstack-core's [runtime] extra brings what its SNS, SQS and SES need (its SES runs on moto's
# backend). The caps keep the resolver off later majors that 4.14.0 does not work with (found in
# issue 4's trial); service_identity is what Twisted's TLS code wants.
LOCALSTACK_CONSTRAINTS = ("cbor2<6", "pyopenssl<26", "cryptography<47", "service_identity")
_LOCALSTACK_PREFERRED_PYTHON = (3, 13)  # the one version localstack-core 4.14 declares support for
_LOCALSTACK_MINIMUM_PYTHON = (3, 12)
_LOCALSTACK_STAMP = "installed.json"


def ensure_localstack(install_dir: Path = LOCALSTACK_INSTALL_DIR, version: str = LOCALSTACK_VERSION) -> Path:
    """The Python of a virtualenv holding ``localstack-core`` ``version``; installs it the first time.

    LocalStack needs Python 3.12+, which the project's own virtualenv need not be, so it gets one of
    its own in ``install_dir/version``, made from :func:`find_localstack_python`'s interpreter.
    uv installs it when there is one (about a minute; pip, the fallback, takes several), and the
    install is byte-compiled: under PYTHONDONTWRITEBYTECODE every start would otherwise compile
    LocalStack's imports again (half a minute). Then, as LocalStack's Docker image does at build
    time, it builds the AWS service catalog, which each server would otherwise build on its first
    request (ten seconds). A finished install leaves a stamp, so later calls return at once; an
    interrupted one is done again. Raises ComponentError saying what is missing or what failed.
    """
    venv_dir = install_dir / version
    python = venv_dir / "bin" / "python"
    requirements = [f"localstack-core[runtime]=={version}", *LOCALSTACK_CONSTRAINTS]
    if _localstack_installed(venv_dir, requirements):
        return python
    install_dir.mkdir(parents=True, exist_ok=True)
    # Parallel test processes and `make test` may get here together; one install at a time.
    with (install_dir / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _localstack_installed(venv_dir, requirements):
            return python
        _install_localstack(venv_dir, requirements, version)
    return python


def _install_localstack(venv_dir: Path, requirements: list[str], version: str) -> None:
    python = venv_dir / "bin" / "python"
    base_python = find_localstack_python()
    shutil.rmtree(venv_dir, ignore_errors=True)  # what an interrupted install left behind
    uv = find_uv()
    if uv is not None:
        _run_install_step([uv, "venv", "--quiet", "--python", base_python, venv_dir])
        _run_install_step([uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", python, *requirements])
    else:
        _run_install_step([base_python, "-m", "venv", venv_dir])
        _run_install_step([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements])
    installed = _python_output(python, "import importlib.metadata as m; print(m.version('localstack-core'))")
    if installed != version:
        raise ComponentError(f"{venv_dir} holds localstack-core {installed}, not {version}")
    static_libs = localstack_static_libs(venv_dir)
    static_libs.mkdir(parents=True)
    # Writes service-catalog-<version>-<botocore version>.dill into FILESYSTEM_ROOT/usr/lib/localstack.
    _run_install_step(
        [python, "-m", "localstack.aws.spec"],
        env={**os.environ, "OVERRIDE_IN_DOCKER": "0", "FILESYSTEM_ROOT": str(static_libs.parents[2])},
    )
    stamp = {"requirements": requirements, "python": str(base_python), "installer": "uv" if uv else "pip"}
    (venv_dir / _LOCALSTACK_STAMP).write_text(json.dumps(stamp, indent=2) + "\n")


def _run_install_step(argv: list[str | Path], *, env: dict[str, str] | None = None) -> None:
    command = [str(arg) for arg in argv]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise ComponentError(
            f"installing LocalStack failed: {' '.join(command)} exited with {result.returncode}:\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )


def localstack_static_libs(venv_dir: Path) -> Path:
    """What LocalStack's image keeps in /usr/lib/localstack (the service catalog), shared by every server."""
    return venv_dir / "filesystem" / "usr" / "lib" / "localstack"


def _localstack_installed(venv_dir: Path, requirements: list[str]) -> bool:
    try:
        stamp = json.loads((venv_dir / _LOCALSTACK_STAMP).read_text())
    except (OSError, ValueError):
        return False
    # The interpreter is a link to the base Python; a removed base (pyenv uninstall) breaks it.
    return (
        stamp.get("requirements") == requirements
        and (venv_dir / "bin" / "python").exists()
        and any(localstack_static_libs(venv_dir).glob("service-catalog-*.dill"))
    )


def find_localstack_python() -> Path:
    """python3.13, else the newest Python 3.12+ that runs: ``python3.N`` and ``python3`` on PATH, and pyenv's versions.

    Every candidate is run once, because a pyenv shim exists on PATH even for versions that pyenv
    has not selected, and fails when run. Raises ComponentError listing what was tried.
    """
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    names = [f"python3.{minor}" for minor in range(30, _LOCALSTACK_MINIMUM_PYTHON[1] - 1, -1)] + ["python3"]
    candidates = [Path(found) for name in names if (found := shutil.which(name))]
    candidates += sorted(pyenv_root.glob("versions/*/bin/python3"))
    usable: dict[Path, tuple[int, int]] = {}
    rejected: list[str] = []
    seen: set[Path] = set()
    for candidate in candidates:
        real = candidate.resolve()
        if real in seen:
            continue
        seen.add(real)
        try:
            answer = _python_output(candidate, "import sys, venv; print(*sys.version_info[:2])")
            version = (int(answer.split()[0]), int(answer.split()[1]))
        except (ComponentError, ValueError, IndexError) as exc:
            rejected.append(f"{candidate} (does not run: {str(exc).splitlines()[-1] if str(exc) else exc!r})")
            continue
        if version < _LOCALSTACK_MINIMUM_PYTHON:
            rejected.append(f"{candidate} ({version[0]}.{version[1]})")
        else:
            usable[candidate] = version
    if not usable and (managed := _uv_managed_python(rejected)) is not None:
        return managed
    if not usable:
        raise ComponentError(
            "LocalStack needs Python 3.12 or newer (3.13 preferred) for its virtualenv, and none was found. "
            f"Looked for python3.12+ and python3 on PATH and in {pyenv_root}/versions; "
            f"tried: {', '.join(rejected) or 'nothing found'}. "
            "Install one (e.g. `pyenv install 3.13`, or your system's python3.13 package) and run again."
        )
    return max(usable, key=lambda path: (usable[path] == _LOCALSTACK_PREFERRED_PYTHON, usable[path]))


def _uv_managed_python(rejected: list[str]) -> Path | None:
    """A Python 3.13 that uv manages, installing it when missing: what a fresh machine with only
    Python 3.11 gets (uv downloads its Python builds, where the machine may reach them)."""
    uv = find_uv()
    if uv is None:
        return None
    version = ".".join(map(str, _LOCALSTACK_PREFERRED_PYTHON))

    def uv_python(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(uv), "python", *args], capture_output=True, text=True, timeout=600, check=False)

    found = uv_python("find", "--managed-python", version)
    if found.returncode != 0:
        installed = uv_python("install", version)
        if installed.returncode != 0:
            reason = (installed.stderr.strip().splitlines() or ["failed"])[-1].strip()
            rejected.append(f"`uv python install {version}` ({reason})")
            return None
        found = uv_python("find", "--managed-python", version)
    return Path(found.stdout.strip()) if found.returncode == 0 and found.stdout.strip() else None


def _python_output(python: Path, code: str) -> str:
    try:
        result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ComponentError(str(exc)) from exc
    if result.returncode != 0:
        raise ComponentError(result.stderr.strip() or f"exit code {result.returncode}")
    return result.stdout.strip()


def find_uv() -> Path | None:
    """uv: $UV (the Makefile passes its own), else on PATH, else the copy `make install` bootstraps."""
    for candidate in (os.environ.get("UV"), shutil.which("uv"), LOCAL_DIR / "uv" / "bin" / "uv"):
        if not candidate:
            continue
        path = Path(candidate)
        path = path if path.is_absolute() else REPO_ROOT / path
        if os.access(path, os.X_OK):
            return path
    return None
