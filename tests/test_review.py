"""§17b Code review: scopes from real git repositories, the diff the model is given, findings
parsing, the printed list and JSON, --fail-on exit codes, read-only enforcement, both wires."""
import json
import os
import subprocess
import sys

import pytest

import codex
from support.agent_env import MOCK_KEY_ENV, mock_cli_args
from support.model_server import Turn

pytestmark = pytest.mark.timeout(90)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def git(cwd, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com", GIT_CONFIG_NOSYSTEM="1")
    return subprocess.run(["git"] + list(args), cwd=str(cwd), check=True, capture_output=True, text=True, env=env).stdout.strip()


@pytest.fixture
def branchy(tmp_path):
    """main: calc.py and notes.md; feature (checked out) changes calc.py and adds feature.py and a
    binary file; main then moves on (main_only.py) after the branch point."""
    root = tmp_path / "proj"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "notes.md").write_text("notes\n")
    git(root, "add", ".")
    git(root, "commit", "-qm", "init")
    git(root, "checkout", "-qb", "feature")
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "feature.py").write_text("FEATURE = 1\n")
    (root / "logo.bin").write_bytes(bytes(range(256)) * 4)
    git(root, "add", ".")
    git(root, "commit", "-qm", "feature work")
    git(root, "checkout", "-q", "main")
    (root / "main_only.py").write_text("MAIN = 1\n")
    git(root, "add", ".")
    git(root, "commit", "-qm", "main moves on")
    git(root, "checkout", "-q", "feature")
    return root


def paths(files):
    return sorted(d.path for d in files)


# -- scopes and diffs -------------------------------------------------------------------------


def test_base_scope_is_only_what_the_branch_changed(branchy):
    (branchy / "calc.py").write_text("working tree noise\n")  # uncommitted: not part of --base
    (branchy / "stray.txt").write_text("untracked\n")
    scope = codex.resolve_review_scope(branchy, base="main")
    assert scope.kind == "base" and scope.base == git(branchy, "merge-base", "HEAD", "main")
    files = codex.collect_review_diff(scope)
    assert paths(files) == ["calc.py", "feature.py", "logo.bin"]  # not main_only.py, not stray.txt
    calc = next(d for d in files if d.path == "calc.py")
    assert "-    return a + b" in calc.text and "+    return a - b" in calc.text
    assert "working tree noise" not in calc.text
    assert next(d for d in files if d.path == "logo.bin").binary


def test_uncommitted_scope_has_staged_unstaged_and_untracked(branchy):
    (branchy / "calc.py").write_text("def add(a, b):\n    return b + a\n")   # unstaged
    (branchy / "feature.py").write_text("FEATURE = 2\n")
    git(branchy, "add", "feature.py")                                        # staged
    (branchy / "new_file.py").write_text("print('new')\n")                   # untracked
    (branchy / "pic.bin").write_bytes(b"\x00\x01\x02" * 100)                 # untracked binary
    (branchy / ".gitignore").write_text("ignored.log\n")
    (branchy / "ignored.log").write_text("not reviewed\n")
    scope = codex.resolve_review_scope(branchy, uncommitted=True)
    files = codex.collect_review_diff(scope)
    assert paths(files) == [".gitignore", "calc.py", "feature.py", "new_file.py", "pic.bin"]
    assert "+print('new')" in next(d for d in files if d.path == "new_file.py").text
    assert next(d for d in files if d.path == "pic.bin").binary
    assert "+FEATURE = 2" in next(d for d in files if d.path == "feature.py").text


def test_uncommitted_in_a_repository_without_commits(tmp_path):
    root = tmp_path / "fresh"
    root.mkdir()
    git(root, "init", "-q")
    (root / "a.py").write_text("x = 1\n")
    git(root, "add", "a.py")
    (root / "b.py").write_text("y = 2\n")
    files = codex.collect_review_diff(codex.resolve_review_scope(root))
    assert paths(files) == ["a.py", "b.py"]


def test_commit_scope_is_that_commit_only(branchy):
    sha = git(branchy, "rev-parse", "HEAD")
    scope = codex.resolve_review_scope(branchy, commit=sha[:8])
    assert scope.kind == "commit" and scope.commit == sha and "feature work" in scope.description
    assert paths(codex.collect_review_diff(scope)) == ["calc.py", "feature.py", "logo.bin"]
    root_commit = git(branchy, "rev-list", "--max-parents=0", "HEAD")
    assert paths(codex.collect_review_diff(codex.resolve_review_scope(branchy, commit=root_commit))) == ["calc.py", "notes.md"]


def test_default_scope_prefers_uncommitted_then_the_branch(branchy):
    assert codex.resolve_review_scope(branchy).kind == "base"  # clean tree: feature vs main
    (branchy / "calc.py").write_text("dirty\n")
    assert codex.resolve_review_scope(branchy).kind == "uncommitted"


def test_default_scope_uses_the_upstream_branch(branchy, tmp_path):
    git(branchy, "checkout", "-qb", "topic", "feature")
    git(branchy, "branch", "--set-upstream-to", "feature")
    (branchy / "topic.py").write_text("T = 1\n")
    git(branchy, "add", ".")
    git(branchy, "commit", "-qm", "topic")
    scope = codex.resolve_review_scope(branchy)
    assert scope.kind == "base" and scope.base == git(branchy, "merge-base", "HEAD", "feature")
    assert paths(codex.collect_review_diff(scope)) == ["topic.py"]


def test_nothing_to_review_and_bad_scopes_are_one_line_usage_errors(branchy, tmp_path):
    git(branchy, "checkout", "-q", "main")
    with pytest.raises(codex.UsageError, match="nothing to review"):
        codex.resolve_review_scope(branchy)
    with pytest.raises(codex.UsageError, match="--base nope: no such branch"):
        codex.resolve_review_scope(branchy, base="nope")
    with pytest.raises(codex.UsageError, match="--commit 0123abc: no such commit"):
        codex.resolve_review_scope(branchy, commit="0123abc")
    with pytest.raises(codex.UsageError, match="at most one of"):
        codex.resolve_review_scope(branchy, base="main", commit="HEAD")
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    with pytest.raises(codex.UsageError, match="not inside a git repository"):
        codex.resolve_review_scope(outside)


def test_hostile_repository_config_runs_nothing(branchy, tmp_path):
    marker = tmp_path / "ran"
    script = tmp_path / "evil.sh"
    script.write_text("#!/bin/sh\ntouch %s\n" % marker)
    script.chmod(0o755)
    git(branchy, "config", "core.fsmonitor", str(script))
    git(branchy, "config", "diff.external", str(script))
    git(branchy, "config", "diff.evil.textconv", str(script))
    (branchy / ".gitattributes").write_text("*.py diff=evil\n")
    (branchy / "calc.py").write_text("changed\n")
    files = codex.collect_review_diff(codex.resolve_review_scope(branchy))
    assert "+changed" in next(d for d in files if d.path == "calc.py").text
    assert not marker.exists()


def test_budget_keeps_code_first_and_reports_what_was_left_out():
    code = codex.FileDiff("src/app.py", "diff --git a/src/app.py b/src/app.py\n" + "+x\n" * 100)
    lock = codex.FileDiff("package-lock.json", "diff --git a/package-lock.json b/package-lock.json\n" + "+y\n" * 3000)
    binary = codex.FileDiff("img.png", "diff --git a/img.png b/img.png\nBinary files differ\n", binary=True)
    shown, left_out = codex.budget_review_diff([lock, code, binary], 2000)
    assert [d.path for d in shown] == ["src/app.py", "img.png"]
    assert [d.path for d in left_out] == ["package-lock.json"]
    only, rest = codex.budget_review_diff([lock], 500)
    assert rest == [] and "cut at 500" in only[0].text
    assert codex.review_diff_budget(8192) < codex.review_diff_budget(None) < codex.review_diff_budget(400000)


# -- parsing ----------------------------------------------------------------------------------


FINDING = {"title": "[P1] Subtraction instead of addition", "body": "add() now subtracts.",
           "confidence_score": 0.9, "priority": 1,
           "code_location": {"absolute_file_path": "/r/calc.py", "line_range": {"start": 2, "end": 2}}}
ANSWER = {"findings": [FINDING], "overall_correctness": "patch is incorrect",
          "overall_explanation": "add is broken", "overall_confidence_score": 0.8}


@pytest.mark.parametrize("text", [
    json.dumps(ANSWER),
    "```json\n%s\n```" % json.dumps(ANSWER, indent=2),
    "Here is my review: %s Hope it helps {not json}." % json.dumps(ANSWER),
])
def test_parse_review_accepts_bare_fenced_and_wrapped_json(text):
    review = codex.parse_review(text, "/r")
    assert review["parsed"] and review["overall_correctness"] == "patch is incorrect"
    [f] = review["findings"]
    assert f["priority"] == 1 and f["code_location"]["line_range"] == {"start": 2, "end": 2}
    assert f["code_location"]["absolute_file_path"] == "/r/calc.py"


def test_parse_review_is_tolerant_of_loose_fields():
    loose = {"findings": [
        {"title": "[P0] Deletes user data", "body": "rm -rf", "code_location": {"file_path": "src/x.py", "line": "7"}},
        {"title": "Minor thing", "priority": "P3", "confidence_score": "7"},
        {"body": "no title: dropped"}, "junk",
        {"title": "Swapped range", "priority": 2, "code_location": {"absolute_file_path": "/a", "line_range": {"start": 9, "end": 3}}},
    ], "overall_correctness": "Patch is Incorrect"}
    review = codex.parse_review(json.dumps(loose), "/repo")
    assert [f["priority"] for f in review["findings"]] == [0, 2, 3]
    first = review["findings"][0]
    assert first["code_location"] == {"absolute_file_path": "/repo/src/x.py", "line_range": {"start": 7, "end": 7}}
    assert review["findings"][1]["code_location"]["line_range"] == {"start": 3, "end": 9}
    assert review["findings"][2]["confidence_score"] == 1.0
    assert review["overall_correctness"] == "patch is incorrect"


def test_prose_answer_is_kept_whole_and_unparsed():
    review = codex.parse_review("The change looks fine to me.\n\nOne nit: rename x.", "/r")
    assert not review["parsed"] and review["findings"] == []
    text = codex.render_review(review, codex.ReviewScope("uncommitted", "/r", "uncommitted changes"))
    assert "answered in prose" in text and "One nit: rename x." in text


def test_fail_on_thresholds():
    review = codex.parse_review(json.dumps(ANSWER), "/r")
    assert codex.review_fails(review, "P1") and codex.review_fails(review, "p3")
    assert not codex.review_fails(review, "P0")


def test_render_links_and_defuses_model_text():
    evil = dict(FINDING, title="[P2] Bad\x1b]0;pwned\x07 title", body="line one\n\nline \x1b[2Jtwo")
    review = codex.parse_review(json.dumps(dict(ANSWER, findings=[evil])), "/r")
    scope = codex.ReviewScope("uncommitted", "/r", "uncommitted changes")
    text = codex.render_review(review, scope, file_opener="vscode", links=True)
    assert "\x1b]8;;vscode://file/r/calc.py:2\x1b\\calc.py:2\x1b]8;;\x1b\\" in text
    assert "\x1b]0;" not in text and "\x1b[2J" not in text
    plain = codex.render_review(review, scope, file_opener="vscode", links=False)
    assert "   calc.py:2\n" in plain and "[P1] Bad" in plain  # the number wins over the title tag


# -- end to end: codex review / codex exec review ---------------------------------------------


def run_review(server, cwd, codex_home, *args, wire="responses", extra_env=None, timeout=60):
    env = dict(os.environ, CODEX_HOME=str(codex_home), **{MOCK_KEY_ENV: "test-key"})
    env.update(extra_env or {})
    cmd = [sys.executable, os.path.join(REPO_ROOT, "codex.py")] + mock_cli_args(server, wire) + list(args)
    return subprocess.run(cmd, cwd=str(cwd), env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def sent_prompt(server):
    req = server.model_requests()[0]
    if req.api == "chat":
        return [m for m in req.body["messages"] if m["role"] == "user"][-1]["content"]
    return req.body["input"][-1]["content"][0]["text"]


def answer_for(root):
    finding = dict(FINDING, code_location={"absolute_file_path": str(root / "calc.py"), "line_range": {"start": 2, "end": 2}})
    return json.dumps(dict(ANSWER, findings=[finding]))


@pytest.mark.parametrize("wire", ["responses", "chat"])
def test_review_base_end_to_end_both_wires(server, branchy, codex_home, wire):
    (branchy / "calc.py").write_text("noise in the working tree\n")
    server.enqueue(Turn().text(answer_for(branchy)))
    r = run_review(server, branchy, codex_home, "review", "--base", "main", "focus on arithmetic", wire=wire)
    assert r.returncode == 0, r.stderr
    prompt = sent_prompt(server)
    assert "focus on: focus on arithmetic" in prompt
    assert "+    return a - b" in prompt and "main_only.py" not in prompt and "noise in the working tree" not in prompt
    assert '"overall_correctness"' in prompt  # upstream's review contract
    assert "1. [P1] Subtraction instead of addition" in r.stdout
    assert "   calc.py:2\n" in r.stdout and "Verdict: patch is incorrect (confidence 0.80)" in r.stdout
    assert "Review: changes on feature since it left main" in r.stderr  # a summary, not the whole diff
    assert "+    return a - b" not in r.stderr


def test_review_json_and_fail_on_exit_codes(server, branchy, codex_home):
    server.enqueue(Turn().text(answer_for(branchy)), Turn().text(answer_for(branchy)), Turn().text(answer_for(branchy)))
    r = run_review(server, branchy, codex_home, "exec", "review", "--base", "main", "--json", "--fail-on", "P1")
    assert r.returncode == codex.REVIEW_FINDINGS_EXIT, r.stderr
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    assert lines[0]["type"] == "thread.started" and lines[-1]["type"] == "review.completed"
    review = lines[-1]["review"]
    assert review["findings"][0]["priority"] == 1 and review["scope"]["kind"] == "base"
    assert review["findings"][0]["code_location"]["absolute_file_path"] == str(branchy / "calc.py")
    r = run_review(server, branchy, codex_home, "review", "--base", "main", "--fail-on", "P0")
    assert r.returncode == 0, r.stderr
    r = run_review(server, branchy, codex_home, "review", "--base", "main", "--fail-on", "p2")
    assert r.returncode == codex.REVIEW_FINDINGS_EXIT


def test_prose_review_prints_readably_and_fails_a_gate(server, branchy, codex_home):
    server.enqueue(Turn().text("Looks mostly fine, but add() now subtracts."), Turn().text("All good."))
    r = run_review(server, branchy, codex_home, "review", "--base", "main", "--fail-on", "P1")
    assert r.returncode == 1 and "cannot be checked" in r.stderr
    assert "add() now subtracts." in r.stdout
    r = run_review(server, branchy, codex_home, "review", "--base", "main")
    assert r.returncode == 0 and "All good." in r.stdout


def test_review_is_read_only_whatever_the_config_says(server, branchy, codex_home, tmp_path):
    (codex_home / "config.toml").write_text('sandbox_mode = "danger-full-access"\napproval_policy = "on-request"\n')
    target = branchy / "written-by-review.txt"
    server.enqueue(Turn().function_call("shell", {"command": ["bash", "-c", "echo x > %s" % target]}, call_id="c1"),
                   Turn().text(json.dumps(dict(ANSWER, findings=[]))))
    r = run_review(server, branchy, codex_home, "review", "--commit", "HEAD", "-s", "danger-full-access",
                   "--dangerously-bypass-approvals-and-sandbox")
    assert r.returncode == 0, r.stderr
    assert not target.exists()
    assert "sandbox: read-only" in r.stderr and "approval: never" in r.stderr
    output = [i for i in server.model_requests()[1].body["input"] if i.get("type") == "function_call_output"][0]
    assert "Read-only file system" in output["output"] or "Permission denied" in output["output"]
    assert "No findings." in r.stdout


def test_small_window_leaves_files_out_and_says_so(server, branchy, codex_home):
    (branchy / "big.lock").write_text("".join("line %d\n" % i for i in range(4000)))
    (branchy / "small.py").write_text("x = 1\n")
    server.enqueue(Turn().text(json.dumps(dict(ANSWER, findings=[]))))
    r = run_review(server, branchy, codex_home, "review", "--uncommitted", "-c", "model_context_window=4000")
    assert r.returncode == 0, r.stderr
    prompt = sent_prompt(server)
    assert "+x = 1" in prompt and "+line 3999" not in prompt
    assert "Left out of the diff below" in prompt and "big.lock (+4000 -0)" in prompt
    assert "Left out of the review to fit the model's context: big.lock" in r.stdout


def test_review_flags_outside_review_and_nothing_to_review(server, branchy, codex_home):
    r = run_review(server, branchy, codex_home, "exec", "--base", "main", "do something")
    assert r.returncode == 2 and "--base only applies to `codex exec review`" in r.stderr
    r = run_review(server, branchy, codex_home, "review", "--fail-on", "P7")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    git(branchy, "checkout", "-q", "main")
    r = run_review(server, branchy, codex_home, "review")
    assert r.returncode == 2 and "nothing to review" in r.stderr and "Traceback" not in r.stderr
    assert server.model_requests() == []


REVIEW_SCHEMA = {"type": "object", "additionalProperties": False,
                 "required": ["findings", "overall_correctness", "overall_explanation", "overall_confidence_score"],
                 "properties": {"findings": {"type": "array"}, "overall_correctness": {"type": "string"},
                                "overall_explanation": {"type": "string"}, "overall_confidence_score": {"type": "number"}}}


@pytest.mark.parametrize("wire", ["responses", "chat"])
def test_exec_review_honours_output_schema_and_output_file(server, branchy, codex_home, tmp_path, wire):
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(REVIEW_SCHEMA))
    last = tmp_path / "last.json"
    server.enqueue(Turn().text(answer_for(branchy)))
    r = run_review(server, branchy, codex_home, "exec", "review", "--base", "main", "--output-schema", str(schema_file),
                   "-o", str(last), "--fail-on", "P1", wire=wire)
    assert r.returncode == codex.REVIEW_FINDINGS_EXIT, r.stderr
    assert json.loads(r.stdout) == json.loads(answer_for(branchy))  # the model's JSON is the output
    assert json.loads(last.read_text()) == json.loads(answer_for(branchy))
    body = server.model_requests()[0].body
    fmt = body["text"]["format"] if wire == "responses" else body["response_format"]["json_schema"]
    assert fmt["schema"] == REVIEW_SCHEMA
    server.enqueue(Turn().text("not json at all"))
    r = run_review(server, branchy, codex_home, "review", "--base", "main", "--output-schema", str(schema_file), wire=wire)
    assert r.returncode == codex.EXEC_SCHEMA_EXIT and "does not follow --output-schema" in r.stderr


# -- /review in the REPL ------------------------------------------------------------------------


def test_repl_review_shows_findings_and_the_fix_runs_in_the_same_session(server, branchy, codex_home, tmp_path):
    pytest.importorskip("pexpect")
    from support.repl_pty import ReplPty

    (branchy / "stray.txt").write_text("untracked\n")
    server.enqueue(Turn().text(answer_for(branchy)), Turn().text("fixed it"))
    argv = [os.path.join(REPO_ROOT, "codex.py"), "-m", "gpt-5", "-s", "workspace-write", "-a", "on-request"]
    env = {"CODEX_HOME": str(codex_home), MOCK_KEY_ENV: "test-key"}
    r = ReplPty(sys.executable, argv + mock_cli_args(server), env, branchy, tmp_path / "pty.log")
    r.submit("/review")
    r.expect("what should be reviewed")
    r.send("2")  # this branch against a base branch
    r.expect("against which branch")
    r.expect(r"\[(\d)\] (?:\x1b\[[0-9;]*m)*main")
    r.send(r.child.match.group(1))
    r.expect(r"1\. \[P1\] Subtraction instead of addition")
    r.expect("calc.py:2")
    r.expect("fix finding 1")
    r.expect_prompt()
    r.submit("fix finding 1")
    r.expect("fixed it")
    r.expect_prompt()
    r.submit("/quit")
    assert r.wait_exit() == 0
    review_req, fix_req = server.model_requests()
    prompt = sent_prompt(server)
    assert "changes on feature since it left main" in prompt and "stray.txt" not in prompt
    assert '"overall_correctness"' not in r.log().split("Subtraction instead of addition")[0][-2000:]  # JSON not echoed
    # the review ran read-only with no approvals; the fix runs under the session's own policy
    env_texts = [json.dumps(i) for i in review_req.body["input"] if "environment_context" in json.dumps(i)]
    assert "read-only" in env_texts[-1] and "never" in env_texts[-1]
    fix_env = [json.dumps(i) for i in fix_req.body["input"] if "environment_context" in json.dumps(i)]
    assert "workspace-write" in fix_env[-1] and "on-request" in fix_env[-1]
    assert "Subtraction instead of addition" in json.dumps(fix_req.body["input"])  # findings in the conversation
