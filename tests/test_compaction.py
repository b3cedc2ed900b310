"""§16 automatic context compaction, end to end: `codex exec` against a scripted model server
that enforces a small context window (its request size in tokens = body bytes / 4)."""
import json
import os

import pytest

import codex
from support.agent_env import MOCK_KEY_ENV, mock_cli_args, mock_config
from support.model_server import ModelServer, Turn

pytestmark = pytest.mark.timeout(300)

WINDOW = 8000  #: tokens the scripted model accepts
OUTPUT = ["printf", "%01500d"]  #: each call's output: 1500 characters (the call's number, zero-padded)


def _tokens(req):
    return len(req.raw) // 4


def _last_text(req):
    body = req.body
    if req.api == "chat":
        content = body["messages"][-1]["content"]
        return content if isinstance(content, str) else ""
    last = body["input"][-1]
    return "".join(p.get("text", "") for p in last.get("content") or ()) if last.get("type") == "message" else ""


def _is_compaction(req):
    return not (req.body.get("tools") or []) and _last_text(req) == codex.COMPACT_PROMPT


class WindowedModel(object):
    """Answers `calls` shell calls, then "done"; rejects requests over `window` tokens with
    context_length_exceeded; answers compaction requests with a summary."""

    def __init__(self, calls, window=WINDOW, reject_tasks_over=None):
        self.calls = calls
        self.window = window
        self.reject_tasks_over = reject_tasks_over
        self.done = 0
        self.sizes = []  # (tokens, is_compaction)
        self.rejected = 0

    def __call__(self, req):
        tokens = _tokens(req)
        compaction = _is_compaction(req)
        self.sizes.append((tokens, compaction))
        limit = self.window if compaction or self.reject_tasks_over is None else self.reject_tasks_over
        if tokens > limit:
            self.rejected += 1
            return Turn.http_error(400, "This model's maximum context length is %d tokens. However, your messages "
                                   "resulted in %d tokens." % (limit, tokens), code="context_length_exceeded")
        if compaction:
            return Turn().text("SUMMARY: %d calls done so far; keep calling." % self.done).usage(tokens, 20).chat_usage()
        if self.done >= self.calls:
            return Turn().text("done after %d calls" % self.done).usage(tokens, 10).chat_usage()
        self.done += 1
        return Turn().function_call("shell", {"command": OUTPUT + [str(self.done)]},
                                    call_id="c%d" % self.done).usage(tokens, 30).chat_usage()


def _exec(run_codex, server, repo, wire, *args, **cfg):
    argv = ["exec", "--json", "-C", str(repo), "-m", "gpt-5", "-s", "danger-full-access"]
    cfg.setdefault("max_tool_calls_per_turn", 0)  # the loop guard would stop a 200-call turn
    argv += mock_cli_args(server, wire, model_context_window=WINDOW, **cfg) + list(args)
    return run_codex(*argv, env={MOCK_KEY_ENV: "test-key"}, timeout=280)


@pytest.mark.parametrize("wire", ["responses", "chat"])
def test_a_200_call_session_finishes_under_a_tiny_window(run_codex, repo, codex_home, wire):
    model = WindowedModel(200)
    with ModelServer(default=model) as server:
        proc = _exec(run_codex, server, repo, wire, "call the tool 200 times")
        rollout = list(codex_home.glob("sessions/**/*.jsonl"))[0]
        assert proc.returncode == 0, proc.stderr[-2000:]
        lines = [json.loads(l) for l in proc.stdout.splitlines()]
        assert lines[-1]["type"] == "turn.completed"
        done = [l["item"]["text"] for l in lines if l["type"] == "item.completed" and l["item"]["type"] == "agent_message"]
        assert done[-1] == "done after 200 calls"
        assert model.rejected == 0
        limit = int(WINDOW * codex.AUTO_COMPACT_FRACTION)
        task_sizes = [t for t, compaction in model.sizes if not compaction]
        assert max(task_sizes) <= limit * 1.05, max(task_sizes)  # the estimate keeps requests under the limit
        assert max(task_sizes) > limit * 0.6  # and the window was really used
        compactions = [l["item"] for l in lines if l["type"] == "item.completed" and l["item"]["type"] == "context_compaction"]
        requested = sum(1 for _t, c in model.sizes if c)
        assert len(compactions) == requested
        assert 3 <= len(compactions) <= 200 // 5, len(compactions)  # bounded: several calls between two
        assert all(c["reason"] == "auto" and c["tokens_after"] < c["tokens_before"] for c in compactions)
        # the model got the user's message, the summary and continued from there
        after = [r for r in server.model_requests() if not _is_compaction(r)][-1]
        text = json.dumps(after.body)
        assert "call the tool 200 times" in text and "SUMMARY:" in text
        # the rollout has the compacted history, and resume continues from it
        records = [json.loads(l) for l in rollout.read_text().splitlines()]
        compacted = [r["payload"] for r in records if r["type"] == "compacted"]
        assert len(compacted) == len(compactions) and compacted[-1]["replacement_history"]
        model.calls = model.done  # answer at once
        server.clear()
        proc = run_codex("exec", "-C", str(repo), "-m", "gpt-5", *mock_cli_args(server, wire, model_context_window=WINDOW),
                         "resume", "--last", "and now?", env={MOCK_KEY_ENV: "test-key"})
        assert proc.returncode == 0, proc.stderr[-2000:]
        first = server.model_requests()[0]
        assert _tokens(first) < limit
        assert "SUMMARY:" in json.dumps(first.body) and '"c1"' not in json.dumps(first.body)


def test_context_length_exceeded_compacts_once_and_retries(run_codex, repo):
    # The config thinks the window is large; the server's is small: every overflow is
    # answered by one compaction and one retry of that request.
    model = WindowedModel(40, reject_tasks_over=5000)
    with ModelServer(default=model) as server:
        proc = _exec(run_codex, server, repo, "responses", "go", model_auto_compact_token_limit=10 ** 6)
        assert proc.returncode == 0, proc.stderr[-2000:]
        lines = [json.loads(l) for l in proc.stdout.splitlines()]
        compactions = [l["item"] for l in lines if l["type"] == "item.completed" and l["item"]["type"] == "context_compaction"]
        assert compactions and all(c["reason"] == "context_length_exceeded" for c in compactions)
        assert model.rejected == len(compactions)  # each rejection: one compaction, then the retry went through
        assert lines[-1]["type"] == "turn.completed"


def test_a_request_that_never_fits_fails_without_looping(run_codex, repo):
    model = WindowedModel(5, reject_tasks_over=10)  # every task request is too large; summaries are fine
    with ModelServer(default=model) as server:
        proc = _exec(run_codex, server, repo, "chat", "go")
        assert proc.returncode == 1
        assert [c for _t, c in model.sizes] == [False, True, False]  # rejected, compacted once, retried once
        lines = [json.loads(l) for l in proc.stdout.splitlines()]
        assert lines[-1]["type"] == "turn.failed" and "compacting did not help" in lines[-1]["error"]["message"]


def test_compaction_request_that_does_not_fit_trims_old_tool_outputs(server, codex_home, repo):
    cfg = mock_config(server, codex_home, repo, model_context_window=3000, model_auto_compact_token_limit=2000)
    session = codex.Session(cfg).start()
    big = "z" * 20000
    for i in range(6):  # a history far larger than the window
        session.history += [
            {"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "old%d" % i},
            {"type": "function_call_output", "call_id": "old%d" % i, "output": big},
        ]
    server.enqueue(Turn().text("SUMMARY of the old work"), Turn().text("continuing"))
    session.submit({"type": "user_input", "items": [{"type": "text", "text": "go on"}]})
    events = []
    while True:
        ev = session.next_event(timeout=30)
        assert ev is not None
        events.append(ev["msg"])
        if ev["msg"]["type"] in ("task_complete", "turn_aborted"):
            break
    session.shutdown()
    assert not [e for e in events if e["type"] == "error"], events
    compaction = server.model_requests()[0]
    assert _is_compaction(compaction) and _tokens(compaction) < 3000
    body = json.dumps(compaction.body)
    assert "trimmed for compaction" in body or body.count("zzzz") < 6
    assert "SUMMARY of the old work" in json.dumps(server.model_requests()[1].body)
    assert [e["reason"] for e in events if e["type"] == "context_compacted"] == ["auto"]


def test_compacted_history_keeps_user_messages_summary_and_plan():
    ctx = codex.text_message("user", "<environment_context>\n</environment_context>")
    history = [ctx, codex.text_message("user", "first task"),
               {"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "a"},
               {"type": "function_call_output", "call_id": "a", "output": "x" * 5000},
               codex.text_message("user", "y" * 100000), codex.text_message("user", codex.COMPACT_PROMPT)]
    plan = {"explanation": "why", "plan": [{"step": "read", "status": "completed"}, {"step": "fix", "status": "in_progress"}]}
    new = codex.compacted_history(history, "THE SUMMARY", plan, limit_tokens=4000)
    texts = [codex.message_text(it) for it in new]
    assert texts[0].startswith("<environment_context>") and len(new) == 3
    assert len(texts[1]) <= 4000 + 20 and "[...]" in texts[1]  # the newest message, cut to the budget
    assert "first task" not in texts  # over the budget: older messages go first
    assert texts[-1].startswith(codex.COMPACT_BRIDGE_PREFIX) and "THE SUMMARY" in texts[-1]
    assert "- [x] read" in texts[-1] and "- [~] fix" in texts[-1] and "why" in texts[-1]
    again = codex.compacted_history(new + [codex.text_message("user", "later")], "S2", None, limit_tokens=40000)
    assert [codex.message_text(it) for it in again][1:-1] == [texts[1], "later"]  # user messages carried over
