#!/bin/bash
# With network_access = true, codex hides the unix sockets that run code outside the sandbox
# (tmux, D-Bus/systemd in /run/user/UID, containerd, podman, X11, ...) -- except those that hold
# one of the "keep" paths, and keep includes the command's cwd, which is the MODEL's `workdir`.
# A shell call with workdir = $XDG_RUNTIME_DIR (= /run/user/UID: the D-Bus session bus, i.e.
# `systemd-run --user` = unsandboxed commands; rootless docker/podman), /tmp/tmux-UID (tmux
# send-keys into the user's shells), /run/containerd, /run/dbus, /run/podman ... un-hides it.
# Self-contained here: XDG_RUNTIME_DIR is a temporary directory with a stand-in bus socket.
set -u
. "$(dirname "$0")/harness.sh"
T=$(mktemp -d /var/tmp/f10.XXXXXX)
export HOME=$T/home CODEX_HOME=$T/codexhome
mkdir -p $HOME $T/ws
SOCKDIR=$T/run-user; mkdir -m 700 $SOCKDIR; export XDG_RUNTIME_DIR=$SOCKDIR
# stand-in for the user's session bus / tmux server: answers whoever connects
python3 - $SOCKDIR/bus $T/got <<'PY' &
import socket, sys, os
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(5); s.settimeout(60)
while True:
    try: c, _ = s.accept()
    except Exception: break
    data = c.recv(100); open(sys.argv[2], "ab").write(data + b"\n"); c.sendall(b"session-bus-here\n"); c.close()
PY
SRV=$!
sleep 0.5
PROBE='import socket; s = socket.socket(socket.AF_UNIX); s.connect("'$SOCKDIR'/bus"); s.sendall(b"AUTH EXTERNAL; systemd-run --user sh -c evil"); print(s.recv(100))'
cat > $T/script.json <<EOS
[[{"shell": ["python3", "-c", "$(echo "$PROBE" | sed 's/"/\\"/g')"]}],
 [{"shell": ["python3", "-c", "$(echo "$PROBE" | sed 's/"/\\"/g')"], "workdir": "$SOCKDIR"}],
 [{"text": "done"}]]
EOS
start_model $T/script.json
cd $T/ws && timeout 60 "$CODEX_BIN" exec --skip-git-repo-check --full-auto -c sandbox_workspace_write.network_access=true "task" >$T/stdout 2>$T/stderr
stop_model
kill $SRV 2>/dev/null; wait $SRV 2>/dev/null
grep -E "session-bus-here|No such file|FileNotFound|ConnectionRefused" $T/stderr $T/stdout | sed 's/^[^:]*://' | head -4
R=$(cat $T/got 2>/dev/null)
rm -rf $T
if [ -n "$R" ]; then echo "VULNERABLE: the model reached the hidden socket dir by choosing workdir=$SOCKDIR"; exit 1; fi
echo fixed; exit 0
