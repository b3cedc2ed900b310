"""§17/§22 `codex exec` as CI scripts use it, and a CLI surface that never guesses (issue 16).

Real processes against the scripted model server."""
import json
import os
import re
import subprocess
import sys
import time

import pytest

from support.agent_env import MOCK_KEY_ENV, mock_cli_args
from support.model_server import Turn

pytestmark = pytest.mark.timeout(120)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODEX = os.path.join(REPO, "codex.py")


SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}, "count": {"type": "integer"}},
          "required": ["answer", "count"], "additionalProperties": False}


@pytest.mark.parametrize("wire", ["responses", "chat"])
def test_output_schema_is_sent_and_the_answer_checked(exec_codex, server, tmp_path, wire):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    last = tmp_path / "last.json"
    server.enqueue(Turn().text('{"answer": "yes", "count": 2}'))
    proc = exec_codex("--output-schema", str(schema), "-o", str(last), "answer", wire=wire)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"answer": "yes", "count": 2}
    assert json.loads(last.read_text()) == {"answer": "yes", "count": 2}
    body = server.model_requests()[0].body
    if wire == "responses":
        assert body["text"]["format"] == {"type": "json_schema", "strict": True, "name": "codex_output_schema",
                                          "schema": SCHEMA}
    else:
        assert body["response_format"] == {"type": "json_schema", "json_schema": {
            "name": "codex_output_schema", "strict": True, "schema": SCHEMA}}
    # an answer that breaks the schema, and one that is not JSON: exit 3, the reason in one line
    server.enqueue(Turn().text('{"answer": "yes", "count": "two"}'))
    proc = exec_codex("--output-schema", str(schema), "answer", wire=wire)
    assert proc.returncode == 3, proc.stderr
    assert "does not follow --output-schema: $.count: expected integer" in proc.stderr
    server.enqueue(Turn().text("Sure! Here it is."))
    proc = exec_codex("--json", "--output-schema", str(schema), "answer", wire=wire)
    assert proc.returncode == 3 and "not JSON" in proc.stderr
    lines = [json.loads(l) for l in proc.stdout.splitlines()]
    assert lines[-2]["type"] == "turn.completed" and lines[-1]["type"] == "error"


def test_output_schema_file_errors_are_usage_errors(exec_codex, server, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for path, needle in ((bad, "is not JSON"), (tmp_path / "missing.json", "cannot read")):
        proc = exec_codex("--output-schema", str(path), "x")
        assert proc.returncode == 2 and needle in proc.stderr and str(path) in proc.stderr
    assert server.model_requests() == []


def test_ephemeral_and_ignore_user_config(exec_codex, server, codex_home):
    (codex_home / "config.toml").write_text('model = "from-config"\n[mcp_servers.broken]\ncommand = "/nonexistent"\n')
    server.enqueue(Turn().text("one"))
    proc = exec_codex("--ephemeral", "--ignore-user-config", "hi")
    assert proc.returncode == 0, proc.stderr
    assert "broken" not in proc.stderr  # the user config (and its MCP server) was not read
    assert not list(codex_home.glob("sessions/**/*.jsonl"))
    server.enqueue(Turn().text("two"))
    proc = exec_codex("hi")
    assert proc.returncode == 0 and "MCP client for `broken` failed to start" in proc.stderr
    assert len(list(codex_home.glob("sessions/**/*.jsonl"))) == 1


def test_add_dir_is_a_writable_root(exec_codex, server, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    server.enqueue(Turn().text("ok"))
    proc = exec_codex("-s", "workspace-write", "--add-dir", str(other), "hi")
    assert proc.returncode == 0, proc.stderr
    assert "sandbox: workspace-write [workdir, /tmp, $TMPDIR, %s]" % other in proc.stderr
    proc = exec_codex("--add-dir", str(tmp_path / "nope"), "hi")
    assert proc.returncode == 2 and "--add-dir" in proc.stderr and "does not exist" in proc.stderr


def test_prompt_plus_piped_stdin_is_a_stdin_block(exec_codex, server):
    server.enqueue(Turn().text("ok"))
    proc = exec_codex("summarize this", input="line one\nline two\n")
    assert proc.returncode == 0, proc.stderr
    text = server.model_requests()[0].body["input"][-1]["content"][0]["text"]
    assert text == "summarize this\n\n<stdin>\nline one\nline two\n</stdin>"


def test_open_silent_stdin_pipe_does_not_hang(server, repo, codex_home):
    """upstream #27019: a CI runner leaves stdin an open pipe nobody writes to."""
    server.enqueue(Turn().text("done without stdin"))
    env = dict(os.environ, CODEX_HOME=str(codex_home), NO_COLOR="", **{MOCK_KEY_ENV: "test-key"})
    argv = [sys.executable, CODEX, "exec", "-C", str(repo), "-m", "gpt-5"] + mock_cli_args(server) + ["the prompt"]
    began = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    hung = proc.poll() is None
    if hung:
        proc.kill()
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdin.close()
    proc.wait(10)
    assert not hung, "exec waited on an open stdin pipe"
    assert proc.returncode == 0, err
    assert out == "done without stdin\n" and "stdin is a pipe with no input" in err
    assert time.monotonic() - began < 25
    assert server.model_requests()[0].body["input"][-1]["content"][0]["text"] == "the prompt"


def test_ask_for_approval_on_exec_refuses_and_tells_the_model(exec_codex, server, repo):
    server.enqueue(
        Turn().function_call("shell", {"command": ["touch", "made-by-model"]}, call_id="c1"),
        Turn().text("could not"),
    )
    proc = exec_codex("-a", "untrusted", "make a file")
    assert proc.returncode == 0, proc.stderr
    assert not (repo / "made-by-model").exists()
    output = server.model_requests()[1].body["input"][-1]
    assert output["type"] == "function_call_output" and "cannot ask for approval" in output["output"]
    assert "approval: untrusted" in proc.stderr and "cannot ask for approval" in proc.stderr
    assert "by user" not in output["output"] + proc.stderr  # nobody was asked
    # a patch likewise
    server.enqueue(
        Turn().function_call("apply_patch", {"input": "*** Begin Patch\n*** Add File: new.txt\n+x\n*** End Patch\n"},
                             call_id="p1"),
        Turn().text("could not either"),
    )
    proc = exec_codex("-a", "untrusted", "-s", "read-only", "add a file")
    assert proc.returncode == 0, proc.stderr
    assert not (repo / "new.txt").exists()
    output = server.model_requests()[3].body["input"][-1]
    assert output["output"].startswith("patch not applied: codex exec cannot ask"), output
    assert "by user" not in output["output"] + proc.stderr


def test_refused_exec_prints_no_session_header(exec_codex, server, tmp_path, codex_home):
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    proc = exec_codex("hi", cwd=outside)
    assert proc.returncode == 2 and "--skip-git-repo-check" in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr  # the one line, no header
    assert not list(codex_home.glob("sessions/**/*.jsonl")) and server.model_requests() == []


def test_unknown_slash_word_in_exec_is_a_usage_error(exec_codex, server, codex_home, tmp_path):
    prompts = codex_home / "prompts"
    prompts.mkdir()
    (prompts / "explain.md").write_text("Explain $1 in one line.\n")
    server.enqueue(Turn().text("explained"))
    proc = exec_codex("/explain X")  # a reusable prompt works in exec
    assert proc.returncode == 0, proc.stderr
    assert server.model_requests()[0].body["input"][-1]["content"][0]["text"] == "Explain X in one line."
    proc = exec_codex("/explian X")
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "/explian is not a reusable prompt; did you mean /explain?" in line
    assert "(/explain)" in line and "begin it with a space" in line
    proc = exec_codex("/status")  # a REPL command does nothing in exec
    assert proc.returncode == 2 and "exec runs no slash commands" in proc.stderr
    assert len(server.model_requests()) == 1  # neither was billed as a turn
    server.enqueue(Turn().text("cleaned"), Turn().text("as text"))
    assert exec_codex("/tmp is full, what now?").returncode == 0  # an existing path is a prompt
    assert exec_codex(" /explian stays text").returncode == 0


def test_exec_full_auto_header_help_and_readme_agree(exec_codex, server, run_codex):
    server.enqueue(Turn().text("ok"))
    proc = exec_codex("--full-auto", "hi")
    assert proc.returncode == 0, proc.stderr
    assert "approval: never" in proc.stderr and "sandbox: workspace-write" in proc.stderr
    helptext = " ".join(run_codex("exec", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "in exec, which asks nothing: -s workspace-write, approval never unless -a" in helptext
    readme = " ".join(open(os.path.join(REPO, "README.md"), encoding="utf-8").read().split())
    assert "in `exec` only `-s workspace-write`, approval stays `never`" in readme


def test_readme_quick_start_names_the_built_file():
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "./codex" in quick and "dist/codex" in quick and "python3 build.py" in quick


def test_exec_review_help_lists_the_review_options(run_codex):
    proc = run_codex("exec", "review", "--help", env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: codex exec review")
    for flag in ("--uncommitted", "--base BRANCH", "--commit SHA", "--title", "--fail-on"):
        assert flag in proc.stdout, flag
    plain = run_codex("exec", "--help", env={"COLUMNS": "200"}).stdout
    options = plain.split("`codex exec resume")[0]  # usage and options, not the epilog
    assert "--uncommitted" not in options and "--last" not in options  # they belong to review / resume
    assert "codex exec review --help" in " ".join(plain.split())
    assert "--last [--all]" in plain


def test_usage_carries_reasoning_and_cache_write_tokens(exec_codex, server):
    server.enqueue(Turn().text("ok").usage(100, 40, 10, reasoning_output_tokens=25))
    proc = exec_codex("--json", "hi")
    usage = json.loads(proc.stdout.splitlines()[-1])["usage"]
    assert usage == {"input_tokens": 100, "cached_input_tokens": 10, "cache_write_input_tokens": 0,
                     "output_tokens": 40, "reasoning_output_tokens": 25}


# -- a CLI surface that never guesses ------------------------------------------------


@pytest.mark.parametrize("argv,needle", [
    (["help"], "use `codex --help`"),
    (["apply"], "git apply"),
    (["cloud"], "not supported"),
    (["exce", "hi"], "did you mean `codex exec`?"),
    (["resme"], "did you mean `codex resume`?"),
    (["logni", "status"], "did you mean `codex login`?"),
])
def test_upstream_subcommands_and_typos_are_usage_errors(run_codex, argv, needle):
    proc = run_codex(*argv)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "-- " in proc.stderr  # says how to send the word as a prompt


def test_double_dash_sends_the_word_as_a_prompt(run_codex, server, repo):
    server.enqueue(Turn().text("here is help"))
    proc = run_codex("-C", str(repo), "-m", "gpt-5", *mock_cli_args(server), "--", "help",
                     env={MOCK_KEY_ENV: "test-key"})
    assert "is not a codex command" not in proc.stderr
    texts = [p["text"] for p in server.model_requests()[0].body["input"][-1]["content"]]
    assert texts == ["help"]


def test_sandbox_dash_dash_runs_the_command(run_codex, tmp_path):
    proc = run_codex("sandbox", "--", "sh", "-c", "echo inside; touch %s/x" % tmp_path)
    assert "inside" in proc.stdout
    assert proc.returncode != 0 and not (tmp_path / "x").exists()  # read-only by default, as debug landlock
    proc = run_codex("sandbox", "--check", "--", "true")
    assert proc.returncode == 2 and "takes no command" in proc.stderr


def test_login_status_reports_the_providers_env_key(run_codex):
    proc = run_codex("login", "status", env={"OPENAI_API_KEY": "sk-proj-abcdefghijklmnop12345"})
    assert proc.returncode == 0
    assert proc.stdout.strip() == "Logged in using an API key - sk-proj-***12345 (from $OPENAI_API_KEY)"
    assert "abcdefghijklmnop" not in proc.stdout
    proc = run_codex("-c", 'model_provider="mine"', "-c", 'model_providers.mine.base_url="http://127.0.0.1:9/v1"',
                     "-c", 'model_providers.mine.env_key="MY_KEY"', "login", "status",
                     env={"MY_KEY": "my-secret-key-0123456789"})
    assert proc.returncode == 0 and "(from $MY_KEY)" in proc.stdout and "secret" not in proc.stdout


# -- MCP tools in the first turn -------------------------------------------------------

SDK_SERVER = os.path.join(REPO, "tests", "support", "mcp_sdk_server.py")
NPM_BIN = os.path.join(REPO, "build", "npm-mcp", "node_modules", ".bin")


def _mcp_config(codex_home, text):
    (codex_home / "config.toml").write_text(text)


def test_exec_waits_for_starting_mcp_servers(exec_codex, server, codex_home, repo):
    from support.qa_need import need_installed

    fs = need_installed(os.path.join(NPM_BIN, "mcp-server-filesystem"),
                        "mcp-server-filesystem not installed: run .ci/setup-mcp.sh")
    (repo / "hello.txt").write_text("hi")
    _mcp_config(codex_home, (
        "[mcp_servers.slow]\ncommand = %s\nargs = [%s, \"--startup-delay\", \"2\"]\nstartup_timeout_sec = 20\n"
        "[mcp_servers.fs]\ncommand = %s\nargs = [%s]\nstartup_timeout_sec = 30\n"
        "[mcp_servers.broken]\ncommand = %s\nargs = [\"-c\", \"import sys; sys.stderr.write('no token\\\\n'); sys.exit(2)\"]\n"
    ) % (json.dumps(sys.executable), json.dumps(SDK_SERVER), json.dumps(fs), json.dumps(str(repo)),
         json.dumps(sys.executable)))
    server.enqueue(
        Turn().function_call("slow__echo", {"text": "from the slow server"}, call_id="m1")
              .function_call("fs__list_directory", {"path": str(repo)}, call_id="m2"),
        Turn().text("listed"),
    )
    proc = exec_codex("list it")
    assert proc.returncode == 0, proc.stderr
    names = [t.get("name") for t in server.model_requests()[0].body["tools"]]
    assert "slow__echo" in names and "fs__list_directory" in names
    outputs = {i["call_id"]: i["output"] for i in server.model_requests()[1].body["input"]
               if i.get("type") == "function_call_output"}
    assert "from the slow server" in outputs["m1"] and "hello.txt" in outputs["m2"]
    err = proc.stderr
    assert "waiting for MCP servers to start: " in err and "slow" in err.split("waiting for MCP servers to start: ")[1].split("\n")[0]
    failure = [l for l in err.splitlines() if "MCP client for `broken` failed to start" in l]
    assert len(failure) == 1 and "no token" in failure[0]
    assert err.index(failure[0]) < err.index("slow.echo(")  # reported before the turn


def test_exec_json_mcp_tool_call_items_have_upstreams_fields(exec_codex, server, codex_home):
    """mcp_tool_call items as upstream's exec_events.rs has them: server, tool, arguments,
    result {content, structured_content} or null, error {message} or null, status."""
    _mcp_config(codex_home, "[mcp_servers.sdk]\ncommand = %s\nargs = [%s]\ntool_timeout_sec = 1\n"
                % (json.dumps(sys.executable), json.dumps(SDK_SERVER)))
    server.enqueue(
        Turn().function_call("sdk__echo", {"text": "hello items"}, call_id="e1")
              .function_call("sdk__fail", {}, call_id="f1")
              .function_call("sdk__sleep", {"seconds": 5}, call_id="s1"),
        Turn().text("done"),
    )
    proc = exec_codex("--json", "call them")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(l) for l in proc.stdout.splitlines()]
    started = [l["item"] for l in lines if l["type"] == "item.started" and l["item"]["type"] == "mcp_tool_call"]
    done = {l["item"]["tool"]: l["item"] for l in lines
            if l["type"] == "item.completed" and l["item"]["type"] == "mcp_tool_call"}
    assert [i["tool"] for i in started] == ["echo", "fail", "sleep"]
    assert started[0] == {"id": started[0]["id"], "type": "mcp_tool_call", "server": "sdk", "tool": "echo",
                          "arguments": {"text": "hello items"}, "result": None, "error": None,
                          "status": "in_progress"}
    echo = done["echo"]
    assert echo["id"] == started[0]["id"] and echo["status"] == "completed" and echo["error"] is None
    assert set(echo["result"]) == {"content", "structured_content"}
    assert echo["result"]["content"][0] == {"type": "text", "text": "hello items"}
    assert done["fail"]["status"] == "failed" and done["fail"]["error"] is None  # the tool's own error
    assert done["fail"]["result"]["content"]
    assert done["sleep"]["status"] == "failed" and done["sleep"]["result"] is None
    assert done["sleep"]["error"]["message"]
    usage = next(l for l in lines if l["type"] == "turn.completed")["usage"]
    assert set(usage) == {"input_tokens", "cached_input_tokens", "cache_write_input_tokens", "output_tokens",
                          "reasoning_output_tokens"}
    assert all(isinstance(v, int) for v in usage.values())


def test_exec_mcp_wait_is_bounded_by_startup_timeout(exec_codex, server, codex_home):
    _mcp_config(codex_home, "[mcp_servers.late]\ncommand = %s\nargs = [%s, \"--startup-delay\", \"30\"]\n"
                "startup_timeout_sec = 1\n" % (json.dumps(sys.executable), json.dumps(SDK_SERVER)))
    server.enqueue(Turn().text("went on"))
    began = time.monotonic()
    proc = exec_codex("--json", "hi")
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - began < 15
    lines = [json.loads(l) for l in proc.stdout.splitlines()]
    errors = [l["item"]["message"] for l in lines if l["type"] == "item.completed" and l["item"]["type"] == "error"]
    assert len(errors) == 1 and "`late`" in errors[0] and "within 1s" in errors[0]
    types = [l["type"] for l in lines]
    assert types[:3] == ["thread.started", "item.completed", "turn.started"]  # reported before the turn
    assert lines[-1]["type"] == "turn.completed"
    assert not any(t.get("name", "").startswith("late__") for t in server.model_requests()[0].body["tools"])


# -- errors people saw ---------------------------------------------------------------


def test_a_stream_retry_does_not_reprint_the_partial_text(exec_codex, server):
    chunks = ["Hello ", "there ", "world"]
    server.enqueue(Turn().text("Hello there world", chunks=chunks).drop_after(6),  # two deltas, then dropped
                   Turn().text("Hello there world", chunks=chunks))
    proc = exec_codex("hi")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Hello there world\n"
    assert proc.stderr.count("Hello") == 1 and "world" in proc.stderr
    assert "retrying 1/2" in proc.stderr


def test_stream_retries_counted_in_words_and_invalid_json_named(exec_codex, server):
    for _ in range(2):
        server.enqueue(Turn().text("x").no_completed().bad_data("{\"type\": \"response.output_te"))
    proc = exec_codex("hi", stream_max_retries=1)
    assert proc.returncode == 1
    err = proc.stderr
    assert "not JSON" in err and "response.output_te" in err and "gave up after 1 stream retry)" in err
    for _ in range(2):
        server.enqueue(Turn().no_completed().bad_data("<html>oops</html>"))
    proc = exec_codex("hi", wire="chat", stream_max_retries=1)
    assert proc.returncode == 1 and "not JSON" in proc.stderr and "<html>oops" in proc.stderr


def test_an_html_error_page_is_summarised(exec_codex, server):
    page = ("<!DOCTYPE html><html><head><title>502 Bad Gateway</title><style>body{color:red}</style></head>"
            "<body><h1>Bad Gateway</h1><p>" + "filler " * 500 + "</p></body></html>")
    server.enqueue(*[Turn.http_error(502, body=page)] * 3)
    proc = exec_codex("hi", request_max_retries=2)
    assert proc.returncode == 1
    assert "an HTML page: 502 Bad Gateway - Bad Gateway" in proc.stderr
    assert "<" not in proc.stderr.split("an HTML page:")[1].splitlines()[0] and "filler" not in proc.stderr
    assert "gave up after 2 retries" in proc.stderr


def test_timed_out_command_and_huge_lines_in_human_output(exec_codex, server):
    server.enqueue(
        Turn().function_call("shell", {"command": ["sleep", "5"], "timeout": 300}, call_id="t")
              .function_call("shell", {"command": ["python3", "-c", "print('x' * 2000000)"]}, call_id="big"),
        Turn().text("ok"))
    proc = exec_codex("hi")
    assert proc.returncode == 0, proc.stderr
    assert "sleep 5 timed out after 300ms (killed; exit 124):" in proc.stderr
    assert len(proc.stderr) < 5000 and re.search(r"x{400}\.\.\. \(\+[\d,]+ characters\)", proc.stderr)
    server.enqueue(Turn().function_call("shell", {"command": ["sleep", "5"], "timeout": 300}, call_id="t2"),
                   Turn().text("ok"))
    lines = [json.loads(l) for l in exec_codex("--json", "again").stdout.splitlines()]
    ends = [l["item"] for l in lines if l["type"] == "item.completed" and l["item"]["type"] == "command_execution"]
    assert ends[0]["status"] == "failed" and ends[0]["exit_code"] == 124


def test_cd_to_a_file_says_so(run_codex, tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    proc = run_codex("exec", "-C", str(f), "hi")
    assert proc.returncode == 2 and "is not a directory" in proc.stderr and "does not exist" not in proc.stderr


def test_unwritable_sessions_dir_is_a_warning_not_an_error(exec_codex, server, codex_home):
    (codex_home / "sessions").write_text("not a directory")  # as root, chmod would not stop writes
    server.enqueue(Turn().text("fine"))
    proc = exec_codex("hi")
    assert proc.returncode == 0, proc.stderr
    assert "ERROR" not in proc.stderr
    assert "warning: cannot record the session under %s" % (codex_home / "sessions") in proc.stderr
    assert "--ephemeral" in proc.stderr and proc.stdout == "fine\n"


# -- every accepted key does something -------------------------------------------------


@pytest.mark.parametrize("wire,field", [("responses", "max_output_tokens"), ("chat", "max_tokens")])
def test_model_max_output_tokens_caps_the_request(exec_codex, server, wire, field):
    server.enqueue(Turn().text("short"))
    proc = exec_codex("hi", wire=wire, model_max_output_tokens=123)
    assert proc.returncode == 0, proc.stderr
    assert server.model_requests()[0].body[field] == 123
    server.enqueue(Turn().text("short"))
    exec_codex("hi", wire=wire)
    assert field not in server.model_requests()[1].body


def test_inert_keys_are_reported_once(exec_codex, server, codex_home):
    (codex_home / "config.toml").write_text(
        'model_reasoning_summary_format = "experimental"\nexperimental_use_exec_command_tool = true\n'
        'preferred_auth_method = "chatgpt"\ndisable_paste_burst = true\n'
        '[projects."/somewhere"]\ntrust_level = "maybe"\n')
    server.enqueue(Turn().text("ok"))
    proc = exec_codex("hi")
    assert proc.returncode == 0, proc.stderr
    for key in ("model_reasoning_summary_format", "experimental_use_exec_command_tool", "preferred_auth_method",
                "disable_paste_burst", 'projects."/somewhere".trust_level'):
        assert proc.stderr.count("`%s" % key) == 1, key
    assert proc.stderr.count("has no effect") == 4
    (codex_home / "config.toml").write_text('preferred_auth_method = "apikey"\ndisable_paste_burst = false\n')
    server.enqueue(Turn().text("ok"))
    assert "has no effect" not in exec_codex("hi").stderr  # the defaults are what codex does


def test_trusted_project_runs_exec_outside_git(exec_codex, server, codex_home, tmp_path):
    plain = tmp_path / "plain"
    (plain / "sub").mkdir(parents=True)
    proc = exec_codex("hi", cwd=plain / "sub")
    assert proc.returncode == 2 and "--skip-git-repo-check" in proc.stderr
    (codex_home / "config.toml").write_text('[projects."%s"]\ntrust_level = "trusted"\n' % plain)
    server.enqueue(Turn().text("trusted"))
    proc = exec_codex("hi", cwd=plain / "sub")
    assert proc.returncode == 0 and proc.stdout == "trusted\n", proc.stderr


# -- codex resume without an id --------------------------------------------------------


def test_resume_lists_sessions_to_pick_from(exec_codex, run_codex, server, repo, tmp_path, codex_home):
    import io

    import codex

    other = tmp_path / "other"
    (other / ".git").mkdir(parents=True)
    server.enqueue(Turn().text("a"), Turn().text("b"), Turn().text("c"))
    exec_codex("first task here")
    exec_codex("second task here")
    exec_codex("task elsewhere", cwd=other)
    proc = run_codex("-C", str(repo), "resume")
    assert proc.returncode == 2 and "codex resume ID" in proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and "second task here" in lines[0] and "first task here" in lines[1]
    assert all(str(repo) in l or "~" in l for l in lines) and "elsewhere" not in proc.stdout
    assert run_codex("-C", str(repo), "resume", "--all").stdout.count("task") == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_codex("-C", str(empty), "resume")
    assert proc.returncode == 2 and "no recorded sessions in %s (--all" % empty in proc.stderr
    proc = run_codex("-C", str(empty), "resume", "--last", "--all")  # --all: the newest of any directory
    assert "no recorded" not in proc.stderr

    class Tty(io.StringIO):
        def isatty(self):
            return True

    cfg = codex.load_config(codex.ConfigOverrides(cwd=str(repo)), home=codex_home)
    out = Tty()
    chosen = codex.pick_session(cfg, stdin=Tty("2\n"), out=out)
    assert codex.rollout_summary(chosen)["first_prompt"] == "first task here"
    assert "Resume which session? [1-2" in out.getvalue()
    assert codex.pick_session(cfg, stdin=Tty("\n"), out=Tty()) is None
    with pytest.raises(codex.UsageError):
        codex.pick_session(cfg, stdin=Tty("9\n"), out=Tty())


def _repl(tmp_path, codex_home, server, work):
    from support.repl_pty import ReplPty

    argv = [CODEX, "-C", str(work), "-m", "gpt-5", "-s", "danger-full-access", "-a", "never"] + mock_cli_args(server)
    env = {"CODEX_HOME": str(codex_home), MOCK_KEY_ENV: "test-key"}
    return ReplPty(sys.executable, argv, env, work, tmp_path / "pty.log")


def test_repl_prompt_waits_for_starting_mcp_servers(tmp_path, codex_home, server, repo):
    pytest.importorskip("pexpect")
    _mcp_config(codex_home, (
        "[mcp_servers.slow]\ncommand = %s\nargs = [%s, \"--startup-delay\", \"3\"]\nstartup_timeout_sec = 20\n"
        "[mcp_servers.broken]\ncommand = %s\nargs = [\"-c\", \"import sys; sys.stderr.write('no token\\\\n'); sys.exit(2)\"]\n"
    ) % (json.dumps(sys.executable), json.dumps(SDK_SERVER), json.dumps(sys.executable)))
    server.enqueue(Turn().text("answered with tools"))
    r = _repl(tmp_path, codex_home, server, repo)
    r.submit("use the slow tool")  # sent at once, while `slow` is still starting
    r.expect("Waiting for MCP server")
    r.expect("slow")
    r.expect("answered with tools")
    names = [t.get("name") for t in server.model_requests()[0].body["tools"]]
    assert "slow__echo" in names
    log = r.log()
    # shown before the turn (as soon as it failed: above the composer, or while waiting), once
    assert log.count("MCP client for `broken` failed to start") == 1, log
    assert log.index("failed to start") < log.index("answered w")
    r.expect_prompt()
    assert r.quit() == 0


def test_repl_shows_a_failed_mcp_server_at_once_and_keeps_the_composer(tmp_path, codex_home, server, repo):
    """Start-up failures show before the first prompt is sent, not after it; the composer stays
    usable, and a prompt sent while another server still starts waits for it."""
    pytest.importorskip("pexpect")
    from support.repl_pty import S

    _mcp_config(codex_home, (
        "[mcp_servers.slow]\ncommand = %s\nargs = [%s, \"--startup-delay\", \"6\"]\nstartup_timeout_sec = 30\n"
        "[mcp_servers.broken]\ncommand = %s\nargs = [\"-c\", \"import sys; sys.stderr.write('no token\\\\n'); sys.exit(2)\"]\n"
    ) % (json.dumps(sys.executable), json.dumps(SDK_SERVER), json.dumps(sys.executable)))
    server.enqueue(Turn().text("answered after waiting"))
    r = _repl(tmp_path, codex_home, server, repo)
    began = time.monotonic()
    r.expect("MCP client for `broken` failed to start", timeout=10)  # nothing typed or sent yet
    assert time.monotonic() - began < 6  # not held back until `slow` is up
    r.expect("no token")
    r.expect_prompt()  # drawn again below the message
    assert server.model_requests() == []
    r.send("use the tools")
    r.expect(S("use the tools"))  # the composer still takes keys
    r.send("\r")
    r.expect("Waiting for MCP server to start: slow")
    r.expect("answered after waiting", timeout=40)
    names = [t.get("name") for t in server.model_requests()[0].body["tools"]]
    assert "slow__echo" in names and not any(n.startswith("broken__") for n in names)
    r.expect_prompt()
    log = r.log()
    assert log.count("MCP client for `broken` failed to start") == 1, log  # said once
    assert log.index("failed to start") < log.index("Waiting for MCP")
    assert r.quit() == 0


def test_repl_esc_goes_on_without_a_slow_mcp_server(tmp_path, codex_home, server, repo):
    pytest.importorskip("pexpect")
    from support.repl_pty import ESC

    _mcp_config(codex_home, "[mcp_servers.late]\ncommand = %s\nargs = [%s, \"--startup-delay\", \"60\"]\n"
                "startup_timeout_sec = 90\n" % (json.dumps(sys.executable), json.dumps(SDK_SERVER)))
    server.enqueue(Turn().text("went on without it"))
    r = _repl(tmp_path, codex_home, server, repo)
    began = time.monotonic()
    r.submit("quick one")
    r.expect("Waiting for MCP server to start: late")
    r.send(ESC)
    r.expect("going on without late")
    r.expect("went on without it")
    assert time.monotonic() - began < 30
    assert not any(t.get("name", "").startswith("late__") for t in server.model_requests()[0].body["tools"])
    r.expect_prompt()
    assert r.quit() == 0


def test_piped_repl_exits_1_on_a_failed_turn_and_does_not_wrap(run_codex, server, repo):
    long = " ".join("word%d" % i for i in range(60))
    server.enqueue(Turn().text("# Title\n\n" + long), Turn.http_error(401, "bad key"))
    argv = ["-C", str(repo), "-m", "gpt-5", "-s", "danger-full-access", "-a", "never"] + mock_cli_args(server)
    proc = run_codex(*argv, input="hello\nsecond\n", env={MOCK_KEY_ENV: "test-key"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert long in proc.stdout  # one line, not wrapped at 80 columns
    assert "bad key" in proc.stdout + proc.stderr
    server.enqueue(Turn().text("fine"))
    assert run_codex(*argv, input="hello\n", env={MOCK_KEY_ENV: "test-key"}).returncode == 0
