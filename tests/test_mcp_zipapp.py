"""The built dist/codex as MCP server and MCP client, on every Python >= 3.9 found here."""
import json
import subprocess
from pathlib import Path

import pytest

from test_zipapp import bare_env, system_pythons

pytestmark = pytest.mark.timeout(180)

RAW_SERVER = Path(__file__).resolve().parent / "support" / "mcp_raw_server.py"


def _lines(*msgs):
    return "".join(json.dumps(m) + "\n" for m in msgs)


@pytest.mark.parametrize("ver,py", system_pythons())
def test_dist_codex_speaks_mcp_both_ways(dist_codex, tmp_path, ver, py):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        '[mcp_servers.raw]\ncommand = "%s"\nargs = ["%s"]\n' % (py, RAW_SERVER))
    env = bare_env(tmp_path, CODEX_HOME=str(home))
    stdin = _lines(
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "codex", "arguments": {"prompt": "x", "profile": "nope"}}},
    )
    proc = subprocess.run([str(py), str(dist_codex), "mcp"], input=stdin, env=env, capture_output=True, text=True, timeout=120,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    replies = {m["id"]: m for m in map(json.loads, proc.stdout.splitlines())}
    assert replies[1]["result"]["protocolVersion"] == "2024-11-05"
    assert [t["name"] for t in replies[2]["result"]["tools"]] == ["codex", "codex-reply"]
    assert "config profile `nope` not found" in replies[3]["result"]["content"][0]["text"]  # tomli works inside

    proc = subprocess.run([str(py), str(dist_codex), "mcp", "list", "--json"], env=env, capture_output=True, text=True, timeout=120,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)
    assert (row["name"], row["status"], row["tools"]) == ("raw", "ready", ["hello"])
    proc = subprocess.run([str(py), str(dist_codex), "mcp", "call", "raw", "hello"], env=env, capture_output=True, text=True, timeout=120,
                          cwd=str(tmp_path))
    assert (proc.returncode, proc.stdout) == (0, "hello\n"), proc.stderr
