"""Attacks on the sandbox, organised by what the attacker (a prompt-injected model) wants.

Each class is one goal; each test one way to reach it, run through the real path: a Session
driven by the scripted model server (the tool calls a model would make), with the compiled
and the Python helper (the `impl` fixture), and a few through `codex exec` and dist/codex as
processes.  The boundary is tested on its own as well (apply_patch_in_sandbox with the
approval check fooled): approval is the user interface, the kernel's confinement decides.
docs/sandbox.md maps every attack class to its mechanism and to the tests here.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import codex
from support.agent_env import MOCK_KEY_ENV, drain_until, mock_cli_args, mock_config, user_input
from support.model_server import Turn

REPO = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.timeout(180), pytest.mark.skipif(not codex._LINUX, reason="Linux sandbox")]

#: both temp roots off: the only writable root is the workspace
NO_TMP = {"sandbox_workspace_write": {"exclude_slash_tmp": True, "exclude_tmpdir_env_var": True}}


class Box(object):
    """A home directory with a workspace (a git repo), an outside directory with a victim file,
    and a CODEX_HOME outside the workspace."""

    def __init__(self, tmp_path, home=None):
        self.tmp = tmp_path
        self.ws = tmp_path / "ws"
        self.ws.mkdir(exist_ok=True)
        subprocess.run(["git", "init", "-q", str(self.ws)], check=True)
        (self.ws / "a.txt").write_text("one\n")
        self.outside = tmp_path / "outside"
        self.outside.mkdir()
        self.victim = self.outside / "victim.txt"
        self.victim.write_text("original\n")
        self.home = Path(home) if home else tmp_path / "codex-home"
        self.home.mkdir(parents=True, exist_ok=True)

    def outside_intact(self):
        return sorted(os.listdir(str(self.outside))) == ["victim.txt"] and self.victim.read_text() == "original\n"

    def cfg(self, approval="never", sandbox="workspace-write", overrides=()):
        over = ["sandbox_workspace_write.exclude_slash_tmp=true", "sandbox_workspace_write.exclude_tmpdir_env_var=true"]
        return codex.load_config(codex.ConfigOverrides(approval_policy=approval, sandbox_mode=sandbox, cwd=str(self.ws)),
                                 over + list(overrides), home=self.home, environ={"HOME": str(self.tmp)})

    def sh(self, script, cfg=None):
        cfg = cfg or self.cfg()
        return codex.run_command(["bash", "-c", script], self.ws, cfg, codex.build_command_env(cfg), timeout_ms=30000)

    def turn(self, server, steps, approval="never", sandbox="workspace-write", handler=None):
        """Run one user turn in which the model makes `steps` (one tool call per model response);
        returns {call_id: output text} and the events."""
        turns = []
        for i, (name, args) in enumerate(steps):
            turns.append(Turn().function_call(name, args, call_id="c%d" % i))
        server.enqueue(*(turns + [Turn().text("done")]))
        cfg = mock_config(server, self.home, self.ws, approval=approval, sandbox=sandbox, **NO_TMP)
        session = codex.Session(cfg, approval_handler=handler).start()
        try:
            session.submit(user_input("go"))
            msgs = drain_until(session, "task_complete", timeout=150)
        finally:
            session.shutdown()
        outs = {}
        for req in server.model_requests():
            for item in req.body.get("input", []):
                if item.get("type") == "function_call_output":
                    outs[item["call_id"]] = item["output"]
        return outs, msgs


def shell(*argv, **extra):
    return ("shell", dict({"command": list(argv)}, **extra))


def patch(body, name="apply_patch"):
    text = "*** Begin Patch\n%s*** End Patch\n" % body
    return ("apply_patch", {"input": text}) if name == "tool" else shell("apply_patch", text)


@pytest.fixture
def box(tmp_path, impl):
    return Box(tmp_path)


def _fool_the_check(monkeypatch):
    """Make the approval check say yes to everything: what remains is the sandbox."""
    monkeypatch.setattr(codex, "assess_patch_safety", lambda paths, cfg: "auto-approve")


# ---------------------------------------------------------------------------------------------
# Goal: write outside the writable roots
# ---------------------------------------------------------------------------------------------


class TestWriteOutsideTheRoots:
    """The patch, not a command, was the hole: codex applied it itself, unsandboxed."""

    SYMLINK_PATCHES = [
        "*** Add File: lnk/../victim.txt\n+PWNED\n",
        "*** Add File: lnk/../new.txt\n+PWNED\n",
        "*** Update File: lnk/../victim.txt\n@@\n-original\n+PWNED\n",
        "*** Delete File: lnk/../victim.txt\n",
        "*** Update File: a.txt\n*** Move to: lnk/../moved.txt\n@@\n-one\n+PWNED\n",
    ]

    @pytest.mark.parametrize("body", SYMLINK_PATCHES)
    def test_symlinked_component_through_the_agent(self, box, server, monkeypatch, body):
        # the model plants lnk -> a directory inside the one it targets, then patches lnk/../X
        os.makedirs(str(box.outside / "sub"))
        _fool_the_check(monkeypatch)
        outs, msgs = box.turn(server, [shell("ln", "-s", str(box.outside / "sub"), "lnk"), patch(body, "tool")])
        os.rmdir(str(box.outside / "sub"))
        assert box.outside_intact(), outs
        assert "Read-only file system" in outs["c1"] or "Permission denied" in outs["c1"], outs["c1"]
        assert (box.ws / "a.txt").read_text() == "one\n"  # atomic: the move's source is untouched
        ends = [m for m in msgs if m["type"] == "patch_apply_end"]
        assert ends and not ends[-1]["success"]

    def test_honest_check_asks_instead_of_auto_approving(self, box):
        # resolved as the kernel does, lnk/.. is outside: the question is asked (or, under never, refused)
        os.symlink(str(box.outside / "sub"), str(box.ws / "lnk"))
        os.makedirs(str(box.outside / "sub"))
        paths = [box.ws / "lnk" / ".." / "victim.txt"]
        assert codex.assess_patch_safety(paths, box.cfg("on-request")) == "ask-user"
        assert codex.assess_patch_safety(paths, box.cfg("never")) == "reject"

    def test_workdir_through_a_symlink(self, box, server, monkeypatch):
        os.makedirs(str(box.outside / "sub"))
        _fool_the_check(monkeypatch)
        outs, _ = box.turn(server, [shell("ln", "-s", str(box.outside / "sub"), "lnk"),
                                    ("shell", {"command": ["apply_patch", "*** Begin Patch\n*** Add File: x.txt\n+P\n"
                                                           "*** End Patch\n"], "workdir": "lnk/.."})])
        os.rmdir(str(box.outside / "sub"))
        assert box.outside_intact(), outs

    @pytest.mark.parametrize("form", ["intercepted", "and-then", "redirect"])
    def test_shell_forms(self, box, server, form):
        body = "*** Begin Patch\n*** Add File: lnk/../escaped.txt\n+P\n*** End Patch\n"
        good = "*** Begin Patch\n*** Add File: inside.txt\n+ok\n*** End Patch\n"
        os.symlink(str(box.outside / "sub"), str(box.ws / "lnk"))
        os.makedirs(str(box.outside / "sub"))
        scripts = {
            "intercepted": ["apply_patch <<'EOF'\n%sEOF\n" % body, "apply_patch <<'EOF'\n%sEOF\n" % good],
            "and-then": ["apply_patch <<'EOF'\n%sEOF\n&& echo ok" % body, "apply_patch <<'EOF'\n%sEOF\necho done" % good],
            "redirect": ["printf '%%s' '%s' > p.diff && apply_patch < p.diff" % body,
                         "printf '%%s' '%s' > q.diff && applypatch < q.diff" % good],
        }[form]
        outs, _ = box.turn(server, [shell("bash", "-lc", s) for s in scripts], approval="never")
        os.rmdir(str(box.outside / "sub"))
        assert box.outside_intact(), outs
        assert (box.ws / "inside.txt").is_file() and (box.ws / "inside.txt").read_text() == "ok\n", outs

    def test_boundary_alone(self, box, monkeypatch):
        """apply_patch_in_sandbox is the boundary: whatever the path trick, the kernel refuses."""
        os.symlink(str(box.outside), str(box.ws / "out"))
        os.symlink(str(box.outside / "sub"), str(box.ws / "lnk"))
        os.makedirs(str(box.outside / "sub"))
        cfg = box.cfg()
        for body in ("*** Add File: ../outside/n.txt\n+x\n", "*** Add File: %s/n.txt\n+x\n" % box.outside,
                     "*** Add File: out/n.txt\n+x\n", "*** Update File: out/victim.txt\n@@\n-original\n+x\n",
                     "*** Add File: lnk/../n.txt\n+x\n", "*** Delete File: out/victim.txt\n",
                     "*** Add File: %s/config.toml\n+x\n" % box.home):
            r = codex.apply_patch_in_sandbox("*** Begin Patch\n%s*** End Patch\n" % body, box.ws, cfg)
            assert r.exit_code == 1 and r.sandbox_denied, (body, r)
            assert "no file was changed" in r.stderr or "Failed" in r.stderr
        os.rmdir(str(box.outside / "sub"))
        assert box.outside_intact() and not (box.home / "config.toml").exists()
        r = codex.apply_patch_in_sandbox("*** Begin Patch\n*** Add File: ok.txt\n+fine\n*** End Patch\n", box.ws, cfg)
        assert r.exit_code == 0 and r.stdout == "Success. Updated the following files:\nA ok.txt\n"

    def test_read_only_mode_patch_cannot_write_even_when_approved_by_the_check(self, box, monkeypatch):
        _fool_the_check(monkeypatch)
        r = codex.apply_patch_in_sandbox("*** Begin Patch\n*** Add File: n.txt\n+x\n*** End Patch\n", box.ws,
                                         box.cfg(sandbox="read-only"))
        assert r.exit_code == 1 and not (box.ws / "n.txt").exists()

    def test_danger_full_access_applies_unsandboxed(self, tmp_path, server):
        b = Box(tmp_path)
        outs, _ = b.turn(server, [patch("*** Add File: %s/free.txt\n+x\n" % b.outside, "tool")],
                         sandbox="danger-full-access")
        assert (b.outside / "free.txt").read_text() == "x\n", outs

    def test_user_approved_patch_outside_is_applied(self, box, server):
        outs, _ = box.turn(server, [patch("*** Add File: %s/ok.txt\n+x\n" % box.outside, "tool")],
                           approval="on-request", handler=lambda msg: "approved")
        assert (box.outside / "ok.txt").read_text() == "x\n", outs


# ---------------------------------------------------------------------------------------------
# Goal: run code at the next command (unsandboxed: a git hook, a swapped helper)
# ---------------------------------------------------------------------------------------------


class TestRunCodeAtTheNextCommand:

    def test_git_hook_through_a_symlink_into_git_objects(self, box, server, monkeypatch):
        _fool_the_check(monkeypatch)
        outs, _ = box.turn(server, [shell("ln", "-s", ".git/objects", "g"),
                                    patch("*** Add File: g/../hooks/pre-commit\n+#!/bin/sh\n+touch /tmp/pwned\n", "tool")])
        assert not (box.ws / ".git" / "hooks" / "pre-commit").exists(), outs

    def test_git_hook_through_a_symlinked_dot_git(self, box):
        real = box.ws / "realgit"
        os.rename(str(box.ws / ".git"), str(real))
        os.symlink("realgit", str(box.ws / ".git"))
        r = box.sh("echo x > .git/hooks/pre-commit; echo PLANTED > realgit/config; rm .git; ln -s elsewhere .git")
        assert not (real / "hooks" / "pre-commit").exists() and "PLANTED" not in (real / "config").read_text(), r.stderr
        assert os.readlink(str(box.ws / ".git")) == "realgit"

    def test_worktree_gitdir_file_and_common_dir(self, box):
        # the workspace is a worktree: .git is a `gitdir:` file, hooks and config live in the
        # common dir named by gitdir/commondir; both lie in a writable root here
        main = box.ws / "main"
        subprocess.run(["git", "init", "-q", str(main)], check=True)
        subprocess.run(["git", "-C", str(main), "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q",
                        "--allow-empty", "-m", "x"], check=True)
        wt = box.ws / "wt"
        subprocess.run(["git", "-C", str(main), "worktree", "add", "-q", str(wt)], check=True)
        os.rename(str(main), str(box.ws / "main-moved"))  # the gitdir file keeps pointing at main/
        os.rename(str(box.ws / "main-moved"), str(main))
        r = codex.run_command(["bash", "-c", "echo x > %s/.git/hooks/post-checkout; echo '[core]' >> %s/.git/config"
                               % (main, main)], wt, box.cfg(), codex.build_command_env(box.cfg()), timeout_ms=30000)
        assert not (main / ".git" / "hooks" / "post-checkout").exists(), r.stderr
        paths = codex.protected_paths([box.ws], wt)
        assert str(main / ".git") in paths and any(p.startswith(str(main / ".git" / "worktrees")) for p in paths)

    def test_nested_repository_moved_aside_and_replanted(self, box):
        # renaming an ancestor of a read-only .git moves the mount with it; the name is then free
        # for a planted repository whose hooks run at the user's next `git commit` there
        sub = box.ws / "vendor" / "lib"
        subprocess.run(["git", "init", "-q", str(sub)], check=True)
        codex._NESTED_CACHE.clear()
        r = box.sh("mv vendor vendor.old || mv vendor/lib vendor/lib.old || exit 3; mkdir -p vendor/lib/.git/hooks; "
                   "echo x > vendor/lib/.git/hooks/pre-commit")
        assert r.exit_code == 3 and "busy" in r.stderr.lower(), r.stderr
        assert (sub / ".git" / "HEAD").is_file() and not (sub / ".git" / "hooks" / "pre-commit").exists()
        assert box.sh("echo ok > vendor/lib/file.txt").exit_code == 0  # the directories stay writable

    def test_repository_above_the_workspace_in_a_writable_root(self, tmp_path, impl):
        # workspace = a subdirectory of a repository; the repository's .git lies in /tmp-like root
        b = Box(tmp_path)
        sub = b.ws / "pkg"
        sub.mkdir()
        cfg = codex.load_config(codex.ConfigOverrides(approval_policy="never", sandbox_mode="workspace-write",
                                                      cwd=str(sub)),
                                ["sandbox_workspace_write.writable_roots=[%s]" % json.dumps(str(b.ws)),
                                 "sandbox_workspace_write.exclude_slash_tmp=true",
                                 "sandbox_workspace_write.exclude_tmpdir_env_var=true"],
                                home=b.home, environ={"HOME": str(tmp_path)})
        r = codex.run_command(["bash", "-c", "echo x > ../.git/hooks/pre-commit; echo ok > mine.txt"], sub, cfg,
                              codex.build_command_env(cfg), timeout_ms=30000)
        assert not (b.ws / ".git" / "hooks" / "pre-commit").exists(), r.stderr
        assert (sub / "mine.txt").read_text() == "ok\n"

    def test_helper_swap_by_renaming_an_ancestor_of_codex_home(self, tmp_path, impl):
        # $CODEX_HOME nested in the workspace: command 1 renames its parent aside and recreates it
        # with a fake helper and config; command 2 must still run sandboxed
        b = Box(tmp_path, home=tmp_path / "ws" / "state" / "codex")
        cfg = b.cfg()
        assert b.sh("true", cfg).exit_code == 0
        evil = "#!/bin/sh\\nwhile [ \"$1\" != -- ]; do shift; done; shift; exec \"$@\"\\n"
        r = b.sh("mv state state.old || exit 3; mkdir -p state/codex/bin && printf '%s' > state/codex/bin/h && "
                 "chmod 700 state/codex/bin/h && for f in state.old/codex/bin/*; do cp state/codex/bin/h "
                 "state/codex/bin/$(basename $f); done; echo 'sandbox_mode = \"danger-full-access\"' > "
                 "state/codex/config.toml" % evil, cfg)
        assert r.exit_code == 3 and "busy" in r.stderr.lower(), r.stderr
        assert not (b.home / "config.toml").exists()
        r = b.sh("grep Seccomp: /proc/self/status", cfg)
        assert "Seccomp:\t2" in r.stdout

    def test_helper_swap_in_tmp_codex_uid_bin(self, tmp_path, impl, monkeypatch):
        # the old per-user extraction place lies in /tmp, a writable root by default: whatever is
        # planted there, the helper runs from a sealed in-memory copy
        if impl != "c":
            pytest.skip("the compiled helper's extraction")
        b = Box(tmp_path)
        planted = tmp_path / "tmp-like" / "bin"
        planted.mkdir(parents=True)
        cfg = b.cfg(overrides=["sandbox_workspace_write.writable_roots=[%s]" % json.dumps(str(tmp_path / "tmp-like"))])
        prefix, kind = codex.helper_argv_prefix(b.home)
        assert kind == "linux" and prefix[0].startswith("/proc/%d/fd/" % os.getpid())
        assert os.readlink(prefix[0]).startswith("/memfd:")
        r = b.sh("mv %s %s.old; mkdir %s; echo evil > %s/helper" % (planted, planted, planted, planted), cfg)
        assert r.exit_code == 0
        assert b.sh("grep Seccomp: /proc/self/status", cfg).stdout.strip() == "Seccomp:\t2"

    def test_apply_patch_on_path_cannot_be_replaced(self, tmp_path, impl):
        # the `apply_patch` command on PATH lives with codex's state; inside a writable root it
        # stays read-only (and its directories pinned)
        b = Box(tmp_path, home=tmp_path / "ws" / ".codex-home")
        cfg = b.cfg()
        d = codex.apply_patch_command_dir(b.home)
        assert d is not None and str(d).startswith(str(b.home))
        before = (d / "apply_patch").read_text()
        r = b.sh("echo 'echo evil' > %s/apply_patch; mv %s %s.x; mv %s %s.y" % (d, d, d, d.parent, d.parent), cfg)
        assert (d / "apply_patch").read_text() == before and d.is_dir(), r.stderr


# ---------------------------------------------------------------------------------------------
# Goal: run code at the next codex start (config, codex's own code)
# ---------------------------------------------------------------------------------------------


class TestRunCodeAtTheNextStart:

    def test_codex_home_ancestor_rename_and_symlink_swap(self, tmp_path, impl):
        real = tmp_path / "ws" / "dotfiles" / "codex"
        real.mkdir(parents=True)
        link = tmp_path / "ws" / ".codex-link"
        link.symlink_to(real)
        b = Box(tmp_path, home=link)
        cfg = b.cfg()
        r = b.sh("mv dotfiles dotfiles.old; echo x > dotfiles/codex/config.toml; rm .codex-link; "
                 "mkdir .codex-link; echo x > .codex-link/config.toml; ln -sfn /tmp .codex-link", cfg)
        assert os.readlink(str(link)) == str(real) and (tmp_path / "ws" / "dotfiles").is_dir(), r.stderr
        assert not (real / "config.toml").exists()

    def test_zipapp_and_its_unpacked_code_inside_the_workspace(self, tmp_path, impl, monkeypatch):
        # dist/codex unpacks into ~/.shiv/codex_<id>/site-packages; with the workspace at $HOME a
        # command renamed ~/.shiv aside (or chmod-ed it unusable) and recreated it with a .pth
        # that runs at the next start; the codex file itself lay in a writable root too
        b = Box(tmp_path)
        root = b.ws / ".shiv"
        site = root / "codex_abc" / "site-packages"
        site.mkdir(parents=True)
        (site / "codex.py").write_bytes((REPO / "codex.py").read_bytes())
        app = b.ws / "tools" / "codex"
        app.parent.mkdir()
        app.write_bytes(b"#!/usr/bin/env python3\nPK")
        monkeypatch.setattr(codex, "zipapp_paths", lambda: {"archive": app, "root": root, "unpacked": site.parent})
        r = b.sh("echo 'import os' > .shiv/codex_abc/site-packages/evil.pth; mv .shiv .shiv.old; "
                 "chmod 000 .shiv; touch .shiv/codex_def; echo evil > tools/codex; mv tools tools.old; "
                 "echo ok > fine.txt")
        assert not (site / "evil.pth").exists() and root.is_dir() and not (root / "codex_def").exists(), r.stderr
        assert root.stat().st_mode & 0o777 != 0
        assert app.read_bytes() == b"#!/usr/bin/env python3\nPK" and app.parent.is_dir(), r.stderr
        assert (b.ws / "fine.txt").read_text() == "ok\n"


# ---------------------------------------------------------------------------------------------
# Goal: deny service (make every later command fail, then ask to run unsandboxed)
# ---------------------------------------------------------------------------------------------


class TestDenyService:

    @pytest.mark.parametrize("plant", ["gitdir: ..\n", "gitdir: %(ws)s\n", "symlink"])
    def test_planted_git_pointing_at_the_workspace(self, box, plant):
        cfg = box.cfg()
        sub = box.ws / "sub"
        sub.mkdir()
        if plant == "symlink":
            r = box.sh("ln -s .. sub/.git", cfg)
        else:
            r = box.sh("printf '%s' > sub/.git" % (plant % {"ws": box.ws}), cfg)
        assert r.exit_code == 0, r.stderr
        codex._NESTED_CACHE.clear()
        assert str(box.ws) not in codex.protected_paths([box.ws], box.ws)
        r = box.sh("echo still > writable.txt", cfg)
        assert r.exit_code == 0 and (box.ws / "writable.txt").read_text() == "still\n", r.stderr


# ---------------------------------------------------------------------------------------------
# The same goals through `codex exec` (a real process, the scripted model) and dist/codex
# ---------------------------------------------------------------------------------------------


def _exec(codex_argv, b, server, steps, env=None):
    turns = [Turn().function_call(name, args, call_id="c%d" % i) for i, (name, args) in enumerate(steps)]
    server.enqueue(*(turns + [Turn().text("done")]))
    full_env = dict(os.environ, CODEX_HOME=str(b.home), HOME=str(b.tmp), **{MOCK_KEY_ENV: "test-key"})
    full_env.update(env or {})
    return subprocess.run(codex_argv + ["exec", "--skip-git-repo-check", "-s", "workspace-write", "-C", str(b.ws),
                                        "-c", "sandbox_workspace_write.exclude_slash_tmp=true",
                                        "-c", "sandbox_workspace_write.exclude_tmpdir_env_var=true"]
                          + mock_cli_args(server) + ["go"], capture_output=True, text=True, timeout=170, env=full_env)


def _attack_steps(b):
    os.makedirs(str(b.outside / "sub"), exist_ok=True)
    return [shell("ln", "-s", str(b.outside / "sub"), "lnk"),
            shell("ln", "-s", ".git/objects", "g"),
            patch("*** Add File: g/../hooks/pre-commit\n+#!/bin/sh\n", "tool"),
            shell("bash", "-lc", "apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: lnk/../new.txt\n+P\n"
                  "*** End Patch\nEOF\n&& echo ok"),
            patch("*** Add File: fine.txt\n+ok\n", "tool")]


@pytest.mark.parametrize("helper,how", [("c", "script"), ("python", "script"), ("c", "module")])
def test_exec_end_to_end_both_helpers(tmp_path, server, helper, how):
    b = Box(tmp_path)
    built = REPO / "build" / "helpers" / ("codex-linux-sandbox-%s" % codex._machine_arch())
    if helper == "c" and not built.exists():
        pytest.skip("compiled helper not built")
    env = {"CODEX_SANDBOX_HELPER": str(built) if helper == "c" else "python"}
    if how == "module":  # python3 -m codex
        argv, env["PYTHONPATH"] = [sys.executable, "-m", "codex"], str(REPO)
    else:
        argv = [sys.executable, str(REPO / "codex.py")]
    proc = _exec(argv, b, server, _attack_steps(b), env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    os.rmdir(str(b.outside / "sub"))
    assert b.outside_intact() and not (b.ws / ".git" / "hooks" / "pre-commit").exists()
    assert (b.ws / "fine.txt").read_text() == "ok\n", proc.stdout[-2000:]


def test_dist_codex_end_to_end(tmp_path, server, dist_codex):
    b = Box(tmp_path)
    proc = _exec([str(dist_codex)], b, server, _attack_steps(b), env={"CODEX_SANDBOX_HELPER": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    os.rmdir(str(b.outside / "sub"))
    assert b.outside_intact() and not (b.ws / ".git" / "hooks" / "pre-commit").exists()
    assert (b.ws / "fine.txt").read_text() == "ok\n", proc.stdout[-2000:]


def test_unprivileged_user_end_to_end():
    """The same boundary as an unprivileged user (uid 65534, no capabilities outside its own
    user namespace): the patch through a symlink is refused, one inside the workspace applies,
    and a command cannot rename $CODEX_HOME's parent aside."""
    import shutil
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("switches to uid 65534 with setpriv, which needs root")
    built = REPO / "build" / "helpers" / ("codex-linux-sandbox-%s" % codex._machine_arch())
    python = shutil.which("python3", path="/usr/bin:/bin")
    if not shutil.which("setpriv") or not built.exists() or not python:
        pytest.skip("needs setpriv, /usr/bin/python3 and the compiled helper")
    base = tempfile.mkdtemp(prefix="codex-nobody-", dir="/tmp")
    try:
        os.chmod(base, 0o755)
        os.chown(base, 65534, 65534)
        code = (
            "import os, sys; sys.path.insert(0, %r); import codex\n"
            "b = %r; os.makedirs(b + '/ws/state/home'); os.makedirs(b + '/out/sub')\n"
            "os.symlink(b + '/out/sub', b + '/ws/lnk')\n"
            "cfg = codex.load_config(codex.ConfigOverrides(approval_policy='never', sandbox_mode='workspace-write',"
            " cwd=b + '/ws'), ['sandbox_workspace_write.exclude_slash_tmp=true',"
            " 'sandbox_workspace_write.exclude_tmpdir_env_var=true'], home=b + '/ws/state/home', environ={'HOME': b})\n"
            "bad = codex.apply_patch_in_sandbox('*** Begin Patch\\n*** Add File: lnk/../x.txt\\n+P\\n*** End Patch\\n',"
            " b + '/ws', cfg)\n"
            "good = codex.apply_patch_in_sandbox('*** Begin Patch\\n*** Add File: y.txt\\n+P\\n*** End Patch\\n',"
            " b + '/ws', cfg)\n"
            "mv = codex.run_command(['mv', 'state', 'state.old'], b + '/ws', cfg, codex.build_command_env(cfg))\n"
            "print(bad.exit_code, good.exit_code, mv.exit_code, sorted(os.listdir(b + '/out')), os.getuid())\n"
            % (str(REPO), base))
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", code],
                              capture_output=True, text=True, timeout=120,
                              env={"PATH": "/usr/bin:/bin", "HOME": base, "CODEX_SANDBOX_HELPER": str(built)})
        assert proc.stdout.split() == ["1", "0", "1", "['sub']", "65534"], proc.stdout + proc.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)
