"""§07 Providers: request bodies and headers, stream decoding, retries, errors, proxies."""
import json
import threading
import time

import pytest

import codex
from support.agent_env import mock_config
from support.model_server import ModelServer, Turn

pytestmark = pytest.mark.timeout(60)


def _prompt(items=None, tools=None):
    items = items if items is not None else [codex.text_message("user", "hi")]
    return codex.Prompt(items, tools if tools is not None else [codex.update_plan_tool()], "INSTRUCTIONS")


def _run(client, prompt=None, **kw):
    return list(client.stream(prompt or _prompt(), **kw))


def test_responses_body_and_headers(server, codex_home, tmp_path):
    server.enqueue(Turn().text("x"))
    env = {"CODEX_TEST_MOCK_KEY": "sk-secret", "OPENAI_ORGANIZATION": "org-1", "OPENAI_PROJECT": "proj-1"}
    cfg = mock_config(server, codex_home, tmp_path, model="o3", environ=env,
                      model_reasoning_effort="high", model_reasoning_summary="none")
    cfg.provider.env_http_headers = {"OpenAI-Organization": "OPENAI_ORGANIZATION", "OpenAI-Project": "OPENAI_PROJECT"}
    cfg.provider.http_headers = {"X-Static": "yes"}
    cfg.provider.query_params = {"api-version": "2025-04-01-preview"}
    client = codex.ResponsesClient(cfg, "sess-1", environ=env)
    history = [codex.text_message("user", "hi"),
               {"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c"},
               {"type": "function_call_output", "call_id": "c", "output": "out"}]
    _run(client, _prompt(history))
    req = server.requests[0]
    assert req.path == "/v1/responses" and req.query == {"api-version": "2025-04-01-preview"}
    body = req.body
    assert list(body) == ["model", "instructions", "input", "tools", "tool_choice", "parallel_tool_calls",
                          "reasoning", "store", "stream", "include", "prompt_cache_key"]
    assert body["model"] == "o3" and body["instructions"] == "INSTRUCTIONS" and body["input"] == history
    assert body["reasoning"] == {"effort": "high"}  # summary "none" is omitted
    assert body["store"] is False and body["include"] == ["reasoning.encrypted_content"]
    assert body["tools"][0]["name"] == "update_plan"
    h = req.headers
    assert h["authorization"] == "Bearer sk-secret" and h["openai-organization"] == "org-1"
    assert h["openai-project"] == "proj-1" and h["x-static"] == "yes"
    assert h["session_id"] == "sess-1" and h["accept"] == "text/event-stream"
    assert h["user-agent"].startswith("codex_cli_py/")


def test_non_reasoning_model_sends_null_reasoning(server, codex_home, tmp_path):
    server.enqueue(Turn().text("x"))
    cfg = mock_config(server, codex_home, tmp_path, model="gpt-4o")
    _run(codex.ResponsesClient(cfg, "s"))
    body = server.requests[0].body
    assert "reasoning" in body and body["reasoning"] is None and body["include"] == []


def test_responses_stream_events(server, codex_home, tmp_path):
    server.enqueue(Turn().reasoning("R").text("Hello there").function_call("shell", {"command": ["ls"]}, call_id="c1")
                   .usage(11, 7, 3, 2).crlf())
    cfg = mock_config(server, codex_home, tmp_path)
    events = _run(codex.ResponsesClient(cfg, "s"))
    kinds = [k for k, _ in events]
    assert kinds[0] == "created" and kinds[-1] == "completed"
    assert "".join(p for k, p in events if k == "text_delta") == "Hello there"
    assert [p for k, p in events if k == "reasoning_delta"] == ["R"]
    items = [p for k, p in events if k == "item"]
    assert items[0]["type"] == "reasoning" and items[0]["encrypted_content"].startswith("enc-") and "id" not in items[0]
    assert items[1] == {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello there"}]}
    assert items[2] == {"type": "function_call", "name": "shell", "arguments": '{"command": ["ls"]}', "call_id": "c1"}
    usage = events[-1][1]["usage"]
    assert usage == {"input_tokens": 11, "cached_input_tokens": 3, "output_tokens": 7,
                     "reasoning_output_tokens": 2, "cache_write_input_tokens": 0, "total_tokens": 18}


def test_chat_body_messages_and_parallel_calls(server, codex_home, tmp_path):
    server.enqueue(Turn().reasoning("raw thoughts").text("Two calls").function_call("a", {"x": 1}, call_id="id-a")
                   .function_call("b", {"y": [1, 2]}, call_id="id-b").usage(5, 6).chat_usage())
    cfg = mock_config(server, codex_home, tmp_path, wire="chat", model="llama3")
    history = [codex.text_message("user", "hi"),
               codex.text_message("assistant", "calling"),
               {"type": "function_call", "name": "shell", "arguments": "{\"command\":[\"ls\"]}", "call_id": "c0"},
               {"type": "function_call_output", "call_id": "c0", "output": "files"},
               {"type": "reasoning", "summary": [], "encrypted_content": "zzz"},
               {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "see"},
                                                               {"type": "input_image", "image_url": "data:image/png;base64,AA"}]}]
    events = _run(codex.ChatClient(cfg, "s"), _prompt(history, [codex.update_plan_tool(), {"type": "local_shell"}]))
    body = server.requests[0].body
    assert server.requests[0].path == "/v1/chat/completions"
    assert body["stream"] is True and "tool_choice" not in body and "store" not in body
    assert body["tools"] == [{"type": "function", "function": {k: v for k, v in codex.update_plan_tool().items() if k != "type"}}]
    msgs = body["messages"]
    assert msgs[0] == {"role": "system", "content": "INSTRUCTIONS"}
    assert msgs[1] == {"role": "user", "content": "hi"}
    assert msgs[2]["role"] == "assistant" and msgs[2]["content"] == "calling"
    assert msgs[2]["tool_calls"] == [{"id": "c0", "type": "function", "function": {"name": "shell", "arguments": "{\"command\":[\"ls\"]}"}}]
    assert msgs[3] == {"role": "tool", "tool_call_id": "c0", "content": "files"}
    assert msgs[4]["content"][1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}
    assert len(msgs) == 5  # reasoning dropped
    items = [p for k, p in events if k == "item"]
    assert [i["type"] for i in items] == ["reasoning", "message", "function_call", "function_call"]
    assert items[2] == {"type": "function_call", "name": "a", "arguments": '{"x": 1}', "call_id": "id-a"}
    assert items[3] == {"type": "function_call", "name": "b", "arguments": '{"y": [1, 2]}', "call_id": "id-b"}
    assert "".join(p for k, p in events if k == "text_delta") == "Two calls"
    assert events[-1] == ("completed", {"id": "", "usage": {"input_tokens": 5, "cached_input_tokens": 0, "output_tokens": 6,
                                                           "reasoning_output_tokens": 0, "cache_write_input_tokens": 0,
                                                           "total_tokens": 11}})


def test_chat_stream_without_done_still_completes(server, codex_home, tmp_path):
    server.enqueue(Turn().text("partial").no_completed())
    cfg = mock_config(server, codex_home, tmp_path, wire="chat")
    events = _run(codex.ChatClient(cfg, "s"))
    assert events[-1][0] == "completed" and events[-2][1]["content"][0]["text"] == "partial"


def test_429_retry_after_ms_then_success(server, codex_home, tmp_path):
    server.enqueue(Turn.rate_limited(retry_after_ms=300), Turn.http_error(503, "busy", headers={"Retry-After": "0"}), Turn().text("ok"))
    cfg = mock_config(server, codex_home, tmp_path, request_max_retries=3)
    retries = []
    t0 = time.monotonic()
    events = _run(codex.ResponsesClient(cfg, "s"), on_retry=lambda *a: retries.append(a))
    assert events[-1][0] == "completed"
    reqs = server.model_requests()
    assert len(reqs) == 3 and reqs[1].time - reqs[0].time >= 0.28
    assert [r[0] for r in retries] == ["HTTP 429", "HTTP 503"] and retries[0][3] == pytest.approx(0.3)
    assert time.monotonic() - t0 < 3


def test_retry_limit_reached(server, codex_home, tmp_path):
    server.enqueue(*[Turn.http_error(500, "boom", headers={"Retry-After": "0"}) for _ in range(3)])
    cfg = mock_config(server, codex_home, tmp_path, request_max_retries=2)
    with pytest.raises(codex.ProviderError) as err:
        _run(codex.ResponsesClient(cfg, "s"))
    assert not isinstance(err.value, codex.StreamError)
    assert "HTTP 500" in str(err.value) and "gave up after 2 retries" in str(err.value) and "boom" in str(err.value)
    assert len(server.model_requests()) == 3


@pytest.mark.parametrize("status,words", [
    (401, ["API key was rejected", "CODEX_TEST_MOCK_KEY"]),
    (403, ["access denied", "gpt-5"]),
    (404, ["not found", "base_url", "gpt-5"]),
    (400, ["rejected the request"]),
])
def test_client_errors_fail_at_once(server, codex_home, tmp_path, status, words):
    server.enqueue(Turn.http_error(status, "server says no sk-abcdefghijklmnop"))
    cfg = mock_config(server, codex_home, tmp_path, request_max_retries=4)
    with pytest.raises(codex.ProviderError) as err:
        _run(codex.ResponsesClient(cfg, "s"))
    msg = str(err.value)
    for w in words + ["HTTP %d" % status, server.url + "/responses", "server says no"]:
        assert w in msg, (w, msg)
    assert "sk-abcdefghijklmnop" not in msg and "\n" not in msg
    assert len(server.model_requests()) == 1


def test_quota_429_is_fatal(server, codex_home, tmp_path):
    server.enqueue(Turn.http_error(429, "You exceeded your current quota", code="insufficient_quota"))
    cfg = mock_config(server, codex_home, tmp_path)
    with pytest.raises(codex.ProviderError) as err:
        _run(codex.ResponsesClient(cfg, "s"))
    assert "quota" in str(err.value) and len(server.model_requests()) == 1


def test_stream_faults_are_stream_errors(server, codex_home, tmp_path):
    cfg = mock_config(server, codex_home, tmp_path, stream_idle_timeout_ms=300)
    client = codex.ResponsesClient(cfg, "s")
    server.enqueue(Turn().text("abc").drop_after(3))
    with pytest.raises(codex.StreamError) as err:
        _run(client)
    assert "dropped" in str(err.value) or "response.completed" in str(err.value)
    server.enqueue(Turn().text("abc").no_completed())
    with pytest.raises(codex.StreamError) as err:
        _run(client)
    assert "stream closed before response.completed" in str(err.value)
    server.enqueue(Turn().text("abc").idle_after(2, 2))
    t0 = time.monotonic()
    with pytest.raises(codex.StreamError) as err:
        _run(client)
    assert "idle timeout" in str(err.value) and time.monotonic() - t0 < 1.5


def test_response_failed(server, codex_home, tmp_path):
    cfg = mock_config(server, codex_home, tmp_path)
    client = codex.ResponsesClient(cfg, "s")
    server.enqueue(Turn().text("x").failed("Rate limit reached. Please try again in 1.5s.", code="rate_limit_exceeded"))
    with pytest.raises(codex.StreamError) as err:
        _run(client)
    assert err.value.retry_after == 1.5
    server.enqueue(Turn().failed("Please try again in 20ms", code="rate_limit_exceeded"))
    with pytest.raises(codex.StreamError) as err:
        _run(client)
    assert err.value.retry_after == pytest.approx(0.02)
    server.enqueue(Turn().failed("too long", code="context_length_exceeded"))
    with pytest.raises(codex.ProviderError) as err:
        _run(client)
    assert not isinstance(err.value, codex.StreamError) and "context window" in str(err.value)


def test_http_proxy_from_environment(server, codex_home, tmp_path, monkeypatch):
    # The model server doubles as an HTTP proxy: httpx sends the absolute URL to it.
    server.enqueue(Turn().text("via proxy"))
    monkeypatch.setenv("HTTP_PROXY", server.base)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    cfg = mock_config(server, codex_home, tmp_path, request_max_retries=0)
    cfg.provider.base_url = "http://model.invalid/v1"
    events = _run(codex.ResponsesClient(cfg, "s"))
    assert events[-1][0] == "completed"
    assert server.requests[0].headers["host"] == "model.invalid"
    monkeypatch.setenv("NO_PROXY", "model.invalid")
    with pytest.raises(codex.ProviderError) as err:
        _run(codex.ResponsesClient(cfg, "s"))
    assert "model.invalid" in str(err.value) and "HTTPS_PROXY" in str(err.value)


def test_interrupt_during_backoff(server, codex_home, tmp_path):
    server.enqueue(Turn.rate_limited(retry_after=30))
    cfg = mock_config(server, codex_home, tmp_path)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(codex.Interrupted):
        _run(codex.ResponsesClient(cfg, "s"), cancel=cancel)
    assert time.monotonic() - t0 < 2


def test_model_family_table():
    assert codex.model_family("gpt-5-codex").supports_reasoning
    assert codex.model_family("codex-mini-latest").supports_reasoning
    assert not codex.model_family("gpt-4.1").supports_reasoning
    assert codex.model_family("gpt-4.1").needs_patch_instructions
    assert codex.model_family("gpt-oss:20b").wants_apply_patch_tool
    assert not codex.model_family("my-local-model").supports_reasoning


def test_verbosity_only_for_gpt5(server, codex_home, tmp_path):
    server.enqueue(Turn().text("x"), Turn().text("y"))
    cfg = mock_config(server, codex_home, tmp_path, model="gpt-5", model_verbosity="low")
    _run(codex.ResponsesClient(cfg, "s"))
    assert server.requests[0].body["text"] == {"verbosity": "low"}
    cfg = mock_config(server, codex_home, tmp_path, model="o3", model_verbosity="low")
    _run(codex.ResponsesClient(cfg, "s"))
    assert "text" not in server.requests[1].body


def test_non_stream_answer_is_a_clear_error(server, codex_home, tmp_path):
    server.enqueue(lambda req: Turn().text("plain json"))
    cfg = mock_config(server, codex_home, tmp_path)
    client = codex.ResponsesClient(cfg, "s")
    client.body = lambda prompt: {"model": "m", "stream": False}  # the server answers JSON
    with pytest.raises(codex.ProviderError) as err:
        _run(client)
    assert "expected an event stream" in str(err.value) and "application/json" in str(err.value)


def test_missing_key_names_the_variable(server, codex_home, tmp_path, monkeypatch):
    monkeypatch.delenv("CODEX_TEST_MOCK_KEY", raising=False)
    cfg = mock_config(server, codex_home, tmp_path, environ={"CODEX_TEST_MOCK_KEY": ""})
    with pytest.raises(codex.AuthError) as err:
        _run(codex.ResponsesClient(cfg, "s", environ={}))
    assert "CODEX_TEST_MOCK_KEY" in str(err.value)
    assert server.requests == []


def test_tls_with_codex_ca_certificate(codex_home, tmp_path):
    import shutil

    from support.model_server import make_self_signed_cert

    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not available")
    cert, key = make_self_signed_cert(tmp_path)
    with ModelServer(tls=(cert, key)) as server:
        server.enqueue(Turn().text("secure"))
        assert server.url.startswith("https://127.0.0.1:")
        cfg = mock_config(server, codex_home, tmp_path, request_max_retries=0)
        with pytest.raises(codex.ProviderError) as err:
            _run(codex.ResponsesClient(cfg, "s", environ={"CODEX_TEST_MOCK_KEY": "k"}))
        assert "CODEX_CA_CERTIFICATE" in str(err.value)
        trusting = {"CODEX_TEST_MOCK_KEY": "k", "CODEX_CA_CERTIFICATE": cert}
        events = _run(codex.ResponsesClient(cfg, "s", environ=trusting))
        assert events[-1][0] == "completed" and len(server.model_requests()) == 1


def test_azure_deployment_not_found_hint(server, codex_home, tmp_path):
    server.enqueue(Turn.http_error(404, "The API deployment for this resource does not exist.", code="DeploymentNotFound"))
    cfg = mock_config(server, codex_home, tmp_path, wire="chat", model="gpt-4o-prod")
    with pytest.raises(codex.ProviderError) as err:
        _run(codex.ChatClient(cfg, "s"))
    assert "Azure deployment `gpt-4o-prod` not found" in str(err.value)


def test_reasoning_without_encrypted_content_is_not_replayed(server, codex_home, tmp_path):
    server.enqueue(Turn().text("x"))
    cfg = mock_config(server, codex_home, tmp_path)
    items = [codex.text_message("user", "hi"),
             {"type": "reasoning", "summary": [], "encrypted_content": None, "content": [{"type": "reasoning_text", "text": "t"}]},
             {"type": "reasoning", "summary": [], "encrypted_content": "enc"}]
    _run(codex.ResponsesClient(cfg, "s"), _prompt(items))
    assert server.requests[0].body["input"] == [items[0], items[2]]


def test_cache_write_tokens_where_the_provider_reports_them():
    u = codex._usage_from_responses({"input_tokens": 10, "output_tokens": 2,
                                     "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 6}})
    assert u["cache_write_input_tokens"] == 6 and u["cached_input_tokens"] == 4
    u = codex._usage_from_chat({"prompt_tokens": 10, "completion_tokens": 2, "cache_creation_input_tokens": 7})
    assert u["cache_write_input_tokens"] == 7
    assert codex._usage_from_chat({"prompt_tokens": 1, "completion_tokens": 1})["cache_write_input_tokens"] == 0
