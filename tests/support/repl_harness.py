"""Run the real REPL (`codex.main`) against a scripted stand-in for the agent Session.

Used by tests of the REPL's own behaviour (keys, rendering, approvals, slash commands) so
they do not depend on the model or the agent loop; end-to-end tests run the plain codex.py
against tests/support/model_server.py instead.

    python repl_harness.py SCRIPT.json OPS.jsonl [codex args...]

SCRIPT.json: {"turns": [[msg, ...], ...], "startup_errors": [str]} - the event msgs answered to each user_input or
compact op, in order.  A msg {"await": "exec_approval"} (or "patch_approval") blocks until
that op arrives and then emits background_event "decision: <decision>".  Every op
submitted (and every fork) is appended to OPS.jsonl as one JSON line.
"""
import json
import os
import queue
import sys
import threading
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import codex  # noqa: E402


class ScriptedSession(object):
    """Implements the §08 Session contract from a script of event msgs."""

    def __init__(self, config, approval_handler=None, turns=None, ops_log=None, prefix=None):
        self.config = config
        self.turns = list(SCRIPT["turns"] if turns is None else turns)
        self.ops_log = OPS_LOG if ops_log is None else ops_log
        self.events = queue.Queue()
        self.ops = queue.Queue()
        self.session_id = str(uuid.uuid4())
        self.next_id = 0
        self.interrupted = threading.Event()
        self.history = list(prefix or [])
        self.events.put({"id": "", "msg": {"type": "session_configured", "session_id": self.session_id,
                                           "model": config.model, "history_log_id": 0, "history_entry_count": 0}})
        for message in SCRIPT.get("startup_errors", []) if turns is None else []:
            self.events.put({"id": "", "msg": {"type": "error", "message": message}})

    closed = False  #: §08: whether shutdown() has finished (this fake's events never end)

    def start(self):
        """§08: the session's I/O (none here); returns the session."""
        return self

    def _log(self, obj):
        with open(self.ops_log, "a") as fh:
            fh.write(json.dumps(obj) + "\n")

    def submit(self, op):
        sub = str(self.next_id)
        self.next_id += 1
        self._log(op)
        if op.get("type") in ("user_input", "compact"):
            if op.get("type") == "user_input":
                self.history.append(op["items"][0]["text"] if op["items"] else "")
            self.interrupted.clear()
            threading.Thread(target=self._play, args=(sub,), daemon=True).start()
        elif op.get("type") in ("exec_approval", "patch_approval"):
            self.ops.put(op)
        elif op.get("type") == "shutdown":
            self.events.put({"id": sub, "msg": {"type": "shutdown_complete"}})
        return sub

    def _play(self, sub):
        self.events.put({"id": sub, "msg": {"type": "task_started"}})
        script = self.turns.pop(0) if self.turns else [{"type": "agent_message", "message": "(no script left)"}]
        for msg in script + [{}]:
            if self.interrupted.is_set():
                self.events.put({"id": sub, "msg": {"type": "turn_aborted", "reason": "interrupted"}})
                return
            if "sleep" in msg:
                self.interrupted.wait(msg["sleep"])
                continue
            if "await" in msg:
                while True:
                    try:
                        op = self.ops.get(timeout=0.05)
                        break
                    except queue.Empty:
                        if self.interrupted.is_set():
                            self.events.put({"id": sub, "msg": {"type": "turn_aborted", "reason": "interrupted"}})
                            return
                self.events.put({"id": sub, "msg": {"type": "background_event", "message": "decision: %s" % op["decision"]}})
                if op["decision"] == "abort":
                    self.events.put({"id": sub, "msg": {"type": "turn_aborted", "reason": "interrupted"}})
                    return
                continue
            if msg:
                self.events.put({"id": sub, "msg": msg})
        self.events.put({"id": sub, "msg": {"type": "task_complete", "last_agent_message": None}})

    def next_event(self, timeout=None):
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def interrupt(self):
        self._log({"type": "interrupt"})
        self.interrupted.set()

    def shutdown(self):
        self._log({"type": "shutdown"})

    def fork(self, drop):
        kept = self.history[: len(self.history) - drop]
        self._log({"type": "fork", "drop": drop, "kept": kept})
        return ScriptedSession(self.config, turns=self.turns, ops_log=self.ops_log, prefix=kept)


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        SCRIPT = json.load(fh)
    OPS_LOG = sys.argv[2]
    codex.Session = ScriptedSession
    sys.exit(codex.main(sys.argv[3:]))
