#!/usr/bin/env bash
# The whole test suite, from a fresh clone: `npm ci && npm test` runs this.
# Installs nothing by hand: the tests that need a real service (Ceph RGW, Redis, nginx)
# start it themselves through deploy/services/*.sh (vitest global setup), installing
# Debian's packages when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
echo "== typecheck"
npx tsc --noEmit
echo "== tests"
npx vitest run "$@"
