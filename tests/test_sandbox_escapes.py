"""§12 Sandbox, for real: escape attempts that must fail and work that must keep working,
under read-only and workspace-write (network off), through both the compiled C helper and
the Python helper.  These run as root in CI: Landlock and the read-only mounts still hold."""
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import codex

REPO = Path(__file__).resolve().parent.parent
BUILT_HELPER = REPO / "build" / "helpers" / ("codex-linux-sandbox-%s" % codex._machine_arch())

pytestmark = [pytest.mark.timeout(120), pytest.mark.skipif(not codex._LINUX, reason="Linux sandbox")]


class World(object):
    """A workspace (a git repo, the session cwd) and an outside directory with a victim file."""

    def __init__(self, tmp_path, mode, network=False):
        self.tmp = tmp_path
        self.ws = tmp_path / "ws"
        self.ws.mkdir()
        subprocess.run(["git", "init", "-q", str(self.ws)], check=True)
        (self.ws / "tracked.txt").write_text("hello\n")
        self.outside = tmp_path / "outside"
        self.outside.mkdir()
        self.victim = self.outside / "victim.txt"
        self.victim.write_text("original\n")
        self.home = tmp_path / "home"
        self.home.mkdir()
        over = ["sandbox_workspace_write.exclude_slash_tmp=true", "sandbox_workspace_write.exclude_tmpdir_env_var=true"]
        if network:
            over.append("sandbox_workspace_write.network_access=true")
        self.cfg = codex.load_config(codex.ConfigOverrides(approval_policy="never", sandbox_mode=mode, cwd=str(self.ws)),
                                     over, home=self.home, environ={"HOME": str(tmp_path)})

    def sh(self, script, cwd=None, timeout_ms=20000):
        """Run a bash script sandboxed; returns the ExecResult."""
        env = codex.build_command_env(self.cfg)
        return codex.run_command(["bash", "-c", script], cwd or self.ws, self.cfg, env, timeout_ms=timeout_ms)

    def py(self, code, cwd=None, timeout_ms=20000):
        """Run a Python snippet sandboxed; returns the ExecResult."""
        env = codex.build_command_env(self.cfg)
        return codex.run_command([sys.executable, "-c", textwrap.dedent(code)], cwd or self.ws, self.cfg, env,
                                 timeout_ms=timeout_ms)

    def victim_intact(self):
        return self.victim.read_text() == "original\n" and oct(self.victim.stat().st_mode & 0o777) == oct(0o644)


MODES = ["read-only", "workspace-write"]


@pytest.fixture(params=MODES)
def world(request, tmp_path, impl):
    return World(tmp_path, request.param)


@pytest.fixture
def ww(tmp_path, impl):
    return World(tmp_path, "workspace-write")


# -- file-system escapes ----------------------------------------------------------------------


def test_write_outside_via_dotdot(world):
    r = world.sh("echo pwned > ../outside/victim.txt")
    assert r.exit_code != 0 and world.victim_intact()
    assert ("Permission denied" in r.stderr or "Read-only file system" in r.stderr) and r.sandbox_denied


def test_write_through_symlink_inside_root(world):
    os.symlink(str(world.outside), str(world.ws / "link"))
    r = world.sh("echo pwned > link/victim.txt; echo new > link/new.txt")
    assert world.victim_intact() and not (world.outside / "new.txt").exists()


def test_hard_link_to_outside_file(world):
    r = world.sh("ln ../outside/victim.txt hl && echo pwned > hl")
    assert r.exit_code != 0 and world.victim_intact() and not (world.ws / "hl").exists()


def test_rename_outside_file_into_root(world):
    r = world.sh("mv ../outside/victim.txt ./stolen.txt")
    # mv may fall back to copy+unlink across mounts: a copy is fine (reads are allowed), a move is not
    assert r.exit_code != 0 and world.victim_intact()


def test_proc_self_root(world):
    r = world.sh("echo pwned > /proc/self/root%s" % world.victim)
    assert r.exit_code != 0 and world.victim_intact()


def test_truncate_mkfifo_mkdir_symlink_outside(world):
    r = world.sh("truncate -s0 {v}; : > {v}; mkfifo {o}/fifo; mkdir {o}/d; ln -s x {o}/s; rm -f {v}".format(
        v=world.victim, o=world.outside))
    assert world.victim_intact()
    assert sorted(os.listdir(str(world.outside))) == ["victim.txt"]


def test_metadata_changes_outside_denied(world):
    """chmod/chown/utime/xattr are not Landlock rights: the read-only mounts cover them."""
    if codex.probe_sandbox(world.home).get("mount_setattr") != "1":
        pytest.skip("no user namespaces/mount_setattr here: a documented gap")
    before = world.victim.stat()
    r = world.sh("chmod 4777 {v}; chown 65534 {v}; touch -d 2001-01-01 {v}; "
                 "python3 -c 'import os; os.setxattr(\"{v}\", \"user.x\", b\"1\")'".format(v=world.victim))
    after = world.victim.stat()
    assert r.exit_code != 0 and "Read-only file system" in r.stderr
    assert (after.st_mode, after.st_uid, after.st_mtime_ns) == (before.st_mode, before.st_uid, before.st_mtime_ns)
    assert "user.x" not in os.listxattr(str(world.victim))


def test_background_child_stays_sandboxed(world):
    target = world.outside / "late.txt"
    # setsid: the child leaves the command's process group, so only the sandbox can stop it
    r = world.sh("setsid -f bash -c 'sleep 0.3; echo pwned > %s'; echo started" % target)
    assert r.exit_code == 0
    time.sleep(1.0)
    assert not target.exists()


def test_dev_shm_and_dev_tty_not_writable(world):
    name = "/dev/shm/codex-test-%d" % os.getpid()
    r = world.sh("echo x > %s; echo x > /dev/tty" % name)
    assert not os.path.exists(name)


def test_read_only_cannot_write_workspace(tmp_path, impl):
    w = World(tmp_path, "read-only")
    r = w.sh("echo x > new.txt")
    assert r.exit_code != 0 and not (w.ws / "new.txt").exists() and r.sandbox_denied


def test_git_dir_read_only_inside_workspace(ww):
    hooks = ww.ws / ".git" / "hooks" / "pre-commit"
    r = ww.sh("echo '#!/bin/sh' > .git/hooks/pre-commit; git config core.fsmonitor 'touch /tmp/pwned'; "
              "echo '[core] fsmonitor = x' >> .git/config")
    assert not hooks.exists()
    assert "fsmonitor" not in (ww.ws / ".git" / "config").read_text()
    assert r.exit_code != 0 and "Read-only file system" in r.stderr


def test_git_dir_cannot_be_unmounted_or_remounted(ww):
    r = ww.sh("umount .git; umount -l .git; mount -o remount,rw .git; echo x > .git/pwned")
    assert not (ww.ws / ".git" / "pwned").exists()
    r = ww.py("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        class Attr(ctypes.Structure):
            _fields_ = [("set", ctypes.c_uint64), ("clr", ctypes.c_uint64), ("prop", ctypes.c_uint64), ("userns", ctypes.c_uint64)]
        a = Attr(0, 1, 0, 0)  # clear MOUNT_ATTR_RDONLY
        rc = libc.syscall(442, -100, b".git", 0, ctypes.byref(a), ctypes.sizeof(a))
        print(rc, ctypes.get_errno())
        open(".git/pwned", "w")
    """)
    assert r.exit_code != 0 and not (ww.ws / ".git" / "pwned").exists()


def test_git_dir_read_only_from_a_cwd_inside_it(ww):
    r = ww.sh("echo x > config.new", cwd=ww.ws / ".git")
    assert r.exit_code != 0 and not (ww.ws / ".git" / "config.new").exists()


def test_git_file_pointer_and_nested_repo(ww):
    gitdir = ww.ws / "meta" / "wtgit"
    gitdir.mkdir(parents=True)
    (ww.ws / "wt").mkdir()
    (ww.ws / "wt" / ".git").write_text("gitdir: %s\n" % gitdir)
    nested = ww.ws / "vendor" / "dep"
    nested.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(nested)], check=True)
    r = ww.sh("echo x > wt/.git; echo x > meta/wtgit/HEAD; echo x > vendor/dep/.git/config; "
              "echo ok > vendor/dep/file.txt")
    assert (ww.ws / "wt" / ".git").read_text().startswith("gitdir:")
    assert not (gitdir / "HEAD").exists()
    assert "x\n" != (nested / ".git" / "config").read_text()
    assert (nested / "file.txt").read_text() == "ok\n"  # the nested work tree stays writable


def test_codex_home_and_dot_codex_inside_workspace(tmp_path, impl):
    w = World(tmp_path, "workspace-write")
    home = w.ws / ".codexhome"
    home.mkdir()
    (w.ws / ".codex").mkdir()
    w.cfg = w.cfg.replace(codex_home=home)
    r = w.sh("echo x > .codexhome/config.toml; echo x > .codex/config.toml")
    assert not (home / "config.toml").exists() and not (w.ws / ".codex" / "config.toml").exists()


def test_safe_git_status_cannot_run_planted_fsmonitor(ww):
    """The upstream chain: a sandboxed step plants core.fsmonitor, an auto-approved git status runs it."""
    marker = ww.tmp / "fsmonitor-ran"
    ww.sh("git config core.fsmonitor 'touch %s'" % marker)
    out = codex.execute_with_policy(["git", "status"], ww.ws, ww.cfg, {}, lambda **kw: "denied")
    assert out.decision == "auto-approve" and out.result.sandbox_type is not None
    assert not marker.exists()


# -- network and IPC ---------------------------------------------------------------------------


@pytest.fixture
def tcp_server():
    """A listening TCP socket on 127.0.0.1 that records whether anyone connected."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    srv.settimeout(0.2)
    hits = []
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                hits.append(1)
                conn.close()
            except OSError:
                pass

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    yield srv.getsockname()[1], hits
    stop.set()
    t.join(2)
    srv.close()


def test_tcp_connect_denied(world, tcp_server):
    port, hits = tcp_server
    r = world.sh("echo hi > /dev/tcp/127.0.0.1/%d" % port)
    assert r.exit_code != 0
    r = world.py("import socket; socket.create_connection(('127.0.0.1', %d), timeout=2)" % port)
    assert r.exit_code != 0 and "Operation not permitted" in r.stderr
    time.sleep(0.3)
    assert hits == []


def test_tcp_allowed_when_network_on(tmp_path, impl, tcp_server):
    port, hits = tcp_server
    w = World(tmp_path, "workspace-write", network=True)
    r = w.py("import socket; socket.create_connection(('127.0.0.1', %d), timeout=2).close()" % port)
    assert r.exit_code == 0, r.stderr
    assert "CODEX_SANDBOX_NETWORK_DISABLED" not in codex.build_command_env(w.cfg)


@pytest.mark.parametrize("family,kind,proto", [
    ("AF_INET", "SOCK_DGRAM", 0), ("AF_INET6", "SOCK_STREAM", 0), ("AF_INET", "SOCK_RAW", 1),
    ("AF_NETLINK", "SOCK_RAW", 0), ("AF_PACKET", "SOCK_RAW", 0),
])
def test_socket_families_denied(world, family, kind, proto):
    r = world.py("import socket; socket.socket(socket.%s, socket.%s, %d)" % (family, kind, proto))
    assert r.exit_code != 0 and "Operation not permitted" in r.stderr


def test_udp_send_denied(world):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.5)
    r = world.py("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'x', ('127.0.0.1', %d))"
                 % rx.getsockname()[1])
    assert r.exit_code != 0
    with pytest.raises(socket.timeout):
        rx.recv(10)
    rx.close()


def test_unix_socket_connect_denied(world):
    path = str(world.tmp / "docker.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind("\0codex-test-%d" % os.getpid())
    abstract.listen(1)
    try:
        r = world.py("import socket; s = socket.socket(socket.AF_UNIX); s.connect(%r)" % path)
        assert r.exit_code != 0 and "Operation not permitted" in r.stderr
        r = world.py("import socket; s = socket.socket(socket.AF_UNIX); s.connect('\\0codex-test-%d')" % os.getpid())
        assert r.exit_code != 0
        r = world.py("import socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b'x', %r)" % path)
        assert r.exit_code != 0
    finally:
        srv.close()
        abstract.close()


def test_io_uring_denied(world):
    r = world.py("""
        import ctypes, sys
        libc = ctypes.CDLL(None, use_errno=True)
        params = ctypes.create_string_buffer(120)
        fd = libc.syscall(425, 4, params)
        print(fd, ctypes.get_errno())
        sys.exit(0 if fd >= 0 else 1)
    """)
    assert r.exit_code == 1 and r.stdout.split()[1] == "1"  # EPERM


def test_ptrace_of_a_sibling_denied(world):
    r = world.py("""
        import ctypes, subprocess, sys
        libc = ctypes.CDLL(None, use_errno=True)
        child = subprocess.Popen(["sleep", "5"])
        rc = libc.ptrace(16, child.pid, 0, 0)  # PTRACE_ATTACH
        err = ctypes.get_errno()
        local = (ctypes.c_char * 8)()
        class IOV(ctypes.Structure):
            _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
        a = IOV(ctypes.cast(local, ctypes.c_void_p), 8)
        rc2 = libc.process_vm_readv(child.pid, ctypes.byref(a), 1, ctypes.byref(a), 1, 0)
        err2 = ctypes.get_errno()
        child.kill()
        print(rc, err, rc2, err2)
        sys.exit(0 if rc == 0 or rc2 >= 0 else 1)
    """)
    assert r.exit_code == 1, r.stdout + r.stderr
    assert r.stdout.split() == ["-1", "1", "-1", "1"]


def test_tiocsti_denied(world):
    r = world.py("""
        import fcntl, termios, sys
        try:
            fcntl.ioctl(1, termios.TIOCSTI, b"x")
        except OSError as e:
            print(e.errno); sys.exit(1)
    """)
    assert r.stdout.strip() == "1"  # EPERM from seccomp (not ENOTTY from the kernel)


def test_x32_syscalls_denied(world):
    if codex._machine_arch() != "x86_64":
        pytest.skip("x32 exists on x86_64 only")
    r = world.py("""
        import ctypes, sys
        libc = ctypes.CDLL(None, use_errno=True)
        rc = libc.syscall(0x40000000 | 41, 2, 1, 0)  # x32 socket(AF_INET, SOCK_STREAM)
        print(rc, ctypes.get_errno())
        sys.exit(0 if rc >= 0 else 1)
    """)
    assert r.exit_code == 128 + 31  # SIGSYS (without the filter: ENOSYS or a socket)


def test_foreign_architecture_killed(world):
    if codex._machine_arch() != "x86_64":
        pytest.skip("int 0x80 is x86 only")
    # mmap an int 0x80 stub (eax=20, getpid in i386 numbering) and call it
    r = world.py("""
        import ctypes, mmap
        code = bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3])
        buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        buf.write(code)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        f = ctypes.CFUNCTYPE(ctypes.c_int)(addr)
        print("returned", f())
    """)
    assert r.exit_code == 128 + 31 and "returned" not in r.stdout  # SIGSYS
    assert r.sandbox_denied


# -- hygiene ------------------------------------------------------------------------------------


def test_no_new_privs_and_seccomp_on(world):
    r = world.sh("grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status")
    assert "NoNewPrivs:\t1" in r.stdout and "Seccomp:\t2" in r.stdout


def test_no_leaked_fds(world, impl):
    """The helper closes every fd above 2, even ones passed down on purpose."""
    r, w = os.pipe()
    try:
        env = codex.build_command_env(world.cfg)
        full, _, _ = codex.sandbox_command(
            [sys.executable, "-c", "import os\nfor fd in range(3, 256):\n    try:\n        os.fstat(fd); print(fd)\n"
             "    except OSError: pass"], codex.SandboxPolicy.from_config(world.cfg), world.ws, world.ws, world.home)
        proc = subprocess.run(full, pass_fds=(r, w), capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == []
    finally:
        os.close(r)
        os.close(w)


def test_secrets_not_in_environment(world, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    r = world.sh("env")
    assert "ghp_secret" not in r.stdout and "sk-secret" not in r.stdout


# -- what must keep working ---------------------------------------------------------------------


def test_reads_work_everywhere(world):
    r = world.sh("cat %s && ls -l /bin >/dev/null && head -1 /etc/passwd >/dev/null && echo done" % world.victim)
    assert r.exit_code == 0 and r.stdout == "original\ndone\n"


def test_dev_null_writable(world):
    r = world.sh("echo blah > /dev/null && echo ok")
    assert r.exit_code == 0 and r.stdout == "ok\n"


def test_workspace_writes(ww):
    r = ww.sh("echo a > new.txt && mkdir -p d/e && mv new.txt d/e/ && ln -s d lnk && ln d/e/new.txt hard "
              "&& truncate -s0 hard && rm -r d lnk hard && mkfifo f && rm f && echo ok")
    assert r.exit_code == 0 and r.stdout == "ok\n", r.stderr


def test_slash_tmp_writable_unless_excluded(tmp_path, impl):
    home = tmp_path / "h"
    home.mkdir()
    ws = tmp_path / "w"
    ws.mkdir()
    cfg = codex.load_config(codex.ConfigOverrides(sandbox_mode="workspace-write", cwd=str(ws)), [], home=home,
                            environ={"HOME": str(tmp_path)})
    target = "/tmp/codex-sbx-test-%d" % os.getpid()
    try:
        r = codex.run_command(["bash", "-c", "echo x > %s" % target], ws, cfg, codex.build_command_env(cfg))
        assert r.exit_code == 0 and os.path.exists(target)
    finally:
        if os.path.exists(target):
            os.unlink(target)


def test_socketpairs_and_asyncio_work(world):
    r = world.py("""
        import asyncio, socket
        # stream and seqpacket pairs; a datagram pair is refused without the network (it could
        # sendmsg to any pathname socket: tests/test_sandbox_isolation.py)
        for kind in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET):
            a, b = socket.socketpair(socket.AF_UNIX, kind)
            a.send(b"x"); assert b.recv(1) == b"x"
            b.sendall(b"y"); assert a.recvfrom(1)[0] == b"y"
        async def main():
            proc = await asyncio.create_subprocess_exec("echo", "sub", stdout=asyncio.subprocess.PIPE)
            out, _ = await proc.communicate()
            await asyncio.sleep(0.01)
            return out
        print(asyncio.run(main()).decode().strip())
    """)
    assert r.exit_code == 0 and r.stdout.strip() == "sub", r.stderr


def test_git_status_works(world):
    r = world.sh("git status --short && git log --oneline -1 2>/dev/null; git diff --stat; echo rc=$?")
    assert "?? tracked.txt" in r.stdout and "rc=0" in r.stdout, r.stderr


def test_python_multiprocessing_lock_with_dev_shm_root(tmp_path, impl):
    home = tmp_path / "h"
    home.mkdir()
    ws = tmp_path / "w"
    ws.mkdir()
    cfg = codex.load_config(codex.ConfigOverrides(sandbox_mode="workspace-write", cwd=str(ws)),
                            ['sandbox_workspace_write.writable_roots=["/dev/shm"]'], home=home,
                            environ={"HOME": str(tmp_path)})
    code = ("import multiprocessing as mp\nif __name__ == '__main__':\n    l = mp.Lock()\n"
            "    p = mp.Process(target=print, args=('child',)); p.start(); p.join(); print(p.exitcode)")
    r = codex.run_command([sys.executable, "-c", code], ws, cfg, codex.build_command_env(cfg))
    assert r.exit_code == 0 and r.stdout.split() == ["child", "0"], r.stderr


def test_exit_code_and_signals_are_the_commands(world):
    assert world.sh("exit 42").exit_code == 42
    assert world.sh("kill -KILL $$").exit_code == 137
    r = world.sh("nonexistent_command_12345")
    assert r.exit_code == 127 and not r.sandbox_denied
    r = codex.run_command(["no-such-binary-xyz"], world.ws, world.cfg, codex.build_command_env(world.cfg))
    assert r.exit_code == 127 and not r.sandbox_denied and r.sandbox_error is None


def test_plain_failures_are_not_denials(world):
    for script in ("false", "grep -q nomatch tracked.txt", "exit 2", "ls /nonexistent-dir"):
        r = world.sh(script)
        assert r.exit_code != 0 and not r.sandbox_denied, script


# -- both helpers agree -------------------------------------------------------------------------

AGREE_MARKER = "/tmp/codex-agree-%d" % os.getpid()
PROBES = [
    "echo x > ../outside/victim.txt", "echo x > inside.txt", "echo x > .git/x", "cat /etc/hostname",
    "python3 -c 'import socket; socket.socket()'", "python3 -c 'import socket; socket.socketpair()'",
    "echo x > /dev/null", "ln ../outside/victim.txt h", "touch /proc/self/root" + AGREE_MARKER,
    "exit 3", "no-such-cmd-abc", "mkdir newdir", "python3 -c 'import ctypes; ctypes.CDLL(None).ptrace(16, 1, 0, 0)'",
]


@pytest.mark.parametrize("mode", MODES)
def test_c_and_python_helpers_agree(tmp_path, monkeypatch, mode):
    """The same probes give the same exit codes and effects through both helpers."""
    if not BUILT_HELPER.exists():
        pytest.skip("compiled helper not built")
    results = {}
    for which, value in (("c", str(BUILT_HELPER)), ("python", "python")):
        monkeypatch.setenv("CODEX_SANDBOX_HELPER", value)
        codex._PROBE_CACHE.clear()
        (tmp_path / which).mkdir()
        w = World(tmp_path / which, mode)
        codes = [w.sh(p).exit_code for p in PROBES]
        results[which] = (codes, w.victim_intact(), sorted(os.listdir(str(w.ws))), os.path.exists(AGREE_MARKER))
    codex._PROBE_CACHE.clear()
    assert results["c"] == results["python"]
    assert results["c"][1] is True and results["c"][3] is False


def test_legacy_full_write_without_network(tmp_path, impl):
    """`sandbox_permissions = ["disk-full-write-access"]`: writes anywhere, the network stays off."""
    home = tmp_path / "h"
    home.mkdir()
    (home / "config.toml").write_text('sandbox_permissions = ["disk-full-read-access", "disk-full-write-access"]\n')
    cfg = codex.load_config(codex.ConfigOverrides(cwd=str(tmp_path)), [], home=home, environ={"HOME": str(tmp_path)})
    target = tmp_path / "anywhere.txt"
    codex._NOTICES_SEEN.clear()
    r = codex.run_command(["bash", "-c", "echo x > %s && python3 -c 'import socket; socket.socket()'" % target],
                          tmp_path, cfg, codex.build_command_env(cfg))
    assert target.read_text() == "x\n" and r.exit_code != 0 and "Operation not permitted" in r.stderr
    assert any("sandbox_permissions" in n for n in codex.take_sandbox_notices())


def test_auth_json_hidden_from_commands(world):
    """$CODEX_HOME/auth.json (the API key) reads as empty inside the sandbox and cannot be replaced."""
    if codex.probe_sandbox(world.home).get("userns") != "1":
        pytest.skip("no user namespaces here: a documented gap")
    auth = world.home / "auth.json"
    auth.write_text('{"OPENAI_API_KEY": "sk-hidden-from-commands"}\n')
    r = world.sh("cat %s; echo '{}' > %s; wc -c < %s" % (auth, auth, auth))
    assert "sk-hidden" not in r.stdout and r.stdout.strip().endswith("0")
    assert "sk-hidden-from-commands" in auth.read_text()


def test_cannot_signal_processes_outside_the_sandbox(world):
    """Landlock ABI >= 6 scopes signals: a command cannot kill codex, the editor, or anything else."""
    if int(codex.probe_sandbox(world.home).get("landlock_abi", "0")) < 6:
        pytest.skip("Landlock ABI < 6: signals are not scoped on this kernel")
    victim = subprocess.Popen(["sleep", "30"])
    try:
        r = world.sh("kill -TERM %d" % victim.pid)
        time.sleep(0.2)
        assert r.exit_code != 0 and victim.poll() is None
        r = world.sh("sleep 5 & kill -TERM $! && wait $!; echo rc=$?")  # its own children: allowed
        assert "rc=143" in r.stdout
    finally:
        victim.kill()
        victim.wait()
