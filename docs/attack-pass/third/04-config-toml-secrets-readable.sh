#!/bin/sh
# 04: `codex mcp add NAME --env TOKEN=...` (and [mcp_servers.*.env], http_headers, provider
# http_headers/query_params) keep credentials in $CODEX_HOME/config.toml; only auth.json is
# hidden from commands, so a read-only sandboxed command prints them (then the model has them).
# Exit 1 while vulnerable.
REPO=${CODEX_REPO:-$(cd "$(dirname "$0")/../../.." && pwd)}; CODEX=${CODEX_BIN:-$REPO/dist/codex}
T=$(mktemp -d /var/tmp/a3-04-XXXXXX); mkdir -p $T/home $T/ch $T/ws
export HOME=$T/home CODEX_HOME=$T/ch
"$CODEX" mcp add gh --env GITHUB_PERSONAL_ACCESS_TOKEN=ghp_s3cr3tVALUE -- npx -y @modelcontextprotocol/server-github >/dev/null
OUT=$(cd $T/ws && "$CODEX" sandbox -s read-only -C $T/ws -- sh -c 'cat "$CODEX_HOME/config.toml"' 2>&1)
rm -rf "$T"
echo "$OUT"
case "$OUT" in *ghp_s3cr3tVALUE*) echo "VULNERABLE: MCP token in config.toml readable in the sandbox"; exit 1;; esac
echo held; exit 0
