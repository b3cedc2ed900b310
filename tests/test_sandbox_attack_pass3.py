"""The third attack pass's findings fixed in the sandbox and in codex's own git and config
(docs/attack-pass/third/README.md: 03, 04, 06, 07, 08), each attacked through the real path:
the real helpers (compiled and Python, the `impl` fixture) on this kernel, `codex exec` and
`codex review` against the scripted model server, real git, real files.  docs/sandbox.md maps
each class to its mechanism and these tests.
"""
import os
import subprocess
import sys

import pytest

import codex

pytestmark = [pytest.mark.timeout(180), pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")]

_GIT_ID = ["-c", "user.email=u@example.invalid", "-c", "user.name=u"]


def _git(cwd, *args):
    subprocess.run(["git"] + _GIT_ID + list(args), cwd=str(cwd), check=True, stdout=subprocess.DEVNULL)


def _cfg(ws, home, overrides=(), approval="never", sandbox="workspace-write"):
    return codex.load_config(codex.ConfigOverrides(approval_policy=approval, sandbox_mode=sandbox, cwd=str(ws)),
                             list(overrides), home=str(home), environ=dict(os.environ))


def _sh(script, cwd, cfg):
    return codex.run_command(["bash", "-c", script], str(cwd), cfg, codex.build_command_env(cfg), timeout_ms=30000)


# ---------------------------------------------------------------------------------------------
# 06: a repository planted in an uninitialised submodule's directory, then codex's own git
# ---------------------------------------------------------------------------------------------


def _superproject(tmp_path):
    """A repository with a gitlink `sub` and an empty sub/ (a clone without --recurse-submodules);
    .gitmodules says `ignore = none`, which beats a `-c diff.ignoreSubmodules=all`."""
    ws = tmp_path / "ws"
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    (ws / "README").write_text("hi\n")
    (ws / ".gitmodules").write_text('[submodule "sub"]\n\tpath = sub\n\turl = https://example.invalid/s.git\n'
                                    '\tignore = none\n')
    _git(ws, "add", "README", ".gitmodules")
    _git(ws, "update-index", "--add", "--cacheinfo", "160000,%s,sub" % ("1" * 40))
    _git(ws, "commit", "-qm", "init")
    (ws / "sub").mkdir()
    return ws


def _plant_submodule_repo(marker):
    """The model's sandboxed command: sub/ becomes a repository whose own config has a clean
    filter and an fsmonitor hook, with a tracked file that looks modified."""
    return ("cd sub && git init -q && git config user.email a@b && git config user.name a && "
            "echo 'a.txt filter=x' > .gitattributes && echo data > a.txt && git add . && git commit -qm x && "
            "git config filter.x.clean \"sh -c 'echo filter >> %s; cat'\" && "
            "git config core.fsmonitor \"sh -c 'echo fsmonitor >> %s'\" && "
            "echo datb > a.txt && touch -d 2020-01-01 a.txt && echo planted" % (marker, marker))


def test_a_repository_planted_in_a_submodule_dir_runs_nothing_in_codexs_git(impl, tmp_path, codex_home):
    ws = _superproject(tmp_path)
    marker = tmp_path / "ran"
    r = _sh(_plant_submodule_repo(marker), ws, _cfg(ws, codex_home))
    assert "planted" in r.stdout, r.aggregated_output
    assert (ws / "sub" / ".git").is_dir() and not marker.exists()
    # plain git (what the user's own `git status` does) would run it: the plant is real
    check = subprocess.run(["git", "status", "--porcelain"], cwd=str(ws), capture_output=True, text=True)
    assert marker.exists() and "sub" in check.stdout, check
    marker.unlink()
    # every way codex runs git itself: review's scope and diff, /diff, `@` file search, /review's lists
    scope = codex.resolve_review_scope(ws, uncommitted=True)
    codex.collect_review_diff(scope)
    ok, _diff = codex._git_diff(ws)
    assert ok
    codex.list_workspace_files(ws)
    codex.run_git(ws, "log", "-9", "--format=%h %s")
    assert not marker.exists(), marker.read_text()


def test_codex_runs_only_git_subcommands_it_has_checked(tmp_path):
    with pytest.raises(ValueError, match="does not run `git submodule update`"):
        codex.git_argv(tmp_path, "submodule", "update")
    argv = codex.git_argv(tmp_path, "status", "--porcelain")
    assert argv[-3:] == ["status", "--ignore-submodules=all", "--porcelain"]
    assert "core.hooksPath=/dev/null" in argv and "protocol.allow=never" in argv


def test_exec_then_review_with_a_planted_submodule_repository(run_codex, server, tmp_path, codex_home):
    # the repro of finding 06 end to end: `codex exec` plants, `codex review` runs git unsandboxed
    from support.agent_env import MOCK_KEY_ENV, mock_cli_args
    from support.model_server import Turn

    ws = _superproject(tmp_path)
    marker = tmp_path / "ran"
    server.enqueue(Turn().function_call("shell", {"command": ["bash", "-c", _plant_submodule_repo(marker) + " && echo more >> ../README"]},
                                        call_id="c1"), Turn().text("ok"))
    args = ["-C", str(ws)] + mock_cli_args(server)
    first = run_codex("exec", "-s", "workspace-write", *(args + ["plant it"]), env={MOCK_KEY_ENV: "k"})
    assert first.returncode == 0, first.stderr
    assert "planted" in server.model_requests()[1].body["input"][-1]["output"]
    assert (ws / "sub" / ".git").is_dir() and not marker.exists()
    server.enqueue(Turn().text('{"findings": [], "overall_correctness": "patch is correct", "overall_explanation": "ok", '
                               '"overall_confidence_score": 0.5}'))
    review = run_codex("review", "--uncommitted", *args, env={MOCK_KEY_ENV: "k"})
    assert review.returncode == 0, review.stderr
    assert not marker.exists(), marker.read_text()
