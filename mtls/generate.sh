#!/usr/bin/env bash
# Generate or manage the mTLS certificates: a thin wrapper around `python -m mtls`.
# With no command it runs `init` (create whatever is missing). `mtls/generate.sh --help` lists
# the commands; `--dir DIR` or $MTLS_DIR choose the directory (default: this folder).
set -euo pipefail

# We cd to the repository root below (so `-m mtls` and uv find the project); make a relative
# --dir / $MTLS_DIR mean what the caller meant, relative to where they ran us.
absolute() { [[ $1 == /* ]] && printf '%s' "$1" || printf '%s/%s' "$PWD" "$1"; }
if [[ -n ${MTLS_DIR:-} ]]; then export MTLS_DIR="$(absolute "$MTLS_DIR")"; fi
args=()
has_command=false
while (($#)); do
    case $1 in
        --dir) args+=("$1" "$(absolute "${2:?--dir needs a directory}")"); shift 2 ;;
        --dir=*) args+=("--dir=$(absolute "${1#--dir=}")"); shift ;;
        *) args+=("$1"); has_command=true; shift ;;
    esac
done
# No command (nothing, or only --dir): create whatever is missing.
if ! $has_command; then args+=(init); fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -x .venv/bin/python ]]; then
    PY=(.venv/bin/python)
elif command -v uv >/dev/null 2>&1; then
    PY=(uv run python)
else
    PY=(python3)
fi
exec "${PY[@]}" -m mtls "${args[@]}"
