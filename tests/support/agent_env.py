"""Helpers for agent tests: a Config pointed at a ModelServer, and event collection.

    cfg = mock_config(server, codex_home, cwd, wire="responses", **config_keys)
    session = codex.Session(cfg)
    events = drain_until(session, "task_complete")       # list of msg dicts
    mock_cli_args(server, wire) -> ["-c", ...]            # the same config for subprocess runs
"""
import time

import codex

MOCK_KEY_ENV = "CODEX_TEST_MOCK_KEY"  #: the env var the mock provider reads its key from


def mock_overrides(server, wire="responses", **extra):
    """-c overrides selecting a provider `mock` at the server (fast retries)."""
    out = [
        'model_provider="mock"',
        'model_providers.mock.base_url="%s"' % server.url,
        'model_providers.mock.wire_api="%s"' % wire,
        'model_providers.mock.env_key="%s"' % MOCK_KEY_ENV,
        "model_providers.mock.request_max_retries=%d" % extra.pop("request_max_retries", 2),
        "model_providers.mock.stream_max_retries=%d" % extra.pop("stream_max_retries", 2),
        "model_providers.mock.stream_idle_timeout_ms=%d" % extra.pop("stream_idle_timeout_ms", 5000),
    ]
    for key, value in extra.items():
        out.append("%s=%s" % (key, _toml(value)))
    return out


def _toml(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(value, list):
        return "[%s]" % ", ".join(_toml(v) for v in value)
    if isinstance(value, dict):
        return "{%s}" % ", ".join("%s = %s" % (k, _toml(v)) for k, v in value.items())
    return str(value)


def mock_cli_args(server, wire="responses", **extra):
    """The mock provider as `-c` command-line arguments."""
    args = []
    for item in mock_overrides(server, wire, **extra):
        args += ["-c", item]
    return args


def mock_config(server, home, cwd, wire="responses", model="gpt-5", approval="never", sandbox="danger-full-access",
                environ=None, **extra):
    """A Config for a session talking to `server`."""
    import os

    env = dict(os.environ if environ is None else environ)
    env.setdefault(MOCK_KEY_ENV, "test-key")
    os.environ.setdefault(MOCK_KEY_ENV, "test-key")
    overrides = codex.ConfigOverrides(model=model, approval_policy=approval, sandbox_mode=sandbox, cwd=str(cwd))
    return codex.load_config(overrides, mock_overrides(server, wire, **extra), home=home, environ=env)


def drain_until(session, msg_type, timeout=20, sub_id=None):
    """Collect event msgs until one of `msg_type` (a str or tuple) arrives; AssertionError on timeout."""
    types = (msg_type,) if isinstance(msg_type, str) else tuple(msg_type)
    out = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ev = session.next_event(timeout=0.2)
        if ev is None:
            continue
        out.append(ev["msg"])
        if ev["msg"]["type"] in types and (sub_id is None or ev["id"] == sub_id):
            return out
    raise AssertionError("no %s event within %ss; got %s" % (types, timeout, [m["type"] for m in out]))


def user_input(text):
    """A user_input op."""
    return {"type": "user_input", "items": [{"type": "text", "text": text}]}


def shell_call(argv, call_id=None, **kw):
    """Arguments dict for a scripted shell call."""
    args = {"command": argv}
    args.update(kw)
    return args
