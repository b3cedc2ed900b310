"""QA §07: Chat Completions ask for usage in the stream, and fall back when a server rejects it."""
import pytest

import codex
from support.agent_env import drain_until, mock_config, user_input
from support.model_server import ModelServer, Turn

pytestmark = pytest.mark.timeout(60)


def _token_counts(msgs):
    return [m for m in msgs if m["type"] == "token_count"]


def test_chat_requests_include_usage_and_report_tokens(server, codex_home, tmp_path):
    server.enqueue(Turn().text("hi").usage(input_tokens=120, output_tokens=7, cached_input_tokens=20).chat_usage())
    session = codex.Session(mock_config(server, codex_home, tmp_path, wire="chat")).start()
    session.submit(user_input("hello"))
    msgs = drain_until(session, "task_complete")
    session.shutdown()
    assert server.model_requests()[0].body["stream_options"] == {"include_usage": True}
    counts = _token_counts(msgs)
    assert counts, [m["type"] for m in msgs]
    text = repr(counts[-1])
    assert "120" in text and "7" in text, counts[-1]


def test_a_server_rejecting_stream_options_is_retried_without_it_for_the_session(server, codex_home, tmp_path):
    def strict(req):
        if "stream_options" in (req.body or {}):
            return Turn.http_error(400, "Unrecognized request argument supplied: stream_options", error_type="invalid_request_error")
        return Turn().text("ok")

    server.enqueue(strict, strict, strict)
    session = codex.Session(mock_config(server, codex_home, tmp_path, wire="chat")).start()
    for prompt in ("one", "two"):
        session.submit(user_input(prompt))
        msgs = drain_until(session, "task_complete")
        assert not [m for m in msgs if m["type"] == "error"], msgs
    session.shutdown()
    bodies = [r.body for r in server.model_requests()]
    assert len(bodies) == 3  # one rejected request, then the two turns without the field
    assert "stream_options" in bodies[0]
    assert "stream_options" not in bodies[1] and "stream_options" not in bodies[2]


def test_other_400s_are_not_retried(server, codex_home, tmp_path):
    server.enqueue(Turn.http_error(400, "messages: too long"))
    session = codex.Session(mock_config(server, codex_home, tmp_path, wire="chat")).start()
    session.submit(user_input("x"))
    msgs = drain_until(session, "task_complete")
    session.shutdown()
    assert any(m["type"] == "error" and "too long" in m["message"] for m in msgs)
    assert len(server.model_requests()) == 1
