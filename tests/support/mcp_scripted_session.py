"""A scripted stand-in for the agent Session (§08 contract) so the MCP server's protocol
layer can be tested on its own, and a runner: `python mcp_scripted_session.py [codex mcp
options]` serves `codex mcp` on stdio with this session behind it.

What a prompt does:
  "config"       -> answers with the session's resolved config as JSON
  "run: CMD..."  -> asks exec approval for CMD, answers "decision: <decision>"
  "patch"        -> asks patch approval, answers "decision: <decision>"
  "slow"         -> waits for interrupt(), then turn_aborted
  "slow-late"    -> the same, then (late) agent_message and task_complete of that turn
  "error"        -> an error event, then task_complete without a message
  anything else  -> "turn N: <prompt>" (N counts the session's turns)
"""
import json
import os
import queue
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import codex  # noqa: E402


class ScriptedSession(object):
    """Follows the §08 Session contract with canned behaviour."""

    def __init__(self, cfg, approval_handler=None):
        self.cfg = cfg
        self.session_id = str(uuid.uuid4())
        self._events = queue.Queue()
        self._ops = queue.Queue()
        self._interrupted = threading.Event()
        self._next_sub = 0
        self._turns = 0
        self._configured = False
        self.shut_down = False

    closed = False  #: §08: whether shutdown() has finished (this fake's events never end)

    def start(self):
        """§08: the session's I/O (none here); returns the session."""
        return self

    def _emit(self, sub_id, msg):
        self._events.put({"id": sub_id, "msg": msg})

    def submit(self, op):
        sub_id = str(self._next_sub)
        self._next_sub += 1
        if op["type"] in ("exec_approval", "patch_approval"):
            self._ops.put(op)
        elif op["type"] == "user_input":
            if not self._configured:
                self._configured = True
                self._emit("", {"type": "session_configured", "session_id": self.session_id, "model": self.cfg.model,
                                "history_log_id": 0, "history_entry_count": 0})
            self._interrupted.clear()
            text = op["items"][0]["text"]
            threading.Thread(target=self._turn, args=(sub_id, text), daemon=True).start()
        return sub_id

    def _wait_decision(self, sub_id):
        while True:
            if self._interrupted.is_set():
                return None
            try:
                op = self._ops.get(timeout=0.05)
            except queue.Empty:
                continue
            if op.get("id") == sub_id:
                return op["decision"]

    def _turn(self, sub_id, text):
        self._turns += 1
        self._emit(sub_id, {"type": "task_started"})
        if text == "config":
            c = self.cfg
            answer = json.dumps({
                "model": c.model, "approval_policy": c.approval_policy, "sandbox_mode": c.sandbox_mode,
                "cwd": str(c.cwd), "base_instructions": c.base_instructions, "include_plan_tool": c.include_plan_tool,
                "profile": c.profile, "model_reasoning_effort": c.model_reasoning_effort,
                "disable_response_storage": c.disable_response_storage, "sandbox_permissions": c.sandbox_permissions,
                "sandbox_workspace_write": c.sandbox_workspace_write, "sandbox_policy": c.sandbox_policy.to_wire(),
                "shell_environment_policy": c.shell_environment_policy,
            }, sort_keys=True)
        elif text.startswith("run: ") or text == "patch":
            if text == "patch":
                self._emit(sub_id, {"type": "apply_patch_approval_request", "call_id": "call_p", "reason": "needs write",
                                    "grant_root": None,
                                    "changes": {"/w/a.txt": {"add": {"content": "hi\n"}}}})
            else:
                self._emit(sub_id, {"type": "exec_approval_request", "call_id": "call_1",
                                    "command": text[5:].split(" "), "cwd": str(self.cfg.cwd), "reason": "why not"})
            decision = self._wait_decision(sub_id)
            if decision is None:
                self._emit(sub_id, {"type": "turn_aborted", "reason": "interrupted"})
                return
            answer = "decision: %s" % decision
        elif text in ("slow", "slow-late"):
            self._interrupted.wait(30)
            self._emit(sub_id, {"type": "turn_aborted", "reason": "interrupted"})
            if text == "slow-late":  # a sloppy session: events of the aborted turn keep coming
                deadline = time.monotonic() + 10  # ...once the server has taken turn_aborted
                while not self._events.empty() and time.monotonic() < deadline:
                    time.sleep(0.01)
                self._emit(sub_id, {"type": "agent_message", "message": "STALE"})
                self._emit(sub_id, {"type": "task_complete", "last_agent_message": "STALE"})
                open("stale-events-queued", "w").close()  # in the server's cwd: the test waits for it
            return
        elif text == "error":
            self._emit(sub_id, {"type": "error", "message": "the model is unreachable"})
            self._emit(sub_id, {"type": "task_complete", "last_agent_message": None})
            return
        else:
            answer = "turn %d: %s" % (self._turns, text)
        self._emit(sub_id, {"type": "agent_message_delta", "delta": answer})
        self._emit(sub_id, {"type": "agent_message", "message": answer})
        self._emit(sub_id, {"type": "task_complete", "last_agent_message": answer})

    def next_event(self, timeout=None):
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            return None

    def interrupt(self):
        self._interrupted.set()

    def shutdown(self):
        self.shut_down = True
        self._interrupted.set()


def main(argv):
    args = codex._parse_args(["mcp"] + list(argv))
    return codex.run_mcp_server(args, codex.config_loader_for(args), session_factory=ScriptedSession)


if __name__ == "__main__":
    os.environ.setdefault("CODEX_HOME", os.getcwd())
    sys.exit(main(sys.argv[1:]))
