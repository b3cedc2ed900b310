#!/bin/sh
# 07 (low): common secret-bearing variables pass the default excludes into every command:
# Azure connection strings (AccountKey=), .NET ConnectionStrings__* (Password=), JDBC URLs
# with password=, git's GIT_CONFIG_VALUE_n / GIT_CONFIG_PARAMETERS carrying
# http.extraheader "Authorization: ..." (how CI passes a git token), Slack webhook URLs.
# Exit 1 while any of them reaches the sandboxed command.
REPO=${CODEX_REPO:-$(cd "$(dirname "$0")/../../.." && pwd)}; CODEX=${CODEX_BIN:-$REPO/dist/codex}
T=$(mktemp -d /var/tmp/a3-07-XXXXXX); mkdir -p $T/home $T/ch $T/ws
export HOME=$T/home CODEX_HOME=$T/ch
export AZURE_STORAGE_CONNECTION_STRING='DefaultEndpointsProtocol=https;AccountName=a;AccountKey=AZSECRET=='
export ConnectionStrings__Default='Server=db;User Id=sa;Password=NETSECRET;'
export JDBC_URL='jdbc:postgresql://db/app?user=app&password=JDBCSECRET'
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraheader GIT_CONFIG_VALUE_0='AUTHORIZATION: bearer GITSECRET'
export SLACK_HOOK='https://hooks.slack.com/services/T000/B000/SLACKSECRET'
OUT=$(cd $T/ws && "$CODEX" sandbox -s read-only -C $T/ws -- env 2>&1)
rm -rf "$T"
LEAK=$(echo "$OUT" | grep -E 'AZSECRET|NETSECRET|JDBCSECRET|GITSECRET|SLACKSECRET')
echo "$LEAK"
[ -n "$LEAK" ] && { echo "VULNERABLE: secrets reached the sandboxed command"; exit 1; }
echo held; exit 0
