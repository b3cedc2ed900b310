"""§10-§13 red team: attacks a hostile model could make beyond tests/test_sandbox_escapes.py,
each through the real code path (run_command with both helpers, plan_patch/assess_patch_safety/
apply_changes as the agent calls them).  Every test here failed before its fix, or pins an
attack that the sandbox already stopped."""
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import codex

REPO = Path(__file__).resolve().parent.parent
BUILT_HELPER = REPO / "build" / "helpers" / ("codex-linux-sandbox-%s" % codex._machine_arch())

pytestmark = [pytest.mark.timeout(120)]
linux_only = pytest.mark.skipif(not codex._LINUX, reason="Linux sandbox")


class World(object):
    """A git workspace (the session cwd), an outside directory with a victim file, a CODEX_HOME."""

    def __init__(self, tmp_path, mode="workspace-write", approval="never"):
        self.ws = tmp_path / "ws"
        self.ws.mkdir()
        subprocess.run(["git", "init", "-q", str(self.ws)], check=True)
        self.outside = tmp_path / "outside"
        self.outside.mkdir()
        self.victim = self.outside / "victim.txt"
        self.victim.write_text("original\n")
        self.home = tmp_path / "home"
        self.home.mkdir()
        over = ["sandbox_workspace_write.exclude_slash_tmp=true", "sandbox_workspace_write.exclude_tmpdir_env_var=true"]
        self.cfg = codex.load_config(codex.ConfigOverrides(approval_policy=approval, sandbox_mode=mode, cwd=str(self.ws)),
                                     over, home=self.home, environ={"HOME": str(tmp_path)})

    def run(self, argv, timeout_ms=20000):
        return codex.run_command(argv, self.ws, self.cfg, codex.build_command_env(self.cfg), timeout_ms=timeout_ms)

    def sh(self, script, timeout_ms=20000):
        return self.run(["bash", "-c", script], timeout_ms)

    def py(self, code, timeout_ms=20000):
        return self.run([sys.executable, "-c", textwrap.dedent(code)], timeout_ms)

    def patch(self, text):
        """What the agent does with an apply_patch call: plan, assess, apply when auto-approved."""
        changes = codex.plan_patch(text, self.ws)
        paths = [c.path for c in changes] + [c.move_path for c in changes if c.move_path is not None]
        verdict = codex.assess_patch_safety(paths, self.cfg)
        if verdict == "auto-approve":
            codex.apply_changes(changes)
        return verdict


@pytest.fixture(params=["read-only", "workspace-write"])
def world(request, tmp_path, impl):
    return World(tmp_path, request.param)


@pytest.fixture
def ww(tmp_path, impl):
    return World(tmp_path, "workspace-write")


# -- apply_patch: the write happens in codex, outside the sandbox ---------------------------


@linux_only
def test_planted_patch_temp_symlink_cannot_redirect_the_write(ww):
    # The temp name used to be ".<name>.codex-patch.<codex pid>": a sandboxed command finds
    # codex's pid in /proc and could plant a symlink there to any file outside the roots.
    r = ww.sh("ln -s %s .foo.txt.codex-patch.%d" % (ww.victim, os.getpid()))
    assert r.exit_code == 0, r.stderr
    assert ww.patch("*** Begin Patch\n*** Add File: foo.txt\n+PWNED\n*** End Patch\n") == "auto-approve"
    assert ww.victim.read_text() == "original\n"
    assert (ww.ws / "foo.txt").read_text() == "PWNED\n"
    assert not (ww.ws / "foo.txt").is_symlink()


def test_patch_temp_files_are_new_and_keep_the_mode(tmp_path):
    target = tmp_path / "run.sh"
    target.write_text("echo a\n")
    target.chmod(0o750)
    codex.apply_patch("*** Begin Patch\n*** Update File: run.sh\n@@\n-echo a\n+echo b\n*** End Patch\n", tmp_path)
    assert target.read_text() == "echo b\n" and target.stat().st_mode & 0o777 == 0o750
    codex.apply_patch("*** Begin Patch\n*** Add File: new.txt\n+x\n*** End Patch\n", tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.txt", "run.sh"]


def test_patch_creating_a_new_git_or_codex_dir_is_not_auto_approved(tmp_path):
    # A .git that does not exist yet has no read-only mount; a new nested repo's config
    # (core.fsmonitor) runs unsandboxed the next time the user types `git status` there.
    w = World(tmp_path, "workspace-write", approval="on-request")
    for path in ("sub/.git/config", ".codex/config.toml", "a/b/.git/hooks/pre-commit"):
        paths = [w.ws / path]
        assert codex.assess_patch_safety(paths, w.cfg) == "ask-user", path
    assert codex.assess_patch_safety([w.ws / "src" / "git.py", w.ws / ".github" / "ci.yml"], w.cfg) == "auto-approve"


@linux_only
def test_patch_outside_roots_through_every_path_trick(ww):
    (ww.ws / "link").symlink_to(ww.outside)
    (ww.ws / "a.txt").write_text("x\n")
    for body in ("*** Add File: ../outside/n.txt\n+x\n", "*** Add File: %s/n.txt\n+x\n" % ww.outside,
                 "*** Add File: link/n.txt\n+x\n", "*** Update File: a.txt\n*** Move to: ../outside/m.txt\n@@\n-x\n+y\n",
                 "*** Add File: .git/hooks/pre-commit\n+x\n", "*** Add File: %s/config.toml\n+x\n" % ww.home):
        assert ww.patch("*** Begin Patch\n%s*** End Patch\n" % body) == "reject", body
    assert sorted(os.listdir(ww.outside)) == ["victim.txt"]


# -- known-safe commands ---------------------------------------------------------------------


def test_sed_script_file_is_not_known_safe(tmp_path):
    # `sed -n 1p --file=x.sed` reads its script (which may hold `e cmd` or `w file`) from x.sed
    for argv in (["sed", "-n", "1p", "--file=x.sed"], ["sed", "-n", "1p", "-fx.sed"], ["sed", "-n", "1p", "-i"],
                 ["sed", "-n", "1p", "--expression=e id"]):
        assert not codex.is_known_safe_command(argv), argv
    assert codex.is_known_safe_command(["sed", "-n", "1,5p", "file.txt"])


# -- the Linux helper --------------------------------------------------------------------------


@linux_only
def test_datagram_to_a_pathname_socket_outside(world, tmp_path):
    # /dev/log, sd_notify, daemons' datagram control sockets: an unconnected AF_UNIX datagram
    # socket needs no connect() to reach them, only sendmsg() with an address.
    path = str(tmp_path / "outside" / "d.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(0.5)
    try:
        r = world.py("""
            import socket
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            s.sendmsg([b"pwned"], [], 0, %r)
        """ % path)
        assert r.exit_code != 0 and "Operation not permitted" in r.stderr, r.stderr
        with pytest.raises(socket.timeout):
            srv.recv(100)
    finally:
        srv.close()
    r = world.py("import socket; socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close(); "
                 "socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET).close()")
    assert r.exit_code == 0, r.stderr


@linux_only
def test_setsid_child_dies_with_the_command(world, tmp_path):
    # A command used to leave a setsid daemon behind that kept running (sandboxed, but with the
    # workspace writable) after the command, its timeout and codex itself were gone.
    token = "codex-redteam-%d-%s" % (os.getpid(), tmp_path.name)
    loop = "setsid -f bash -c 'while :; do sleep 0.05; done # %s-%s' </dev/null >/dev/null 2>&1"
    r = world.sh(loop % (token, "a") + "; sleep 0.2; echo started")
    assert r.exit_code == 0 and "started" in r.stdout, r.stderr
    r = world.sh(loop % (token, "b") + "; sleep 100", timeout_ms=500)
    assert r.timed_out
    time.sleep(0.3)
    left = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout.splitlines()
    left = [line.split()[0] for line in left if token in line]
    for pid in left:  # ours: do not leave them running when the test fails
        os.kill(int(pid), 9)
    assert not left


@linux_only
def test_pid_namespace_keeps_exit_codes_signals_and_pipes(world):
    assert world.sh("exit 7").exit_code == 7
    assert world.sh("kill -TERM $$").exit_code == 143
    assert world.sh("kill -SEGV $$").exit_code == 139
    r = world.sh("echo out; echo err >&2; (sleep 0.05; echo bg) & wait")
    assert r.stdout == "out\nbg\n" and r.stderr == "err\n"
    r = world.run(["no-such-binary-xyz"])
    assert r.exit_code == 127 and r.sandbox_error is None


@linux_only
def test_kernel_keyrings_denied(world):
    # the session keyring is shared with the user's login session (kerberos, fscrypt keys)
    r = world.py("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        nr = {"x86_64": (248, 250), "aarch64": (217, 219)}[os.uname().machine]
        out = [libc.syscall(nr[0], b"user", b"codex-x", b"v", 1, -3), ctypes.get_errno(),
               libc.syscall(nr[1], 0, -3, 0), ctypes.get_errno()]
        print(out)
    """)
    assert r.stdout.strip() == "[-1, 1, -1, 1]", r.stdout + r.stderr


@linux_only
def test_parent_codex_process_is_out_of_reach(world):
    # /proc/<codex>/fd, /proc/<codex>/mem, pidfd_getfd, signals: Landlock's ptrace and signal scoping
    r = world.py("""
        import ctypes, os, signal
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        ppid = CODEX_PID  # codex (this test process); inside the PID namespace getppid() is the helper's init
        fails = 0
        for fd in os.listdir("/proc/%d/fd" % ppid):
            try:
                os.open("/proc/%d/fd/%s" % (ppid, fd), os.O_RDONLY)
            except OSError:
                fails += 1
            else:
                print("OPENED", fd)
        for path in ("/proc/%d/mem" % ppid, "/proc/%d/environ" % ppid):
            try:
                open(path, "rb").read(1)
                print("READ", path)
            except OSError:
                pass
        try:
            pfd = os.pidfd_open(ppid)  # ESRCH from inside the PID namespace
            print("getfd", libc.syscall(438, pfd, 0, 0))
        except OSError:
            print("getfd -1")
        try:
            os.kill(ppid, signal.SIGSTOP)
            print("SIGNALLED")
        except OSError:
            pass
        pfd = os.open("/proc/%d" % ppid, os.O_RDONLY | os.O_DIRECTORY)  # a pidfd for pidfd_send_signal
        if libc.syscall(424, pfd, signal.SIGSTOP, None, 0) == 0:
            print("SIGNALLED")
        print("ok", fails > 0)
    """.replace("CODEX_PID", str(os.getpid())))
    assert "OPENED" not in r.stdout and "READ" not in r.stdout and "SIGNALLED" not in r.stdout, r.stdout
    assert "getfd -1" in r.stdout and "ok True" in r.stdout, r.stdout + r.stderr


@linux_only
def test_open_by_handle_and_new_namespaces_cannot_write_outside(ww):
    r = ww.py("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        class FH(ctypes.Structure):
            _fields_ = [("bytes", ctypes.c_uint), ("type", ctypes.c_int), ("h", ctypes.c_ubyte * 128)]
        fh = FH(); fh.bytes = 128; mid = ctypes.c_int()
        libc.name_to_handle_at(-100, %r.encode(), ctypes.byref(fh), ctypes.byref(mid), 0)
        fd = libc.open_by_handle_at(os.open("/", os.O_RDONLY), ctypes.byref(fh), os.O_WRONLY)
        if fd >= 0:
            os.write(fd, b"PWNED")
        libc.unshare(0x10000000 | 0x00020000)
        libc.mount(b"tmpfs", %r.encode(), b"tmpfs", 0, None)
        libc.chroot(b"/")
        try:
            open(%r, "w").write("PWNED")
        except OSError as exc:
            print(exc)
    """ % (str(ww.victim), str(ww.outside), str(ww.victim)))
    assert ww.victim.read_text() == "original\n", r.stdout + r.stderr
    assert not os.path.ismount(str(ww.outside))


@linux_only
def test_inherited_fd_above_65535_is_closed(tmp_path, impl):
    # the Python helper used to close fds 3..65535 only; a writable fd to an outside file above
    # that (e.g. from a caller with a high RLIMIT_NOFILE) reached the command
    import resource

    w = World(tmp_path, "read-only")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 70001), max(hard, 70001)))  # root may raise it
    except (ValueError, OSError):
        pytest.skip("cannot raise RLIMIT_NOFILE to 70001")
    fd = os.open(str(w.victim), os.O_WRONLY | os.O_APPEND)
    try:
        os.dup2(fd, 70000)
        argv, _, _ = codex.sandbox_command([sys.executable, "-c", "import os; os.write(70000, b'PWNED')"],
                                           codex.SandboxPolicy("read-only"), w.ws, home=w.home)
        proc = subprocess.run(argv, pass_fds=(70000,), capture_output=True, text=True, timeout=60)
    finally:
        os.close(fd)
        os.close(70000)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert "Bad file descriptor" in proc.stderr, proc.stderr
    assert w.victim.read_text() == "original\n"


def test_relative_path_entry_gives_no_known_safe_pass(tmp_path):
    # with "." in PATH, `ls` run from a model-chosen workdir is ./ls, which the model may have planted
    w = World(tmp_path, "workspace-write", approval="untrusted")
    assert codex.assess_command_safety(["ls"], w.cfg, set()) == "auto-approve"
    for path in ("/usr/bin:.:/bin", "/usr/bin::/bin", "bin:/usr/bin"):
        w.cfg = w.cfg.replace(shell_environment_policy={"set": {"PATH": path}})
        assert codex.assess_command_safety(["ls"], w.cfg, set()) == "ask-user", path
        assert codex.assess_command_safety(["bash", "-lc", "ls && pwd"], w.cfg, set()) == "ask-user", path


@linux_only
def test_helper_inside_a_writable_root_cannot_be_replaced(tmp_path, monkeypatch):
    # The helper used to be executed by path from its extraction place ($CODEX_HOME/bin, else
    # ~/.cache/codex/bin, else /tmp/codex-<uid>/bin: the last is a writable root by default).  A
    # command that replaced it made the next command run unsandboxed.  Now its bytes are read
    # once into a sealed memfd: whatever happens to the file, the sealed copy runs.
    if not BUILT_HELPER.exists():
        pytest.skip("compiled helper not built; run `python3 build.py helpers`")
    w = World(tmp_path, "workspace-write")
    bindir = w.ws / "bin"
    bindir.mkdir()
    helper = bindir / "codex-linux-sandbox-test"
    helper.write_bytes(BUILT_HELPER.read_bytes())
    helper.chmod(0o700)
    monkeypatch.setenv("CODEX_SANDBOX_HELPER", str(helper))
    codex._PROBE_CACHE.clear()
    codex._HELPER_CACHE.clear()
    evil = '#!/bin/sh\nwhile [ "$1" != -- ]; do shift; done; shift; exec "$@"\n'
    r = w.sh("printf '%s' > %s.new && chmod 700 %s.new && mv %s.new %s" % (evil, helper, helper, helper, helper))
    assert r.exit_code == 0 and helper.read_bytes() != BUILT_HELPER.read_bytes()
    r = w.sh("grep Seccomp: /proc/self/status")
    assert "Seccomp:\t2" in r.stdout
    prefix, _ = codex.helper_argv_prefix(w.home)
    assert Path(prefix[0]).read_bytes() == BUILT_HELPER.read_bytes()
    codex._PROBE_CACHE.clear()
    codex._HELPER_CACHE.clear()


@linux_only
def test_python_helper_code_inside_a_writable_root(tmp_path, monkeypatch):
    # codex.py (a checkout in the workspace, or ~/.shiv when the workspace is $HOME) is what the
    # Python helper imports for the next command: it must stay read-only, and a planted
    # stdlib-named module next to it must not be imported.
    w = World(tmp_path, "workspace-write")
    copy = w.ws / "codex.py"
    copy.write_bytes((REPO / "codex.py").read_bytes())
    monkeypatch.setattr(codex, "__file__", str(copy))
    monkeypatch.setenv("CODEX_SANDBOX_HELPER", "python")
    codex._PROBE_CACHE.clear()
    r = w.sh("echo 'import os; os.system(\"touch %s/json-ran\")' > json.py && echo '# x' >> codex.py"
             % w.outside)
    assert "codex.py: Read-only file system" in r.stderr, r.stderr
    assert (w.ws / "json.py").exists() and copy.read_bytes() == (REPO / "codex.py").read_bytes()
    r = w.sh("grep Seccomp: /proc/self/status")
    assert "Seccomp:\t2" in r.stdout, r.stderr
    assert not (w.outside / "json-ran").exists()
    codex._PROBE_CACHE.clear()


@linux_only
def test_module_planted_in_the_workspace_does_not_run_in_the_next_helper(ww, impl):
    # The Python helper is `python -c ...` started in the command's cwd: '' on sys.path made a
    # json.py planted there by one command run, unsandboxed, in the next command's helper.
    hook = "import os; os.system('grep Seccomp: /proc/self/status > %s/ran')" % ww.outside
    for name in ("json.py", "ctypes.py", "re.py", "codex.py", "pyseccomp.py"):
        assert ww.sh("printf '%%s\\n' \"%s\" > %s" % (hook, name)).exit_code == 0
    assert ww.run(["true"]).exit_code == 0
    assert ww.run(["true"]).exit_code == 0
    assert not (ww.outside / "ran").exists(), (ww.outside / "ran").read_text()


@linux_only
def test_user_terminals_cannot_be_read(world):
    # Any /dev/pts/N the user owns could be opened read-only (Landlock grants reads under /)
    # and a command read the keystrokes typed there: a password in another terminal, or the
    # answer to codex's own approval question.
    import threading

    master, slave = os.openpty()
    name = os.ttyname(slave)
    timer = threading.Timer(1.0, os.write, (master, b"hunter2\n"))
    timer.start()
    try:
        r = world.py("""
            import os
            try:
                fd = os.open(%r, os.O_RDONLY | os.O_NOCTTY)
            except OSError as exc:
                print("denied", exc.errno)
            else:
                print("read", os.read(fd, 100))
            print(sorted(os.listdir("/dev/pts")))
        """ % name, timeout_ms=8000)
    finally:
        timer.cancel()
        os.close(master)
        os.close(slave)
    assert "hunter2" not in r.stdout and "denied 2" in r.stdout, r.stdout + r.stderr
    assert "[]" in r.stdout


@linux_only
def test_zipapp_extraction_inside_a_writable_root_is_read_only(ww, impl, monkeypatch):
    # the zipapp runs from ~/.shiv/codex_<hash>/site-packages: with the workspace at $HOME a
    # command could rewrite httpx there, which the next codex start imports unsandboxed
    if impl == "python":
        pytest.skip("the fake package below holds no codex.py the Python helper could run")
    site = ww.ws / ".shiv" / "codex_x" / "site-packages"
    (site / "httpx").mkdir(parents=True)
    (site / "httpx" / "__init__.py").write_text("")
    (site / "codex.py").write_text("")
    monkeypatch.setattr(codex, "__file__", str(site / "codex.py"))
    r = ww.sh("echo 'import os' > %s/httpx/__init__.py; touch %s/new.py; echo ok > elsewhere.txt" % (site, site))
    assert r.stderr.count("Read-only file system") == 2, r.stderr
    assert (site / "httpx" / "__init__.py").read_text() == "" and not (site / "new.py").exists()
    assert (ww.ws / "elsewhere.txt").read_text() == "ok\n"


@linux_only
def test_network_on_still_hides_sockets_that_run_commands_outside(tmp_path, impl, monkeypatch):
    # network_access = true allowed connect() to every unix socket: the D-Bus session bus in
    # $XDG_RUNTIME_DIR (`systemd-run --user` runs anything unsandboxed), docker.sock, tmux,
    # and abstract sockets (X11, older D-Bus).  TCP and the command's own unix sockets still work.
    w = World(tmp_path, "workspace-write")
    w.cfg = w.cfg.replace(sandbox_workspace_write=dict(w.cfg.sandbox_workspace_write or {}, network_access=True))
    runtime = tmp_path / "outside" / "run-user"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    bus = socket.socket(socket.AF_UNIX)
    bus.bind(str(runtime / "bus"))
    bus.listen(1)
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind("\0codex-redteam-%d" % os.getpid())
    abstract.listen(1)
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(1)
    try:
        r = w.py("""
            import os, socket
            for addr in (%r, "\\0codex-redteam-%d"):
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect(addr)
                    print("CONNECTED", repr(addr))
                except OSError as exc:
                    print("denied", exc.errno)
            socket.create_connection(("127.0.0.1", %d), timeout=5).close()
            own = socket.socket(socket.AF_UNIX)
            own.bind("own.sock")
            own.listen(1)
            c = socket.socket(socket.AF_UNIX)
            c.connect("own.sock")
            a = socket.socket(socket.AF_UNIX)
            a.bind("\\0codex-redteam-own-%d")
            a.listen(1)
            socket.socket(socket.AF_UNIX).connect("\\0codex-redteam-own-%d")
            print("own sockets ok")
        """ % (str(runtime / "bus"), os.getpid(), tcp.getsockname()[1], os.getpid(), os.getpid()))
    finally:
        bus.close()
        abstract.close()
        tcp.close()
    assert "CONNECTED" not in r.stdout and r.stdout.count("denied") == 2, r.stdout + r.stderr
    assert "own sockets ok" in r.stdout, r.stderr


@linux_only
@pytest.mark.parametrize("which", ["c", "python"])
def test_limits_of_codex_cannot_be_set_without_a_pid_namespace(tmp_path, which):
    # Without user namespaces (no PID namespace) a command could prlimit() codex itself:
    # RLIMIT_CPU=1 or RLIMIT_FSIZE=0 kill it.  Its own limits stay settable.
    if which == "c" and not BUILT_HELPER.exists():
        pytest.skip("compiled helper not built; run `python3 build.py helpers`")
    import resource

    # the helper would enter a PID namespace (where no outside pid can be named): without user
    # namespaces (tests/support/no_userns.py) it cannot, and seccomp must deny prlimit instead
    prefix = ([sys.executable, str(REPO / "tests" / "support" / "no_userns.py")]
              + ([str(BUILT_HELPER)] if which == "c" else codex._python_helper_argv()))
    victim = subprocess.Popen(["sleep", "60"])  # stands in for codex (same user, outside the sandbox)
    code = ("import resource\ntry:\n    resource.prlimit(%d, resource.RLIMIT_CPU, (1, 1))\n    print('SET')\n"
            "except OSError as exc:\n    print('denied', exc.errno)\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512)); print(resource.prlimit(0, resource.RLIMIT_NOFILE))"
            % victim.pid)
    try:
        before = resource.prlimit(victim.pid, resource.RLIMIT_CPU)
        proc = subprocess.run(prefix + ["--cwd", str(tmp_path), "--writable", str(tmp_path), "--", sys.executable, "-c",
                                        code], capture_output=True, text=True, timeout=60)
        after = resource.prlimit(victim.pid, resource.RLIMIT_CPU)
    finally:
        victim.kill()
        victim.wait()
    assert after == before and "denied 1" in proc.stdout and "(512, 512)" in proc.stdout, proc.stdout + proc.stderr
