"""§12a/§12b Sandbox: policies, protected paths, Seatbelt profiles, the helper's extraction and probe,
`codex debug landlock` and `codex sandbox --check`."""
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import codex

REPO = Path(__file__).resolve().parent.parent
ARCH = codex._machine_arch()
BUILT_HELPER = REPO / "build" / "helpers" / ("codex-linux-sandbox-%s" % ARCH)

pytestmark = pytest.mark.timeout(120)


def cfg_for(tmp_path, sandbox="workspace-write", overrides=(), approval="on-request"):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    return codex.load_config(codex.ConfigOverrides(approval_policy=approval, sandbox_mode=sandbox, cwd=str(ws)),
                             list(overrides), home=home, environ={"HOME": str(tmp_path)})


# -- SandboxPolicy --------------------------------------------------------------------------


def test_policy_from_config_modes(tmp_path):
    assert codex.SandboxPolicy.from_config(cfg_for(tmp_path, "read-only")).to_json() == '{"mode": "read-only"}'
    assert codex.SandboxPolicy.from_config(cfg_for(tmp_path, "danger-full-access")).is_unrestricted()
    p = codex.SandboxPolicy.from_config(cfg_for(tmp_path, "workspace-write", [
        'sandbox_workspace_write.writable_roots=["/opt/x", "rel"]', "sandbox_workspace_write.network_access=true"]))
    assert json.loads(p.to_json()) == {"mode": "workspace-write", "writable_roots": ["/opt/x", str(tmp_path / "ws" / "rel")],
                                       "network_access": True, "exclude_tmpdir_env_var": False, "exclude_slash_tmp": False}
    assert p.has_network()
    assert codex.SandboxPolicy.from_json(p.to_json()) == p


def test_policy_json_wire_form_defaults():
    p = codex.SandboxPolicy.from_json('{"mode":"workspace-write","unknown":1}')
    assert p.mode == "workspace-write" and not p.network_access and not p.exclude_slash_tmp
    assert not codex.SandboxPolicy.from_json('{"mode":"read-only"}').has_network()
    with pytest.raises(codex.SandboxError):
        codex.SandboxPolicy("bogus")


def test_writable_roots_order_and_exclusions(tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    p = codex.SandboxPolicy("workspace-write", [extra])
    roots = p.writable_roots_for(tmp_path / "ws", {"TMPDIR": str(tmpdir)})
    assert roots == [extra, tmp_path / "ws", Path("/tmp"), tmpdir]
    p = codex.SandboxPolicy("workspace-write", [extra], exclude_slash_tmp=True, exclude_tmpdir_env_var=True)
    assert p.writable_roots_for(tmp_path / "ws", {"TMPDIR": str(tmpdir)}) == [extra, tmp_path / "ws"]
    assert codex.SandboxPolicy("read-only").writable_roots_for(tmp_path) == []


@pytest.mark.parametrize("perms,mode,network,roots_has_cwd", [
    (["disk-full-read-access"], "read-only", False, False),
    ([], "read-only", False, False),
    (["disk-full-read-access", "network-full-access"], "read-only", True, False),
    (["disk-full-read-access", "disk-write-cwd"], "workspace-write", False, True),
    (["disk-write-folder=/opt/data"], "workspace-write", False, False),
    (["disk-full-write-access", "network-full-access"], "danger-full-access", True, False),
])
def test_legacy_permissions(tmp_path, perms, mode, network, roots_has_cwd):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "config.toml").write_text("sandbox_permissions = %s\n" % json.dumps(perms))
    cfg = cfg_for(tmp_path, sandbox=None)
    p = codex.SandboxPolicy.from_config(cfg)
    assert p.mode == mode and p.has_network() == network
    roots = p.writable_roots_for(cfg.cwd)
    assert (cfg.cwd in roots) == roots_has_cwd
    if "disk-write-folder=/opt/data" in perms:
        assert Path("/opt/data") in roots and Path("/tmp") not in roots


def test_legacy_full_write_without_network_keeps_seccomp(tmp_path):
    p = codex.SandboxPolicy.from_permissions(["disk-full-write-access"])
    assert not p.is_unrestricted() and not p.has_network() and p.writable_roots_for(tmp_path)[0] == Path("/")


def test_sandbox_mode_flag_beats_legacy_list(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "config.toml").write_text('sandbox_permissions = ["disk-write-cwd"]\n')
    assert codex.SandboxPolicy.from_config(cfg_for(tmp_path, "read-only")).mode == "read-only"


# -- protected paths --------------------------------------------------------------------------


def test_protected_paths_git_dir_file_nested_codex_home(tmp_path):
    ws = tmp_path / "ws"
    (ws / ".git").mkdir(parents=True)
    (ws / "vendor" / "lib" / ".git").mkdir(parents=True)
    (ws / ".codex").mkdir()
    real_gitdir = tmp_path / "ws" / "gitdirs" / "wt"
    real_gitdir.mkdir(parents=True)
    (ws / "wt").mkdir()
    (ws / "wt" / ".git").write_text("gitdir: %s\n" % real_gitdir)
    home = ws / "codexhome"
    home.mkdir()
    other = tmp_path / "elsewhere" / ".git"
    other.mkdir(parents=True)
    codex._NESTED_CACHE.clear()
    got = codex.protected_paths([ws], ws, home)
    for p in (ws / ".git", ws / "vendor" / "lib" / ".git", ws / ".codex", ws / "wt" / ".git", real_gitdir, home):
        assert str(p) in got, p
    assert str(other) not in got  # outside every writable root: Landlock already denies it


def test_nested_search_skips_nothing(tmp_path):
    # git in any directory walks up to the nearest .git: node_modules and deep trees count too
    ws = tmp_path / "ws"
    (ws / "node_modules" / "pkg" / ".git").mkdir(parents=True)
    deep = ws.joinpath(*["d%d" % i for i in range(20)], ".git")
    deep.mkdir(parents=True)
    codex._NESTED_CACHE.clear()
    assert sorted(codex.protected_paths([ws], ws)) == sorted([str(ws / "node_modules" / "pkg" / ".git"), str(deep)])


def test_is_path_writable(tmp_path):
    ws = tmp_path / "ws"
    (ws / ".git").mkdir(parents=True)
    p = codex.SandboxPolicy("workspace-write", exclude_slash_tmp=True, exclude_tmpdir_env_var=True)
    assert p.is_path_writable(ws / "a", ws)
    assert p.is_path_writable("rel/b", ws)
    assert not p.is_path_writable(ws / ".git" / "config", ws)
    assert not p.is_path_writable(tmp_path / "x", ws)
    assert not p.is_path_writable(ws / ".." / "x", ws)
    assert codex.SandboxPolicy("danger-full-access").is_path_writable("/etc/passwd", ws)
    assert not codex.SandboxPolicy("read-only").is_path_writable(ws / "a", ws)


# -- Seatbelt (profile generation is tested on every platform) --------------------------------


def test_seatbelt_read_only_profile(tmp_path):
    profile, params = codex.seatbelt_profile(codex.SandboxPolicy("read-only"), tmp_path)
    assert profile.startswith("(version 1)\n(deny default)")
    assert "(allow file-read*)" in profile and "file-write*" not in profile.replace("file-write-data", "")
    assert "network-outbound" not in profile and "(allow ipc-posix-sem)" in profile
    assert params == []


def test_seatbelt_workspace_write_params_and_git_carve_out(tmp_path, monkeypatch):
    # the exact parameters of this policy alone: no project another test of this process trusted
    # (codex keeps a trusted project's .codex read-only wherever it lies in a root, /tmp included)
    monkeypatch.setattr(codex, "_TRUSTED_CODEX_DIRS", set())
    ws = tmp_path / "ws"
    (ws / ".git").mkdir(parents=True)
    extra = tmp_path / "extra"
    extra.mkdir()
    tmpdir = tmp_path / "tmpd"
    tmpdir.mkdir()
    policy = codex.SandboxPolicy("workspace-write", [extra])
    codex._NESTED_CACHE.clear()
    profile, params = codex.seatbelt_profile(policy, ws, environ={"TMPDIR": str(tmpdir)})
    assert params == [("WRITABLE_ROOT_0", str(extra)), ("WRITABLE_ROOT_1", str(ws)),
                      ("WRITABLE_ROOT_1_RO_0", str(ws / ".git")), ("WRITABLE_ROOT_2", "/tmp"),
                      # tmp_path lives under /tmp, so the /tmp root carries the same carve-out
                      ("WRITABLE_ROOT_2_RO_0", str(ws / ".git")), ("WRITABLE_ROOT_3", str(tmpdir))]
    assert '(subpath (param "WRITABLE_ROOT_0"))' in profile
    assert ('(require-all (subpath (param "WRITABLE_ROOT_1")) (require-not (subpath (param "WRITABLE_ROOT_1_RO_0"))))'
            in profile)
    assert str(ws) not in profile  # paths only travel as -D parameters
    argv = codex.seatbelt_argv(["touch", "x"], policy, ws)
    assert argv[0] == "/usr/bin/sandbox-exec" and argv[1] == "-p"
    assert "-DWRITABLE_ROOT_1=%s" % ws in argv and argv[-3:] == ["--", "touch", "x"]


def test_seatbelt_network_and_full_access(tmp_path):
    profile, _ = codex.seatbelt_profile(codex.SandboxPolicy("workspace-write", network_access=True), tmp_path)
    assert "(allow network-outbound)" in profile and "(allow system-socket)" in profile
    profile, params = codex.seatbelt_profile(codex.SandboxPolicy("danger-full-access"), tmp_path)
    assert '(allow file-write* (regex #"^/"))' in profile and params == []


# -- the compiled helper: extraction and probe ------------------------------------------------


def test_helper_runs_from_a_sealed_memfd(tmp_path, monkeypatch):
    """The helper is executed as /proc/PID/fd/N of a sealed memfd: no name on disk to swap."""
    if not BUILT_HELPER.exists():
        pytest.skip("compiled helper not built; run `python3 build.py helpers`")
    monkeypatch.delenv("CODEX_SANDBOX_HELPER", raising=False)
    codex._HELPER_CACHE.clear()
    home = tmp_path / "home"
    home.mkdir()
    path = codex.linux_helper_path(home)
    assert str(path).startswith("/proc/%d/fd/" % os.getpid()), path
    assert os.readlink(str(path)).startswith("/memfd:codex-linux-sandbox")
    assert path.read_bytes() == BUILT_HELPER.read_bytes() and not (home / "bin").exists()
    with pytest.raises(PermissionError):  # sealed: not even codex can change it
        path.write_bytes(b"#!/bin/sh\necho evil\n")
    assert subprocess.run([str(path), "--probe"], capture_output=True).returncode == 0


def test_helper_extracted_content_addressed_0700_once(tmp_path, monkeypatch):
    """Without executable memfds: extracted once, opened and verified once, run through that fd."""
    if not BUILT_HELPER.exists():
        pytest.skip("compiled helper not built; run `python3 build.py helpers`")
    monkeypatch.delenv("CODEX_SANDBOX_HELPER", raising=False)
    monkeypatch.setattr(codex, "_seal_in_memfd", lambda data: None)
    codex._HELPER_CACHE.clear()
    home = tmp_path / "home"
    home.mkdir()
    fd_path = codex.linux_helper_path(home)
    path = codex._helper_backing_file(home)
    digest = hashlib.sha256(BUILT_HELPER.read_bytes()).hexdigest()
    assert path == home / "bin" / ("codex-linux-sandbox-%s" % digest[:16])
    assert str(fd_path).startswith("/proc/") and os.readlink(str(fd_path)) == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    mtime = path.stat().st_mtime_ns
    codex._HELPER_CACHE.clear()
    codex.linux_helper_path(home)
    assert codex._helper_backing_file(home) == path and path.stat().st_mtime_ns == mtime  # not rewritten
    # a tampered copy is replaced
    path.write_bytes(b"#!/bin/sh\necho evil\n")
    path.chmod(0o700)
    codex._HELPER_CACHE.clear()
    fd_path = codex.linux_helper_path(home)
    assert codex._helper_backing_file(home) == path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    # what runs is the file opened and verified then, whatever is renamed over its name later
    os.rename(str(path), str(path) + ".old")
    path.write_bytes(b"#!/bin/sh\necho evil\n")
    path.chmod(0o700)
    r = subprocess.run([str(fd_path), "--probe"], capture_output=True, text=True)
    assert r.returncode == 0 and "implementation=c" in r.stdout


def test_helper_extraction_falls_back_when_home_is_read_only(tmp_path, monkeypatch):
    if not BUILT_HELPER.exists():
        pytest.skip("compiled helper not built; run `python3 build.py helpers`")
    monkeypatch.delenv("CODEX_SANDBOX_HELPER", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    home = tmp_path / "home"
    home.mkdir()
    (home / "bin").write_text("not a dir")  # $CODEX_HOME/bin unusable: a file where the directory should be
    monkeypatch.setattr(codex, "_seal_in_memfd", lambda data: None)
    codex._HELPER_CACHE.clear()
    assert codex.linux_helper_path(home) is not None
    path = codex._helper_backing_file(home)
    assert path is not None and str(path).startswith(str(tmp_path / "cache" / "codex" / "bin"))


def test_python_helper_forced(monkeypatch):
    monkeypatch.setenv("CODEX_SANDBOX_HELPER", "python")
    prefix, kind = codex.helper_argv_prefix(None)
    assert kind == "linux-python" and prefix[-1] == codex._SANDBOX_HELPER_ARGV


@pytest.mark.parametrize("which", ["c", "python"])
def test_probe_reports_landlock_seccomp_userns(which, monkeypatch):
    if which == "c":
        if not BUILT_HELPER.exists():
            pytest.skip("compiled helper not built")
        monkeypatch.setenv("CODEX_SANDBOX_HELPER", str(BUILT_HELPER))
    else:
        monkeypatch.setenv("CODEX_SANDBOX_HELPER", "python")
    codex._PROBE_CACHE.clear()
    info = codex.probe_sandbox(None)
    codex._PROBE_CACHE.clear()
    assert info["implementation"] == ("c" if which == "c" else "python")
    assert int(info["landlock_abi"]) >= 1 and info["seccomp"] == "1" and info["userns"] in ("0", "1")


@pytest.mark.parametrize("which", ["c", "python"])
def test_helper_usage_errors(which):
    prefix = [str(BUILT_HELPER)] if which == "c" else codex._python_helper_argv()
    if which == "c" and not BUILT_HELPER.exists():
        pytest.skip("compiled helper not built")
    for args in (["--bogus"], ["--cwd"], ["--cwd", "/"], []):
        proc = subprocess.run(prefix + args, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 121, (args, proc.stderr)
        assert proc.stderr.startswith("codex-linux-sandbox: ") and proc.stderr.count("\n") == 1


def test_python_helper_fails_closed_without_libseccomp(tmp_path):
    """A Python without pyseccomp/libseccomp must refuse to run the command, with one clear line."""
    fake = tmp_path / "fakemods"
    fake.mkdir()
    (fake / "pyseccomp.py").write_text("raise RuntimeError('Unable to find libseccomp')\n")
    marker = tmp_path / "ran"
    script = ("import sys; sys.path.insert(0, %r); sys.argv = ['codex'] + %r; import codex; sys.exit(codex.main(sys.argv[1:]))"
              % (str(fake), [codex._SANDBOX_HELPER_ARGV, "--cwd", str(tmp_path), "--", "touch", str(marker)]))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                          cwd=str(REPO))
    assert proc.returncode == 123
    assert "libseccomp" in proc.stderr and proc.stderr.startswith("codex-linux-sandbox: ")
    assert not marker.exists()


# -- codex debug landlock / codex sandbox --check ----------------------------------------------


def test_debug_landlock_exit_code_is_commands(run_codex, tmp_path):
    r = run_codex("debug", "landlock", "--", "bash", "-c", "exit 7", cwd=str(tmp_path))
    assert r.returncode == 7, r.stderr
    r = run_codex("debug", "landlock", "--", "bash", "-c", "echo hi > %s/x" % tmp_path, cwd=str(tmp_path))
    assert r.returncode != 0 and ("Permission denied" in r.stderr or "Read-only file system" in r.stderr)
    assert not (tmp_path / "x").exists()


def test_debug_landlock_full_auto_writes_cwd_not_git(run_codex, tmp_path):
    (tmp_path / ".git").mkdir()
    r = run_codex("debug", "landlock", "--full-auto", "--", "bash", "-c",
                  "echo ok > x && cat x; echo bad > .git/config", cwd=str(tmp_path))
    assert r.stdout == "ok\n" and r.returncode != 0
    assert not (tmp_path / ".git" / "config").exists()


def test_debug_landlock_config_network_override(run_codex, tmp_path):
    code = "import socket; socket.socket(socket.AF_INET6)"
    r = run_codex("debug", "landlock", "--full-auto", "--", sys.executable, "-c", code, cwd=str(tmp_path))
    assert r.returncode != 0
    r = run_codex("debug", "landlock", "--full-auto", "-c", "sandbox_workspace_write.network_access=true", "--",
                  sys.executable, "-c", code, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr


def test_debug_seatbelt_on_linux_is_a_clear_error(run_codex, tmp_path):
    r = run_codex("debug", "seatbelt", "--", "true", cwd=str(tmp_path))
    assert r.returncode == 1 and "needs macOS" in r.stderr and "Traceback" not in r.stderr


def test_sandbox_check_and_doctor(run_codex, tmp_path):
    for args in (["sandbox", "--check"], ["doctor"]):
        r = run_codex(*args, cwd=str(tmp_path))
        assert r.returncode == 0, r.stdout + r.stderr
        probes = [line.split()[1] for line in r.stdout.splitlines()]
        for probe in ("helper", "landlock", "seccomp", "no_new_privs", "userns", "policy"):
            assert probe in probes
        assert "ABI" in r.stdout
        if os.path.exists("/.dockerenv"):
            assert "container" in probes


def test_helper_not_extracted_to_a_noexec_place(tmp_path, monkeypatch):
    """$CODEX_HOME on a noexec mount: the helper goes to the next directory that can execute it."""
    if not BUILT_HELPER.exists():
        pytest.skip("compiled helper not built")
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a noexec tmpfs")
    home = tmp_path / "home"
    home.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "noexec,size=4m", "tmpfs", str(home)]).returncode != 0:
        pytest.skip("cannot mount tmpfs here")
    try:
        monkeypatch.delenv("CODEX_SANDBOX_HELPER", raising=False)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        monkeypatch.setattr(codex, "_seal_in_memfd", lambda data: None)
        codex._HELPER_CACHE.clear()
        assert codex.linux_helper_path(home) is not None
        path = codex._helper_backing_file(home)
        assert path is not None and str(path).startswith(str(tmp_path / "cache"))
        assert subprocess.run([str(path), "--probe"], capture_output=True).returncode == 0
    finally:
        codex._HELPER_CACHE.clear()
        subprocess.run(["umount", str(home)])
