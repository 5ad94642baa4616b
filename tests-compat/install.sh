#!/usr/bin/env bash
# Installs everything the client compatibility suite needs: Debian's kcat (librdkafka 2.0.2, our
# "old client" check) and a Python venv at the repo root with the pinned clients. Idempotent: a
# second run only checks what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v kcat >/dev/null 2>&1; then
  echo "install.sh: installing kcat from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq kcat >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "install.sh: creating .venv"
  python3 -m venv .venv
fi

req=tests-compat/requirements.txt
stamp=.venv/.tests-compat-requirements
if ! cmp -s "$req" "$stamp" 2>/dev/null; then
  echo "install.sh: installing $req"
  .venv/bin/pip install -q --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
fi
