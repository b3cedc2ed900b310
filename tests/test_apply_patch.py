"""§10 apply_patch: grammar, matching passes, atomic application, errors, speed; §09 interception."""
import os
import time

import pytest

import codex

pytestmark = pytest.mark.timeout(60)


def P(*lines):
    return "\n".join(("*** Begin Patch",) + lines + ("*** End Patch",)) + "\n"


def test_add_update_delete_move_summary(tmp_path):
    (tmp_path / "mod.py").write_text("def a():\n    return 1\n\ndef b():\n    return 2\n")
    (tmp_path / "old.txt").write_text("bye\n")
    (tmp_path / "ren.txt").write_text("x\ny\n")
    out = codex.apply_patch(P(
        "*** Update File: mod.py",
        "@@ def b():",
        "-    return 2",
        "+    return 3",
        "*** Add File: pkg/new.py",
        "+print('hi')",
        "+",
        "*** Delete File: old.txt",
        "*** Update File: ren.txt",
        "*** Move to: moved/ren2.txt",
        "@@",
        " x",
        "-y",
        "+z",
    ), tmp_path)
    assert out == "Success. Updated the following files:\nA pkg/new.py\nM mod.py\nM moved/ren2.txt\nD old.txt\n"
    assert (tmp_path / "mod.py").read_text() == "def a():\n    return 1\n\ndef b():\n    return 3\n"
    assert (tmp_path / "pkg" / "new.py").read_text() == "print('hi')\n\n"
    assert not (tmp_path / "old.txt").exists() and not (tmp_path / "ren.txt").exists()
    assert (tmp_path / "moved" / "ren2.txt").read_text() == "x\nz\n"


def test_first_chunk_may_omit_header_and_context_locates(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("a\nsame\nb\nsame\nc\n")
    codex.apply_patch(P("*** Update File: f.txt", " b", "-same", "+SECOND"), tmp_path)
    assert f.read_text() == "a\nsame\nb\nSECOND\nc\n"
    codex.apply_patch(P("*** Update File: f.txt", "@@ b", "-SECOND", "+again"), tmp_path)
    assert f.read_text() == "a\nsame\nb\nagain\nc\n"


def test_multiple_chunks_and_end_of_file(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("1\n2\n3\n4\n5\nlast\n")
    codex.apply_patch(P("*** Update File: f.txt", "@@", "-1", "+one", "@@", " 4", "-5", "+five",
                        "@@", "-last", "+LAST", "*** End of File"), tmp_path)
    assert f.read_text() == "one\n2\n3\n4\nfive\nLAST\n"


def test_pure_addition_goes_to_end_of_file(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("a\nb\n")
    codex.apply_patch(P("*** Update File: f.txt", "@@ a", "+appended"), tmp_path)
    assert f.read_text() == "a\nb\nappended\n"


@pytest.mark.parametrize("original,old_line", [
    ("x = 1   \n", "x = 1"),  # trailing whitespace
    ("    x = 1\n", "x = 1"),  # both ends
    ("s = \u201cq\u201d \u2014 \u2018a\u2019\u00a0b\n", "s = \"q\" - 'a' b"),  # unicode punctuation
])
def test_fuzzy_matching_passes(tmp_path, original, old_line):
    f = tmp_path / "f.txt"
    f.write_text("start\n" + original + "end\n")
    codex.apply_patch(P("*** Update File: f.txt", " start", "-" + old_line, "+replaced", " end"), tmp_path)
    assert f.read_text() == "start\nreplaced\nend\n"


def test_exact_match_wins_over_fuzzy(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("x  \nx\n")
    codex.apply_patch(P("*** Update File: f.txt", "-x", "+y"), tmp_path)
    assert f.read_text() == "x  \ny\n"


def test_trailing_empty_line_retry_and_newline_added(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("a\nb")  # no final newline
    codex.apply_patch(P("*** Update File: f.txt", " a", "-b", "+c", ""), tmp_path)
    assert f.read_text() == "a\nc\n"


def test_crlf_file_keeps_crlf(tmp_path):
    f = tmp_path / "f.txt"
    f.write_bytes(b"a\r\nb\r\nc\r\n")
    codex.apply_patch(P("*** Update File: f.txt", " a", "-b", "+B", " c"), tmp_path)
    assert f.read_bytes() == b"a\r\nB\r\nc\r\n"


def test_heredoc_wrapped_patch_and_crlf_patch(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("a\n")
    codex.apply_patch("<<'EOF'\n" + P("*** Update File: f.txt", "-a", "+b") + "EOF\n", tmp_path)
    assert f.read_text() == "b\n"
    codex.apply_patch(P("*** Update File: f.txt", "-b", "+c").replace("\n", "\r\n"), tmp_path)
    assert f.read_text() == "c\n"


@pytest.mark.parametrize("text,message", [
    ("nothing", "The first line of the patch must be '*** Begin Patch'"),
    ("*** Begin Patch\n*** Add File: a\n+x\n", "The last line of the patch must be '*** End Patch'"),
    (P("*** Frobnicate File: a"), "is not a valid hunk header"),
    (P("*** Update File: a"), "Update file hunk for path 'a' is empty"),
    (P("*** Update File: a", "@@"), "Update hunk does not contain any lines"),
    (P("*** Update File: a", "@@", "@@"), "Unexpected line found in update hunk: '@@'"),
    (P("*** Update File: a", "@@", " x", "garbage"), "Expected update hunk to start with a @@ context marker"),
    (P("*** Update File: a", "garbage"), "Unexpected line found in update hunk: 'garbage'"),
])
def test_parse_errors(text, message):
    with pytest.raises(codex.PatchError) as err:
        codex.parse_patch(text)
    assert message in str(err.value)


def test_empty_patch():
    with pytest.raises(codex.PatchError) as err:
        codex.plan_patch(P(), "/")
    assert "No files were modified" in str(err.value)


def test_errors_name_file_and_chunk_and_nothing_changes(tmp_path):
    (tmp_path / "good.txt").write_text("keep\n")
    (tmp_path / "bad.txt").write_text("a\nb\n")
    patch = P("*** Add File: added.txt", "+new", "*** Update File: good.txt", "-keep", "+changed",
              "*** Update File: bad.txt", "@@", "-a", "+A", "@@", "-zzz", "+Z")
    with pytest.raises(codex.PatchError) as err:
        codex.apply_patch(patch, tmp_path)
    msg = str(err.value)
    assert "bad.txt" in msg and "chunk 2" in msg and "zzz" in msg
    assert (tmp_path / "good.txt").read_text() == "keep\n"
    assert not (tmp_path / "added.txt").exists()
    with pytest.raises(codex.PatchError) as err:
        codex.apply_patch(P("*** Update File: missing.txt", "-a", "+b"), tmp_path)
    assert "Failed to read file to update" in str(err.value) and "missing.txt" in str(err.value)
    with pytest.raises(codex.PatchError) as err:
        codex.apply_patch(P("*** Update File: bad.txt", "@@ nowhere", "-a", "+b"), tmp_path)
    assert "Failed to find context 'nowhere' in bad.txt" in str(err.value)


def test_atomic_when_a_write_fails(tmp_path):
    (tmp_path / "a.txt").write_text("a\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "b.txt").write_text("b\n")
    os.chmod(str(ro), 0o500)
    try:
        if os.access(str(ro), os.W_OK):
            pytest.skip("running as a user that ignores permissions")
        with pytest.raises(codex.PatchError) as err:
            codex.apply_patch(P("*** Update File: a.txt", "-a", "+A", "*** Update File: ro/b.txt", "-b", "+B"), tmp_path)
        assert "no file was changed" in str(err.value)
        assert (tmp_path / "a.txt").read_text() == "a\n"
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    finally:
        os.chmod(str(ro), 0o700)


def test_sequential_hunks_on_one_file_and_mode_kept(tmp_path):
    f = tmp_path / "run.sh"
    f.write_text("echo 1\n")
    os.chmod(str(f), 0o755)
    codex.apply_patch(P("*** Update File: run.sh", "-echo 1", "+echo 2", "*** Update File: run.sh", "-echo 2", "+echo 3"), tmp_path)
    assert f.read_text() == "echo 3\n" and os.stat(str(f)).st_mode & 0o777 == 0o755


def test_large_file_is_fast(tmp_path):
    f = tmp_path / "big.txt"
    lines = ["line %d" % i for i in range(100000)]
    f.write_text("\n".join(lines) + "\n")
    chunks = []
    for i in range(1000, 100000, 10000):
        chunks += ["@@", " line %d" % (i - 1), "-line %d" % i, "+LINE %d" % i, " line %d" % (i + 1)]
    chunks += ["@@", " line 99998", "-line 99999", "+last  ", "*** End of File"]
    t0 = time.monotonic()
    codex.apply_patch(P("*** Update File: big.txt", *chunks), tmp_path)
    elapsed = time.monotonic() - t0
    text = f.read_text()
    assert "LINE 51000\n" in text and text.endswith("line 99998\nlast  \n")
    assert elapsed < 2.0, elapsed
    # A fuzzy (whitespace) match near the end of a big file is fast too.
    t0 = time.monotonic()
    codex.apply_patch(P("*** Update File: big.txt", "@@", "-  line 99990  ", "+fuzzy"), tmp_path)
    assert time.monotonic() - t0 < 2.0
    assert "fuzzy\n" in f.read_text()


def test_file_changes_for_protocol(tmp_path):
    (tmp_path / "u.txt").write_text("1\n2\n3\n")
    (tmp_path / "d.txt").write_text("gone\n")
    changes = codex.plan_patch(P("*** Update File: u.txt", "*** Move to: v.txt", "@@", " 1", "-2", "+two",
                                 "*** Delete File: d.txt", "*** Add File: n.txt", "+n"), tmp_path)
    proto = {str(c.path.name): c.to_protocol() for c in changes}
    assert proto["u.txt"]["update"]["move_path"] == str(tmp_path / "v.txt")
    assert proto["u.txt"]["update"]["unified_diff"] == "@@ -1,3 +1,3 @@\n 1\n-2\n+two\n 3\n"
    assert proto["d.txt"] == {"delete": {"content": "gone\n"}}
    assert proto["n.txt"] == {"add": {"content": "n\n"}}
    assert (tmp_path / "u.txt").exists()  # planning writes nothing


@pytest.mark.parametrize("argv,expected", [
    (["apply_patch", "PATCH"], ("PATCH", None)),
    (["applypatch", "PATCH"], ("PATCH", None)),
    (["bash", "-lc", "apply_patch <<'EOF'\n*** Begin Patch\n*** End Patch\nEOF\n"], ("*** Begin Patch\n*** End Patch", None)),
    (["bash", "-lc", "apply_patch <<\"EOF\"\nbody\nEOF"], ("body", None)),
    (["bash", "-lc", "cd src/app && apply_patch <<'PATCH'\nbody\nPATCH\n"], ("body", "src/app")),
    (["bash", "-lc", "cd 'my dir' && apply_patch <<EOF\nbody\nEOF\n"], ("body", "my dir")),
    (["bash", "-lc", "echo hi && apply_patch <<'EOF'\nbody\nEOF\n"], None),
    (["bash", "-lc", "apply_patch <<'EOF'\nbody\nEOF\necho after"], None),
    (["apply_patch"], None),
    (["ls", "-l"], None),
])
def test_extract_apply_patch(argv, expected):
    assert codex.extract_apply_patch(argv) == expected


def test_atomic_rollback_when_a_late_replace_fails(tmp_path):
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir" / "keep").write_text("k")
    with pytest.raises(codex.PatchError) as err:
        codex.apply_patch(P("*** Update File: a.txt", "-a", "+A", "*** Add File: fresh.txt", "+f",
                            "*** Add File: adir", "+x"), tmp_path)
    assert "no file was changed" in str(err.value)
    assert (tmp_path / "a.txt").read_text() == "a\n"
    assert not (tmp_path / "fresh.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "adir"]


@pytest.mark.parametrize("base,rel", [("/ws", "a.txt"), ("/ws/", "./a//b/../c.py"), ("/ws", "/abs/x"), ("ws", "a"),
                                      ("/", "x"), ("/ws/sub", ".."), (".", "a/b")])
def test_lean_path_is_pathlib_where_the_apply_patch_mode_uses_it(base, rel):
    from pathlib import PurePosixPath

    lean, real = codex.LeanPath(base) / rel, PurePosixPath(base) / rel
    assert str(lean) == str(real) and lean.name == real.name and str(lean.parent) == str(real.parent)
    if real.name:
        assert str(lean.with_name("n")) == str(real.with_name("n"))
    assert lean == codex.LeanPath(str(real)) and hash(lean) == hash(codex.LeanPath(str(real)))


def test_the_apply_patch_mode_loads_compiled_code_that_commands_cannot_replace(tmp_path, monkeypatch):
    import subprocess

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setattr(codex, "_APPLY_PATCH_CODE", {})
    code = codex._apply_patch_code(home)
    assert code and code.startswith(str(home / "bin")) and code in codex._apply_patch_argv(home)[-1]
    (tmp_path / "f.txt").write_text("a\n")
    p = subprocess.run(codex._apply_patch_argv(home) + ["--cd", str(tmp_path)], capture_output=True, text=True,
                       input="*** Begin Patch\n*** Update File: f.txt\n@@\n-a\n+b\n*** End Patch\n", timeout=60)
    assert p.returncode == 0 and (tmp_path / "f.txt").read_text() == "b\n", p.stderr
    _, own = codex._sandbox_code_paths(["x"], "linux", [tmp_path], home)
    assert code in own  # read-only (and pinned) for commands like the rest of codex's code
