"""§14/§07 MCP image results reach the model as images (Responses; Chat where the model takes
images), within limits; the UIs show `[image: WxH kind]`.  Real servers, scripted model."""
import base64
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import codex
from support.model_server import ModelServer, Turn

pytestmark = pytest.mark.timeout(120)

SUPPORT = Path(__file__).resolve().parent / "support"
REPO = SUPPORT.parent.parent
SDK_SERVER = str(SUPPORT / "mcp_sdk_server.py")
PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def png(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + b"\x80" * (width * 3) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_image_sizes_are_read_from_headers():
    assert codex.image_info(base64.b64encode(png(640, 480)).decode()) == (640, 480, "png")
    assert codex.image_info(b"GIF89a" + struct.pack("<HH", 32, 16) + b"\x00" * 8) == (32, 16, "gif")
    jpeg = b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9 \
        + b"\xff\xc0" + struct.pack(">HBHH", 17, 8, 200, 300) + b"\x00" * 12
    assert codex.image_info(jpeg) == (300, 200, "jpeg")
    webp = b"RIFF" + b"\x00" * 4 + b"WEBPVP8X" + b"\x00" * 8 + (99).to_bytes(3, "little") + (49).to_bytes(3, "little")
    assert codex.image_info(webp) == (100, 50, "webp")
    assert codex.image_info("bm90IGFuIGltYWdl") is None


def test_output_parts_limits_and_labels():
    img = {"type": "image", "data": PNG_1PX, "mimeType": "image/png"}
    out = codex.mcp_result_to_output({"content": [{"type": "text", "text": "a"}, img, {"type": "text", "text": "b"}]})
    assert out == [{"type": "input_text", "text": "a\n[image: 1x1 png]"},
                   {"type": "input_image", "image_url": "data:image/png;base64," + PNG_1PX},
                   {"type": "input_text", "text": "b"}]
    assert codex.output_text(out) == "a\n[image: 1x1 png]\nb"
    big = {"type": "image", "data": "A" * (codex.MCP_IMAGE_MAX_BYTES * 4 // 3 + 8), "mimeType": "image/png"}
    text = codex.mcp_result_to_output({"content": [big]})
    assert isinstance(text, str) and "not shown" in text and "limit" in text
    svg = codex.mcp_result_to_output({"content": [{"type": "image", "data": "PHN2Zz4=", "mimeType": "image/svg+xml"}]})
    assert isinstance(svg, str) and "image/svg+xml" in svg
    many = codex.mcp_result_to_output({"content": [img] * (codex.MCP_MAX_IMAGES + 2)})
    assert sum(1 for p in many if p["type"] == "input_image") == codex.MCP_MAX_IMAGES
    assert "more than" in codex.output_text(many)
    err = codex.mcp_result_to_output({"content": [img], "isError": True})
    assert err[0]["text"].startswith("Error:")
    assert codex.mcp_result_to_output({"content": [{"type": "text", "text": "plain"}]}) == "plain"


def _config(home, model, wire, slug):
    (home / "config.toml").write_text(
        'model = "%s"\nmodel_provider = "mock"\napproval_policy = "never"\nsandbox_mode = "read-only"\n'
        '[model_providers.mock]\nname = "mock"\nbase_url = "%s"\nwire_api = "%s"\n'
        "request_max_retries = 0\nstream_max_retries = 0\n"
        "[mcp_servers.sdk]\ncommand = %s\nargs = [%s]\nrequired = true\nstartup_timeout_sec = 30\n"
        % (slug, model.url, wire, json.dumps(sys.executable), json.dumps(SDK_SERVER)))


def _exec(home, tmp_path):
    work = tmp_path / "work"
    (work / ".git").mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, str(REPO / "codex.py"), "exec", "--color", "never", "look at it"],
                          capture_output=True, text=True, timeout=90, cwd=str(work), env=dict(os.environ, CODEX_HOME=str(home)))


def test_responses_gets_the_image_as_input_image(codex_home, tmp_path):
    with ModelServer() as model:
        _config(codex_home, model, "responses", "gpt-5")
        model.enqueue(Turn().function_call("sdk__image", {}, call_id="i1"), Turn().text("a dot"))
        out = _exec(codex_home, tmp_path)
        assert out.returncode == 0, out.stderr
        assert "[image: 1x1 png]" in out.stdout + out.stderr and PNG_1PX not in out.stdout + out.stderr
        second = model.model_requests()[1]
        [output] = [i for i in second.body["input"] if i.get("type") == "function_call_output"]
        assert output["output"] == [{"type": "input_text", "text": "[image: 1x1 png]"},
                                    {"type": "input_image", "image_url": "data:image/png;base64," + PNG_1PX},
                                    {"type": "input_text", "text": "an image"}]


@pytest.mark.parametrize("slug,sent", [("gpt-4o", True), ("gpt-oss:20b", False), ("some-local-model", False)])
def test_chat_gets_the_image_where_the_model_takes_images(codex_home, tmp_path, slug, sent):
    with ModelServer() as model:
        _config(codex_home, model, "chat", slug)
        model.enqueue(Turn().function_call("sdk__image", {}, call_id="i1"), Turn().text("a dot"))
        out = _exec(codex_home, tmp_path)
        assert out.returncode == 0, out.stderr
        messages = model.model_requests()[1].body["messages"]
        tool = [m for m in messages if m["role"] == "tool"][0]
        assert tool["content"] == "[image: 1x1 png]\nan image"
        after = messages[messages.index(tool) + 1:]
        images = [p for m in after if m["role"] == "user" and isinstance(m["content"], list)
                  for p in m["content"] if p.get("type") == "image_url"]
        assert images == ([{"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG_1PX}}] if sent else [])


def test_images_in_history_are_estimated_and_trimmed_as_images():
    img = {"type": "image", "data": base64.b64encode(png(800, 600)).decode() + "A" * 400000, "mimeType": "image/png"}
    output = codex.mcp_result_to_output({"content": [{"type": "text", "text": "shot"}, img]})
    items = [{"type": "function_call", "name": "s__shot", "arguments": "{}", "call_id": "c%d" % i} for i in range(3)]
    items += [{"type": "function_call_output", "call_id": "c%d" % i, "output": output} for i in range(3)]
    # 3 images of ~300 KB are ~3000 tokens for the estimate, not ~300000
    assert codex.estimate_tokens(items) < 3 * codex.IMAGE_TOKEN_ESTIMATE + 1000
    trimmed = codex.trim_tool_outputs(items, keep_last=1)
    assert [isinstance(it.get("output"), str) for it in trimmed[3:]] == [True, True, False]
    assert "shot" in trimmed[3]["output"] and "images removed" in trimmed[3]["output"]
