#!/usr/bin/env bash
# Makes sure a pinned schemathesis (the OpenAPI fuzzer test/chaos/api-fuzz.test.ts runs) is
# installed, in a Python venv in the user's cache dir, outside the repository. Nothing is
# committed: a fresh machine with python3 (>= 3.10, with the venv module) and access to PyPI gets
# it on first run; later runs find the pinned version there and skip pip.
#
# Prints the path of the `st` executable on stdout (the only thing on stdout); what it does goes
# to stderr.
#
#   SCHEMATHESIS_VERSION   override the pin (default below)
#   FLEET_SCHEMATHESIS_VENV  override the venv dir
#   PYTHON                 the interpreter that creates the venv (default python3)
set -euo pipefail

VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/fleettools"
VENV="${FLEET_SCHEMATHESIS_VENV:-$CACHE/schemathesis-venv}"
PYTHON="${PYTHON:-python3}"
ST="$VENV/bin/st"

say() { echo "ensure-schemathesis: $*" >&2; }

installed_version() {
  [ -x "$VENV/bin/python" ] || return 1
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null
}

if [ "$(installed_version || true)" = "$VERSION" ] && [ -x "$ST" ]; then
  say "schemathesis $VERSION already in $VENV"
  echo "$ST"
  exit 0
fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  say "no $PYTHON on PATH: install Python >= 3.10 (with venv), or set PYTHON"
  exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating a venv in $VENV with $("$PYTHON" --version 2>&1)"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
fi

say "installing schemathesis==$VERSION into $VENV (pip, from PyPI)"
"$VENV/bin/python" -m pip install --disable-pip-version-check --quiet "schemathesis==$VERSION" >&2

got="$(installed_version || true)"
if [ "$got" != "$VERSION" ] || [ ! -x "$ST" ]; then
  say "after pip, schemathesis is '${got:-missing}', not $VERSION"
  exit 1
fi
say "schemathesis $VERSION installed in $VENV"
echo "$ST"
