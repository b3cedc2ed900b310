"""The sandbox against a hostile model, by the attacker's goal (issue 10, isolation part).

Goals: read auth.json or write what read-only binds cover (capabilities, file handles, new
namespaces); reach outside processes or sockets (IPC, datagrams to pathname sockets, the
network); outlive the command; deny service (fork bombs); take secrets from the environment;
pass a writing command off as known-safe.  Each attack runs as the agent runs a command
(tests/support/sandbox_run.py: load_config -> build_command_env -> run_command) through both
helpers (C and Python), as root and as an unprivileged user where the two differ, and through
`codex exec` with the scripted model.  The attack programs are tests/support/attacks.py.
"""
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import codex
from conftest import REPO
from support import attacks
from support.agent_env import MOCK_KEY_ENV, mock_cli_args
from support.model_server import Turn

pytestmark = [pytest.mark.timeout(180), pytest.mark.skipif(not codex._LINUX, reason="Linux sandbox")]

DRIVER = REPO / "tests" / "support" / "sandbox_run.py"
NO_USERNS = REPO / "tests" / "support" / "no_userns.py"
NOBODY = 65534
AUTH_SECRET = "sk-auth-json-secret-0123456789"
IS_ROOT = os.geteuid() == 0


def _user_prefix(user):
    if user == "root":
        if not IS_ROOT:
            pytest.skip("needs root (containers and CI runners run codex as root)")
        return []
    if not IS_ROOT:
        return []  # already unprivileged
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: cannot drop privileges")
    return ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"]


class Box(object):
    """A git workspace holding $CODEX_HOME (auth.json, config.toml), attack scripts beside it,
    all owned by the user the commands run as; commands run as the agent runs them."""

    def __init__(self, impl, user):
        self.impl, self.user = impl, user
        self.prefix = _user_prefix(user)
        self.base = Path(tempfile.mkdtemp(prefix="codex-iso-", dir="/tmp"))
        os.chmod(str(self.base), 0o755)
        self.ws = self.base / "ws"
        self.ws.mkdir()
        subprocess.run(["git", "init", "-q", str(self.ws)], check=True)
        self.hook = self.ws / ".git" / "hooks" / "pre-commit"
        self.hook.write_text("original hook\n")
        self.home = self.ws / "codex-home"  # inside a writable root: bound read-only, auth.json hidden
        self.home.mkdir(mode=0o700)
        (self.home / "auth.json").write_text(json.dumps({"OPENAI_API_KEY": AUTH_SECRET}))
        (self.home / "auth.json").chmod(0o600)
        (self.home / "config.toml").write_text("# original config\n")
        self.tools = self.base / "tools"
        self.tools.mkdir()
        self.scripts = attacks.write_scripts(self.tools)
        if self.prefix:
            for root, dirs, files in os.walk(str(self.base)):
                for name in dirs + files + [""]:
                    os.chown(os.path.join(root, name), NOBODY, NOBODY)

    def close(self):
        shutil.rmtree(str(self.base), ignore_errors=True)

    def run(self, argv, mode="workspace-write", overrides=(), environ=None, max_procs=None, wrap=(), timeout=120):
        spec = {"ws": str(self.ws), "home": str(self.home), "mode": mode, "argv": [str(a) for a in argv],
                "overrides": ["sandbox_workspace_write.exclude_slash_tmp=true",
                              "sandbox_workspace_write.exclude_tmpdir_env_var=true"] + list(overrides),
                "environ": dict({"HOME": str(self.base)}, **(environ or {})), "max_procs": max_procs}
        proc = subprocess.run(self.prefix + list(wrap) + [sys.executable, str(DRIVER), json.dumps(spec)],
                              capture_output=True, text=True, timeout=timeout, env=dict(os.environ, **(environ or {})))
        assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["sandbox_type"] in ("linux", "linux-python"), out
        return out

    def attack(self, name, *args, **kw):
        return self.run([sys.executable, self.scripts[name]] + [str(a) for a in args], **kw)


@pytest.fixture(params=["root", "nobody"])
def box(request, impl):
    b = Box(impl, request.param)
    yield b
    b.close()


@pytest.fixture
def root_box(impl):
    """The same box for attacks where root and other users do not differ (the current user)."""
    b = Box(impl, "root" if IS_ROOT else "nobody")
    yield b
    b.close()


def _lines(out):
    return out["stdout"].splitlines()


# -- goal: read auth.json, write .git/hooks or $CODEX_HOME (capabilities) -----------------


def test_the_command_holds_no_capability_at_all(box):
    out = box.run(["grep", "-E", "^(Cap|NoNewPrivs)", "/proc/self/status"])
    fields = dict(re.findall(r"^(\w+):\s*(\S+)$", out["stdout"], re.M))
    assert set(fields) == {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs"}, out
    assert all(int(v, 16) == 0 for k, v in fields.items() if k.startswith("Cap")), fields
    assert fields["NoNewPrivs"] == "1"


def test_file_handles_do_not_reach_what_read_only_binds_cover(box):
    # A root command kept every capability in its user namespace: open_by_handle_at on the
    # writable workspace mount opened .git/hooks and $CODEX_HOME past their read-only binds
    # (and auth.json past the /dev/null over it).  It wrote the hook before the fix.
    out = box.attack("FILE_HANDLES", box.ws, box.hook.parent, "pre-commit", "w", box.home, "config.toml", "w",
                     box.home, "auth.json", "r")
    assert box.hook.read_text() == "original hook\n"
    assert (box.home / "config.toml").read_text() == "# original config\n"
    assert AUTH_SECRET not in out["stdout"] + out["stderr"]
    assert [l.split()[1] for l in _lines(out)] == ["name_to_handle_at"] * 3, out


def test_no_new_namespace_hands_capabilities_back(box):
    out = box.attack("NAMESPACES")
    lines = _lines(out)
    assert len(lines) == 11 and not [l for l in lines if "ALLOWED" in l], out
    assert "clone3 denied: ENOSYS" in lines  # libc falls back to clone, whose flags the filter sees
    assert "plain fork ok" in lines
    r = box.run(["unshare", "-Ur", "true"])
    assert r["exit_code"] != 0 and "unshare failed" in r["stderr"], r


def test_seccomp_lists_of_both_helpers_agree():
    # One list in two languages: the C helper's always[] and SECCOMP_ALWAYS_DENIED.
    src = (REPO / "sandbox_helpers" / "codex-linux-sandbox.c").read_text()
    block = src[src.index("static const long always[] = {"):]
    block = block[:block.index("};")]
    assert re.findall(r"SYS_(\w+)", block) == list(codex.SECCOMP_ALWAYS_DENIED)
    block = src[src.index("static const long ipc[] = {"):]
    assert re.findall(r"SYS_(\w+)", block[:block.index("};")]) == list(codex.SECCOMP_IPC_DENIED)


# -- goal: reach outside processes (IPC) or sockets ------------------------------------------


class OutsideIPC(object):
    """A SysV shared memory segment, a SysV message queue and a POSIX shm file made outside."""

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.shm_key, self.msg_key = 0x5EED0000 + os.getpid() % 0xFFFF, 0x5EEE0000 + os.getpid() % 0xFFFF
        self.shm = self.libc.shmget(self.shm_key, 4096, 0o1666)  # IPC_CREAT | 0666
        self.msg = self.libc.msgget(self.msg_key, 0o1666)
        assert self.shm >= 0 and self.msg >= 0
        self.posix = "codex-iso-%d" % os.getpid()
        self.posix_path = Path("/dev/shm") / self.posix
        self.posix_path.write_bytes(b"outside")
        self.posix_path.chmod(0o666)

    def close(self):
        self.libc.shmctl(self.shm, 0, None)
        self.libc.msgctl(self.msg, 0, None)
        self.posix_path.unlink()


@pytest.fixture
def outside_ipc():
    ipc = OutsideIPC()
    yield ipc
    ipc.close()


def test_ipc_of_outside_processes_is_out_of_reach(root_box, outside_ipc):
    out = root_box.attack("IPC", outside_ipc.shm_key, outside_ipc.msg_key, outside_ipc.posix)
    assert _lines(out) == ["sysv shm not found: ENOENT", "sysv msg not found: ENOENT", "posix shm not found",
                           "own sysv shm ok"], out
    own = root_box.run([sys.executable, root_box.scripts["OWN_POSIX_IPC"]])  # a private /dev/shm, writable
    assert own["stdout"].split() == ["child", "own", "posix", "ipc", "ok"], own


def test_ipc_without_user_namespaces_is_denied_by_seccomp(root_box, outside_ipc):
    # no user namespaces (tests/support/no_userns.py): no IPC namespace either; seccomp denies
    out = root_box.attack("IPC", outside_ipc.shm_key, outside_ipc.msg_key, outside_ipc.posix,
                          wrap=[sys.executable, str(NO_USERNS)])
    assert _lines(out)[:2] == ["sysv shm not found: EPERM", "sysv msg not found: EPERM"], out


def test_a_container_refusing_ipc_namespaces_keeps_the_rest_and_denies_ipc(root_box, outside_ipc):
    # tests/support/no_userns.py --no-ipc: unshare with CLONE_NEWIPC fails, the others work
    out = root_box.attack("IPC", outside_ipc.shm_key, outside_ipc.msg_key, outside_ipc.posix,
                          wrap=[sys.executable, str(NO_USERNS), "--no-ipc"])
    assert _lines(out)[:2] == ["sysv shm not found: EPERM", "sysv msg not found: EPERM"], out
    hook = root_box.run(["sh", "-c", "echo x >> %s" % root_box.hook], wrap=[sys.executable, str(NO_USERNS), "--no-ipc"])
    assert hook["exit_code"] != 0 and root_box.hook.read_text() == "original hook\n", hook


# -- goal: read auth.json, write .git or $CODEX_HOME where there are no user namespaces ------
# (Docker's default seccomp profile, kernels with unprivileged user namespaces off): nothing can
# be mounted, so Landlock alone must leave auth.json, .git and $CODEX_HOME out (finding 04)

_NO_USERNS_ATTACK = (
    "cat {home}/auth.json; echo read=$?; echo x >> {hook}; echo hook=$?; echo x >> {home}/config.toml; echo cfg=$?; "
    "mv .git g2; echo mvgit=$?; mv codex-home h2; echo mvhome=$?; ln -s {home} lnk; echo lnk=$?; "
    "cat src/../codex-home/auth.json; echo dotdot=$?; echo y >> top.txt; echo top=$?; touch src/new; echo srcnew=$?; "
    "touch new; echo new=$?; ls src >/dev/null; echo ls=$?; ln {home}/auth.json src/hl; cat src/hl; echo hl=$?")


def _box_files(box):
    (box.ws / "src").mkdir()
    (box.ws / "top.txt").write_text("top\n")
    if box.prefix:
        for p in (box.ws / "src", box.ws / "top.txt"):
            os.chown(str(p), NOBODY, NOBODY)


@pytest.mark.parametrize("mode", ["workspace-write", "read-only"])
def test_without_user_namespaces_landlock_alone_keeps_auth_json_git_and_codex_home(box, mode):
    _box_files(box)
    out = box.run(["sh", "-c", _NO_USERNS_ATTACK.format(home=box.home, hook=box.hook)], mode=mode,
                  wrap=[sys.executable, str(NO_USERNS)])
    got = dict(line.split("=", 1) for line in _lines(out) if re.match(r"^\w+=\d+$", line))
    assert AUTH_SECRET not in out["stdout"] and got["read"] != "0" and got["dotdot"] != "0", out
    assert box.hook.read_text() == "original hook\n" and (box.home / "config.toml").read_text() == "# original config\n"
    assert (box.ws / ".git").is_dir() and (box.home / "auth.json").is_file(), out
    assert [got[k] != "0" for k in ("hook", "cfg", "mvgit", "mvhome", "lnk", "new", "hl")] == [True] * 7, out
    assert got["ls"] == "0", out
    if mode == "workspace-write":  # what is not on the way to a protected path stays writable
        assert got["top"] == "0" and got["srcnew"] == "0" and (box.ws / "src" / "new").exists(), out
    else:
        assert got["top"] != "0" and got["srcnew"] != "0", out


def test_exec_without_user_namespaces_model_cannot_read_auth_json_nor_write_git(box, server):
    _box_files(box)
    _, outputs = _exec(box, server, [["sh", "-c", _NO_USERNS_ATTACK.format(home=box.home, hook=box.hook)]],
                       wrap=[sys.executable, str(NO_USERNS)])
    assert AUTH_SECRET not in outputs[0] and "read=0" not in outputs[0] and "hook=0" not in outputs[0], outputs
    assert "srcnew=0" in outputs[0] and "new=0" not in outputs[0].replace("srcnew=0", ""), outputs
    assert box.hook.read_text() == "original hook\n" and (box.home / "config.toml").read_text() == "# original config\n"


@pytest.fixture
def outside_dgram(tmp_path):
    """A datagram socket listening on a pathname (as /dev/log or sd_notify do)."""
    d = Path(tempfile.mkdtemp(prefix="codex-dg-", dir="/tmp"))
    os.chmod(str(d), 0o755)
    path = d / "log.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(path))
    os.chmod(str(path), 0o777)
    srv.settimeout(0.3)
    yield srv, path
    srv.close()
    shutil.rmtree(str(d), ignore_errors=True)


def _received(srv):
    got = []
    for _ in range(200):
        try:
            got.append(srv.recv(200))
        except socket.timeout:
            break
    return got


def test_no_datagram_reaches_a_pathname_socket_whatever_the_type_or_send_call(root_box, outside_dgram):
    # SOCK_RAW on AF_UNIX is a datagram socket the filter did not know, and a socketpair's
    # datagram end took a destination in sendmsg: both reached /dev/log-like sockets before.
    srv, path = outside_dgram
    out = root_box.attack("DATAGRAMS", path)
    assert _received(srv) == []
    lines = _lines(out)
    assert not [l for l in lines if l.endswith("SENT")], out
    for kind in ("DGRAM", "RAW"):  # no datagram socket exists at all
        assert all(l.endswith("denied at socket: Operation not permitted") for l in lines if " %s " % kind in l), out
    assert "own STREAM pair ok" in lines and "own SEQPACKET pair ok" in lines, out
    # the same command with the network on reaches it: the test can fail
    on = root_box.attack("DATAGRAMS", path, overrides=["sandbox_workspace_write.network_access=true"])
    assert "socket DGRAM sendto SENT" in _lines(on) and _received(srv), on


# -- goal: outlive the command ------------------------------------------------------------


def _processes_with(marker):
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as fh:
                    if marker.encode() in fh.read():
                        out.append(int(pid))
            except OSError:
                pass
    return out


def test_daemons_die_with_the_command(box):
    marker = "%d%03d" % (os.getpid(), int(time.monotonic() * 1000) % 1000)
    out = box.run(["bash", "-c", "setsid sleep 300.%s >/dev/null 2>&1 < /dev/null & "
                                 "nohup sleep 301.%s >/dev/null 2>&1 & disown; sleep 0.2; echo started" % (marker, marker)])
    assert out["stdout"].strip() == "started", out
    _wait_gone(marker)


# -- goal: deny service ---------------------------------------------------------------------


def test_a_fork_bomb_stops_at_the_process_limit(box):
    # RLIMIT_NPROC in the command's own user namespace (not enforced for root: the kernel
    # exempts uid 0) and the PID namespace's pid_max (root too; Linux 6.14+)
    if box.user == "root" and not _pid_max_per_namespace():
        pytest.skip("pid_max is not per PID namespace before Linux 6.14: root has no process limit here")
    started = time.monotonic()
    seconds = _unique_seconds()
    out = box.attack("FORK_BOMB", 3000, seconds, max_procs=60)
    forked = int(out["stdout"].split()[1])
    assert "Resource temporarily unavailable" in out["stdout"], out
    limit = 60 if box.user == "nobody" else 60 + 300  # pid_max: pids 300.. are reused first
    assert 20 <= forked <= limit, out
    assert time.monotonic() - started < 60
    _wait_gone("sleep\x00%s\x00" % seconds)  # the PID namespace took the sleeping children with it


def _unique_seconds():
    """A sleep duration no other test (nor another worktree's run of this file) uses."""
    return "60.%d%03d" % (os.getpid(), int(time.monotonic() * 1000) % 1000)


def _wait_gone(marker, seconds=10):
    deadline = time.monotonic() + seconds
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _processes_with(marker)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], marker


def _pid_max_per_namespace():
    release = tuple(int(x) for x in re.findall(r"\d+", os.uname().release)[:2])
    return release >= (6, 14)


def test_codex_asks_for_a_process_limit(tmp_path):
    argv, _, _ = codex.sandbox_command(["true"], codex.SandboxPolicy("read-only"), tmp_path)
    assert argv[argv.index("--max-procs") + 1] == str(codex.SANDBOX_MAX_PROCS)
    assert codex.SANDBOX_MAX_PROCS >= 1024


# -- goal: secrets in the environment -------------------------------------------------------

#: (name, value, dropped by default)
REAL_NAMES = [
    ("OPENAI_API_KEY", "sk-x", True), ("AWS_SECRET_ACCESS_KEY", "x", True), ("HF_TOKEN", "x", True),
    ("GITHUB_PAT", "ghp_x", True), ("GH_PAT", "x", True), ("AZURE_DEVOPS_EXT_PAT", "x", True),
    ("DB_PASSWORD", "x", True), ("PGPASSWORD", "x", True), ("MYSQL_PWD", "x", True), ("DB_PASS", "x", True),
    ("SMTP_PASS", "x", True), ("SSHPASS", "x", True), ("BORG_PASSPHRASE", "x", True), ("RESTIC_PASSWORD", "x", True),
    ("GOOGLE_APPLICATION_CREDENTIALS", "/k.json", True), ("AWS_SHARED_CREDENTIALS_FILE", "/c", True),
    ("npm_config__auth", "x", True), ("REDISCLI_AUTH", "x", True), ("DOCKER_AUTH_CONFIG", "{}", True),
    ("SENTRY_DSN", "https://k@o.ingest.sentry.io/1", True), ("SESSION_COOKIE", "x", True),
    ("GPG_PRIVATE_KEY", "x", True), ("MY_CREDS", "x", True),
    ("DATABASE_URL", "postgres://app:hunter2@db:5432/app", True), ("REDIS_URL", "redis://:pw@cache:6379", True),
    ("HTTPS_PROXY", "http://user:pw@proxy:3128", True),
    ("PATH", "/usr/bin:/bin", False), ("PYTHONPATH", "/src", False), ("MANPATH", "/usr/man", False),
    ("LD_LIBRARY_PATH", "/lib", False), ("GOPATH", "/go", False), ("CLASSPATH", "/j", False),
    ("PKG_CONFIG_PATH", "/p", False), ("INFOPATH", "/i", False), ("PWD", "/w", False), ("OLDPWD", "/", False),
    ("XDG_RUNTIME_DIR", "/run/user/0", False), ("XDG_SESSION_TYPE", "tty", False), ("XDG_DATA_DIRS", "/u", False),
    ("DESKTOP_SESSION", "gnome", False), ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/0/bus", False),
    ("GIT_AUTHOR_NAME", "A", False), ("GIT_AUTHOR_EMAIL", "a@b", False), ("GIT_ASKPASS", "/usr/lib/askpass", False),
    ("SSH_AUTH_SOCK", "/tmp/ssh-x/agent.1", False), ("XAUTHORITY", "/home/a/.Xauthority", False),
    ("HTTPS_PROXY", "http://proxy:3128", False), ("DATABASE_URL", "postgres://db:5432/app", False),
    ("HOME", "/root", False), ("LANG", "C.UTF-8", False), ("TERM", "xterm", False), ("PATTERN", "x", False),
]


@pytest.mark.parametrize("name, value, dropped", REAL_NAMES, ids=["%s=%s" % (n, v[:12]) for n, v, _ in REAL_NAMES])
def test_default_excludes_drop_secrets_and_keep_path_like_names(name, value, dropped):
    assert codex.is_secret_env_var(name, value) == dropped


def test_secrets_do_not_reach_the_command_nor_codexs_own_environment(root_box):
    secrets = {"GITHUB_PAT": "ghp_iso_secret_1", "DB_PASSWORD": "iso-secret-2",
               "DATABASE_URL": "postgres://app:iso-secret-3@db/app", "OPENAI_API_KEY": "sk-iso-secret-4"}
    keep = {"PYTHONPATH": "/iso/src", "MANPATH": "/iso/man", "XDG_CONFIG_HOME": "/iso/xdg"}
    out = root_box.run(["env"], environ=dict(secrets, **keep))
    for value in secrets.values():
        assert value not in out["stdout"]
    for name, value in keep.items():
        assert "%s=%s" % (name, value) in out["stdout"]
    # codex's own /proc/PID/environ holds them all: Landlock's ptrace scoping keeps it unreadable
    probe = root_box.run(["cat", "/proc/@CODEX_PID@/environ"], environ=secrets)
    assert probe["exit_code"] != 0 and "Permission denied" in probe["stderr"], probe
    scan = root_box.attack("ENVIRON", "iso-secret-2", environ=secrets)
    assert scan["stdout"].startswith("not found []"), scan


# -- goal: a writing command passed off as known-safe ----------------------------------------


@pytest.mark.parametrize("argv", [
    ["base64", "-oout.txt", "in"], ["base64", "-o", "out.txt", "in"], ["base64", "-do", "out.txt", "in"],
    ["base64", "--output=out.txt", "in"], ["base64", "--out=out.txt", "in"], ["base64", "--o", "out.txt"],
    ["rg", "-zi", "x"], ["rg", "-z", "x"], ["rg", "--pre=sh", "x"], ["rg", "--pre", "sh", "x"], ["rg", "--search-z", "x"],
    ["rg", "--hostname-bin=/tmp/x", "x"], ["git", "diff", "--outp=x"], ["git", "log", "--ext-dif"],
    ["git", "show", "--textc"], ["git", "diff", "--output", "x"], ["find", ".", "-fprint", "x"],
    ["bash", "-lc", "base64 -oout.txt in"], ["bash", "-lc", "ls && rg -zn x"],
])
def test_options_that_write_or_run_are_not_known_safe(argv):
    assert not codex.is_known_safe_command(argv)


@pytest.mark.parametrize("argv", [
    ["base64", "-d", "in"], ["base64", "in"], ["rg", "-in", "x"], ["rg", "--pre-glob", "*.gz", "x"],
    ["git", "diff", "--text"], ["git", "log", "--oneline"], ["git", "diff", "--no-ext-diff"], ["ls", "-o"],
])
def test_reading_forms_stay_known_safe(argv):
    assert codex.is_known_safe_command(argv)


# -- through `codex exec` with the scripted model --------------------------------------------


def _exec(box, server, calls, *flags, environ=None, wrap=()):
    """codex exec in box.ws as box.user (under `wrap`, e.g. no_userns.py); the model makes `calls`
    (argv lists); returns (process, [function_call_output text per call])."""
    turns = [Turn().function_call("shell", {"command": argv, "timeout_ms": 60000}, call_id="c%d" % i)
             for i, argv in enumerate(calls)]
    server.enqueue(*(turns + [Turn().text("done")]))
    env = dict(os.environ, CODEX_HOME=str(box.home), HOME=str(box.base), **{MOCK_KEY_ENV: "test-key"})
    env.update(environ or {})
    argv = box.prefix + list(wrap) + [sys.executable, str(REPO / "codex.py"), "exec", "-C", str(box.ws), "-s", "workspace-write",
                         "-a", "never", "-c", "sandbox_workspace_write.exclude_slash_tmp=true"] + list(flags)
    proc = subprocess.run(argv + mock_cli_args(server) + ["attack"], capture_output=True, text=True, timeout=150,
                          env=env, cwd=str(box.ws))
    assert proc.returncode == 0, proc.stderr
    outputs = []
    for req in server.model_requests()[1:len(calls) + 1]:
        outputs.append([i["output"] for i in req.body["input"] if i.get("type") == "function_call_output"][-1])
    return proc, outputs


def test_exec_model_cannot_use_file_handles_or_capabilities(box, server):
    _, outputs = _exec(box, server, [
        [sys.executable, box.scripts["FILE_HANDLES"], str(box.ws), str(box.hook.parent), "pre-commit", "w",
         str(box.home), "auth.json", "r"],
        ["grep", "^CapEff", "/proc/self/status"]])
    assert box.hook.read_text() == "original hook\n"
    assert AUTH_SECRET not in outputs[0] and "name_to_handle_at denied" in outputs[0], outputs
    assert "0000000000000000" in outputs[1], outputs


def test_exec_model_cannot_reach_ipc_sockets_or_secrets(root_box, server, outside_ipc, outside_dgram):
    srv, path = outside_dgram
    _, outputs = _exec(root_box, server, [
        [sys.executable, root_box.scripts["IPC"], str(outside_ipc.shm_key), str(outside_ipc.msg_key), outside_ipc.posix],
        [sys.executable, root_box.scripts["DATAGRAMS"], str(path)],
        ["env"]], environ={"GITHUB_PAT": "ghp_exec_secret", "DB_PASSWORD": "exec-secret", "PYTHONPATH": "/exec/src"})
    assert "sysv shm not found" in outputs[0] and "GOT" not in outputs[0], outputs
    assert "SENT" not in outputs[1] and _received(srv) == [], outputs
    assert "ghp_exec_secret" not in outputs[2] and "exec-secret" not in outputs[2], outputs
    assert "PYTHONPATH=/exec/src" in outputs[2]


def test_exec_fork_bomb_and_daemons_end_with_the_command(box, server):
    if box.user == "root" and not _pid_max_per_namespace():
        pytest.skip("pid_max is not per PID namespace before Linux 6.14")
    marker, seconds = "302.%d%03d" % (os.getpid(), int(time.monotonic() * 1000) % 1000), _unique_seconds()
    _, outputs = _exec(box, server, [
        [sys.executable, box.scripts["FORK_BOMB"], str(codex.SANDBOX_MAX_PROCS + 1000), seconds],
        ["bash", "-c", "setsid sleep %s >/dev/null 2>&1 < /dev/null & echo started" % marker]])
    forked = int(outputs[0].split("forked ")[1].split()[0])
    limit = codex.SANDBOX_MAX_PROCS + (300 if box.user == "root" else 0)
    assert "Resource temporarily unavailable" in outputs[0] and forked <= limit, outputs
    _wait_gone(marker)
    _wait_gone("sleep\x00%s\x00" % seconds)


def test_exec_base64_writing_a_file_is_not_known_safe(root_box, server):
    # under untrusted only known-safe commands run unasked; exec cannot ask, so it refuses
    _, outputs = _exec(root_box, server, [["base64", "-o" + str(root_box.ws / "out.txt"), "/etc/hostname"],
                                          ["base64", "/etc/hostname"]], "-a", "untrusted")
    assert "cannot ask for approval" in outputs[0], outputs
    assert "cannot ask for approval" not in outputs[1], outputs
    assert not (root_box.ws / "out.txt").exists()


# -- the Python helper holds the same rules or refuses ---------------------------------------


class _OldLibseccomp(object):
    """A filter whose libseccomp knows no syscall by name (as an old one does not know clone3)."""

    def __init__(self):
        self.rules = []

    def add_rule(self, action, syscall):
        if isinstance(syscall, str):
            raise ValueError("unknown syscall %s" % syscall)
        self.rules.append((action, syscall))


def test_python_helper_denies_new_syscalls_by_number_when_libseccomp_lacks_the_name():
    flt = _OldLibseccomp()
    codex._deny_syscall(flt, "deny", "clone3")
    codex._deny_syscall(flt, "deny", "pidfd_getfd")
    assert flt.rules == [("deny", 435), ("deny", 438)]


def test_python_helper_refuses_to_run_when_a_rule_cannot_be_held():
    code = ("import sys; sys.path.insert(0, %r); import codex, test_sandbox_isolation as t; "
            "codex._deny_syscall(t._OldLibseccomp(), 'deny', 'open_by_handle_at'); print('RAN')"
            % str(REPO / "tests"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=str(REPO))
    assert proc.returncode == 123 and "RAN" not in proc.stdout, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("codex-linux-sandbox: this libseccomp cannot deny "
                                                                   "open_by_handle_at"), proc.stderr
