#!/usr/bin/env bash
# Peers for the MCP tests (tests/test_mcp*.py), installed under build/ (never globally):
#   build/npm-mcp   the reference MCP servers from npm (server-everything, server-filesystem);
#               a prefix of its own: npm prunes packages it did not install from a shared one
#   build/mcp1  a venv with the 1.x line of the `mcp` Python SDK (the 2.x line is in
#               requirements/test.lock), so `codex mcp` is tested against both;
#   build/mcp1-old  an early 1.x (protocol 2025-03-26, no elicitation support).
# A failed install only warns here: the tests that need it skip and say why, and fail under
# CI=true (tests/support/qa_need.py), so CI cannot go green without its peers.
set -uo pipefail
cd "$(dirname "$0")/.."
NPM_PKGS="@modelcontextprotocol/server-everything@2026.8.31 @modelcontextprotocol/server-filesystem@2026.8.31"
MCP1="mcp==1.30.0"
MCP1_OLD="mcp==1.9.4 pydantic<2.11"
if command -v npm >/dev/null 2>&1; then
  if [ ! -x build/npm-mcp/node_modules/.bin/mcp-server-everything ] || [ ! -x build/npm-mcp/node_modules/.bin/mcp-server-filesystem ]; then
    mkdir -p build/npm-mcp
    timeout 600 npm install --prefix build/npm-mcp --no-audit --no-fund --loglevel=error $NPM_PKGS \
      || echo "setup-mcp: warning: npm install of the MCP reference servers failed; their tests will skip"
  fi
else
  echo "setup-mcp: warning: npm not found; the npm MCP server tests will skip"
fi
if [ ! -x build/mcp1/bin/python ] || ! build/mcp1/bin/python -c "import mcp" >/dev/null 2>&1; then
  rm -rf build/mcp1
  python3 -m venv build/mcp1 \
    && timeout 600 build/mcp1/bin/python -m pip install --quiet --disable-pip-version-check "$MCP1" \
    || echo "setup-mcp: warning: installing $MCP1 into build/mcp1 failed; the SDK 1.x tests will skip"
fi
if [ ! -x build/mcp1-old/bin/python ] || ! build/mcp1-old/bin/python -c "import mcp" >/dev/null 2>&1; then
  rm -rf build/mcp1-old
  python3 -m venv build/mcp1-old \
    && timeout 600 build/mcp1-old/bin/python -m pip install --quiet --disable-pip-version-check $MCP1_OLD \
    || echo "setup-mcp: warning: installing $MCP1_OLD into build/mcp1-old failed; its test will skip"
fi
exit 0
