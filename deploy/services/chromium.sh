#!/usr/bin/env bash
# Debian's Chromium, for the browser tests (test/e2e/browser.test.ts drives it with
# playwright-core; each test starts its own headless instance with a fresh profile).
#
#   deploy/services/chromium.sh ensure     # installs Debian's chromium when missing, prints its path
#
# Env: CHROMIUM (the binary to use; default: chromium on PATH, /usr/bin/chromium).
set -euo pipefail
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

usage() { echo "usage: $0 ensure" >&2; exit 2; }
[ $# -eq 1 ] || usage

ensure() {
  if [ -n "${CHROMIUM:-}" ]; then
    [ -x "$CHROMIUM" ] || die "CHROMIUM=$CHROMIUM is not an executable"
    echo "$CHROMIUM"
    return 0
  fi
  ensure_packages chromium chromium
  local bin
  bin=$(command -v chromium)
  # a browser that cannot start headless is as good as none: fail here, with its words
  local out
  if ! out=$("$bin" --headless --no-sandbox --disable-gpu --no-first-run --version 2>&1); then
    die "$bin does not start: $out"
  fi
  log "$out at $bin"
  echo "$bin"
}

case $1 in
  ensure) ensure ;;
  *) usage ;;
esac
