"""§12 Sandbox: the helper failing closed, one-time notices, the macOS branch, Ctrl-C, and the
built zipapp extracting and using its helper."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import codex

REPO = Path(__file__).resolve().parent.parent
BUILT_HELPER = REPO / "build" / "helpers" / ("codex-linux-sandbox-%s" % codex._machine_arch())

pytestmark = pytest.mark.timeout(120)

#: runs argv[1:] with the Landlock syscalls failing ENOSYS, as on a kernel without Landlock
NO_LANDLOCK = textwrap.dedent("""
    import errno, os, sys
    sys.path.insert(0, %r)
    import codex
    pyseccomp = codex._import_pyseccomp()
    f = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for nr in (444, 445, 446):
        f.add_rule(pyseccomp.ERRNO(errno.ENOSYS), nr)
    f.load()
    os.execv(sys.argv[1], sys.argv[1:])
""" % str(REPO))


@pytest.fixture(params=["c", "python"])
def helper_prefix(request):
    if request.param == "c":
        if not BUILT_HELPER.exists():
            pytest.skip("compiled helper not built")
        return [str(BUILT_HELPER)]
    return codex._python_helper_argv()


def test_landlock_missing_fails_closed(tmp_path, helper_prefix):
    marker = tmp_path / "ran"
    proc = subprocess.run([sys.executable, "-c", NO_LANDLOCK] + helper_prefix + ["--cwd", str(tmp_path), "--",
                          "touch", str(marker)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 122
    assert proc.stderr == ("codex-linux-sandbox: Landlock is unavailable: the kernel has no Landlock "
                           "(built without CONFIG_SECURITY_LANDLOCK)\n")
    assert not marker.exists()
    probe = subprocess.run([sys.executable, "-c", NO_LANDLOCK] + helper_prefix + ["--probe"], capture_output=True,
                           text=True, timeout=60)
    assert "landlock_abi=0" in probe.stdout and "reason=the kernel has no Landlock" in probe.stdout


def test_helper_failure_reaches_the_model_not_a_traceback(tmp_path, monkeypatch):
    """run_command classifies the helper's own exit (122 + its line) as a sandbox error."""
    wrapper = tmp_path / "helper-without-landlock"
    if not BUILT_HELPER.exists():
        pytest.skip("compiled helper not built")
    wrapper.write_text("#!/bin/sh\nexec %s -c %s %s \"$@\"\n" % (sys.executable, _shq(NO_LANDLOCK), BUILT_HELPER))
    wrapper.chmod(0o755)
    monkeypatch.setenv("CODEX_SANDBOX_HELPER", str(wrapper))
    codex._PROBE_CACHE.clear()
    home = tmp_path / "home"
    home.mkdir()
    cfg = codex.load_config(codex.ConfigOverrides(approval_policy="on-request", sandbox_mode="workspace-write",
                                                  cwd=str(tmp_path)), [], home=home, environ={"HOME": str(tmp_path)})
    r = codex.run_command(["true"], tmp_path, cfg, codex.build_command_env(cfg))
    assert r.exit_code == 122 and r.sandbox_error.startswith("Landlock is unavailable") and r.sandbox_denied
    assert codex.sandbox_available(home) is False  # the probe agrees: the approval policy decides
    out = codex.execute_with_policy(["python3", "-c", "1"], tmp_path, cfg, {}, lambda **kw: "denied")
    assert out.decision == "denied"  # on-request without a sandbox asks (and the user said no)
    assert any("no sandbox is available" in n for n in codex.take_sandbox_notices())
    codex._PROBE_CACHE.clear()


def _shq(text):
    return "'" + text.replace("'", "'\"'\"'") + "'"


def test_no_userns_means_landlock_alone_and_one_notice(tmp_path, monkeypatch):
    # the helper then holds --read-only/--hide/--pin with Landlock (test_sandbox_isolation.py
    # runs it); codex says once what that costs, and its own writability check agrees with it
    ws = tmp_path / "ws"
    (ws / ".git").mkdir(parents=True)
    (ws / "top.txt").write_text("x")
    (ws / "src").mkdir()
    monkeypatch.setattr(codex, "probe_sandbox", lambda home=None: {"userns": "0", "landlock_abi": "7", "seccomp": "1"})
    codex.take_sandbox_notices()
    codex._NOTICES_SEEN.clear()
    policy = codex.SandboxPolicy("workspace-write", exclude_slash_tmp=True, exclude_tmpdir_env_var=True)
    for _ in range(3):
        argv, _, _ = codex.sandbox_command(["true"], policy, ws, ws, None)
        assert argv[argv.index("--read-only") + 1] == str(ws / ".git") and "--ro-mounts" not in argv
    notes = codex.take_sandbox_notices()
    assert notes == [codex.LANDLOCK_ONLY_NOTICE]
    assert codex.take_sandbox_notices() == []
    assert policy.is_path_writable(ws / "top.txt", ws) and policy.is_path_writable(ws / "src" / "new", ws)
    assert not policy.is_path_writable(ws / "new", ws) and not policy.is_path_writable(ws / ".git" / "x", ws)


def test_darwin_branch_uses_seatbelt(tmp_path, monkeypatch):
    monkeypatch.setattr(codex, "_LINUX", False)
    monkeypatch.setattr(codex, "_DARWIN", True)
    policy = codex.SandboxPolicy("workspace-write", network_access=False)
    argv, env, kind = codex.sandbox_command(["touch", "x"], policy, tmp_path, tmp_path, None)
    assert kind == "seatbelt" and env == {"CODEX_SANDBOX": "seatbelt"}
    assert argv[:2] == ["/usr/bin/sandbox-exec", "-p"] and argv[-3:] == ["--", "touch", "x"]
    assert codex.SANDBOX_TYPE_NAMES[kind] == "MacosSeatbelt"


def test_no_helper_binary_means_python_helper(monkeypatch):
    monkeypatch.delenv("CODEX_SANDBOX_HELPER", raising=False)
    monkeypatch.setattr(codex, "_helper_sources", lambda: [Path("/nonexistent/helper")])
    codex._HELPER_CACHE.clear()
    try:
        prefix, kind = codex.helper_argv_prefix(None)
        assert kind == "linux-python" and prefix[0] == sys.executable
    finally:
        codex._HELPER_CACHE.clear()


def test_ctrl_c_kills_the_command_group(tmp_path):
    """SIGINT to codex while a command runs: the whole group dies, codex sees KeyboardInterrupt."""
    marker = tmp_path / "survivor"
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, %r)
        import codex
        cfg = codex.load_config(codex.ConfigOverrides(sandbox_mode="workspace-write", cwd=%r), [], home=%r)
        print("start", flush=True)
        try:
            r = codex.run_command(["bash", "-c", "(sleep 2; touch %s) & sleep 30"], None, cfg,
                                  codex.build_command_env(cfg), timeout_ms=60000)
            print("returned", r.exit_code, repr(r.aggregated_output[-500:]), flush=True)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """ % (str(REPO), str(tmp_path), str(tmp_path), marker))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "start"
    time.sleep(0.8)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert "interrupted" in out, out
    time.sleep(2.5)
    assert not marker.exists()


# -- the built zipapp ---------------------------------------------------------------------------


def test_zipapp_extracts_and_uses_its_helper(dist_codex, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, CODEX_HOME=str(home))
    env.pop("CODEX_SANDBOX_HELPER", None)
    proc = subprocess.run([str(dist_codex), "sandbox", "--check"], capture_output=True, text=True, env=env,
                          cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # run from a sealed in-memory copy of the helper inside the unpacked zipapp: nothing extracted
    assert "codex_sandbox_helpers/codex-linux-sandbox-" in proc.stdout and "sealed in-memory copy" in proc.stdout
    assert not [p for p in (home / "bin").iterdir() if p.name.startswith("codex-linux-sandbox")] \
        if (home / "bin").exists() else True
    proc = subprocess.run([str(dist_codex), "debug", "landlock", "--full-auto", "--", "bash", "-c",
                           "echo ok > inside && echo x > %s/outside" % home], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 1 and (tmp_path / "inside").exists() and not (home / "outside").exists()


def test_zipapp_python_helper(dist_codex, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, CODEX_HOME=str(home), CODEX_SANDBOX_HELPER="python")
    proc = subprocess.run([str(dist_codex), "debug", "landlock", "--", sys.executable, "-c",
                           "import socket; socket.socket()"], capture_output=True, text=True, env=env,
                          cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 1 and "Operation not permitted" in proc.stderr


def test_aarch64_helper_runs_under_emulation_and_fails_closed(tmp_path):
    """The aarch64 build of the helper, run under qemu-user: it starts, probes, and refuses to
    run a command because emulation offers no Landlock (nor seccomp filters) to confine it."""
    import shutil

    from support.qa_need import need_installed

    helper = need_installed(REPO / "build" / "helpers" / "codex-linux-sandbox-aarch64",
                            "the aarch64 helper was not built (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)")
    qemu = need_installed(shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64") or "/nonexistent/qemu-aarch64",
                          "qemu-user is not installed (apt-get install qemu-user-static)")
    probe = subprocess.run([qemu, helper, "--probe"], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0 and "implementation=c" in probe.stdout, probe.stdout + probe.stderr
    assert "landlock_abi=0" in probe.stdout and "reason=" in probe.stdout
    marker = tmp_path / "ran"
    # the command is a native binary: had the helper exec'd it, the marker would exist
    proc = subprocess.run([qemu, helper, "--cwd", str(tmp_path), "--", "touch", str(marker)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode in (122, 123), (proc.returncode, proc.stderr)  # Landlock / seccomp unavailable
    assert proc.stderr.startswith("codex-linux-sandbox: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert not marker.exists()
