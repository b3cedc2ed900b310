"""§18 `@` file search: git ls-files or a .gitignore-respecting walk, fuzzy ranking, speed."""
import os
import subprocess
import time

import pytest

import codex


def _touch(root, *paths):
    for p in paths:
        full = root / p
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text("x")


def test_walk_respects_gitignore_outside_a_repo(tmp_path):
    _touch(tmp_path, "src/main.py", "src/gen/out.py", "build/a.o", "notes.log", "keep.log",
           ".hidden/x.py", "docs/readme.md", "docs/sub/skip.tmp", "src/deep/ok.tmp")
    (tmp_path / ".gitignore").write_text("build/\n*.log\n!keep.log\n/src/gen\n# comment\n")
    (tmp_path / "docs" / ".gitignore").write_text("sub/*.tmp\n")
    files = sorted(codex.walk_workspace_files(tmp_path))
    assert files == ["docs/readme.md", "keep.log", "src/deep/ok.tmp", "src/main.py"]


def test_gitignore_patterns():
    rx = codex._gitignore_regex
    assert rx("**/foo/bar")[0].match("a/b/foo/bar") and rx("**/foo/bar")[0].match("foo/bar")
    assert rx("a/**/b")[0].match("a/x/y/b") and rx("a/**/b")[0].match("a/b")
    assert rx("*.py")[0].match("x.py") and not rx("*.py")[0].match("x.pyc")
    assert rx("[ab]?.c")[0].match("bz.c")
    assert rx("# no") is None and rx("   ") is None
    assert rx("dir/")[2] is True and rx("/top")[3] is True


def test_git_repo_uses_ls_files(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    _touch(tmp_path, "tracked.py", "untracked.py", "ignored.bin", "sub/x.py")
    (tmp_path / ".gitignore").write_text("*.bin\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "tracked.py"], check=True)
    assert sorted(codex.list_workspace_files(tmp_path)) == [".gitignore", "sub/x.py", "tracked.py", "untracked.py"]
    # from a subdirectory, paths are relative to it
    assert codex.list_workspace_files(tmp_path / "sub") == ["x.py"]


def test_fuzzy_ranking_and_smart_case(tmp_path):
    _touch(tmp_path, "lib/mod.rs", "src/models/dodo.py", "src/my_odd.rs", "Makefile", "docs/MODULES.md", "mod.rs.bak/z")
    fs = codex.FileSearch(tmp_path)
    results = [p for p, _ in fs.search("mod")]
    assert results[0] == "lib/mod.rs"
    assert "src/my_odd.rs" in results  # fuzzy: m..o..d
    assert [p for p, _ in fs.search("MOD")] == ["docs/MODULES.md"]  # smart case
    assert [p for p, _ in fs.search("lib mod")] == ["lib/mod.rs"]  # atoms all match
    assert fs.search("zzzz") == []
    path, idx = fs.search("modrs")[0]
    assert path == "lib/mod.rs" and [path[i] for i in idx] == list("mod") + list("rs")


def test_narrowing_reuses_previous_matches(tmp_path):
    _touch(tmp_path, "alpha.txt", "alphabet.txt", "beta.txt")
    fs = codex.FileSearch(tmp_path)
    assert len(fs.search("al")) == 2
    assert [p for p, _ in fs.search("alphab")] == ["alphabet.txt"]
    assert [p for p, _ in fs.search("be")][0] == "beta.txt"  # not a narrowing: rescans
    assert [p for p, _ in fs.search("")][:3] == ["beta.txt", "alpha.txt", "alphabet.txt"]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_100k_files_stay_responsive(tmp_path):
    root = tmp_path / "big"
    for d in range(100):
        sub = root / ("pkg%02d" % d) / "module"
        sub.mkdir(parents=True)
        for f in range(1000):
            (sub / ("file_%04d_%s.py" % (f, "abcdefghij"[f % 10]))).touch()
    fs = codex.FileSearch(root)
    t0 = time.perf_counter()
    assert fs.wait(60)
    assert fs.file_count == 100000
    timings = []
    for q in ["f", "fi", "fil", "file_0", "file_09", "file_099", "pkg42 0999"]:
        t1 = time.perf_counter()
        res = fs.search(q)
        timings.append(time.perf_counter() - t1)
        assert res
    assert fs.search("pkg42 0999")[0][0] == "pkg42/module/file_0999_j.py"
    assert max(timings) < 1.5, timings  # worst single keystroke (one-letter query over all files)


def test_git_commands_do_not_run_repository_hooks(tmp_path):
    """A cloned repository's config must not get to run programs through `@` or /diff."""
    repo = tmp_path / "evil"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    marker = tmp_path / "PWNED"
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\ntouch %s\n" % marker)
    hook.chmod(0o755)
    _touch(repo, "a.txt")
    subprocess.run(["git", "-C", str(repo), "add", "a.txt"], check=True)
    (repo / "a.txt").write_text("changed")
    for key in ("core.fsmonitor", "diff.external", "core.pager"):
        subprocess.run(["git", "-C", str(repo), "config", key, str(hook)], check=True)
    subprocess.run(["git", "-C", str(repo), "diff"], capture_output=True)
    assert marker.exists()  # the trap works on plain git
    marker.unlink()
    assert codex.list_workspace_files(repo) == ["a.txt"]
    in_repo, diff = codex._git_diff(repo)
    assert in_repo and "+changed" in diff
    assert not marker.exists()
