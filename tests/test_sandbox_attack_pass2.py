"""The second attack pass's sandbox-policy findings (docs/attack-pass/second/README.md: 03, 04,
04b, 09, 10, 11, 13), each attacked through the real path: the real helpers (compiled and
Python, the `impl` fixture) on this kernel, real processes, real files; as root and, where it
differs, as uid 65534.  docs/sandbox.md maps each class to its mechanism and these tests.
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import codex

REPO = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.timeout(180), pytest.mark.skipif(not codex._LINUX, reason="Linux sandbox")]

NO_TMP = ["sandbox_workspace_write.exclude_slash_tmp=true", "sandbox_workspace_write.exclude_tmpdir_env_var=true"]


def _cfg(ws, home, tmp, overrides=(), approval="never", sandbox="workspace-write"):
    return codex.load_config(codex.ConfigOverrides(approval_policy=approval, sandbox_mode=sandbox, cwd=str(ws)),
                             NO_TMP + list(overrides), home=home, environ={"HOME": str(tmp)})


def _sh(script, cwd, cfg):
    return codex.run_command(["bash", "-c", script], cwd, cfg, codex.build_command_env(cfg), timeout_ms=30000)


# ---------------------------------------------------------------------------------------------
# 09: the workspace inside another writable root, swapped for a symlink between two commands
# ---------------------------------------------------------------------------------------------


class TestWorkspaceAncestorSwap:
    """The workspace /X/outer/ci/repo lies inside the writable root /X/outer (as a CI checkout
    under /tmp does): a command renames `ci` aside and plants `ci/repo -> outside`.  The
    directories between the enclosing root and the workspace are pinned (the rename fails),
    and the next command refuses to run when the workspace is not the directory it was."""

    def _setup(self, tmp_path):
        outer = tmp_path / "outer"
        ws = outer / "ci" / "repo"
        ws.mkdir(parents=True)
        outside = tmp_path / "outside"
        outside.mkdir()
        home = tmp_path / "codex-home"
        home.mkdir()
        cfg = _cfg(ws, home, tmp_path, ['sandbox_workspace_write.writable_roots=["%s"]' % outer])
        return outer, ws, outside, cfg

    def test_the_ancestors_cannot_be_renamed(self, tmp_path, impl):
        outer, ws, outside, cfg = self._setup(tmp_path)
        swap = _sh("mv %s %s_old && mkdir %s && ln -s %s %s && echo swapped"
                   % (outer / "ci", outer / "ci", outer / "ci", outside, ws), ws, cfg)
        assert "swapped" not in swap.stdout and swap.exit_code != 0, swap.aggregated_output
        assert (outer / "ci").is_dir() and not (outer / "ci").is_symlink() and ws.is_dir()
        for victim in (outer / "ci", ws):  # neither the workspace nor a directory between it and the root
            r = _sh("mv %s %s.gone" % (victim, victim), ws, cfg)
            assert r.exit_code != 0 and victim.is_dir(), r.aggregated_output
        write = _sh("echo PWNED > %s/x && echo wrote" % outside, ws, cfg)
        assert os.listdir(str(outside)) == [], write.aggregated_output
        ok = _sh("echo fine > inside.txt && mkdir -p sub/dir && mv sub sub2 && echo ok", ws, cfg)
        assert ok.exit_code == 0 and (ws / "inside.txt").read_text() == "fine\n", ok.aggregated_output

    def test_a_moved_workspace_is_refused(self, tmp_path, impl):
        # what the pins cannot cover (no user namespaces; a process outside the sandbox): the
        # workspace's identity is checked before every command
        outer, ws, outside, cfg = self._setup(tmp_path)
        first = _sh("echo one > one.txt", ws, cfg)
        assert first.exit_code == 0, first.aggregated_output
        os.rename(str(outer / "ci"), str(outer / "ci_old"))
        (outer / "ci").mkdir()
        os.symlink(str(outside), str(ws))
        with pytest.raises(codex.SandboxError, match="no longer the directory this session started with"):
            _sh("echo PWNED > x", ws, cfg)
        os.unlink(str(ws))
        ws.mkdir()  # a fresh directory at the same name is not the workspace either
        with pytest.raises(codex.SandboxError, match="no longer the directory"):
            _sh("echo PWNED > x", ws, cfg)
        assert os.listdir(str(outside)) == []

    def test_a_configured_root_replaced_by_a_symlink_is_refused(self, tmp_path, impl):
        # a configured root that does not exist yet, whose parent is writable: planting a symlink
        # at its name must not make the symlink's target writable
        outer = tmp_path / "outer"
        ws = outer / "ws"
        ws.mkdir(parents=True)
        outside = tmp_path / "outside"
        outside.mkdir()
        later = ws / "later"
        cfg = _cfg(ws, tmp_path / "h", tmp_path, ['sandbox_workspace_write.writable_roots=["%s"]' % later])
        (tmp_path / "h").mkdir()
        assert _sh("ln -s %s later && echo planted" % outside, ws, cfg).exit_code == 0
        with pytest.raises(codex.SandboxError, match="no longer the directory"):
            _sh("echo PWNED > %s/x" % later, ws, cfg)
        assert os.listdir(str(outside)) == []


@pytest.fixture
def nobody_base():
    """(a directory owned by uid 65534 under /var/tmp, the compiled helper), removed afterwards."""
    helper = str(REPO / "build" / "helpers" / ("codex-linux-sandbox-%s" % codex._machine_arch()))
    if not os.path.exists(helper):  # what runs as nobody here is codex's own: one helper is enough
        pytest.skip("compiled helper not built")
    base = tempfile.mkdtemp(prefix="codex-nobody-", dir="/var/tmp")
    try:
        os.chmod(base, 0o755)
        os.chown(base, 65534, 65534)
        yield base, helper
    finally:
        subprocess.run(["chmod", "-R", "u+w", base])
        shutil.rmtree(base, ignore_errors=True)


def test_workspace_ancestor_swap_as_nobody(nobody_base):
    """09 as uid 65534 (a CI runner's user): the same pins and the same refusal."""
    base, helper = nobody_base
    code = (
        "import os, sys; sys.path.insert(0, %r); import codex\n"
        "b = %r; ws = b + '/outer/ci/repo'; os.makedirs(ws); os.makedirs(b + '/home'); os.makedirs(b + '/out')\n"
        "cfg = codex.load_config(codex.ConfigOverrides(approval_policy='never', sandbox_mode='workspace-write',"
        " cwd=ws), %r + ['sandbox_workspace_write.writable_roots=[\"%%s/outer\"]' %% b], home=b + '/home',"
        " environ={'HOME': b})\n"
        "env = codex.build_command_env(cfg)\n"
        "r = codex.run_command(['bash', '-c', 'mv ../../ci ../../ci_old && mkdir ../../ci && ln -s %%s/out ../../ci/repo"
        " && echo swapped' %% b], ws, cfg, env)\n"
        "os.rename(b + '/outer/ci', b + '/outer/ci_old'); os.mkdir(b + '/outer/ci'); os.symlink(b + '/out', ws)\n"
        "try:\n    codex.run_command(['bash', '-c', 'echo PWNED > x'], ws, cfg, env); refused = False\n"
        "except codex.SandboxError:\n    refused = True\n"
        "print('swapped' in r.stdout, refused, os.listdir(b + '/out'), os.getuid())\n"
        % (str(REPO), base, NO_TMP))
    proc = _as_nobody(code, base, helper)
    assert proc.stdout.split() == ["False", "True", "[]", "65534"], proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------
# 10, 11: the sockets hidden with the network on (D-Bus, tmux, containerd...)
# ---------------------------------------------------------------------------------------------


class _Listener(object):
    """A unix socket at `path` standing in for the user's session bus: records who connects."""

    def __init__(self, path):
        import socket
        import threading

        self.got = []
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(path))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.got.append(conn.recv(100))
            conn.close()

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def _probe(path):
    return [sys.executable, "-c", "import socket; s = socket.socket(socket.AF_UNIX); s.connect(%r); "
            "s.sendall(b'systemd-run --user evil'); print('CONNECTED')" % str(path)]


@pytest.fixture
def bus(tmp_path, monkeypatch):
    run = tmp_path / "run-user"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    listener = _Listener(run / "bus")
    listener.dir = run
    yield listener
    listener.close()


def _net_cfg(tmp_path, network):
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    home = tmp_path / "codex-home"
    home.mkdir(exist_ok=True)
    return ws, _cfg(ws, home, tmp_path, ["sandbox_workspace_write.network_access=%s" % str(network).lower()])


class TestHiddenSockets:
    def test_the_models_workdir_does_not_unhide_a_socket_directory(self, tmp_path, impl, bus):
        """10: the hidden set is built from the policy's roots, never from the command's workdir."""
        ws, cfg = _net_cfg(tmp_path, True)
        env = codex.build_command_env(cfg)
        for cwd in (ws, bus.dir):  # the workspace, then workdir = $XDG_RUNTIME_DIR
            r = codex.run_command(_probe(bus.dir / "bus"), cwd, cfg, env, timeout_ms=30000)
            assert "CONNECTED" not in r.stdout, (cwd, r.aggregated_output)
        assert bus.got == []
        # the network itself is on: a socket of the command's own in the workspace works
        own = codex.run_command([sys.executable, "-c", "import socket; s = socket.socket(socket.AF_UNIX); "
                                 "s.bind('own.sock'); s.listen(1); print('BOUND')"], ws, cfg, env, timeout_ms=30000)
        assert "BOUND" in own.stdout, own.aggregated_output

    def test_a_socket_cannot_be_hard_linked_with_the_network_off(self, tmp_path, impl, monkeypatch):
        """11: a hard link planted with the network off would stay reachable with it on, outside
        the hidden directory: no socket gets a new name in a writable root without the network.
        As in /tmp: the socket's directory lies in a writable root (tmux-UID, .X11-unix)."""
        tmp = tmp_path / "tmp"
        run = tmp / "run-user"
        run.mkdir(parents=True, mode=0o700)
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
        bus = _Listener(run / "bus")
        try:
            ws = tmp_path / "ws"
            ws.mkdir()
            home = tmp_path / "codex-home"
            home.mkdir()
            roots = 'sandbox_workspace_write.writable_roots=["%s"]' % tmp
            off, on = (_cfg(ws, home, tmp_path, [roots, "sandbox_workspace_write.network_access=%s" % n])
                       for n in ("false", "true"))
            r = _sh("ln %s %s/stash" % (run / "bus", tmp), ws, off)
            assert not os.path.lexists(str(tmp / "stash")), r.aggregated_output
            for path in (tmp / "stash", run / "bus"):
                p = codex.run_command(_probe(path), ws, on, codex.build_command_env(on), timeout_ms=30000)
                assert "CONNECTED" not in p.stdout, p.aggregated_output
            assert bus.got == []
            # other files are still linked and renamed as before
            ok = _sh("echo a > f && ln f g && mv g h && cat h", ws, off)
            assert ok.exit_code == 0 and ok.stdout == "a\n", ok.aggregated_output
        finally:
            bus.close()


# ---------------------------------------------------------------------------------------------
# 04, 04b: `chmod 555 .` keeps a planted .git / .codex; a project's config widens the sandbox
# ---------------------------------------------------------------------------------------------


def _as_nobody(code, base, helper):
    python = shutil.which("python3", path="/usr/bin:/bin")
    if os.geteuid() != 0 or not shutil.which("setpriv") or not python:
        pytest.skip("switches to uid 65534 with setpriv, which needs root and /usr/bin/python3")
    env = {"PATH": "/usr/bin:/bin", "HOME": base, "CODEX_SANDBOX_HELPER": helper}
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", code],
                          capture_output=True, text=True, timeout=150, env=env)


@pytest.mark.parametrize("plant", [
    "git init -q . && git config filter.x.clean 'sh -c \"id > OUT/pwned\"' && chmod 555 .",
    "mkdir .codex && echo 'sandbox_mode = \"danger-full-access\"' > .codex/config.toml && chmod 555 .",
    "ln -s OUT .git && chmod 0 .",
])
def test_chmod_does_not_keep_a_planted_name(plant, nobody_base):
    """04/04b as uid 65534 (no CAP_DAC_OVERRIDE: root renames whatever the mode): the command
    plants .git or .codex and takes the write bit away; codex gives it back and moves the
    name aside, and says so in the command's output."""
    base, helper = nobody_base
    code = (
        "import os, sys; sys.path.insert(0, %r); import codex\n"
        "b = %r; os.makedirs(b + '/ws/sub'); os.makedirs(b + '/home'); os.makedirs(b + '/out')\n"
        "cfg = codex.load_config(codex.ConfigOverrides(approval_policy='never', sandbox_mode='workspace-write',"
        " cwd=b + '/ws'), %r, home=b + '/home', environ={'HOME': b})\n"
        "r = codex.run_command(['bash', '-c', %r.replace('OUT', b + '/out')], cfg.cwd, cfg, codex.build_command_env(cfg))\n"
        "print(sorted(n.split('.blocked')[0] + ('.blocked' if '.blocked' in n else '') for n in os.listdir(b + '/ws')),"
        " sorted(os.listdir(b + '/ws/sub')), 'moved aside to' in r.stderr, os.getuid())\n"
        % (str(REPO), base, NO_TMP, plant))
    proc = _as_nobody(code, base, helper)
    out = proc.stdout.strip()
    assert out.endswith("True 65534"), proc.stdout + proc.stderr
    assert "'.git'" not in out and "'.codex'" not in out, out


class TestProjectLayerCannotWiden:
    """04b, the other half: a trusted project's .codex/config.toml (which a command may have
    written) makes codex stricter, never looser than the user's own layers."""

    def _load(self, tmp_path, project_text, user_text="", **flags):
        home, proj = tmp_path / "home", tmp_path / "proj"
        (proj / ".git").mkdir(parents=True)
        (proj / ".codex").mkdir()
        (proj / ".codex" / "config.toml").write_text(project_text)
        home.mkdir()
        (home / "config.toml").write_text(user_text + '\n[projects."%s"]\ntrust_level = "trusted"\n' % proj)
        return codex.load_config(codex.ConfigOverrides(cwd=str(proj), **flags), [], home=home,
                                 environ={"HOME": str(tmp_path)})

    def test_looser_values_are_dropped_with_a_warning(self, tmp_path):
        cfg = self._load(tmp_path, 'model = "p"\nsandbox_mode = "danger-full-access"\napproval_policy = "never"\n'
                         'sandbox_permissions = ["disk-full-write-access"]\n[sandbox_workspace_write]\n'
                         'network_access = true\nwritable_roots = ["/"]\nexclude_slash_tmp = false\n',
                         'sandbox_mode = "workspace-write"\n[sandbox_workspace_write]\nexclude_slash_tmp = true\n')
        assert cfg.model == "p"  # the project's config applies...
        assert (cfg.sandbox_mode, cfg.approval_policy) == ("workspace-write", "untrusted")  # ...but widens nothing
        pol = cfg.sandbox_policy
        assert not pol.network_access and pol.exclude_slash_tmp and Path("/") not in pol.writable_roots
        assert sum("a project's config cannot" in w for w in cfg.warnings) == 6, cfg.warnings

    def test_stricter_or_equal_values_apply(self, tmp_path):
        cfg = self._load(tmp_path, 'sandbox_mode = "read-only"\napproval_policy = "on-request"\n',
                         'sandbox_mode = "workspace-write"\napproval_policy = "never"\n')
        assert (cfg.sandbox_mode, cfg.approval_policy) == ("read-only", "on-request")
        cfg = self._load(tmp_path / "b", 'sandbox_mode = "danger-full-access"\n', 'sandbox_mode = "danger-full-access"\n')
        assert cfg.sandbox_mode == "danger-full-access" and not any("cannot" in w for w in cfg.warnings)
        # the user's own flags still choose anything
        cfg = self._load(tmp_path / "c", 'model = "p"\n', sandbox_mode="danger-full-access")
        assert cfg.sandbox_mode == "danger-full-access"


# ---------------------------------------------------------------------------------------------
# 03: git files a command planted, read by codex unsandboxed: FIFOs and /dev/zero
# ---------------------------------------------------------------------------------------------


def test_planted_fifos_and_devices_in_git_files_do_not_hang_codex(tmp_path, impl):
    """A nested repo's `commondir` (and a `.git` file, a HEAD) made a FIFO or /dev/zero by a
    command: the next command's protected-path computation and the rollout's git info read
    nothing from them.  Run in a child process with a bound: a hang is a failure, not a stuck test."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (tmp_path / "home").mkdir()
    code = (
        "import sys, time; sys.path.insert(0, %r); import codex\n"
        "cfg = codex.load_config(codex.ConfigOverrides(approval_policy='never', sandbox_mode='workspace-write', cwd=%r),"
        " %r, home=%r, environ={'HOME': %r})\n"
        "env = codex.build_command_env(cfg)\n"
        "plant = ('mkdir -p a/.git b/.git c d/.git && mkfifo a/.git/commondir && ln -s /dev/zero b/.git/commondir'"
        " ' && mkfifo c/.git && mkfifo d/.git/HEAD && echo planted')\n"
        "r = codex.run_command(['bash', '-c', plant], cfg.cwd, cfg, env, timeout_ms=20000)\n"
        "codex._NESTED_CACHE.clear()\n"
        "t = time.monotonic(); r2 = codex.run_command(['echo', 'next'], cfg.cwd, cfg, env, timeout_ms=20000)\n"
        "info = codex._git_info(%r)\n"
        "print(r.stdout.strip(), r2.stdout.strip(), info, round(time.monotonic() - t) < 20)\n"
        % (str(REPO), str(ws), NO_TMP, str(tmp_path / "home"), str(tmp_path), str(ws / "d")))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    assert proc.stdout.split() == ["planted", "next", "None", "True"], proc.stdout + proc.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# 13: the approval question names the directory the command really runs in
# ---------------------------------------------------------------------------------------------


def test_approval_names_the_real_workdir_and_runs_there(tmp_path, server, impl):
    """The model makes `build` a symlink to a directory outside the workspace, then asks to run
    `rm -rf ./*` escalated in workdir `build`: the question shows the symlink's target, says it
    is outside the workspace, and the approved command runs in exactly that directory."""
    from support.agent_env import drain_until, mock_config, user_input
    from support.model_server import Turn

    ws, important = tmp_path / "ws", tmp_path / "important"
    ws.mkdir()
    important.mkdir()
    (important / "precious.txt").write_text("keep\n")
    home = tmp_path / "codex-home"
    home.mkdir()
    server.enqueue(Turn().function_call("shell", {"command": ["ln", "-s", str(important), "build"]}, call_id="c0"),
                   Turn().function_call("shell", {"command": ["sh", "-c", "pwd -P > /dev/stderr; ls"], "workdir": "build",
                                                  "with_escalated_permissions": True,
                                                  "justification": "clean the build dir"}, call_id="c1"),
                   Turn().text("done"))
    asked = []

    def handler(msg):
        asked.append(msg)
        return "approved"

    cfg = mock_config(server, home, ws, approval="on-request", sandbox="workspace-write",
                      sandbox_workspace_write={"exclude_slash_tmp": True, "exclude_tmpdir_env_var": True})
    session = codex.Session(cfg, approval_handler=handler).start()
    try:
        session.submit(user_input("go"))
        msgs = drain_until(session, "task_complete", timeout=150)
    finally:
        session.shutdown()
    questions = [m for m in asked if m.get("type") == "exec_approval_request"]
    assert questions, [m.get("type") for m in msgs]
    q = questions[-1]
    assert q["cwd"] == os.path.realpath(str(important)), q
    assert "outside the workspace" in (q.get("reason") or ""), q
    ends = [m for m in msgs if m["type"] == "exec_command_end" and m["call_id"] == "c1"]
    assert ends and "precious.txt" in ends[0]["stdout"], ends
