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
report=$(mktemp)
trap 'rm -f "$report"' EXIT
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# one plain closing line, whatever the reporter printed
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
' "$report" || echo "tests: no report (vitest exited $status)"
exit "$status"
