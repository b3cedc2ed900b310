"""§15b history.jsonl: appends under flock, 0600, persistence, max_bytes, snapshot lookups."""
import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

import codex

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _lines(home):
    return (home / "history.jsonl").read_bytes().decode("utf-8").splitlines()


def test_append_writes_compact_line_0600(tmp_path):
    home = tmp_path / "h"
    assert codex.append_history(home, "sid-1", "fix the tests\nplease", ts=1720000000)
    raw = (home / "history.jsonl").read_bytes()
    assert raw == b'{"session_id":"sid-1","ts":1720000000,"text":"fix the tests\\nplease"}\n'
    assert stat.S_IMODE(os.stat(home / "history.jsonl").st_mode) == 0o600


def test_existing_file_mode_is_tightened(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text("")
    os.chmod(path, 0o644)
    codex.append_history(tmp_path, "s", "x")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_persistence_none_writes_nothing(tmp_path):
    assert not codex.append_history(tmp_path, "s", "hello", persistence="none")
    assert not (tmp_path / "history.jsonl").exists()
    assert codex.history_metadata(tmp_path, persistence="none") == (0, 0)
    assert codex.HistorySnapshot(tmp_path, persistence="none").entry_from_end(0) is None


def test_empty_text_not_recorded(tmp_path):
    assert not codex.append_history(tmp_path, "s", "")
    assert not (tmp_path / "history.jsonl").exists()


def test_metadata_is_inode_and_line_count(tmp_path):
    assert codex.history_metadata(tmp_path) == (0, 0)
    for i in range(5):
        codex.append_history(tmp_path, "s", "p%d" % i)
    log_id, count = codex.history_metadata(tmp_path)
    assert log_id == os.stat(tmp_path / "history.jsonl").st_ino
    assert count == 5


def test_lookup_by_offset_checks_inode(tmp_path):
    for i in range(3):
        codex.append_history(tmp_path, "s", "p%d" % i)
    log_id, _ = codex.history_metadata(tmp_path)
    assert codex.lookup_history_entry(tmp_path, 1, log_id)["text"] == "p1"
    assert codex.lookup_history_entry(tmp_path, 3, log_id) is None
    assert codex.lookup_history_entry(tmp_path, 0, log_id + 1) is None


def test_lookup_reads_renamed_field(tmp_path):
    (tmp_path / "history.jsonl").write_text('{"conversation_id":"c","ts":1,"text":"old"}\nnot json\n')
    log_id, _ = codex.history_metadata(tmp_path)
    assert codex.lookup_history_entry(tmp_path, 0, log_id) == {"session_id": "c", "ts": 1, "text": "old"}
    assert codex.lookup_history_entry(tmp_path, 1, log_id) is None


def test_snapshot_reads_backwards_and_ignores_later_appends(tmp_path):
    texts = ["entry %d %s" % (i, "x" * (i * 997 % 3000)) for i in range(200)]
    for t in texts:
        codex.append_history(tmp_path, "s", t)
    snap = codex.HistorySnapshot(tmp_path)
    codex.append_history(tmp_path, "other", "appended later")
    got = [snap.entry_from_end(k)["text"] for k in range(200)]
    assert got == texts[::-1]
    assert snap.entry_from_end(200) is None
    assert snap.entry_count == 200
    assert snap.lookup(0)["text"] == texts[0]
    assert snap.lookup(199)["text"] == texts[199]


def test_snapshot_of_missing_file(tmp_path):
    snap = codex.HistorySnapshot(tmp_path)
    assert snap.entry_from_end(0) is None and snap.entry_count == 0


def test_max_bytes_rewrites_to_new_inode_keeping_newest(tmp_path):
    for i in range(50):
        codex.append_history(tmp_path, "s", "prompt number %03d" % i)
    snap = codex.HistorySnapshot(tmp_path)
    old_inode = snap.log_id
    size_before = os.path.getsize(tmp_path / "history.jsonl")
    codex.append_history(tmp_path, "s", "the newest", max_bytes=size_before // 2)
    path = tmp_path / "history.jsonl"
    assert os.path.getsize(path) <= size_before // 2
    assert os.stat(path).st_ino != old_inode
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    lines = _lines(tmp_path)
    assert json.loads(lines[-1])["text"] == "the newest"
    kept = [json.loads(l)["text"] for l in lines]
    assert kept == sorted(kept[:-1]) + ["the newest"]  # a contiguous newest run, whole lines
    assert json.loads(lines[-2])["text"] == "prompt number 049"
    # the old snapshot sees the replacement and stops
    assert snap.entry_from_end(0) is None


_WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, %r)
    import codex
    home, tag, n, max_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) or None
    for i in range(n):
        codex.append_history(home, tag, "%%s-%%04d %%s" %% (tag, i, "y" * (i %% 50)), max_bytes=max_bytes)
    """
) % REPO


@pytest.mark.timeout(120)
def test_concurrent_writers_lose_nothing(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    procs = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path), "w%d" % w, "300", "0"])
        for w in range(6)
    ]
    assert [p.wait(timeout=100) for p in procs] == [0] * 6
    records = [json.loads(l) for l in _lines(tmp_path)]
    assert len(records) == 1800
    for w in range(6):
        mine = [r["text"].split()[0] for r in records if r["session_id"] == "w%d" % w]
        assert mine == ["w%d-%04d" % (w, i) for i in range(300)]


@pytest.mark.timeout(120)
def test_concurrent_writers_with_rotation_keep_whole_lines(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    procs = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path), "w%d" % w, "200", "4000"])
        for w in range(4)
    ]
    assert [p.wait(timeout=100) for p in procs] == [0] * 4
    lines = _lines(tmp_path)
    assert 0 < os.path.getsize(tmp_path / "history.jsonl") <= 4000
    records = [json.loads(l) for l in lines]  # every line whole: no interleaving
    for w in range(4):  # each writer's final prompt is the newest of its own and must survive
        mine = [r["text"].split()[0] for r in records if r["session_id"] == "w%d" % w]
        assert mine == sorted(mine)
    # the very last line written by anyone is present, and order per writer is monotone
    assert any(r["text"].startswith("w") and r["text"].split()[0].endswith("-0199") for r in records)


def test_lock_held_elsewhere_gives_up_after_bounded_retries(tmp_path):
    import fcntl
    import time

    codex.append_history(tmp_path, "s", "first")
    fd = os.open(str(tmp_path / "history.jsonl"), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        t0 = time.monotonic()
        with pytest.raises(OSError) as info:
            codex.append_history(tmp_path, "s", "second")
        waited = time.monotonic() - t0
        assert "exclusive lock" in str(info.value)
        assert 0.8 < waited < 3.0
    finally:
        os.close(fd)
    assert codex.append_history(tmp_path, "s", "third")
    assert [json.loads(l)["text"] for l in _lines(tmp_path)] == ["first", "third"]


def test_list_sessions_reads_time_directory_and_first_prompt(tmp_path):
    import codex

    day = tmp_path / "sessions" / "2026" / "01" / "02"
    day.mkdir(parents=True)
    ctx = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment_context>x</environment_context>"}]}
    ask = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix the parser"}]}
    for stamp, sid, items, cwd in [("2026-01-02T10-00-00", "a" * 36, [ctx, ask], "/w/one"),
                                   ("2026-01-02T11-00-00", "b" * 36, [ctx], "/w/two")]:
        lines = [{"timestamp": "2026-01-02T%s:00:00.000Z" % stamp[11:13], "type": "session_meta",
                  "payload": {"id": sid, "timestamp": "2026-01-02T%s:00:00.000Z" % stamp[11:13], "cwd": cwd}}]
        lines += [{"timestamp": "x", "type": "response_item", "payload": it} for it in items]
        (day / ("rollout-%s-%s.jsonl" % (stamp, sid))).write_text("".join(json.dumps(l) + "\n" for l in lines))
    sessions = codex.list_sessions(tmp_path)
    assert [s["id"] for s in sessions] == ["b" * 36, "a" * 36]  # newest first
    assert sessions[1]["first_prompt"] == "fix the parser" and sessions[1]["cwd"] == "/w/one"
    assert sessions[0]["first_prompt"] == ""  # only context: nothing the user typed
    import calendar

    assert sessions[1]["time"] == calendar.timegm((2026, 1, 2, 10, 0, 0))
    assert [s["id"] for s in codex.list_sessions(tmp_path, cwd="/w/one")] == ["a" * 36]


def test_reverse_search_goes_on_where_the_time_budget_stopped_it(tmp_path):
    import codex

    with open(str(tmp_path / "history.jsonl"), "w") as fh:
        for i in range(60000):
            text = "the oldest needle" if i == 0 else ("Caf\u00e9 \"q\" %d" % i if i == 59990 else "entry %d" % i)
            fh.write(json.dumps({"session_id": "s", "ts": i, "text": text}, ensure_ascii=False) + "\n")
    hist = codex.ComposerHistory(codex.HistorySnapshot(tmp_path))
    hist.local = ["needle typed in this session"]
    assert hist.search("NEEDLE") == (0, "needle typed in this session")  # this session first
    assert hist.search("caf\u00e9 \"q") == (10, u"Caf\u00e9 \"q\" 59990")  # escapes and non-ASCII too
    step, rounds = 1, 0
    while True:  # a budget of 0 s: each search reads one block, then says where to go on
        step, found = hist.search("needle", step, budget=0)
        rounds += 1
        if step != "more":
            break
        step = found
    assert (step, found) == (60000, "the oldest needle") and rounds > 1
    assert hist.snapshot.entry_from_end(59999)["text"] == "the oldest needle"  # the same numbering
    assert hist.search("no such text") == (None, None)
