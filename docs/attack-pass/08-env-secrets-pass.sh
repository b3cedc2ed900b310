#!/bin/sh
# Finding 08: secret-bearing variables that the default excludes miss reach every command:
# password-manager sessions (BW_SESSION, OP_SESSION_<account>: unlock the user's vault),
# GitLab's OIDC job token CI_JOB_JWT / CI_JOB_JWT_V2 (cloud credentials), webhook URLs
# (SLACK_WEBHOOK_URL), and a URL password containing '/' (DATABASE_URL).
# Run: sh docs/attack-pass/08-env-secrets-pass.sh   (exit 1 = vulnerable)
CODEX=${CODEX_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/dist/codex}
home=$(mktemp -d /tmp/f08-XXXXXX)
out=$(cd "$home" && BW_SESSION=bw-secret OP_SESSION_my=op-secret CI_JOB_JWT=jwt-secret CI_JOB_JWT_V2=jwt2-secret \
      SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T0/B0/hook-secret \
      DATABASE_URL='postgres://app:pa/ss-secret@db/app' CODEX_HOME="$home" \
      "$CODEX" sandbox -s read-only -- env 2>/dev/null | grep -- -secret)
rm -rf "$home"
[ -n "$out" ] && { echo "VULNERABLE: the command's environment holds:"; echo "$out"; exit 1; }
echo blocked
