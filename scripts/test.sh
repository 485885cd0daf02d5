#!/usr/bin/env bash
# Install everything the whole test suite needs on a fresh machine, then run it.
# Debian's Chromium comes from apt (as root, when missing); Python packages from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 && [ -z "${DISPATCH_CHROMIUM:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium fonts-liberation fonts-dejavu-core >/dev/null
  else
    echo "note: no Chromium (install Debian's 'chromium' or set DISPATCH_CHROMIUM); browser tests will be skipped" >&2
  fi
fi

python3 -m pip install --quiet -e '.[test]'
python3 -m pytest -q "$@"
