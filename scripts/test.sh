#!/usr/bin/env bash
# The one command that runs every check: set-up, type check, lint, generated-files check, build, tests.
# CI runs exactly this (.ci/run).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
# Node.js 24 from node_modules first, whatever node the machine has.
export PATH="$root/node_modules/.bin:$PATH"

npm run --silent typecheck
npm run --silent lint
npm run --silent generate:check
npm run --silent build
mkdir -p .cache
status=0
npm test -- --reporter=default --reporter=json --outputFile.json=.cache/test-results.json "$@" || status=$?
# One plain summary line, whatever the runner prints above it.
node -e '
  const r = JSON.parse(require("fs").readFileSync(".cache/test-results.json", "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' || true
exit $status
