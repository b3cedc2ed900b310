"""§15a Reusable prompts: markdown files in $CODEX_HOME/prompts as slash commands, expanded in
`codex exec` and in the REPL (through a real pty)."""
import os
import subprocess
import sys

import pytest

import codex
from support.agent_env import MOCK_KEY_ENV, mock_cli_args
from support.model_server import Turn

pytestmark = pytest.mark.timeout(120)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FIX = """---
description: Fix a failing test
argument-hint: FILE=path [extra words]
---
Fix the failing test in $FILE. First: $1. Everything: $ARGUMENTS. Cost: $$5.
"""


@pytest.fixture
def prompts_dir(codex_home):
    d = codex_home / "prompts"
    d.mkdir()
    (d / "fix.md").write_text(FIX)
    (d / "hello.md").write_text("Say hello to $1 and $2.\n")
    (d / "status.md").write_text("a prompt file named like a built-in\n")
    (d / "notes.txt").write_text("not a prompt\n")
    (d / "bad name!.md").write_text("skipped\n")
    return d


def test_prompt_files_load_with_front_matter(prompts_dir):
    prompts = codex.load_custom_prompts([prompts_dir])
    assert sorted(prompts) == ["fix", "hello", "status"]
    fix = prompts["fix"]
    assert fix.description == "Fix a failing test" and fix.argument_hint == "FILE=path [extra words]"
    assert fix.body.startswith("Fix the failing test") and fix.named_args == ["FILE"]


def test_expansion_fills_positional_named_and_all_arguments(prompts_dir):
    prompts = codex.load_custom_prompts([prompts_dir])
    prompt, args = codex.find_prompt_command('/fix FILE=src/a.py "run it" now', prompts)
    assert codex.expand_custom_prompt(prompt, args) == \
        "Fix the failing test in src/a.py. First: run it. Everything: run it now. Cost: $5."
    prompt, args = codex.find_prompt_command("/prompts:hello Ann", prompts)
    assert codex.expand_custom_prompt(prompt, args) == "Say hello to Ann and ."
    with pytest.raises(codex.UsageError, match=r"/fix needs FILE=\.\.\. \(e\.g\. `/fix FILE=value`\)"):
        codex.expand_custom_prompt(*codex.find_prompt_command("/fix no named arg", prompts))


def test_builtins_keep_their_names_unless_prefixed(prompts_dir):
    prompts = codex.load_custom_prompts([prompts_dir])
    assert codex.find_prompt_command("/status", prompts, builtins={"status"}) is None
    assert codex.find_prompt_command("/prompts:status", prompts, builtins={"status"})[0].name == "status"
    assert codex.find_prompt_command("/usr/bin/env is broken", prompts) is None
    assert codex.find_prompt_command("plain text", prompts) is None


def test_later_directories_win(tmp_path, prompts_dir):
    project = tmp_path / "project-prompts"
    project.mkdir()
    (project / "hello.md").write_text("Project hello $1\n")
    assert codex.load_custom_prompts([prompts_dir, project])["hello"].body == "Project hello $1"


def run_exec(server, codex_home, work, prompt):
    env = dict(os.environ, CODEX_HOME=str(codex_home), **{MOCK_KEY_ENV: "test-key"})
    cmd = [sys.executable, os.path.join(REPO, "codex.py"), "exec", "--skip-git-repo-check", "-C", str(work)]
    return subprocess.run(cmd + mock_cli_args(server) + [prompt], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def sent_text(request):
    return [i for i in request.body["input"] if i.get("role") == "user"][-1]["content"][0]["text"]


def test_exec_expands_a_prompt_command(server, codex_home, prompts_dir, tmp_path):
    server.enqueue(Turn().text("fixed"))
    r = run_exec(server, codex_home, tmp_path, "/fix FILE=t.py quickly")
    assert r.returncode == 0, r.stderr
    assert sent_text(server.model_requests()[0]) == \
        "Fix the failing test in t.py. First: quickly. Everything: quickly. Cost: $5."


def test_exec_missing_named_argument_is_a_usage_error(server, codex_home, prompts_dir, tmp_path):
    r = run_exec(server, codex_home, tmp_path, "/fix")
    assert r.returncode == 2 and "/fix needs FILE=..." in r.stderr and "Traceback" not in r.stderr
    assert server.model_requests() == []


@pytest.mark.slow
def test_repl_runs_a_prompt_command_and_lists_it(server, codex_home, prompts_dir, tmp_path):
    pytest.importorskip("pexpect")
    from support.repl_pty import ReplPty

    work = tmp_path / "work"
    work.mkdir()
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    server.enqueue(Turn().text("hello done"))
    argv = [os.path.join(REPO, "codex.py"), "-C", str(work), "-m", "gpt-5", "-s", "danger-full-access", "-a", "never"]
    r = ReplPty(sys.executable, argv + mock_cli_args(server), {"CODEX_HOME": str(codex_home), MOCK_KEY_ENV: "test-key"},
                work, tmp_path / "pty.log")
    r.send("/prompts:he")
    r.expect("prompts:hello")  # the completion menu lists the prompt file
    r.send("\x15")  # Ctrl-U clears the line
    r.submit("/hello Ann Bob")
    r.expect("hello done")
    r.expect_prompt()
    r.submit("/fix")
    r.expect("needs FILE=")
    r.expect_prompt()
    r.submit("/quit")
    assert r.wait_exit() == 0
    [req] = server.model_requests()
    assert sent_text(req) == "Say hello to Ann and Bob."
