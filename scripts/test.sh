#!/usr/bin/env bash
# The whole test suite from a clean clone: installs what the tests need (git, Docker engine and
# compose, busybox, Chromium) when missing, builds, then runs unit, integration and browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x node_modules/.bin/vitest ] || npm ci --no-audit --no-fund
bash scripts/test-deps.sh
npm run build
exec node_modules/.bin/vitest run "$@"
