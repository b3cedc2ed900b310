#!/bin/sh
# 12: $CODEX_HOME is now a --private-dir whose credential files read as empty (third pass 04/08
# fix), but the rest of it is bound back readable: history.jsonl (every prompt the user typed,
# in every project) and sessions/ (the full transcripts of every earlier session: other
# projects' code, command outputs, secrets pasted into prompts, `env` of a danger-full-access
# session).  A prompt-injected model in project A reads project B's conversations.  The
# system layer /etc/codex/config.toml ($CODEX_SYSTEM_DIR; where an admin's MCP servers keep
# their `env` tokens, like config.toml) is readable too.  Commands need none of these.
# Exit 1 while vulnerable, 0 otherwise.
REPO=${CODEX_REPO:-$(cd "$(dirname "$0")/../../.." && pwd)}; CODEX=${CODEX_BIN:-$REPO/dist/codex}
T=$(mktemp -d /var/tmp/a4-12-XXXXXX); mkdir -p $T/home $T/ch/sessions/2026/12/01 $T/ws $T/etc
export HOME=$T/home CODEX_HOME=$T/ch CODEX_SYSTEM_DIR=$T/etc
printf '[mcp_servers.corp]\ncommand = "true"\n[mcp_servers.corp.env]\nTOKEN = "corp_SYSTEM2222"\n' > $T/etc/config.toml
printf '{"session_id":"x","ts":1,"text":"deploy other-project with token hist_HISTORY3333"}\n' > $T/ch/history.jsonl
printf '{"type":"response_item","payload":{"type":"function_call_output","output":"DB_PASSWORD=sess_ROLLOUT4444"}}\n' > $T/ch/sessions/2026/12/01/rollout-2026-12-01T10-00-00-x.jsonl
chmod -R go-rwx $T/ch
OUT=$(cd $T/ws && timeout 30 "$CODEX" sandbox -s read-only -C $T/ws -- sh -c \
  "cat \"\$CODEX_HOME\"/history.jsonl; find \"\$CODEX_HOME\"/sessions -type f -exec cat {} +; cat $T/etc/config.toml" 2>&1)
rm -rf "$T"
found=$(echo "$OUT" | grep -o "corp_SYSTEM2222\|hist_HISTORY3333\|sess_ROLLOUT4444" | sort -u | tr '\n' ' ')
echo "read by a sandboxed command: ${found:-nothing}"
[ -n "$found" ] && { echo "VULNERABLE: other sessions' transcripts / prompt history / system config readable"; exit 1; }
echo held; exit 0
