# -*- coding: utf-8 -*-
"""codex: a terminal coding agent, compatible with OpenAI's Codex CLI, in one file.

codex talks to a model over the OpenAI Responses API or any Chat Completions endpoint,
streams its answer, and runs the tools the model calls (shell commands, apply_patch file
edits, the plan tool, and the tools of configured MCP servers).  Every command is decided
by an approval policy and runs inside a sandbox: on Linux a tiny compiled helper applies
Landlock and seccomp and then execs the command; on macOS Seatbelt.  The front ends are
the interactive REPL, `codex exec` for automation, `codex mcp` (codex as an MCP server),
`codex proto` (ops and events over stdio) and `codex proxy` (an OpenAI-compatible
passthrough).

How data flows:

    CLI (§22) -> config (§04) -> session / agent loop (§16) -> provider (§07) <-> model
    agent loop -> tools (§09, §10) -> approval (§11) -> sandbox helper (§12) -> process (§13)
    front ends (§17-§21) drive a session through ops and events (§08)

Contents (each section uses only the sections above it):

    §01 Constants, paths and platform
    §02 Small utilities: logging, secrets, files
    §03 Errors and exit codes
    §04 Config: config.toml, -c overrides, profiles, providers
    §05 Auth: auth.json, login, logout
    §06 HTTP and SSE
    §07 Providers: Responses and Chat Completions
    §08 Protocol: ops and events
    §09 Tools: definitions and the shell tool
    §10 apply_patch: grammar, matching, applying
    §11 Safety: known-safe commands and approval decisions
    §12a Sandbox: macOS Seatbelt
    §12b Sandbox: the Linux helper
    §13 Exec: running a command
    §14a MCP client: JSON-RPC over stdio and streamable HTTP, tool names, results
    §14b MCP client: servers and the connection manager
    §14c Hooks: lifecycle hooks that fail closed
    §15a Agent: instructions and environment context
    §15b History and rollouts
    §16 Agent: the session and the turn loop
    §17 Front end: codex exec
    §17b Front end: code review (scopes, diffs, findings)
    §18a Front end: the REPL, its helpers and `@` file search
    §18b Front end: REPL rendering (streamed markdown, cells, status line)
    §18c Front end: the REPL composer (history, keys, completion)
    §18d Front end: the REPL session loop, approvals, slash commands
    §19 Front end: the MCP server
    §20 Front end: codex proto
    §21a Front end: codex proxy, the provider side
    §21b Front end: codex proxy, the server
    §22 CLI: parser, completions, main
"""

# Keep everything down to the version check parseable by old Pythons, so that a
# python3 older than 3.9 prints one clear sentence instead of a SyntaxError.
import sys

if sys.version_info < (3, 9):  # pragma: no cover - exercised by tests with old Pythons
    sys.stderr.write(
        "codex needs Python 3.9 or newer; this is Python %d.%d. "
        "Run it with a newer python3 (e.g. `python3.11 codex`).\n" % sys.version_info[:2]
    )
    sys.exit(1)

import os
import re
import json
import time
import errno
import fnmatch
import functools
import threading
from pathlib import Path

__version__ = "0.1.0"


###############################################################################
# §01 Constants, paths and platform
###############################################################################

_LINUX = sys.platform.startswith("linux")
_DARWIN = sys.platform == "darwin"

DEFAULT_MODEL = "codex-mini-latest"  #: model used when nothing else names one
DEFAULT_OSS_MODEL = "gpt-oss:20b"  #: model used with --oss when none is named
DEFAULT_PROJECT_DOC_MAX_BYTES = 32 * 1024  #: AGENTS.md budget (bytes)
ORIGINATOR = "codex_cli_py"  #: value of the `originator` header

APPROVAL_POLICIES = ("untrusted", "on-failure", "on-request", "never")  #: approval_policy values
APPROVAL_ALIASES = {"unless-allow-listed": "untrusted"}  #: older spellings still accepted
SANDBOX_MODES = ("read-only", "workspace-write", "danger-full-access")  #: sandbox_mode values
WIRE_APIS = ("responses", "chat")  #: model_providers.*.wire_api values
FILE_OPENERS = ("vscode", "vscode-insiders", "windsurf", "cursor", "none")  #: file_opener values
REASONING_EFFORTS = ("minimal", "low", "medium", "high", "none")  #: model_reasoning_effort values
REASONING_SUMMARIES = ("auto", "concise", "detailed", "none")  #: model_reasoning_summary values
VERBOSITIES = ("low", "medium", "high")  #: model_verbosity values
HISTORY_PERSISTENCE = ("save-all", "none")  #: history.persistence values
ENV_INHERIT = ("all", "core", "none")  #: shell_environment_policy.inherit values
LEGACY_SANDBOX_PERMISSIONS = (  #: sandbox_permissions entries (May-June 2025 configs)
    "disk-full-read-access",
    "disk-write-cwd",
    "disk-write-platform-user-temp-folder",
    "disk-write-platform-global-temp-folder",
    "disk-write-folder",
    "disk-full-write-access",
    "network-full-access",
)
LOG_LEVELS = ("error", "warn", "info", "debug", "trace")  #: CODEX_LOG / RUST_LOG levels


def system_config_dir(environ=None):
    """The machine-wide config directory: $CODEX_SYSTEM_DIR (for tests and unusual layouts) or /etc/codex."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("CODEX_SYSTEM_DIR") or "/etc/codex")


def zipapp_paths():
    """Where codex's own code lives when it runs as the one-file zipapp (dist/codex), else None.

    A dict of absolute Paths: `archive` (the codex file itself), `root` (the directory it
    unpacks into: $SHIV_ROOT, ~/.shiv or a private temp directory) and `unpacked` (this
    build's directory in `root`, whose site-packages/ holds codex.py and its dependencies).
    A command that could write or rename any of them could run code at codex's next start,
    so the sandbox keeps them read-only.  The zipapp's __main__ (build.py) records them.
    """
    recorded = getattr(sys.modules.get("__main__"), "CODEX_ZIPAPP", None)
    if not isinstance(recorded, dict):
        return None
    return {key: Path(recorded[key]) for key in ("archive", "root", "unpacked")}


###############################################################################
# §02 Small utilities: logging, secrets, files
###############################################################################

#: names of environment variables whose values are secrets wherever they appear
_SECRET_NAME_RE = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.I)
#: shapes of secrets inside free text (bearer tokens, sk- keys, key=value pairs)
_SECRET_TEXT_RES = (
    re.compile(r"(?i)(authorization\s*[:=]\s*)(bearer\s+)?[^\s,'\"}]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"()\bsk-[A-Za-z0-9_-]{8,}"),
    re.compile(r"(?i)((?:api[_-]?key|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s,'\"}&]+"),
)


def redact(text):
    """Return `text` with anything that looks like a key or token replaced by ***."""
    text = str(text)
    for pattern in _SECRET_TEXT_RES:
        text = pattern.sub(lambda m: (m.group(1) or "") + "***", text)
    return text


def redact_headers(headers):
    """Return a copy of a header mapping safe to log."""
    out = {}
    for name, value in dict(headers).items():
        out[name] = "***" if _SECRET_NAME_RE.search(name) else redact(value)
    return out


_LOGGER = None


class _RedactingFormatter(object):
    """Formats log records and strips secrets from them (wraps logging.Formatter)."""

    def __init__(self, fmt):
        import logging

        self._inner = logging.Formatter(fmt)

    def format(self, record):
        return redact(self._inner.format(record))


def setup_logging(home=None, to_stderr=False, environ=None):
    """Turn on logging when CODEX_LOG or RUST_LOG asks for it; return the logger."""
    global _LOGGER
    import logging  # startup budget: only when logging is on or asked for

    environ = os.environ if environ is None else environ
    logger = logging.getLogger("codex")
    _LOGGER = logger
    spec = (environ.get("CODEX_LOG") or environ.get("RUST_LOG") or "").strip().lower()
    # RUST_LOG may read "codex_core=debug,info"; take the most verbose level named.
    levels = [part.split("=")[-1] for part in spec.split(",") if part.strip()]
    names = [lvl for lvl in levels if lvl in LOG_LEVELS]
    if not names:
        logger.addHandler(logging.NullHandler())
        logger.setLevel(logging.CRITICAL + 1)
        return logger
    level_name = max(names, key=LOG_LEVELS.index)
    level = {
        "error": logging.ERROR,
        "warn": logging.WARNING,
        "info": logging.INFO,
        "debug": logging.DEBUG,
        "trace": 5,
    }[level_name]
    logger.setLevel(level)
    fmt = _RedactingFormatter("%(asctime)s %(levelname)s %(threadName)s %(message)s")
    if home is not None:
        try:
            log_dir = Path(home) / "log"
            make_private_dirs(log_dir)
            path = log_dir / "codex.log"
            fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.chmod(str(path), 0o600)
            handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
            handler.setFormatter(fmt)
            logger.addHandler(handler)
        except OSError as exc:
            sys.stderr.write("codex: cannot open log file under %s: %s\n" % (home, exc))
    if to_stderr:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    return logger


def log(level, msg, *args):
    """Log through the codex logger if logging was set up; cheap no-op otherwise."""
    if _LOGGER is not None:
        _LOGGER.log({"trace": 5, "debug": 10, "info": 20, "warn": 30, "error": 40}[level], msg, *args)


def make_private_dirs(path):
    """Create `path` and any missing parents, each new one mode 0700 (owner only)."""
    path = Path(path)
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            os.mkdir(str(directory), 0o700)
        except FileExistsError:
            pass


def _create_temp_beside(name, mode, dir_fd=None):
    """Create a new empty file next to `name` (in `dir_fd` when given); returns (fd, temp name).

    A fresh random name opened O_EXCL|O_NOFOLLOW: never a file or a symlink that a sandboxed
    command planted at a predictable name (".x.tmp.<pid>") pointing outside the writable roots.
    """
    head, tail = os.path.split(str(name))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(head, ".%s.codex-tmp.%s" % (tail, os.urandom(8).hex()))
        try:
            return os.open(tmp, flags, mode, dir_fd=dir_fd), tmp
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, "cannot create a temporary file", head or ".")


class OutputFile(object):
    """A file the user named for codex to write at the end of a run (`--output-last-message`).

    Codex writes it unconfined, and it usually lies where sandboxed commands write (the
    workspace, /tmp), so nothing a command did in between is trusted: the directory is opened
    here, before any command runs (a directory swapped for a symlink later changes nothing),
    and write() puts a new file in it and renames it over the name -- never writing through a
    symlink or a hard link a command planted there.  A symlink at the name is refused.
    """

    def __init__(self, path, what):
        self.path = str(path)
        self.what = what  # how the user named it, for messages ("--output-last-message FILE")
        full = os.path.abspath(os.path.expanduser(self.path))
        self.name = os.path.basename(full)
        flags = getattr(os, "O_PATH", os.O_RDONLY) | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
        self.dir_fd = os.open(os.path.dirname(full), flags)  # OSError: the caller says what is wrong
        self.check()

    def check(self):
        """Raise OSError (with a sentence as strerror) unless the name is free or a regular file."""
        import stat

        try:
            st = os.lstat(self.name, dir_fd=self.dir_fd)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(self.name, dir_fd=self.dir_fd)
            raise OSError(errno.ELOOP, "it is a symbolic link (to %s), which a sandboxed command may have planted; "
                                       "codex does not write through it: remove it or name another file" % target)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL,
                          "it is not a regular file; name a file")
        return st

    def write(self, text):
        """Replace the file with `text` (UTF-8), keeping an existing file's permission bits."""
        st = self.check()
        fd, tmp = _create_temp_beside(self.name, 0o666, dir_fd=self.dir_fd)  # umask applies, as for open()
        try:
            with os.fdopen(fd, "wb") as fh:
                if st is not None:
                    os.fchmod(fh.fileno(), st.st_mode & 0o777)
                fh.write(text.encode("utf-8"))
            os.replace(tmp, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=self.dir_fd)
            except OSError:
                pass
            raise

    def close(self):
        if getattr(self, "dir_fd", None) is not None:
            os.close(self.dir_fd)
            self.dir_fd = None

    __del__ = close  # a run that failed before writing


def write_private_file(path, data, mode=0o600):
    """Atomically write `data` (str or bytes) to `path`, readable by the owner only."""
    path = Path(path)
    make_private_dirs(path.parent)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = _create_temp_beside(path, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(str(tmp), str(path))
    except BaseException:
        try:
            os.unlink(str(tmp))
        except OSError:
            pass
        raise


def open_private_append(path):
    """Open `path` for appending, creating it 0600; return a binary file object.  Never through
    a symlink at `path` (rollouts and logs are codex's own files: one there was planted)."""
    path = Path(path)
    make_private_dirs(path.parent)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o600)
    return os.fdopen(fd, "ab")


def _jsonable(value):
    """A copy of value that json.dumps accepts: str keys (also of read-only mappings), lists for
    tuples/sets, str for anything else (paths)."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def glob_match(pattern, name):
    """Case-insensitive glob match (`*`, `?`, `[...]`) used by env policies."""
    return fnmatch.fnmatchcase(name.upper(), pattern.upper())


#: escape sequences other than SGR colours, C0/C1 controls but tab and newline, lone CRs,
#: and bidi overrides: what untrusted text could use to drive or fool the user's terminal
_TERMINAL_UNSAFE_RE = re.compile(
    u"\x1b\\[[0-9;:]*m"                                   # SGR colour: kept
    u"|\x1b\\[[0-?]*[ -/]*[@-~]"                           # other CSI (clear screen, moves)
    u"|\x1b\\][^\x07\x1b]*(?:\x07|\x1b\\\\)?"            # OSC (title, clipboard, links)
    u"|\x1b[PX^_][^\x1b]*(?:\x1b\\\\)?"                    # DCS, SOS, PM, APC
    u"|\x1b.?"                                                # any other ESC
    u"|\r(?!\n)"                                             # a lone CR (overwrites the line)
    u"|[\x00-\x08\x0b-\x0c\x0e-\x1a\x1c-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
)


def terminal_safe(value):
    """Make model, command or server text safe to print on a terminal (recursing into dicts
    and lists): SGR colours stay, other escape sequences become visible, controls are escaped."""
    if isinstance(value, str):
        if not _TERMINAL_UNSAFE_RE.search(value):
            return value

        def fix(m):
            text = m.group()
            if text.startswith("\x1b[") and text.endswith("m") and re.match(u"^\x1b\\[[0-9;:]*m$", text):
                return text
            if text == "\r":
                return "\n"
            return "".join("\\x%02x" % ord(ch) if ord(ch) < 0x100 and not (" " <= ch <= "~") else
                           ("\\u%04x" % ord(ch) if ord(ch) >= 0x100 else ch) for ch in text)

        return _TERMINAL_UNSAFE_RE.sub(fix, value)
    if isinstance(value, dict):
        return {k: terminal_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [terminal_safe(v) for v in value]
    return value


def _now_iso():
    """UTC timestamp like 2025-07-01T12:34:56.789Z."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


class Record(object):
    """A declared, immutable value: what `dataclass(frozen=True)` gives, without importing
    dataclasses (and inspect) on the startup path.

    Fields are the class's annotations (in order, subclasses add theirs), defaults its class
    attributes.  Setting an attribute raises; `replace(**changes)` returns a changed copy.
    """

    _fields = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = [name for name in cls.__dict__.get("__annotations__", {}) if not name.startswith("_")]
        cls._fields = tuple(cls._fields) + tuple(name for name in own if name not in cls._fields)

    def __init__(self, **values):
        unknown = sorted(set(values) - set(self._fields))
        if unknown:
            raise TypeError("%s has no field %r" % (type(self).__name__, unknown[0]))
        for name in self._fields:
            if name in values:
                value = values[name]
            elif hasattr(type(self), name):
                value = getattr(type(self), name)
            else:
                raise TypeError("%s needs the field %r" % (type(self).__name__, name))
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError("%s is immutable; make a changed copy with .replace(%s=...)" % (type(self).__name__, name))

    def __delattr__(self, name):
        raise AttributeError("%s is immutable" % type(self).__name__)

    def replace(self, **changes):
        """A copy with `changes` applied (dataclasses.replace)."""
        values = {name: getattr(self, name) for name in self._fields}
        values.update(changes)
        return type(self)(**values)

    def __eq__(self, other):
        return type(other) is type(self) and all(getattr(self, n) == getattr(other, n) for n in self._fields)

    __hash__ = None

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join("%s=%r" % (n, getattr(self, n)) for n in self._fields))


def frozen_mapping(mapping):
    """A read-only view of a copy of `mapping` (for tables shared between front ends)."""
    import types

    return types.MappingProxyType(dict(mapping))


def read_regular_file(path, limit=4096):
    """The first `limit` bytes of `path` if it is a regular file, else None (never blocks).

    For files a sandboxed command may have planted that codex reads unsandboxed (git's
    `commondir`, `gitdir:` pointers, HEAD, packed-refs): a FIFO there would block codex for
    ever, /dev/zero would eat its memory.  Opened non-blocking, checked with fstat, capped."""
    import stat

    try:
        fd = os.open(str(path), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


###############################################################################
# §03 Errors and exit codes
###############################################################################


class CodexError(Exception):
    """Base of every error codex reports to the user as one line."""


class UsageError(CodexError):
    """Bad command-line usage."""


class ConfigError(CodexError):
    """Bad config.toml, -c override, profile or provider."""


class AuthError(CodexError):
    """Missing or unusable credentials."""


class ProviderError(CodexError):
    """The model provider failed or answered something we cannot use."""


class SandboxError(CodexError):
    """The sandbox cannot be set up or refused to run a command."""


class PatchError(CodexError):
    """An apply_patch input that does not parse or does not apply."""


class McpError(CodexError):
    """An MCP server failed, timed out, or broke the protocol."""


class TurnFailed(CodexError):
    """A turn ended in an error (exec exits 1)."""


#: CodexError subclass -> the process exit code main() uses; documented in the README
EXIT_CODES = {
    UsageError: 2,
    ConfigError: 2,
    AuthError: 1,
    ProviderError: 1,
    SandboxError: 1,
    PatchError: 1,
    McpError: 1,
    TurnFailed: 1,
    CodexError: 1,
}


###############################################################################
# §04 Config: config.toml, -c overrides, profiles, providers
###############################################################################

def codex_home(environ=None):
    """Return $CODEX_HOME (which must exist when set) or ~/.codex."""
    environ = os.environ if environ is None else environ
    value = environ.get("CODEX_HOME", "").strip()
    if value:
        path = Path(value).expanduser()
        if not path.is_dir():
            raise ConfigError(
                "CODEX_HOME=%s does not exist or is not a directory; create it or unset CODEX_HOME"
                % value
            )
        return path.resolve()
    home = environ.get("HOME") or os.path.expanduser("~")
    if not home or home == "~":
        raise ConfigError("cannot find the home directory; set HOME or CODEX_HOME")
    return Path(home) / ".codex"


#: keys a profile may set (anything else in a profile is warned about)
PROFILE_KEYS = (
    "model",
    "model_provider",
    "approval_policy",
    "sandbox_mode",
    "disable_response_storage",
    "model_reasoning_effort",
    "model_reasoning_summary",
    "model_verbosity",
    "chatgpt_base_url",
    "experimental_instructions_file",
    "model_instructions_file",
)

#: top-level config keys: key -> (type check name, default, allowed values or None)
CONFIG_KEYS = {
    "model": ("str", None, None),
    "model_provider": ("str", "openai", None),
    "model_providers": ("table", {}, None),
    "profile": ("str", None, None),
    "profiles": ("table", {}, None),
    "approval_policy": ("str", "untrusted", APPROVAL_POLICIES),
    "sandbox_mode": ("str", "read-only", SANDBOX_MODES),
    "sandbox_workspace_write": ("table", {}, None),
    "sandbox_permissions": ("list", None, None),
    "shell_environment_policy": ("table", {}, None),
    "disable_response_storage": ("bool", False, None),
    "notify": ("list", None, None),
    "instructions": ("str", None, None),
    "experimental_instructions_file": ("str", None, None),
    "mcp_servers": ("table", {}, None),
    "project_doc_max_bytes": ("int", DEFAULT_PROJECT_DOC_MAX_BYTES, None),
    "history": ("table", {}, None),
    "file_opener": ("str", "vscode", FILE_OPENERS),
    "tui": ("table", {}, None),
    "hide_agent_reasoning": ("bool", False, None),
    "show_raw_agent_reasoning": ("bool", False, None),
    "model_reasoning_effort": ("str", None, REASONING_EFFORTS),
    "model_reasoning_summary": ("str", "auto", REASONING_SUMMARIES),
    "model_verbosity": ("str", None, VERBOSITIES),
    "model_supports_reasoning_summaries": ("bool", None, None),
    "model_reasoning_summary_format": ("str", None, ("none", "experimental")),
    "model_context_window": ("int", None, None),
    "model_max_output_tokens": ("int", None, None),
    "model_auto_compact_token_limit": ("int", None, None),
    "chatgpt_base_url": ("str", "https://chatgpt.com/backend-api/", None),
    "experimental_resume": ("str", None, None),
    "experimental_use_exec_command_tool": ("bool", False, None),
    "responses_originator_header_internal_override": ("str", None, None),
    "preferred_auth_method": ("str", "apikey", ("chatgpt", "apikey")),
    "projects": ("table", {}, None),
    "hooks": ("table", {}, None),
    "model_instructions_file": ("str", None, None),
    "project_root_markers": ("list", [".git"], None),
    "project_doc_fallback_filenames": ("list", [], None),
    "tools": ("table", {}, None),
    "disable_paste_burst": ("bool", False, None),
    "include_plan_tool": ("bool", True, None),
    # local models and runaway turns (docs/local-models.md)
    "shell_login": ("bool", False, None),  # run `bash -lc` scripts and shell_command as login shells
    "compact_prompt": ("bool", None, None),  # short base prompt and tool texts (None: when the window is small)
    "file_tools": ("bool", None, None),  # offer write_file and edit_file (None: with the compact prompt)
    "follow_up_nudges": ("int", None, None),  # follow-ups after a turn ending on a failed command or an unmade change
    "max_repeated_tool_calls": ("int", 4, None),  # the same call N times in a row stops the turn (0: off)
    "max_tool_calls_per_turn": ("int", 150, None),  # more calls in one turn stop it (0: off)
    "max_command_timeout_ms": ("int", 3600000, None),  # the longest timeout a model's command gets (1 h)
    # accepted from very early builds, ignored once per-provider settings landed
    "request_max_retries": ("int", None, None),
    "stream_max_retries": ("int", None, None),
    "stream_idle_timeout_ms": ("int", None, None),
}

#: accepted keys codex does not act on: key -> (the value that would ask for something, why);
#: load_config reports such a setting once, as a warning, instead of ignoring it silently
INERT_KEYS = {
    "model_reasoning_summary_format": ("experimental", "codex shows reasoning summaries as the model streams them"),
    "experimental_use_exec_command_tool": (True, "codex offers the `shell` tool; PTY sessions "
                                                 "(exec_command/write_stdin) are not implemented"),
    "preferred_auth_method": ("chatgpt", "ChatGPT sign-in is not supported; codex uses an API key "
                                         "(`codex login --api-key`, or the provider's env_key)"),
    "disable_paste_burst": (True, "the composer takes pastes whole (bracketed paste); there is no "
                                  "paste-burst detection to turn off"),
}

#: fields of [sandbox_workspace_write]
SANDBOX_WORKSPACE_WRITE_KEYS = {
    "writable_roots": ("list", []),
    "network_access": ("bool", False),
    "exclude_tmpdir_env_var": ("bool", False),
    "exclude_slash_tmp": ("bool", False),
}

#: fields of [shell_environment_policy]
SHELL_ENV_POLICY_KEYS = {
    "inherit": ("str", "all"),
    "ignore_default_excludes": ("bool", False),
    "exclude": ("list", []),
    "set": ("table", {}),
    "include_only": ("list", []),
    "experimental_use_profile": ("bool", False),
}

#: fields of [history]
HISTORY_KEYS = {"persistence": ("str", "save-all"), "max_bytes": ("int", None)}

#: fields of [tui]
TUI_KEYS = {"disable_mouse_capture": ("bool", True), "notifications": ("any", False)}

#: fields of [mcp_servers.NAME]
MCP_SERVER_KEYS = {
    "command": ("str", None),  # stdio: the program to start
    "args": ("list", []),
    "env": ("table", {}),
    "env_vars": ("list", []),  # stdio: names of parent variables passed through as well
    "cwd": ("str", None),
    "url": ("str", None),  # streamable HTTP: the server's endpoint
    "bearer_token_env_var": ("str", None),
    "http_headers": ("table", {}),
    "env_http_headers": ("table", {}),  # header -> name of the variable holding its value
    "transport": ("str", None),  # optional: stdio | streamable_http (else taken from command/url)
    "startup_timeout_sec": ("number", 10),
    "startup_timeout_ms": ("int", None),
    "tool_timeout_sec": ("number", 60),
    "enabled": ("bool", True),
    "required": ("bool", False),
    "enabled_tools": ("list", None),  # allow-list of tool names (None: all)
    "disabled_tools": ("list", []),
}
MCP_TRANSPORTS = ("stdio", "streamable_http")  #: mcp_servers.*.transport values
_MCP_TRANSPORT_ALIASES = {"http": "streamable_http", "streamable-http": "streamable_http"}
_MCP_STDIO_ONLY = ("command", "args", "env", "env_vars", "cwd")
_MCP_HTTP_ONLY = ("url", "bearer_token_env_var", "http_headers", "env_http_headers")

#: fields of [model_providers.NAME] with defaults for user-defined providers
PROVIDER_KEYS = {
    "name": ("str", None),
    "base_url": ("str", None),
    "env_key": ("str", None),
    "env_key_instructions": ("str", None),
    "wire_api": ("str", "chat"),
    "query_params": ("table", {}),
    "http_headers": ("table", {}),
    "env_http_headers": ("table", {}),
    "request_max_retries": ("int", 4),
    "stream_max_retries": ("int", 5),
    "stream_idle_timeout_ms": ("int", 300000),
    "requires_openai_auth": ("bool", False),
    # local models (docs/local-models.md): None = the default for the provider's wire_api
    "recover_tool_calls": ("bool", None),  # calls written as text become calls (Chat only; default on)
    "shell_tool": ("str", None),  # "shell" (argv) or "shell_command" (a string; default for Chat)
}
SHELL_TOOLS = ("shell", "shell_command")  #: model_providers.*.shell_tool values

_MAX_RETRIES_CAP = 100  #: upstream caps both retry knobs at 100


class ProviderInfo(object):
    """One model provider: where to send requests and how to authenticate."""

    def __init__(self, id, **fields):
        self.id = id
        for key, (_kind, default) in PROVIDER_KEYS.items():
            value = fields.get(key, default)
            setattr(self, key, dict(value) if isinstance(value, dict) else value)
        if self.name is None:
            self.name = id
        self.request_max_retries = min(int(self.request_max_retries), _MAX_RETRIES_CAP)
        self.stream_max_retries = min(int(self.stream_max_retries), _MAX_RETRIES_CAP)

    def __repr__(self):
        return "ProviderInfo(%r, base_url=%r, wire_api=%r)" % (self.id, self.base_url, self.wire_api)

    def url(self, path):
        """Full URL for an endpoint path such as `/responses`, with query_params appended."""
        from urllib.parse import urlencode

        base = (self.base_url or "https://api.openai.com/v1").rstrip("/")
        url = base + "/" + path.lstrip("/")
        if self.query_params:
            url += ("&" if "?" in url else "?") + urlencode(self.query_params)
        return url

    def api_key(self, home=None, environ=None):
        """The key to send: env_key's variable, else auth.json's key; None if neither."""
        environ = os.environ if environ is None else environ
        if self.env_key:
            value = environ.get(self.env_key, "").strip()
            if value:
                return value
        if home is not None and (self.env_key or self.requires_openai_auth):
            auth = read_auth(home)
            if auth and auth.get("OPENAI_API_KEY"):
                return auth["OPENAI_API_KEY"]
        return None

    def require_api_key(self, home=None, environ=None):
        """Like api_key() but raise AuthError naming the variable when a key is needed."""
        key = self.api_key(home, environ)
        if key is None and self.env_key:
            msg = "missing API key for provider `%s`: set the environment variable %s or run `codex login --api-key KEY`" % (
                self.id,
                self.env_key,
            )
            if self.env_key_instructions:
                msg += " (%s)" % self.env_key_instructions
            raise AuthError(msg)
        return key

    def headers(self, home=None, environ=None):
        """Static and environment-derived headers, plus Authorization when a key exists."""
        environ = os.environ if environ is None else environ
        out = {str(k): str(v) for k, v in self.http_headers.items()}
        for header, value in out.items():
            if not (_is_ascii(header) and _is_ascii(value)):
                raise ConfigError("`model_providers.%s.http_headers.%s`: HTTP headers carry ASCII only; fix the name or value"
                                  % (self.id, _valid_ascii_repr(header)))
        for header, var in self.env_http_headers.items():
            value = environ.get(str(var), "").strip()
            if value:
                if not _is_ascii(value):
                    raise ConfigError("environment variable %s (sent as header %s) is not ASCII; fix its value" % (var, header))
                out[str(header)] = value
        key = self.require_api_key(home, environ)
        if key:
            if not _is_ascii(key):
                # never echo the key; a typographic quote or a non-breaking space from copy-paste is the usual cause
                raise AuthError("the API key for provider `%s` contains non-ASCII characters (a stray character from "
                                "copy-paste?): set %s again or run `codex login --api-key KEY`"
                                % (self.id, self.env_key or "the key"))
            out["Authorization"] = "Bearer " + key
        return out


def _is_ascii(text):
    """Whether `text` is encodable as ASCII (what HTTP header values may carry)."""
    try:
        str(text).encode("ascii")
        return True
    except UnicodeEncodeError:
        return False


def _valid_ascii_repr(text):
    """`text` with non-ASCII shown as escapes (for error messages)."""
    return str(text).encode("ascii", "backslashreplace").decode("ascii")


def builtin_providers(environ=None):
    """The providers every config has: openai (Responses) and ollama/oss (Chat)."""
    environ = os.environ if environ is None else environ
    openai_base = environ.get("OPENAI_BASE_URL", "").strip() or "https://api.openai.com/v1"
    oss_base = environ.get("CODEX_OSS_BASE_URL", "").strip()
    if not oss_base:
        oss_base = "http://localhost:%s/v1" % (environ.get("CODEX_OSS_PORT", "").strip() or "11434")
    return {
        "openai": ProviderInfo(
            "openai",
            name="OpenAI",
            base_url=openai_base,
            env_key="OPENAI_API_KEY",
            env_key_instructions="Create an API key (https://platform.openai.com) and export it as an environment variable.",
            wire_api="responses",
            http_headers={"originator": ORIGINATOR, "version": __version__},
            env_http_headers={"OpenAI-Organization": "OPENAI_ORGANIZATION", "OpenAI-Project": "OPENAI_PROJECT"},
            requires_openai_auth=True,
        ),
        "ollama": ProviderInfo("ollama", name="Ollama", base_url=oss_base, wire_api="chat"),
        "oss": ProviderInfo("oss", name="gpt-oss", base_url=oss_base, wire_api="chat"),
    }


class Config(Record):
    """The resolved configuration of one session (see load_config): declared, typed, immutable.

    Every top-level key of CONFIG_KEYS is a field (load_config fails loudly on one that is not
    declared here), plus what load_config derives.  Nothing changes a Config after load: a
    front end that overrides something builds a new TurnContext (§15a) or a `replace()`d copy.
    """

    # where it came from
    codex_home: Path
    config_path: Path
    cwd: Path
    profile: "str | None"
    sources: "Mapping[str, str]"  # top-level key -> "default" | "config.toml" | "profile NAME" | "-c" | "flag"
    warnings: "tuple[str, ...]"
    # the model and its provider
    model: str
    model_provider: str
    model_providers: dict
    provider: "ProviderInfo"
    providers: "dict[str, ProviderInfo]"
    profiles: dict
    model_reasoning_effort: "str | None"
    model_reasoning_summary: str
    model_verbosity: "str | None"
    model_supports_reasoning_summaries: "bool | None"
    model_reasoning_summary_format: "str | None"
    model_context_window: "int | None"
    model_max_output_tokens: "int | None"
    model_auto_compact_token_limit: "int | None"
    disable_response_storage: bool
    chatgpt_base_url: str
    preferred_auth_method: str
    responses_originator_header_internal_override: "str | None"
    # approvals and the sandbox (the effective policy is `sandbox_policy`)
    approval_policy: str
    sandbox_mode: str
    sandbox_workspace_write: dict
    sandbox_permissions: "list[str] | None"
    dangerously_bypass: bool
    shell_environment_policy: dict
    # instructions and tools
    instructions: "str | None"
    base_instructions: "str | None"
    experimental_instructions_file: "str | None"
    project_doc_max_bytes: int
    include_plan_tool: bool
    tools: dict
    compact_prompt: "bool | None"  # the short base prompt and tool texts (None: when the window is small)
    file_tools: "bool | None"  # offer write_file and edit_file (None: with the compact prompt)
    follow_up_nudges: "int | None"  # follow-ups for a turn ending on a failure or an unmade change (None: 2 compact, else 0)
    shell_login: bool  # scripts run in a login shell (bash -lc)
    # runaway turns (0: no limit)
    max_repeated_tool_calls: int
    max_tool_calls_per_turn: int
    max_command_timeout_ms: int  # a model's timeout_ms above it is capped (and the model told)
    experimental_use_exec_command_tool: bool
    mcp_servers: dict
    # front ends
    notify: "list[str] | None"
    history: dict
    file_opener: str
    tui: dict
    hide_agent_reasoning: bool
    show_raw_agent_reasoning: bool
    disable_paste_burst: bool
    experimental_resume: "str | None"
    projects: dict
    hooks: "tuple[Hook, ...]"  # every configured hook, system first (see load_hooks)
    model_instructions_file: "str | None"  # upstream's newer name of experimental_instructions_file
    project_root_markers: "list[str]"
    project_doc_fallback_filenames: "list[str]"
    project_root: "Path | None"  # the project codex runs in (project_root_markers), trusted or not
    trusted_project_root: "Path | None"  # the same when it is trusted (its .codex/ config, hooks, prompts apply)
    requirements: "Requirements"  # what /etc/codex/requirements.toml pins
    layer_paths: "Mapping[str, str]"  # layer label -> the file it was read from
    # accepted and ignored (warned about by load_config)
    request_max_retries: "int | None"
    stream_max_retries: "int | None"
    stream_idle_timeout_ms: "int | None"

    def __repr__(self):
        return "Config(model=%r, provider=%r, approval=%r, sandbox=%r, cwd=%r)" % (
            self.model,
            self.model_provider,
            self.approval_policy,
            self.sandbox_mode,
            str(self.cwd),
        )

    @property
    def sandbox_policy(self):
        """The SandboxPolicy this config asks for (sandbox_mode, [sandbox_workspace_write] or
        the legacy sandbox_permissions list); computed once per Config."""
        policy = self.__dict__.get("_sandbox_policy")
        if policy is None:
            policy = SandboxPolicy.from_config(self)
            pinned = self.requirements.clamp_sandbox(policy.mode)
            if pinned != policy.mode:  # e.g. the legacy sandbox_permissions asked for more than is allowed
                _notice("sandbox mode %r is not allowed by %s; using %r" % (policy.mode, " or ".join(self.requirements.paths), pinned))
                policy = SandboxPolicy.from_wire(dict(self.sandbox_workspace_write or {}, mode=pinned), self.cwd)
            object.__setattr__(self, "_sandbox_policy", policy)
        return policy

    @property
    def network_access(self):
        """Whether commands may use the network under this config's sandbox."""
        return self.sandbox_policy.has_network()


class ConfigOverrides(object):
    """Values from dedicated CLI flags (or MCP tool parameters); None means unset."""

    def __init__(
        self,
        model=None,
        model_provider=None,
        approval_policy=None,
        sandbox_mode=None,
        cwd=None,
        profile=None,
        base_instructions=None,
        include_plan_tool=None,
        dangerously_bypass=False,
        oss=False,
        ignore_user_config=False,
        trust=False,
    ):
        self.model = model
        self.model_provider = model_provider
        self.approval_policy = approval_policy
        self.sandbox_mode = sandbox_mode
        self.cwd = cwd
        self.profile = profile
        self.base_instructions = base_instructions
        self.include_plan_tool = include_plan_tool
        self.dangerously_bypass = dangerously_bypass
        self.oss = oss
        self.ignore_user_config = ignore_user_config  # exec --ignore-user-config: skip config.toml
        self.trust = trust  # --trust: apply the project's .codex/config.toml this once


def _load_toml_module():
    """tomllib on 3.11+, else the vendored tomli (startup budget: imported on demand)."""
    try:
        import tomllib  # type: ignore
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore
    return tomllib


def parse_toml(text, where):
    """Parse TOML text; errors become ConfigError 'WHERE:LINE:COL: message'."""
    tomllib = _load_toml_module()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        if m:
            msg = msg[: m.start()].strip()
            raise ConfigError("%s:%s:%s: %s" % (where, m.group(1), m.group(2), msg))
        raise ConfigError("%s: %s" % (where, msg))


def parse_config_override(arg):
    """Split one `-c key=value` into (dotted key list, value); value parsed as TOML."""
    if "=" not in arg:
        raise ConfigError("invalid -c override %r: expected key=value" % arg)
    key, value = arg.split("=", 1)
    key, value = key.strip(), value.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError("invalid -c override %r: empty key" % arg)
    tomllib = _load_toml_module()
    try:
        parsed = tomllib.loads("_x_ = " + value)["_x_"]
    except tomllib.TOMLDecodeError:
        parsed = value  # not TOML: the literal text, as upstream does
    return key.split("."), parsed


def _set_dotted(tree, parts, value):
    """Set tree[a][b][c] = value, creating (or replacing non-table) intermediates."""
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _deep_merge(base, top):
    """Return base with top merged over it; tables merge, everything else replaces."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


_TYPE_NAMES = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}


def _check_type(where, key, value, kind):
    """Raise ConfigError unless value has the config type `kind`."""
    ok = {
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "list": isinstance(value, list),
        "table": isinstance(value, dict),
        "any": True,
    }[kind]
    if not ok:
        want = {"str": "a string", "bool": "true or false", "int": "an integer", "number": "a number", "list": "an array", "table": "a table"}[kind]
        got = _TYPE_NAMES.get(type(value), type(value).__name__)
        raise ConfigError("%s: `%s` must be %s, not %s %r" % (where, key, want, got, value))


def _check_enum(where, key, value, allowed):
    """Raise ConfigError naming the key, the bad value and the allowed values."""
    if value not in allowed:
        raise ConfigError(
            "%s: `%s` = %r is not allowed; use one of: %s" % (where, key, value, ", ".join(allowed))
        )


def _unknown_key(where, shown, key, known):
    """The one-line warning for an unknown config key, naming the closest known one (a typo
    such as `-c model_reasoning_efort=high` is otherwise silently ignored)."""
    import difflib

    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    hint = "; did you mean `%s%s`?" % (shown[:len(shown) - len(key)], close[0]) if close else ""
    return "%s: unknown key `%s` (ignored)%s" % (where, shown, hint)


def _check_table(where, prefix, table, spec, warnings):
    """Type-check a nested table against spec {key: (kind, default)}; fill defaults."""
    out = {}
    for key, value in table.items():
        if key not in spec:
            warnings.append(_unknown_key(where, "%s.%s" % (prefix, key), key, spec))
            continue
        _check_type(where, "%s.%s" % (prefix, key), value, spec[key][0])
        out[key] = value
    for key, (_kind, default) in spec.items():
        out.setdefault(key, list(default) if isinstance(default, list) else (dict(default) if isinstance(default, dict) else default))
    return out


def _normalize_approval(value, where, key="approval_policy"):
    """Map aliases (unless-allow-listed) and validate an approval policy value."""
    value = APPROVAL_ALIASES.get(value, value)
    _check_enum(where, key, value, APPROVAL_POLICIES)
    return value


def read_config_file(home, name="config.toml"):
    """Read and parse DIR/config.toml (or DIR/NAME); a missing file is an empty table."""
    path = Path(home) / name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, path
    except UnicodeDecodeError as exc:
        raise ConfigError("%s: not valid UTF-8 (%s); save it as UTF-8" % (path, exc.reason))
    except OSError as exc:
        raise ConfigError("%s: cannot read (%s)" % (path, exc.strerror or exc))
    return parse_toml(text, str(path)), path


# -- editing config.toml in place (`codex mcp add/remove`) ------------------------------
#
# tomllib only reads, so a table is edited as text: find its header lines (outside strings
# and multi-line arrays), replace or drop their lines, and check by parsing the result that
# exactly the intended change was made.  Comments, order and formatting elsewhere stay.

_TOML_BARE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_key(part):
    """One key segment: bare when it can be, else a quoted basic string."""
    return part if _TOML_BARE_KEY_RE.match(part) else toml_value(part)


def toml_value(value):
    """A TOML literal for a str, bool, int, float, list or dict (inline table)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):  # JSON's escapes are TOML's; DEL must be escaped too
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join("%s = %s" % (toml_key(str(k)), toml_value(v)) for k, v in value.items()) + " }"
    raise TypeError("cannot write %r as TOML" % (value,))


def _toml_header_lines(text):
    """[(line index, [key parts])] of every table header ([a.b] and [[a.b]]) in TOML text.

    A small scanner keeps track of strings (all four kinds), comments and brackets, so a `[`
    inside a multi-line string or array is not taken for a header.
    """
    headers = []
    in_ml = None  # the closing quotes while inside a multi-line string
    depth = 0  # open [ / { of values spanning lines
    for index, line in enumerate(text.split("\n")):
        i, n = 0, len(line)
        if in_ml is None and depth == 0 and line.lstrip().startswith("["):
            parts = _toml_parse_header(line.strip())
            if parts is not None:
                headers.append((index, parts))
                continue
        while i < n:
            if in_ml is not None:
                end = line.find(in_ml, i)
                if end < 0:
                    break
                i = end + 3
                while i < n and line[i] == in_ml[0]:  # up to two more quotes end the string
                    i += 1
                in_ml = None
                continue
            c = line[i]
            if c == "#":
                break
            if line.startswith('"' * 3, i) or line.startswith("'" * 3, i):
                in_ml = line[i:i + 3]
                i += 3
                continue
            if c == '"':
                i += 1
                while i < n and line[i] != '"':
                    i += 2 if line[i] == "\\" else 1
                i += 1
                continue
            if c == "'":
                end = line.find("'", i + 1)
                i = n if end < 0 else end + 1
                continue
            if c in "[{":
                depth += 1
            elif c in "]}":
                depth = max(0, depth - 1)
            i += 1
    return headers


def _toml_parse_header(stripped):
    """Key parts of a header line such as `[a."b c".d]  # note`, or None if it is not one."""
    double = stripped.startswith("[[")
    i = 2 if double else 1
    parts, n = [], len(stripped)
    while True:
        while i < n and stripped[i] in " \t":
            i += 1
        if i >= n:
            return None
        c = stripped[i]
        if c == '"':
            j = i + 1
            while j < n and stripped[j] != '"':
                j += 2 if stripped[j] == "\\" else 1
            try:
                parts.append(json.loads(stripped[i:j + 1]))
            except ValueError:
                return None
            i = j + 1
        elif c == "'":
            j = stripped.find("'", i + 1)
            if j < 0:
                return None
            parts.append(stripped[i + 1:j])
            i = j + 1
        else:
            m = re.match(r"[A-Za-z0-9_-]+", stripped[i:])
            if not m:
                return None
            parts.append(m.group(0))
            i += m.end()
        while i < n and stripped[i] in " \t":
            i += 1
        if i < n and stripped[i] == ".":
            i += 1
            continue
        close = "]]" if double else "]"
        if not stripped.startswith(close, i):
            return None
        rest = stripped[i + len(close):].strip()
        return parts if not rest or rest.startswith("#") else None


def edit_config_table(path, key_parts, body_lines):
    """Replace (or, with body_lines None, remove) the table `key_parts` in a TOML file, in place.

    The table's header line and its lines up to the next header go, along with its
    sub-tables and the comment lines directly above its header; `body_lines` (key = value
    lines) are written where it was, or appended at the end.  Everything else stays as it
    was.  The result is parsed to check that it holds exactly the intended change, then
    written atomically with mode 0600 (through a symlink, to its target).  Returns True if
    the table was there before.  Raises ConfigError for a file that does not parse, or
    that defines the table in a form this cannot rewrite (inline or dotted keys).
    """
    path = Path(os.path.realpath(str(path)))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("%s: cannot read (%s)" % (path, getattr(exc, "strerror", None) or exc))
    try:
        before = parse_toml(text, str(path))
    except ConfigError as exc:
        raise ConfigError("%s; not editing a file that does not parse: fix it first" % exc)
    node = before
    for part in key_parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    existed = isinstance(node, dict) and key_parts[-1] in node
    if not existed and body_lines is None:
        return False  # nothing to remove: the file is not touched
    lines = text.split("\n")
    headers = _toml_header_lines(text)
    drop = set()
    insert_at = None
    for pos, (index, parts) in enumerate(headers):
        if parts[:len(key_parts)] != list(key_parts):
            continue
        end = headers[pos + 1][0] if pos + 1 < len(headers) else len(lines)
        while end > index + 1 and lines[end - 1].lstrip().startswith("#"):
            end -= 1  # comments right above the next header belong to it
        begin = index
        while begin > 0 and lines[begin - 1].lstrip().startswith("#") and (begin - 1) not in drop:
            begin -= 1  # ... and those right above ours, to ours
        drop.update(range(begin, end))
        if insert_at is None:
            insert_at = begin
    table = ["[%s]" % ".".join(toml_key(p) for p in key_parts)] + list(body_lines or [])
    new_lines = []
    for index, line in enumerate(lines):
        if index == insert_at and body_lines is not None:
            new_lines.extend(table + [""])
        if index not in drop:
            new_lines.append(line)
    if body_lines is not None and insert_at is None:
        while new_lines and not new_lines[-1].strip():
            new_lines.pop()
        if new_lines:
            new_lines.append("")
        new_lines.extend(table)
    new_text = "\n".join(new_lines).rstrip("\n")
    new_text = new_text + "\n" if new_text.strip() else ""
    expected = json.loads(json.dumps(before, default=str))
    node = expected
    for part in key_parts[:-1]:
        node = node.setdefault(part, {})
    node.pop(key_parts[-1], None)
    if body_lines is not None:
        node[key_parts[-1]] = json.loads(json.dumps(parse_toml("\n".join(body_lines), "the new table"), default=str))
    try:
        after = json.loads(json.dumps(parse_toml(new_text, str(path)), default=str))
    except ConfigError:
        after = None

    def prune(tree):  # an emptied parent table ([mcp_servers]) may stay or go
        for depth in range(len(key_parts) - 1, 0, -1):
            node = tree
            for part in key_parts[:depth - 1]:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict) and node.get(key_parts[depth - 1]) == {}:
                del node[key_parts[depth - 1]]
        return tree

    if after is None or prune(after) != prune(expected):
        raise ConfigError("%s: `%s` is written in a form codex cannot rewrite in place (an inline table or dotted "
                          "keys); edit it by hand" % (path, ".".join(key_parts)))
    write_private_file(path, new_text)
    return existed


def _check_utf8(place, key, value):
    """ConfigError when a command-line string holds bytes that are not UTF-8 (surrogate escapes)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError("%s: `%s` is not valid UTF-8; pass it as UTF-8 text" % (place, key))
    elif isinstance(value, dict):
        for sub, item in value.items():
            _check_utf8(place, "%s.%s" % (key, sub), item)
    elif isinstance(value, list):
        for item in value:
            _check_utf8(place, key, item)


#: config layers from lowest to highest (the values of Config.sources)
_SOURCE_RANKS = ("default", "system", "config.toml", "profile", "project", "-c", "flag", "requirements")


def _source_rank(source):
    """How high a Config.sources value's layer is (profile layers are named `profile NAME`)."""
    source = source or "default"
    return _SOURCE_RANKS.index("profile" if source.startswith("profile ") else source) if (
        source.startswith("profile ") or source in _SOURCE_RANKS) else len(_SOURCE_RANKS)


# -- hooks ([hooks] tables and hooks.json files; run by §14c) --

HOOK_EVENTS = ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "PreCompact")  #: events
HOOK_TOOL_EVENTS = ("PreToolUse", "PostToolUse")  #: events whose `matcher` is matched against the tool name
HOOK_DEFAULT_TIMEOUT_S = 60  #: seconds a hook may run unless it sets `timeout`
HOOKS_FILE = "hooks.json"  #: hook file name in $CODEX_HOME, the system dir and a trusted project's .codex
#: fields of one hook in config.toml or hooks.json
HOOK_KEYS = {"type": "str", "command": "str|list", "matcher": "str", "timeout": "number", "fail_closed": "bool",
             "hooks": "list"}
_SHELL_SYNTAX_RE = re.compile(r"[|&;<>()$`\\\"'*?\[\]#~=%\n]")


class Hook(object):
    """One configured hook: which event, which tools, what to run, and how to fail."""

    def __init__(self, event, argv, matcher=None, timeout=HOOK_DEFAULT_TIMEOUT_S, fail_closed=True, source=""):
        self.event = event
        self.argv = argv
        self.matcher = matcher
        self.timeout = timeout
        self.fail_closed = fail_closed
        self.source = source  # "file.json: hooks.PreToolUse[0]" for messages

    @property
    def name(self):
        """How messages name this hook: its program and where it was configured."""
        prog = self.argv[2] if self.argv[:2] == ["/bin/sh", "-c"] else " ".join(self.argv)
        return "`%s` (%s)" % (prog if len(prog) <= 60 else "..." + prog[-57:], self.source)

    def matches(self, tool_name):
        """Whether this hook runs for `tool_name` (always for events without tools)."""
        if self.event not in HOOK_TOOL_EVENTS or self.matcher in (None, "", "*"):
            return True
        return re.fullmatch(self.matcher, tool_name or "") is not None


def hook_argv(command, where):
    """argv for a hook's `command`: a list as is; a string split (or run by /bin/sh when it uses shell syntax)."""
    import shlex

    if isinstance(command, list) and command and all(isinstance(x, str) and x for x in command):
        return list(command)
    if isinstance(command, str) and command.strip():
        if _SHELL_SYNTAX_RE.search(command):
            return ["/bin/sh", "-c", command]
        return shlex.split(command)
    raise ConfigError("%s: `command` must be a non-empty string or array of strings (the program and its arguments)" % where)


def parse_hooks(table, where):
    """Hooks from a `{"EventName": [entry, ...]}` table (config.toml [hooks] or hooks.json's "hooks")."""
    if not isinstance(table, dict):
        raise ConfigError("%s: hooks must be a table of event names (%s)" % (where, ", ".join(HOOK_EVENTS)))
    hooks = []
    for event, entries in table.items():
        if event not in HOOK_EVENTS:
            raise ConfigError("%s: unknown hook event `%s`; use one of %s" % (where, event, ", ".join(HOOK_EVENTS)))
        if isinstance(entries, dict):
            entries = [entries]
        if not isinstance(entries, list):
            raise ConfigError("%s: hooks.%s must be an array of hook entries" % (where, event))
        for i, entry in enumerate(entries):
            at = "%s: hooks.%s[%d]" % (where, event, i)
            if not isinstance(entry, dict):
                raise ConfigError("%s must be a table with `command` (or `hooks`)" % at)
            unknown = sorted(set(entry) - set(HOOK_KEYS))
            if unknown:
                raise ConfigError("%s: unknown key `%s`; hooks take %s" % (at, unknown[0], ", ".join(sorted(HOOK_KEYS))))
            matcher = entry.get("matcher")
            if matcher is not None:
                if not isinstance(matcher, str):
                    raise ConfigError("%s: `matcher` must be a string (a tool name or regular expression)" % at)
                try:
                    re.compile(matcher)
                except re.error as exc:
                    raise ConfigError("%s: `matcher` %r is not a valid regular expression: %s" % (at, matcher, exc))
            inner = entry.get("hooks")
            items = [(at, entry)] if inner is None else [("%s.hooks[%d]" % (at, j), h) for j, h in enumerate(inner if isinstance(inner, list) else [None])]
            for spot, spec in items:
                if not isinstance(spec, dict):
                    raise ConfigError("%s must be a table with `command`" % spot)
                if spec.get("type", "command") != "command":
                    raise ConfigError("%s: hook type `%s` is not supported; use type = \"command\"" % (spot, spec.get("type")))
                timeout = spec.get("timeout", entry.get("timeout", HOOK_DEFAULT_TIMEOUT_S))
                if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
                    raise ConfigError("%s: `timeout` must be a positive number of seconds" % spot)
                fail_closed = spec.get("fail_closed", entry.get("fail_closed", True))
                if not isinstance(fail_closed, bool):
                    raise ConfigError("%s: `fail_closed` must be true or false" % spot)
                hooks.append(Hook(event, hook_argv(spec.get("command"), spot), matcher, float(timeout), fail_closed, spot))
    return hooks


def load_hooks(table, place, home, environ, trusted_project=None):
    """Every configured hook in the order they run: the system's hooks.json, the user's
    hooks.json, a trusted project's .codex/hooks.json, then the merged [hooks] tables of the
    config layers."""
    hooks = load_hooks_file(system_config_dir(environ) / HOOKS_FILE)
    hooks += load_hooks_file(Path(home) / HOOKS_FILE)
    if trusted_project is not None:
        hooks += load_hooks_file(Path(trusted_project) / ".codex" / HOOKS_FILE)
    return hooks + parse_hooks(table, place)


def load_hooks_file(path):
    """Hooks from a hooks.json file ([] when it does not exist); ConfigError names the file."""
    try:
        with open(str(path), "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError("%s: cannot read hooks file: %s" % (path, exc.strerror or exc))
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError("%s: not valid JSON (%s); fix or remove the file" % (path, exc))
    if not isinstance(data, dict) or not isinstance(data.get("hooks", {}), dict):
        raise ConfigError('%s: expected {"hooks": {"PreToolUse": [...], ...}}' % path)
    return parse_hooks(data.get("hooks", {}), str(path))


def check_mcp_server(place, name, table, warnings):
    """One [mcp_servers.NAME] entry, type-checked, with `transport` resolved.

    Raises ConfigError (one line naming the entry) when codex cannot use it: the caller
    skips that server with a warning instead of failing the command.
    """
    from urllib.parse import urlsplit

    key = "mcp_servers.%s" % name
    if not isinstance(table, dict):
        raise ConfigError("%s: `%s` must be a table" % (place, key))
    if "bearer_token" in table:
        raise ConfigError("%s: `%s.bearer_token` is not read from the config file; put the token in an "
                          "environment variable and set `%s.bearer_token_env_var` to its name" % (place, key, key))
    server = _check_table(place, key, table, MCP_SERVER_KEYS, warnings)
    transport = server.get("transport")
    if transport is not None:
        transport = _MCP_TRANSPORT_ALIASES.get(transport, transport)
        if transport not in MCP_TRANSPORTS:
            raise ConfigError("%s: `%s.transport` = %r is not supported; codex speaks stdio (`command`) and "
                              "streamable HTTP (`url`, MCP 2025-03-26 and later)" % (place, key, server["transport"]))
    if server.get("command") and server.get("url"):
        raise ConfigError("%s: `%s` sets both `command` and `url`; keep `command` for a local (stdio) server "
                          "or `url` for a remote (streamable HTTP) one" % (place, key))
    if transport is None:
        transport = "streamable_http" if server.get("url") else "stdio"
    if transport == "stdio" and not server.get("command"):
        raise ConfigError("%s: `%s` needs `command` (a program to start) or `url` (a streamable HTTP server)" % (place, key))
    if transport == "streamable_http":
        url = server.get("url") or ""
        try:
            parts = urlsplit(url)
            parts.port  # a port that is not a number raises ValueError
            ok = parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in url)
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError("%s: `%s.url` = %r is not an http:// or https:// URL" % (place, key, url))
        for field in ("http_headers", "env_http_headers"):
            for header, value in (server.get(field) or {}).items():
                if not isinstance(value, str) or not (_is_ascii(header) and _is_ascii(value)) or not header.strip():
                    raise ConfigError("%s: `%s.%s.%s` must be an ASCII string" % (place, key, field, header))
    unused = _MCP_HTTP_ONLY if transport == "stdio" else _MCP_STDIO_ONLY
    for field in unused:
        if field in table:
            warnings.append("%s: `%s.%s` applies only to %s servers (ignored)" % (
                place, key, field, "streamable HTTP" if transport == "stdio" else "stdio"))
    for field in ("enabled_tools", "disabled_tools", "env_vars"):
        if server.get(field) is not None and not all(isinstance(x, str) for x in server[field]):
            raise ConfigError("%s: `%s.%s` must be an array of strings" % (place, key, field))
    server["transport"] = transport
    if server.get("startup_timeout_ms") is not None:
        server["startup_timeout_sec"] = server["startup_timeout_ms"] / 1000.0
    return server


def load_config(overrides=None, cli_overrides=(), strict=False, home=None, environ=None, cwd=None):
    """Resolve the session config: flags > -c > profile > config.toml > defaults.

    Returns a Config; raises ConfigError with a one-line message on bad input.  Warnings
    (unknown keys and the like) are collected in `config.warnings`.  The steps, in order:
    read the layers (_read_config_layers), check each on its own (_check_config_layers),
    merge them with the flags and defaults on top (_merge_config_layers), check the merged
    values (_check_config_values), build the providers (_load_providers), then derive what
    follows (_derive_config: requirements, the model, the instructions).
    """
    environ = os.environ if environ is None else environ
    overrides = overrides or ConfigOverrides()
    home = Path(home) if home is not None else codex_home(environ)
    warnings = []
    read = _read_config_layers(overrides, cli_overrides, home, environ, cwd, warnings)
    _check_config_layers(read.layers, warnings)
    values, sources = _merge_config_layers(read, overrides)
    if strict and warnings:
        raise ConfigError(warnings[0].replace("(ignored)", "(--strict-config: remove it or fix its spelling)"))
    _check_config_values(read, values, environ, warnings)
    providers = _load_providers(read, values, environ, warnings)
    requirements, base_instructions, include_plan_tool = _derive_config(read, values, sources, providers, overrides, warnings)
    cfg = Config(
        codex_home=home,
        config_path=read.path,
        cwd=read.cwd,
        profile=read.profile_name,
        provider=providers[values["model_provider"]],
        providers=providers,
        base_instructions=base_instructions,
        include_plan_tool=include_plan_tool,
        dangerously_bypass=bool(overrides.dangerously_bypass),
        sources=frozen_mapping(sources),
        warnings=tuple(warnings),
        project_root=read.project_root,
        trusted_project_root=read.trusted_root,
        requirements=requirements,
        layer_paths=frozen_mapping({label: place for label, place, _layer in read.layers if _layer}),
        **values
    )
    _GRANTABLE_ROOTS.update(grantable_writable_roots(cfg))  # git_argv (§17b) never runs a program from them
    return cfg


class ConfigLayers(Record):
    """The config's layers as read, lowest first, before they are merged (see load_config)."""

    home: Path  # $CODEX_HOME
    path: Path  # $CODEX_HOME/config.toml (read or not)
    system_dir: Path  # where the machine-wide config and requirements live
    cwd: Path  # the working directory, resolved
    profiles: dict  # every [profiles.*] table of the system file, config.toml and -c, merged
    profile_name: "str | None"
    layers: tuple  # (label, place, table) for system, config.toml, profile, project, -c
    project_root: "Path | None"
    trusted_root: "Path | None"

    where = property(lambda self: str(self.path), doc="config.toml's path, for messages")

    def place_of(self, *parts):
        """Where the value at this dotted path was set (the highest layer that has it)."""
        for _label, place, layer in reversed(self.layers):
            node = layer
            for part in parts:
                if not isinstance(node, dict) or part not in node:
                    break
                node = node[part]
            else:
                return place
        return self.where


def _read_config_layers(overrides, cli_overrides, home, environ, cwd, warnings):
    """Step 1: read the system file, config.toml, the -c overrides, the profile (its table and
    its $CODEX_HOME/NAME.config.toml) and the project layer; a ConfigLayers."""
    toml_tree, path = read_config_file(home) if not overrides.ignore_user_config else ({}, Path(home) / "config.toml")
    where = str(path)
    system_dir = system_config_dir(environ)
    system_tree, system_path = read_config_file(system_dir)
    cwd = _resolve_cwd(overrides.cwd if overrides.cwd is not None else cwd)

    cli_tree = {}
    for arg in cli_overrides:
        parts, value = parse_config_override(arg)
        _set_dotted(cli_tree, parts, value)

    for key, value in cli_tree.items():
        _check_utf8("-c", key, value)
    if overrides.model is not None:
        _check_utf8("--model", "model", overrides.model)

    # The profile is chosen by the flag, else -c profile=..., else the files' `profile`.
    profiles = {}
    for tree, tree_path in ((system_tree, system_path), (toml_tree, path), (cli_tree, "-c")):
        if not isinstance(tree.get("profiles", {}), dict):
            raise ConfigError("%s: `profiles` must be a table of tables" % tree_path)
        profiles = _deep_merge(profiles, tree.get("profiles", {}) or {})
    profile_name = overrides.profile or cli_tree.get("profile") or toml_tree.get("profile") or system_tree.get("profile")
    profile = {}
    profile_place = "%s [profiles.%s]" % (where, profile_name)
    if profile_name is not None:
        if not isinstance(profile_name, str) or not re.match(r"^[A-Za-z0-9_.-]+$", profile_name):
            raise ConfigError("%s: `profile` must be a name (letters, digits, `_`, `.`, `-`)" % where)
        # Upstream's newer profile files, $CODEX_HOME/NAME.config.toml, beside the [profiles.NAME] tables.
        file_tree, file_path = read_config_file(home, "%s.config.toml" % profile_name)
        if profile_name not in profiles and not file_tree and not file_path.is_file():
            defined = ", ".join(sorted(set(profiles) | set(_profile_files(home)))) or "none"
            raise ConfigError(
                "config profile `%s` not found in %s (nor %s); defined profiles: %s" % (profile_name, where, file_path, defined)
            )
        profile = profiles.get(profile_name, {})
        if not isinstance(profile, dict):
            raise ConfigError("%s: `profiles.%s` must be a table" % (where, profile_name))
        if file_tree:
            profile = _deep_merge(profile, file_tree)
            profile_place = str(file_path) if profile_name not in profiles else "%s and %s" % (profile_place, file_path)
        for key in profile:
            if key not in PROFILE_KEYS:
                warnings.append(_unknown_key(where, "profiles.%s.%s" % (profile_name, key), key, PROFILE_KEYS))
        profile = {k: v for k, v in profile.items() if k in PROFILE_KEYS}

    project_tree, project_place, project_root, trusted_root = _project_layer(
        cwd, [system_tree, toml_tree, cli_tree], overrides.trust, warnings)
    layers = (
        ("system", str(system_path), system_tree),
        ("config.toml", where, toml_tree),
        ("profile %s" % profile_name, profile_place, profile),
        ("project", project_place, project_tree),
        ("-c", "-c", cli_tree),
    )
    return ConfigLayers(home=Path(home), path=path, system_dir=system_dir, cwd=cwd, profiles=profiles, profile_name=profile_name,
                        layers=layers, project_root=project_root, trusted_root=trusted_root)


def _check_config_layers(layers, warnings):
    """Step 2: check every layer on its own, so a bad value is reported even when a higher
    layer (e.g. exec's forced approval policy) would have replaced it."""
    for label, place, layer in layers:
        for key in list(layer):
            spec = CONFIG_KEYS.get(key)
            if spec is None:
                if key != "profiles":
                    warnings.append(_unknown_key(place, key, key, CONFIG_KEYS))
                continue
            kind, _default, allowed = spec
            _check_type(place, key, layer[key], kind)
            if key == "approval_policy":
                layer[key] = _normalize_approval(layer[key], place)
            elif allowed is not None:
                _check_enum(place, key, layer[key], allowed)
    own = [layer for label, _place, layer in layers if label in ("system", "config.toml") or label.startswith("profile")]
    for label, place, layer in layers:
        if label == "project":  # a project's config never widens the sandbox (finding 04b)
            _clamp_project_layer(layer, place, own, warnings)


def _merge_config_layers(read, overrides):
    """Step 3: merge the layers (tables deeply), put the flags on top and fill in the defaults;
    (values, sources) where sources says which layer each top-level value came from."""
    sources = {}
    values = {}
    for label, _place, layer in read.layers:
        for key, value in layer.items():
            if key not in CONFIG_KEYS:
                continue
            if isinstance(value, dict) and isinstance(values.get(key), dict):
                values[key] = _deep_merge(values[key], value)
            else:
                values[key] = value
            sources[key] = label
    flag_values = {
        "model": overrides.model,
        "model_provider": overrides.model_provider,
        "approval_policy": overrides.approval_policy,
        "sandbox_mode": overrides.sandbox_mode,
    }
    if overrides.oss:
        flag_values["model_provider"] = flag_values["model_provider"] or "oss"
    if overrides.dangerously_bypass:
        flag_values["approval_policy"] = "never"
        flag_values["sandbox_mode"] = "danger-full-access"
    for key, value in flag_values.items():
        if value is not None:
            values[key] = _normalize_approval(value, "--ask-for-approval") if key == "approval_policy" else value
            sources[key] = "flag"
    values["profiles"] = read.profiles
    for key, (_kind, default, _allowed) in CONFIG_KEYS.items():
        if key not in values:
            values[key] = dict(default) if isinstance(default, dict) else default
            sources.setdefault(key, "default")
    return values, sources


def _check_config_values(read, values, environ, warnings):
    """Step 4: check the merged values (tables, enums, limits, MCP servers, hooks); tables
    are replaced by their checked copies in `values`."""
    place_of, where = read.place_of, read.where
    for key, (value, why) in sorted(INERT_KEYS.items()):
        if values.get(key) == value:
            warnings.append("%s: `%s = %s` has no effect: %s" % (
                place_of(key), key, json.dumps(value), why))
    for name, project in (values.get("projects") or {}).items():
        level = project.get("trust_level") if isinstance(project, dict) else None
        if level not in ("trusted", "untrusted"):
            warnings.append("%s: `projects.\"%s\".trust_level` should be \"trusted\" or \"untrusted\" (ignored)"
                            % (place_of("projects", name), name))
    for key in ("request_max_retries", "stream_max_retries", "stream_idle_timeout_ms"):
        if values.get(key) is not None:
            warnings.append(
                "%s: top-level `%s` is ignored; set it on the provider ([model_providers.NAME])" % (where, key)
            )

    values["sandbox_workspace_write"] = _check_table(
        place_of("sandbox_workspace_write"), "sandbox_workspace_write", values["sandbox_workspace_write"], SANDBOX_WORKSPACE_WRITE_KEYS, warnings
    )
    values["shell_environment_policy"] = _check_table(
        place_of("shell_environment_policy"), "shell_environment_policy", values["shell_environment_policy"], SHELL_ENV_POLICY_KEYS, warnings
    )
    _check_enum(place_of("shell_environment_policy", "inherit"), "shell_environment_policy.inherit", values["shell_environment_policy"]["inherit"], ENV_INHERIT)
    values["history"] = _check_table(place_of("history"), "history", values["history"], HISTORY_KEYS, warnings)
    _check_enum(place_of("history", "persistence"), "history.persistence", values["history"]["persistence"], HISTORY_PERSISTENCE)
    values["tui"] = _check_table(place_of("tui"), "tui", values["tui"], TUI_KEYS, warnings)
    if values["sandbox_permissions"] is not None:
        for entry in values["sandbox_permissions"]:
            if not isinstance(entry, str) or entry.split("=", 1)[0] not in LEGACY_SANDBOX_PERMISSIONS:
                raise ConfigError(
                    "%s: `sandbox_permissions` entry %r is not allowed; use one of: %s"
                    % (where, entry, ", ".join(LEGACY_SANDBOX_PERMISSIONS))
                )
    if values["notify"] is not None and not all(isinstance(x, str) for x in values["notify"]):
        raise ConfigError("%s: `notify` must be an array of strings (a command and its arguments)" % where)
    if values["project_doc_max_bytes"] < 0:
        raise ConfigError("%s: `project_doc_max_bytes` must not be negative" % where)
    if values["max_command_timeout_ms"] <= 0:
        raise ConfigError("%s: `max_command_timeout_ms` must be a positive number of milliseconds (default 3600000)"
                          % place_of("max_command_timeout_ms"))
    for key in ("max_repeated_tool_calls", "max_tool_calls_per_turn"):
        if values[key] < 0:
            raise ConfigError("%s: `%s` must not be negative (0 turns the limit off)" % (place_of(key), key))
    if (values["follow_up_nudges"] or 0) < 0:
        raise ConfigError("%s: `follow_up_nudges` must not be negative (0 turns them off)"
                          % place_of("follow_up_nudges"))

    mcp_servers = {}
    for name, table in values["mcp_servers"].items():
        mplace = place_of("mcp_servers", name)
        try:
            server = check_mcp_server(mplace, name, table, warnings)
        except ConfigError as exc:  # one unusable entry never breaks the others or the command
            warnings.append("%s (server `%s` skipped)" % (exc, name))
            continue
        mcp_servers[name] = server
    values["mcp_servers"] = mcp_servers
    values["hooks"] = tuple(load_hooks(values["hooks"], place_of("hooks"), read.home, environ, read.trusted_root))


def _load_providers(read, values, environ, warnings):
    """Step 5: the providers: built-ins first; a user entry with a built-in's name updates its fields."""
    place_of = read.place_of
    providers = builtin_providers(environ)
    for pid, table in values["model_providers"].items():
        pplace = place_of("model_providers", pid)
        if not isinstance(table, dict):
            raise ConfigError("%s: `model_providers.%s` must be a table" % (pplace, pid))
        checked = {}
        for key, value in table.items():
            if key not in PROVIDER_KEYS:
                warnings.append(_unknown_key(place_of("model_providers", pid, key), "model_providers.%s.%s" % (pid, key),
                                             key, PROVIDER_KEYS))
                continue
            _check_type(place_of("model_providers", pid, key), "model_providers.%s.%s" % (pid, key), value, PROVIDER_KEYS[key][0])
            checked[key] = value
        if "wire_api" in checked:
            _check_enum(place_of("model_providers", pid, "wire_api"), "model_providers.%s.wire_api" % pid, checked["wire_api"], WIRE_APIS)
        if checked.get("shell_tool") is not None:
            _check_enum(place_of("model_providers", pid, "shell_tool"), "model_providers.%s.shell_tool" % pid,
                        checked["shell_tool"], SHELL_TOOLS)
        for header, value in (checked.get("http_headers") or {}).items():
            if not (_is_ascii(header) and _is_ascii(value)):
                raise ConfigError("%s: `model_providers.%s.http_headers.%s`: HTTP headers carry ASCII only; fix the name or value"
                                  % (place_of("model_providers", pid, "http_headers"), pid, _valid_ascii_repr(header)))
        if checked.get("base_url") and not checked["base_url"].lower().startswith(("http://", "https://")):
            raise ConfigError("%s: `model_providers.%s.base_url` = %r must start with http:// or https://"
                              % (place_of("model_providers", pid, "base_url"), pid, checked["base_url"]))
        if pid in providers:
            base = {k: getattr(providers[pid], k) for k in PROVIDER_KEYS}
            base.update(checked)
            checked = base
        elif not checked.get("base_url"):
            raise ConfigError("%s: `model_providers.%s.base_url` is required" % (pplace, pid))
        providers[pid] = ProviderInfo(pid, **checked)
    return providers


def _derive_config(read, values, sources, providers, overrides, warnings):
    """Step 6: what follows from the merged values: the requirements (which may pin values),
    the provider check, the default model, the base instructions and include_plan_tool;
    returns (requirements, base_instructions, include_plan_tool)."""
    requirements = load_requirements(read.system_dir, read.home)
    apply_requirements(requirements, values, sources, providers, warnings)
    provider_id = values["model_provider"]
    if provider_id not in providers:
        raise ConfigError(
            "model provider `%s` not found; known providers: %s (define it under [model_providers.%s] in %s)"
            % (provider_id, ", ".join(sorted(providers)), provider_id, read.where)
        )
    if values["model"] is None:
        values["model"] = DEFAULT_OSS_MODEL if provider_id in ("oss", "ollama") and overrides.oss else DEFAULT_MODEL

    if values["model_instructions_file"]:  # upstream's newer name wins over the older one
        values["experimental_instructions_file"] = values["model_instructions_file"]
        sources["experimental_instructions_file"] = sources.get("model_instructions_file", "default")
    instructions_file = values["experimental_instructions_file"]
    base_instructions = overrides.base_instructions
    if instructions_file and base_instructions is None:
        ipath = Path(instructions_file).expanduser()
        if not ipath.is_absolute():
            ipath = read.cwd / ipath
        try:
            base_instructions = ipath.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError("cannot read experimental_instructions_file %s: %s" % (ipath, exc.strerror or exc))
        if not base_instructions.strip():
            raise ConfigError("experimental_instructions_file %s is empty" % ipath)

    include_plan_tool = values["include_plan_tool"] if overrides.include_plan_tool is None else overrides.include_plan_tool
    values.pop("profile", None)
    values.pop("include_plan_tool", None)
    return requirements, base_instructions, include_plan_tool


def _resolve_cwd(value):
    """The working directory (absolute, resolved); ConfigError when it is not a directory."""
    cwd = Path(value or os.getcwd())
    if not cwd.is_absolute():
        cwd = Path(os.getcwd()) / cwd
    if not cwd.is_dir():
        why = "is not a directory" if cwd.exists() else "does not exist"
        raise ConfigError("working directory %s %s (check -C/--cd)" % (cwd, why))
    return cwd.resolve()


def _profile_files(home):
    """Names of the profile files ($CODEX_HOME/NAME.config.toml) that exist."""
    try:
        return [n[:-len(".config.toml")] for n in os.listdir(str(home)) if n.endswith(".config.toml") and n != ".config.toml"]
    except OSError:
        return []


def find_project_root(cwd, markers):
    """The nearest directory at or above `cwd` holding one of `markers` (e.g. `.git`), or None."""
    for directory in [Path(cwd)] + list(Path(cwd).parents):
        if any((directory / marker).exists() for marker in markers):
            return directory
    return None


def project_trust(projects, root):
    """The trust_level that [projects] gives `root` (or one of its parents), or None."""
    if not isinstance(projects, dict) or root is None:
        return None
    for directory in [Path(root)] + list(Path(root).parents):
        entry = projects.get(str(directory))
        if isinstance(entry, dict) and isinstance(entry.get("trust_level"), str):
            return entry["trust_level"]
    return None


def _project_layer(cwd, trees, trust_flag, warnings):
    """(tree, place, project root, trusted root) of the project's .codex/config.toml files.

    They are read from the project root down to cwd (deeper wins), and apply only when the
    project is trusted: `projects."<root>".trust_level = "trusted"` in the system or user
    config (or -c), or --trust.  A project never trusts itself: its `projects` is ignored.
    """
    markers = [".git"]
    projects = {}
    for tree in trees:
        if isinstance(tree.get("project_root_markers"), list):
            markers = [str(m) for m in tree["project_root_markers"]]
        if isinstance(tree.get("projects"), dict):
            projects = _deep_merge(projects, tree["projects"])
    root = find_project_root(cwd, markers) if markers else None
    if root is None:
        return {}, "project", None, None
    files = []
    for directory in reversed([Path(cwd)] + [p for p in Path(cwd).parents if p == root or root in p.parents]):
        candidate = directory / ".codex" / "config.toml"
        if candidate.is_file():
            files.append(candidate)
    trusted = trust_flag or project_trust(projects, root) == "trusted"
    if not files:
        return {}, "project", root, root if trusted else None
    if not trusted:
        warnings.append("%s is not applied: the project %s is not trusted (pass --trust, or set "
                        "projects.\"%s\".trust_level = \"trusted\" in your config.toml)" % (files[-1], root, root))
        return {}, "project", root, None
    tree = {}
    for f in files:
        tree = _deep_merge(tree, read_config_file(f.parent)[0])
    for key in ("projects", "profile", "profiles"):
        if key in tree:
            warnings.append("%s: `%s` is ignored in a project's config" % (files[-1], key))
            tree.pop(key)
    return tree, " and ".join(str(f) for f in files), root, root


def _clamp_project_layer(tree, place, own_layers, warnings):
    """Drop (with one warning each) what a project's .codex/config.toml sets looser than the
    user's own layers (system, config.toml, profile; then the defaults): sandbox_mode,
    approval_policy, sandbox_workspace_write (more roots, network on, temp dirs back) and the
    legacy sandbox_permissions.  Trusting a project means its config may make codex stricter
    and bring hooks, prompts and MCP servers; it never widens the sandbox: a sandboxed command
    may have written that file, and the next start would run every command unconfined."""
    if not tree:
        return

    def own(key):
        value = CONFIG_KEYS[key][1]
        for layer in own_layers:
            if key in layer:
                value = layer[key]
        return value

    def drop(key, why):
        warnings.append("%s: `%s` is ignored: a project's config cannot %s than your own config; set it in "
                        "your config.toml or pass it on the command line (-s, -a, -c)" % (place, key, why))

    for key, order, why in (("sandbox_mode", SANDBOX_STRICTNESS, "make the sandbox less confined"),
                            ("approval_policy", APPROVAL_STRICTNESS, "make approvals less cautious")):
        value, mine = tree.get(key), own(key)
        if key in tree and (value not in order or mine not in order or order.index(value) > order.index(mine)):
            drop(key, why)
            tree.pop(key)
    if "sandbox_permissions" in tree:
        drop("sandbox_permissions", "widen the sandbox")
        tree.pop("sandbox_permissions")
    sww = tree.get("sandbox_workspace_write")
    if isinstance(sww, dict):
        mine = own("sandbox_workspace_write")
        mine = mine if isinstance(mine, dict) else {}
        roots = sww.get("writable_roots")
        if roots is not None and not (isinstance(roots, list) and all(r in (mine.get("writable_roots") or [])
                                                                       for r in roots)):
            drop("sandbox_workspace_write.writable_roots", "add writable roots")
            sww.pop("writable_roots")
        if sww.get("network_access") is not False and "network_access" in sww and mine.get("network_access") is not True:
            drop("sandbox_workspace_write.network_access", "turn the network on")
            sww.pop("network_access")
        for key in ("exclude_tmpdir_env_var", "exclude_slash_tmp"):
            if key in sww and sww[key] is not True and mine.get(key) is True:
                drop("sandbox_workspace_write." + key, "make temp directories writable")
                sww.pop(key)


# -- requirements (what an admin pins: /etc/codex/requirements.toml) --

REQUIREMENTS_FILE = "requirements.toml"  #: pins, in the system config dir (or $CODEX_HOME for a user's own)
#: requirements.toml keys: key -> (type check name, what it pins)
REQUIREMENT_KEYS = {
    "allowed_approval_policies": ("list", "approval_policy"),
    "allowed_sandbox_modes": ("list", "sandbox_mode"),
    "model_provider": ("str", "model_provider"),
    "mcp_servers": ("table", "mcp_servers"),
}
#: approval policies from the most to the least cautious (the nearest allowed one is chosen)
APPROVAL_STRICTNESS = ("untrusted", "on-request", "on-failure", "never")
#: sandbox modes from the most to the least confined
SANDBOX_STRICTNESS = ("read-only", "workspace-write", "danger-full-access")


class Requirements(Record):
    """What requirements.toml pins (None or empty: not pinned) and the files it came from."""

    allowed_approval_policies: "tuple[str, ...] | None"
    allowed_sandbox_modes: "tuple[str, ...] | None"
    model_provider: "str | None"
    mcp_servers: "Mapping[str, Mapping] | None"  # allow-list: name -> identity (command or url)
    paths: "tuple[str, ...]"

    def pins(self):
        """(key, allowed values as text) for doctor and config show."""
        rows = []
        if self.allowed_approval_policies is not None:
            rows.append(("approval_policy", ", ".join(self.allowed_approval_policies)))
        if self.allowed_sandbox_modes is not None:
            rows.append(("sandbox_mode", ", ".join(self.allowed_sandbox_modes)))
        if self.model_provider is not None:
            rows.append(("model_provider", self.model_provider))
        if self.mcp_servers is not None:
            rows.append(("mcp_servers", ", ".join(sorted(self.mcp_servers)) or "(none allowed)"))
        return rows

    def clamp_approval(self, value):
        """`value`, or the nearest allowed approval policy (more cautious first)."""
        return _nearest_allowed(value, self.allowed_approval_policies, APPROVAL_STRICTNESS)

    def clamp_sandbox(self, mode):
        """`mode`, or the nearest allowed sandbox mode (more confined first)."""
        return _nearest_allowed(mode, self.allowed_sandbox_modes, SANDBOX_STRICTNESS)


def _nearest_allowed(value, allowed, order):
    if not allowed or value in allowed:
        return value
    index = order.index(value) if value in order else len(order) - 1
    for i in list(range(index - 1, -1, -1)) + list(range(index + 1, len(order))):
        if order[i] in allowed:
            return order[i]
    return allowed[0]


def load_requirements(system_dir, home):
    """The Requirements of /etc/codex/requirements.toml, then $CODEX_HOME/requirements.toml
    for what the first leaves unpinned (the system's pins win, field by field)."""
    fields = {"allowed_approval_policies": None, "allowed_sandbox_modes": None, "model_provider": None,
              "mcp_servers": None}
    paths = []
    for directory in (Path(system_dir), Path(home)):
        tree, path = read_config_file(directory, REQUIREMENTS_FILE)
        if not tree:
            continue
        paths.append(str(path))
        for key, value in tree.items():
            spec = REQUIREMENT_KEYS.get(key)
            if spec is None:
                raise ConfigError("%s: unknown key `%s`; requirements.toml pins %s" % (path, key, ", ".join(sorted(REQUIREMENT_KEYS))))
            _check_type(str(path), key, value, spec[0])
            if key == "allowed_approval_policies":
                value = tuple(_normalize_approval(v, str(path), key) for v in value)
            elif key == "allowed_sandbox_modes":
                for v in value:
                    _check_enum(str(path), key, v, SANDBOX_MODES)
                value = tuple(value)
            elif key == "mcp_servers":
                for name, ident in value.items():
                    if not isinstance(ident, dict) or not (isinstance(ident.get("command"), str) or isinstance(ident.get("url"), str)):
                        raise ConfigError("%s: `mcp_servers.%s` must give the server's identity: `command` or `url`" % (path, name))
                value = frozen_mapping({n: frozen_mapping(v) for n, v in value.items()})
            if fields[key] is None:
                fields[key] = value
    return Requirements(paths=tuple(paths), **fields)


def apply_requirements(req, values, sources, providers, warnings):
    """Bring `values` within the pins: the nearest allowed value, with one warning each."""
    where = " or ".join(req.paths) or REQUIREMENTS_FILE
    for key, clamp in (("approval_policy", req.clamp_approval), ("sandbox_mode", req.clamp_sandbox)):
        pinned = clamp(values[key])
        if pinned != values[key]:
            warnings.append("%s = %r is not allowed by %s (from %s); using %r" % (key, values[key], where, sources.get(key), pinned))
            values[key] = pinned
            sources[key] = "requirements"
    if req.model_provider is not None and values["model_provider"] != req.model_provider:
        if req.model_provider not in providers:
            raise ConfigError("%s requires model_provider %r, which is not defined; define [model_providers.%s]"
                              % (where, req.model_provider, req.model_provider))
        warnings.append("model_provider = %r is not allowed by %s; using %r" % (values["model_provider"], where, req.model_provider))
        values["model_provider"] = req.model_provider
        sources["model_provider"] = "requirements"
    if req.mcp_servers is not None:
        kept = {}
        for name, server in values["mcp_servers"].items():
            ident = req.mcp_servers.get(name)
            if ident is not None and ((ident.get("command") is not None and ident.get("command") == server.get("command"))
                                      or (ident.get("url") is not None and ident.get("url") == server.get("url"))):
                kept[name] = server
            else:
                warnings.append("MCP server `%s` is not on the allow-list of %s; it is disabled" % (name, where))
        values["mcp_servers"] = kept


# -- auth.json: read here for the provider's key (§05 writes it, logs in and out) -----------


def auth_path(home):
    """Where the API key and tokens live."""
    return Path(home) / "auth.json"


def read_auth(home):
    """Return auth.json as a dict, or None when there is none; bad JSON is an AuthError."""
    path = auth_path(home)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuthError("cannot read %s: %s" % (path, exc.strerror or exc))
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise AuthError("%s is not valid JSON (%s); run `codex logout` and log in again" % (path, exc))
    if not isinstance(data, dict):
        raise AuthError("%s must hold a JSON object; run `codex logout` and log in again" % path)
    return data


# -- the sandbox policy (derived from the config; §12 applies it) ---------------------------
#
# A SandboxPolicy says what a command may write and whether it may use the network; the
# paths that stay read-only inside writable roots (.git, .codex, $CODEX_HOME) are computed
# here.  Config.sandbox_policy, the TurnContext (§15a) and the approval decisions (§11, §13)
# read it, so it sits with the config, above them.


PROTECTED_DIR_NAMES = frozenset((".git", ".codex"))  #: directory names never written without approval
#: how long one search for nested repositories may take (beyond the root's own listing): the
#: directories it did not reach by then stay read-only for the command (fail closed)
NESTED_REPO_SEARCH_SECONDS = 3.0
_NESTED_REPO_MAX_UNREACHED = 64  #: unreached directories protected one by one; more: their parents
_NESTED_REPO_CACHE_SECONDS = 10.0  #: how long one search result is reused
_NESTED_DIRS_MAX = 500000  #: directories remembered between searches (_NESTED_DIRS)


class SandboxPolicy(object):
    """What a sandboxed command may write and whether it may use the network."""

    def __init__(self, mode="read-only", writable_roots=(), network_access=False,
                 exclude_tmpdir_env_var=False, exclude_slash_tmp=False, include_cwd=True):
        if mode not in SANDBOX_MODES:
            raise SandboxError("unknown sandbox mode %r; use one of: %s" % (mode, ", ".join(SANDBOX_MODES)))
        self.mode = mode
        self.writable_roots = [Path(p) for p in writable_roots]
        self.network_access = bool(network_access)
        self.exclude_tmpdir_env_var = bool(exclude_tmpdir_env_var)
        self.exclude_slash_tmp = bool(exclude_slash_tmp)
        self.include_cwd = bool(include_cwd)

    def __repr__(self):
        return "SandboxPolicy(%s)" % self.to_json()

    def __eq__(self, other):
        return isinstance(other, SandboxPolicy) and self.to_json() == other.to_json()

    @classmethod
    def from_config(cls, cfg):
        """The policy of a Config: sandbox_mode + [sandbox_workspace_write], or the legacy
        `sandbox_permissions` list when it was set in a higher layer than sandbox_mode
        (flag > -c > profile > config.toml > default).  Use `cfg.sandbox_policy` (computed once)."""
        legacy = cfg.sandbox_permissions
        if legacy is not None and _source_rank(cfg.sources.get("sandbox_permissions")) > _source_rank(cfg.sources.get("sandbox_mode")):
            policy = cls.from_permissions(legacy, cfg.codex_home)
            _notice("`sandbox_permissions` is deprecated; it now means sandbox_mode = %r%s: set sandbox_mode "
                    "and [sandbox_workspace_write] instead" % (policy.mode, " with network" if policy.has_network() else ""))
            return policy
        if cfg.sandbox_mode != "workspace-write":
            return cls(cfg.sandbox_mode)
        return cls.from_wire(dict(cfg.sandbox_workspace_write or {}, mode="workspace-write"), cfg.cwd)

    @classmethod
    def from_wire(cls, data, base):
        """The protocol's SandboxPolicy object (tag `mode`); relative writable roots are taken
        relative to `base`; unknown fields are ignored, missing booleans are false."""
        roots = []
        for entry in data.get("writable_roots") or []:
            p = Path(str(entry)).expanduser()
            roots.append(p if p.is_absolute() else Path(base) / p)
        return cls(data.get("mode", "read-only"), roots, data.get("network_access", False),
                   data.get("exclude_tmpdir_env_var", False), data.get("exclude_slash_tmp", False))

    @classmethod
    def from_permissions(cls, permissions, home=None):
        """Map the May-June 2025 `sandbox_permissions` list onto a policy."""
        perms = [str(p) for p in permissions]
        network = "network-full-access" in perms
        if "disk-full-write-access" in perms:
            # full write without network: every path writable, seccomp still on
            return cls("danger-full-access") if network else cls("workspace-write", ["/"], False)
        folders = []
        for p in perms:
            if p.startswith("disk-write-folder="):
                folder = Path(p.split("=", 1)[1]).expanduser()
                if not str(folder):
                    raise ConfigError("sandbox_permissions: disk-write-folder needs a path")
                folders.append(folder if folder.is_absolute() else Path(home or ".") / folder)
        writes = [p for p in perms if p.startswith("disk-write")]
        if not writes:
            return cls("read-only", network_access=network)
        return cls("workspace-write", folders, network,
                   exclude_tmpdir_env_var="disk-write-platform-user-temp-folder" not in perms,
                   exclude_slash_tmp="disk-write-platform-global-temp-folder" not in perms,
                   include_cwd="disk-write-cwd" in perms)

    def to_wire(self):
        """The upstream wire form: {"mode": ..., and the workspace-write fields}."""
        out = {"mode": self.mode}
        if self.mode == "workspace-write":
            if self.writable_roots:
                out["writable_roots"] = [str(p) for p in self.writable_roots]
            out["network_access"] = self.network_access
            out["exclude_tmpdir_env_var"] = self.exclude_tmpdir_env_var
            out["exclude_slash_tmp"] = self.exclude_slash_tmp
        elif self.network_access and self.mode == "read-only":
            out["network_access"] = True
        return out

    def to_json(self):
        """to_wire() as JSON text (what the helper is given)."""
        return json.dumps(self.to_wire(), sort_keys=False)

    @classmethod
    def from_json(cls, text):
        """Parse the wire form from JSON text or a dict (see from_wire; roots must be absolute)."""
        return cls.from_wire(json.loads(text) if isinstance(text, str) else dict(text), "/")

    def is_unrestricted(self):
        """danger-full-access: no sandbox at all."""
        return self.mode == "danger-full-access"

    def has_network(self):
        """Whether commands may open network sockets."""
        return self.mode == "danger-full-access" or self.network_access

    def writable_root_names(self, cwd, environ=None):
        """The writable roots as named (not resolved), in order: configured roots, cwd, /tmp, $TMPDIR."""
        if self.mode != "workspace-write":
            return []
        environ = os.environ if environ is None else environ
        roots = list(self.writable_roots)
        if self.include_cwd:
            roots.append(Path(cwd))
        if not self.exclude_slash_tmp and os.path.isdir("/tmp"):
            roots.append(Path("/tmp"))
        tmpdir = environ.get("TMPDIR", "")
        if not self.exclude_tmpdir_env_var and tmpdir and os.path.isabs(tmpdir):
            roots.append(Path(tmpdir))
        return roots

    def writable_roots_for(self, cwd, environ=None):
        """The writable roots, in order: configured roots, cwd, /tmp, $TMPDIR (absolute, deduplicated)."""
        out, seen = [], set()
        for root in self.writable_root_names(cwd, environ):
            real = Path(os.path.realpath(str(root)))
            if str(real) not in seen:
                seen.add(str(real))
                out.append(real)
        return out

    def is_path_writable(self, path, cwd, home=None):
        """Whether a sandboxed write to `path` would be allowed (symlinks resolved)."""
        if self.mode == "danger-full-access":
            return True
        path = Path(path)
        if not path.is_absolute():
            path = Path(cwd) / path
        # resolved as the kernel does: `lnk/..` is the parent of lnk's target, not `.` (never normpath first)
        real = os.path.realpath(str(path))
        roots = self.writable_roots_for(cwd)
        inside = [str(r) for r in roots if _is_within(real, str(r))]
        if not inside:
            return False
        # a .git or .codex that does not exist yet has no read-only mount: a new nested repo's
        # config (core.fsmonitor, hooks) must not be written without a question either
        if all(set(os.path.relpath(real, r).split(os.sep)) & PROTECTED_DIR_NAMES for r in inside):
            return False
        try:
            protected = protected_paths(roots, cwd, home)
        except SandboxError:
            return False  # the sandbox cannot be built here: nothing is writable without a question
        if any(_is_within(real, str(p)) for p in protected):
            return False
        # Landlock alone (no user namespaces): no entry may be created or removed in a directory on
        # the way to a protected path; the files already there stay writable
        parent = os.path.dirname(real)
        return not (_landlock_only(home) and not os.path.lexists(real)
                    and any(_is_within(str(p), parent) for p in protected))


#: home -> whether commands here are confined by Landlock alone (no user namespaces); §12b,
#: which probes the machine, installs the real check
_LANDLOCK_ONLY_CHECK = [lambda home=None: False]


def _landlock_only(home=None):
    """Whether commands here are confined by Landlock alone (no user namespaces)."""
    return _LANDLOCK_ONLY_CHECK[0](home)


#: real paths of every directory a configuration this process loaded can make writable for commands
_GRANTABLE_ROOTS = set()


def grantable_writable_roots(cfg):
    """Every directory this configuration can let sandboxed commands write, whatever this run's
    own sandbox mode (a review runs read-only; an earlier session did not): the workspace, /tmp,
    $TMPDIR, the writable_roots of [sandbox_workspace_write] and of every [profiles.*] table, the
    legacy sandbox_permissions folders (--add-dir goes into the first); real paths.  A command
    may have written there, so codex's own unconfined programs (git) are never taken from them."""
    tables = [cfg.sandbox_workspace_write] + [p.get("sandbox_workspace_write") for p in (cfg.profiles or {}).values()
                                              if isinstance(p, dict)]
    policies = []  # (not cfg.sandbox_policy: building it queues notices, which belong to the session)
    for table in tables:
        if isinstance(table, dict) and isinstance(table.get("writable_roots") or [], list):
            policies.append(lambda t=table: SandboxPolicy.from_wire(
                {"mode": "workspace-write", "writable_roots": t.get("writable_roots")}, cfg.cwd))
    if isinstance(cfg.sandbox_permissions, list):
        policies.append(lambda: SandboxPolicy.from_permissions(cfg.sandbox_permissions + ["disk-write-cwd"], cfg.codex_home))
    roots = set()
    for policy in policies:
        try:
            roots.update(str(r) for r in policy().writable_roots_for(cfg.cwd))
        except CodexError:  # a bad entry: reported where the policy is used, not at every load
            continue
    return roots


def _is_within(path, root):
    """Whether `path` is `root` or below it (both absolute, normalised)."""
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root if root == "/" else root + "/")


_NESTED_CACHE = {}
#: directory -> ((inode, ctime, mtime), [subdirectories], [.git entries]) from earlier searches: a
#: directory whose entries did not change (its ctime changes with every entry created, removed
#: or renamed, and no command can set it back) is not listed again
_NESTED_DIRS = {}


class _SearchTimeout(Exception):
    pass


def _find_nested_git(root):
    """Every `.git` entry below `root` (not at its top), searched completely (no directory
    skipped, no depth limit: git in any directory of the workspace walks up to the nearest
    one); returns (paths, unreached): the directories the search did not list within
    NESTED_REPO_SEARCH_SECONDS, which must stay read-only (a command could have planted files
    to exhaust the search).  Directories unchanged since an earlier search are not listed again."""
    import collections

    now = time.monotonic()
    hit = _NESTED_CACHE.get(root)
    if hit and now - hit[0] < _NESTED_REPO_CACHE_SECONDS:
        return hit[1], hit[2]
    if len(_NESTED_DIRS) > _NESTED_DIRS_MAX:
        _NESTED_DIRS.clear()
    deadline = now + NESTED_REPO_SEARCH_SECONDS
    found, unreached = [], []
    pending = collections.deque([root])
    while pending:
        path = pending.popleft()
        if path != root and time.monotonic() > deadline:
            unreached = [path] + list(pending)
            break
        try:
            st = os.lstat(path)
        except OSError:
            continue
        key = (st.st_ino, st.st_ctime_ns, st.st_mtime_ns)
        known = _NESTED_DIRS.get(path)
        if known is not None and known[0] == key:
            subdirs, gits = known[1], known[2]
        else:
            subdirs, gits = [], []
            try:
                with os.scandir(path) as it:
                    for n, entry in enumerate(it):
                        if n & 1023 == 1023 and path != root and time.monotonic() > deadline:
                            raise _SearchTimeout()
                        if entry.name == ".git":
                            gits.append(entry.path)
                        elif entry.is_dir(follow_symlinks=False):
                            subdirs.append(entry.path)
            except _SearchTimeout:
                unreached = [path] + list(pending)
                break
            except OSError:
                continue  # unreadable: the user's commands cannot write there either
            _NESTED_DIRS[path] = (key, subdirs, gits)
        if path != root:
            found.extend(gits)
        pending.extend(subdirs)
    if not unreached:  # an unfinished search is not reused: the next one goes further (_NESTED_DIRS)
        _NESTED_CACHE[root] = (now, found, unreached)
    return found, unreached


def _collapse_unreached(paths, root, limit=_NESTED_REPO_MAX_UNREACHED):
    """At most `limit` directories covering `paths` (their parents, then theirs...), never `root`
    itself: SandboxError when only the root would cover them."""
    paths = sorted(set(paths))
    while len(paths) > limit:
        parents = sorted(set(os.path.dirname(p) for p in paths))
        if any(p == root or not _is_within(p, root) for p in parents):
            raise SandboxError("the search for nested git repositories in %s did not finish within %.0f s, so the "
                               "sandbox cannot tell which directories hold one; remove what fills the workspace or "
                               "run the command outside the sandbox" % (root, NESTED_REPO_SEARCH_SECONDS))
        paths = parents
    return [p for p in paths if not any(q != p and _is_within(p, q) for q in paths)]


def _gitdir_targets(git_file):
    """For a `.git` file (worktree/submodule pointer): the gitdir it names, if readable."""
    data = read_regular_file(git_file)  # planted by a command: maybe a FIFO or /dev/zero
    if data is None:
        return []
    first = data.decode("utf-8", "replace").split("\n", 1)[0].strip()
    if not first.startswith("gitdir:"):
        return []
    target = first[len("gitdir:"):].strip()
    if not os.path.isabs(target):
        target = os.path.join(os.path.dirname(git_file), target)
    return [os.path.realpath(target)] if os.path.exists(target) else []


def git_dirs_of(entry):
    """The git directories git uses for a `.git` entry (a directory, a symlink to one, or a
    `gitdir:` file): the entry, its gitdir, and the common dir a worktree's gitdir names
    (`commondir`: where config and hooks live).  Real paths of what exists."""
    out = [os.path.realpath(entry)]
    gitdirs = _gitdir_targets(entry) if os.path.isfile(entry) else [out[0]]
    for gitdir in gitdirs:
        out.append(gitdir)
        data = read_regular_file(os.path.join(gitdir, "commondir"))
        if data is None:
            continue
        common = data.decode("utf-8", "replace").split("\n", 1)[0].strip()
        if common:
            common = os.path.realpath(os.path.join(gitdir, common))
            if os.path.isdir(common):
                out.append(common)
    return out


def _enclosing_git_entries(paths):
    """`.git` entries in the directories holding `paths` and above them (git looks upward)."""
    out = []
    for path in paths:
        d = os.path.realpath(str(path))
        while True:
            cand = os.path.join(d, ".git")
            if os.path.lexists(cand) and cand not in out:
                out.append(cand)
            parent = os.path.dirname(d)
            if parent == d:
                break
            d = parent
    return out


def protected_paths(roots, cwd, home=None, search_nested=True, entries=None):
    """Paths inside writable roots that stay read-only: every git directory a command could
    make git use (.git dirs, files and symlinks, their gitdir and common dirs, the repository
    the workspace lies in, nested repos, $GIT_DIR), .codex, and $CODEX_HOME.  Only existing
    paths; never one that is or holds a writable root or the workspace: a `.git` a command
    planted pointing at the workspace must not make the workspace read-only.  `entries`, a
    list, receives the `.git`/`.codex` names (as found, not resolved) behind the result: a
    symlink among them is pinned too (pins_for)."""
    out = []
    notes = []
    cwd_real = os.path.realpath(str(cwd))
    temp_roots = {os.path.realpath("/tmp"), os.path.realpath(os.environ.get("TMPDIR") or "/tmp")}
    gits = _enclosing_git_entries([cwd_real] + [str(r) for r in roots])
    for var in ("GIT_DIR", "GIT_COMMON_DIR"):
        if os.path.isabs(os.environ.get(var, "")):
            gits.append(os.environ[var])
    dot_codex = []
    for root in roots:
        root = str(root)
        gits.append(os.path.join(root, ".git"))
        dot_codex.append(os.path.join(root, ".codex"))
        out.append(dot_codex[-1])
        # the workspace and configured roots are searched for nested repositories; /tmp is not
        if search_nested and (root not in temp_roots or root == cwd_real) and root != "/":
            nested, unreached = _find_nested_git(root)
            gits.extend(nested)
            if unreached:  # fail closed: what the search did not reach may hold a repository
                unreached = _collapse_unreached(unreached, root)
                if any(_is_within(k, u) for u in unreached for k in [str(r) for r in roots] + [cwd_real]):
                    raise SandboxError("the search for nested git repositories in %s did not reach the workspace "
                                       "within %.0f s; remove what fills it or run the command outside the sandbox"
                                       % (root, NESTED_REPO_SEARCH_SECONDS))
                out.extend(unreached)
                notes.append("the search for nested git repositories in %s did not finish within %.0f s: %d "
                             "directories it did not reach stay read-only for commands"
                             % (root, NESTED_REPO_SEARCH_SECONDS, len(unreached)))
    for cand in gits:
        if os.path.lexists(cand):
            out.extend(git_dirs_of(cand))
    if home is not None:
        out.append(os.path.realpath(str(home)))
    result, seen = [], set()
    keep = [str(r) for r in roots] + [cwd_real]
    for p in out:
        p = os.path.realpath(p)
        if p in seen or not os.path.exists(p):
            continue
        seen.add(p)
        if not any(_is_within(p, str(r)) for r in roots):
            continue  # outside every writable root: Landlock keeps it read-only already
        if any(_is_within(k, p) for k in keep):
            if home is not None and p == os.path.realpath(str(home)):
                notes.append("$CODEX_HOME (%s) holds the workspace or a writable root, so it cannot be made "
                             "read-only for commands; move the workspace out of it" % p)
            continue
        result.append(p)
    if entries is not None:
        entries.extend(e for e in gits + dot_codex if os.path.lexists(e) and any(
            _is_within(r, os.path.realpath(e)) or r == os.path.realpath(e) for r in result))
    for note in notes:
        _notice(note)
    return result


# -- notices: things the user should hear about once --------------------------------------

_NOTICES = []
_NOTICES_SEEN = set()


def _notice(text):
    """Queue a one-time notice about the sandbox (also logged)."""
    if text not in _NOTICES_SEEN:
        _NOTICES_SEEN.add(text)
        _NOTICES.append(text)
        log("warn", "sandbox: %s", text)


def take_sandbox_notices():
    """Return (and forget) the sandbox notices not shown yet; front ends print them once."""
    out = list(_NOTICES)
    del _NOTICES[:]
    return out


###############################################################################
# §05 Auth: auth.json, login, logout
###############################################################################


def write_auth(home, data):
    """Write auth.json pretty-printed, mode 0600."""
    path = auth_path(home)
    try:
        write_private_file(path, json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise AuthError("cannot write %s: %s (make %s writable, or set CODEX_HOME)" % (path, exc.strerror or exc, home))


def _mask_key(key):
    """sk-abcdefgh***vwxyz, or *** for short keys (as upstream's `login status`)."""
    return "***" if len(key) <= 13 else "%s***%s" % (key[:8], key[-5:])


###############################################################################
# §06 HTTP and SSE
###############################################################################

# One HTTP client per session (proxies and CAs from the
# environment): model requests use HttpClient, a small stdlib HTTP/1.1 client (httpx and the
# anyio stack it pulls in cost ~60 ms at every start); http_client() (httpx) serves the other
# HTTP users.  An incremental SSE parser, and the request-level retry loop shared by both wire
# APIs.  Stream-level retries live in the turn loop (§16).

BACKOFF_BASE_S = 0.2  #: first retry delay; doubles per attempt with +-10% jitter
BACKOFF_CAP_S = 30.0  #: ceiling of one computed backoff delay
RETRY_AFTER_CAP_S = 300.0  #: ceiling of a server-requested Retry-After wait
CONNECT_TIMEOUT_S = 30.0  #: TCP/TLS connect timeout for model requests
#: environment variables naming a CA bundle, in the order they are tried
CA_BUNDLE_VARS = ("CODEX_CA_CERTIFICATE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")

_SSE_LINE_SPLIT = re.compile(rb"\r\n|\r|\n")


class StreamError(ProviderError):
    """A model stream that failed in a way worth retrying (dropped, idle, no completion)."""

    def __init__(self, message, retry_after=None):
        ProviderError.__init__(self, message)
        self.retry_after = retry_after


class ContextWindowExceeded(ProviderError):
    """The request did not fit the model's context window (the session compacts and retries once)."""


#: what providers say when the input does not fit (OpenAI's code, llama.cpp, vLLM, Anthropic-style gateways)
_CONTEXT_OVERFLOW_RE = re.compile(
    r"context_length_exceeded|exceed_context_size|maximum context length|exceeds the available context"
    r"|context window|prompt is too long|too many tokens|reduce the length of the messages", re.I)


def _is_context_overflow(err, detail=""):
    """Whether an error object (or its text) says the input is longer than the context window."""
    err = err if isinstance(err, dict) else {}
    fields = " ".join(str(err.get(k) or "") for k in ("code", "type", "message")) + " " + (detail or "")
    return bool(_CONTEXT_OVERFLOW_RE.search(fields))


class Interrupted(CodexError):
    """The user interrupted the running task."""


class SseEvent(object):
    """One Server-Sent Event: `event` name (default "message"), `data` text, `id`."""

    __slots__ = ("event", "data", "id")

    def __init__(self, event, data, id=None):
        self.event = event
        self.data = data
        self.id = id

    def __repr__(self):
        return "SseEvent(%r, %r)" % (self.event, self.data[:60])


class SseParser(object):
    """Incremental SSE parser: feed() bytes as they arrive, get back complete events.

    Handles LF, CRLF and CR line ends (also split across chunks), multi-line `data:`,
    `:` comments, `event:`/`id:` fields, and events split anywhere between chunks.
    """

    def __init__(self, last_id=None):
        self._tail = b""
        self._data = []
        self._event = None
        self._id = last_id
        self.retry_ms = None  # the last `retry:` field (reconnection delay the server asks for)

    @property
    def last_id(self):
        """The last `id:` seen (also on an event without data): what Last-Event-ID resumes from."""
        return self._id

    def feed(self, chunk):
        """Add bytes; return the list of events they complete."""
        buf = self._tail + chunk if self._tail else chunk
        if not buf:
            return []
        if b"\r" in buf:
            hold = b""
            if buf.endswith(b"\r"):  # the \n of a CRLF may be in the next chunk
                buf, hold = buf[:-1], b"\r"
            lines = _SSE_LINE_SPLIT.split(buf)
            self._tail = lines.pop() + hold
        else:
            lines = buf.split(b"\n")
            self._tail = lines.pop()
        out = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    out.append(SseEvent(self._event or "message", "\n".join(data), self._id))
                    data = self._data = []
                self._event = None
                continue
            if line.startswith(b"data:"):
                value = line[5:]
                if value[:1] == b" ":
                    value = value[1:]
                data.append(value.decode("utf-8", "replace"))
                continue
            if line[:1] == b":":
                continue
            field, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if field == b"event":
                self._event = value.decode("utf-8", "replace")
            elif field == b"id":
                self._id = value.decode("utf-8", "replace")
            elif field == b"retry" and value.isdigit():
                self.retry_ms = int(value)
        return out

    def finish(self):
        """At end of stream: return a last event that lacked its blank line (lenient)."""
        out = self.feed(b"\n\n") if (self._tail or self._data) else []
        self._tail = b""
        return out


def backoff(attempt, base=BACKOFF_BASE_S):
    """Delay before retry number `attempt` (1-based): base * 2^(n-1) * jitter[0.9, 1.1)."""
    import random

    return min(BACKOFF_CAP_S, base * (2 ** max(0, attempt - 1))) * random.uniform(0.9, 1.1)


def retry_after_seconds(headers):
    """The server's requested wait from `retry-after-ms` or `Retry-After` (seconds); None if absent."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return min(RETRY_AFTER_CAP_S, max(0.0, float(value) / 1000.0))
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return min(RETRY_AFTER_CAP_S, max(0.0, float(value)))
        except ValueError:
            pass  # an HTTP-date: fall back to our own backoff
    return None


def _ca_bundle(environ=None):
    """The CA bundle file to trust (first of CA_BUNDLE_VARS that is set), or None."""
    environ = os.environ if environ is None else environ
    for var in CA_BUNDLE_VARS:
        value = environ.get(var, "").strip()
        if value:
            if not os.path.isfile(value):
                raise ConfigError("%s=%s: no such CA certificate file; fix or unset %s" % (var, value, var))
            return var, value
    return None


def http_client(idle_timeout_s=300.0, environ=None):
    """An httpx.Client honouring HTTP(S)_PROXY/ALL_PROXY/NO_PROXY and CODEX_CA_CERTIFICATE/SSL_CERT_FILE."""
    import httpx  # startup budget: only sessions that talk to a model load httpx

    verify = True
    bundle = _ca_bundle(environ)
    if bundle is not None:
        import ssl

        ctx = ssl.create_default_context()
        try:
            ctx.load_verify_locations(cafile=bundle[1])
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError("%s=%s: cannot load the CA certificates (%s)" % (bundle[0], bundle[1], exc))
        verify = ctx
    timeout = httpx.Timeout(connect=CONNECT_TIMEOUT_S, read=idle_timeout_s, write=CONNECT_TIMEOUT_S, pool=CONNECT_TIMEOUT_S)
    return httpx.Client(timeout=timeout, verify=verify, trust_env=True, follow_redirects=False)


class HttpTimeout(Exception):
    """No connection, or no data, within the timeout (HttpClient)."""


class HttpTransportError(Exception):
    """The connection failed or broke (HttpClient)."""


def _no_proxy_match(host, no_proxy):
    """Whether NO_PROXY (comma-separated names, .suffixes, IPs, `*`) exempts `host`."""
    host = host.lower().strip("[]").rstrip(".")
    for entry in no_proxy.replace(" ", ",").split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if entry.startswith("[") and "]" in entry:
            entry = entry[1:entry.index("]")]
        elif entry.count(":") == 1:
            entry = entry.split(":", 1)[0]  # a port is ignored, as curl does
        entry = entry.lstrip("*").lstrip(".").rstrip(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


def env_proxy(scheme, host, environ=None):
    """(host, port, Proxy-Authorization or None) of the http:// proxy for a request, or None.

    HTTPS_PROXY / HTTP_PROXY / ALL_PROXY (lowercase wins, as in curl) and NO_PROXY; loopback
    hosts are never proxied.
    """
    environ = os.environ if environ is None else environ
    proxies = {}
    for name, value in environ.items():
        low = name.lower()
        if value and low.endswith("_proxy") and (name == low or low not in environ):
            proxies[low[:-6]] = value.strip()
    url = proxies.get(scheme) or proxies.get("all")
    if not url or _no_proxy_match(host, proxies.get("no", "")):
        return None
    bare = host.strip("[]").lower()
    if bare == "localhost" or bare.endswith(".localhost") or bare.startswith("127.") or bare == "::1":
        return None
    from urllib.parse import unquote, urlsplit

    p = urlsplit(url if "://" in url else "http://" + url)
    if p.scheme.lower() != "http" or not p.hostname:
        var = "%s_PROXY" % (scheme.upper() if proxies.get(scheme) else "ALL")
        raise ConfigError("%s=%s://%s: codex reaches providers through http:// proxies only; fix or unset %s"
                          % (var, p.scheme, p.netloc.rpartition("@")[2], var))
    auth = None
    if p.username:
        import base64

        pair = "%s:%s" % (unquote(p.username), unquote(p.password or ""))
        auth = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
    try:
        port = p.port or 80
    except ValueError:
        raise ConfigError("the %s proxy %s has a bad port" % (scheme, p.netloc.rpartition("@")[2]))
    return (p.hostname, port, auth)


class _Request(object):
    __slots__ = ("method", "url", "headers", "content")

    def __init__(self, method, url, headers, content):
        self.method, self.url, self.headers, self.content = method, url, headers, content


class _NetworkStream(object):
    """What abort_response() reaches for: the response's socket."""

    def __init__(self, sock):
        self._sock = sock

    def get_extra_info(self, name):
        return self._sock if name == "socket" else None


class _Connection(object):
    """One HTTP/1.1 connection: a socket (TLS or not) and a buffered reader on it."""

    def __init__(self, key, sock):
        self.key = key
        self.sock = sock
        self.reader = sock.makefile("rb")
        self.reused = False

    def stale(self):
        """Whether an idle kept-alive connection was closed (or sent something) meanwhile."""
        import select

        try:
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def close(self):
        for thing in (self.reader, self.sock):
            try:
                thing.close()
            except OSError:
                pass


class HttpResponse(object):
    """A streamed HTTP/1.1 response: status_code, headers (lowercase names), iter_bytes(),
    read(), close().  Chunked, Content-Length and read-to-close bodies; gzip/deflate decoded."""

    def __init__(self, client, conn, status, headers, method, http10=False):
        import zlib

        self._client = client
        self._conn = conn
        self.status_code = status
        self.headers = headers
        self.extensions = {"network_stream": _NetworkStream(conn.sock)}
        self._done = False
        te = headers.get("transfer-encoding", "").lower()
        self._chunked = "chunked" in te
        self._chunk_left, self._chunk_crlf = 0, False  # bytes left in the current chunk; its CRLF unread
        length = headers.get("content-length", "")
        self._left = int(length) if (not self._chunked and length.strip().isdigit()) else None
        connection = headers.get("connection", "").lower()
        self._keep = (("keep-alive" in connection if http10 else "close" not in connection)
                      and (self._chunked or self._left is not None))
        if method == "HEAD" or status in (204, 304) or self._left == 0:
            self._left, self._chunked, self._done = 0, False, True
        coding = headers.get("content-encoding", "").lower().strip()
        self._decoder = (zlib.decompressobj(16 + zlib.MAX_WBITS) if coding == "gzip"
                         else zlib.decompressobj() if coding == "deflate" else None)

    def _raw(self):
        import socket

        reader = self._conn.reader
        try:
            if self._chunked:
                # The position inside the chunk stream lives on the response, not in this
                # generator: a reader that stops early (close() draining the rest) goes on
                # from where the last one stopped, instead of reading chunk data as a size line.
                while True:
                    if not self._chunk_left:
                        if self._chunk_crlf:
                            reader.readline(65537)
                            self._chunk_crlf = False
                        line = reader.readline(65537)
                        if not line.endswith(b"\n"):
                            raise HttpTransportError("the connection closed in the middle of a chunked body")
                        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                        if size == 0:
                            while reader.readline(65537) not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return
                        self._chunk_left, self._chunk_crlf = size, True
                    while self._chunk_left:
                        data = reader.read1(min(self._chunk_left, 65536))
                        if not data:
                            raise HttpTransportError("the connection closed in the middle of a chunk")
                        self._chunk_left -= len(data)
                        yield data
            elif self._left is not None:
                while self._left:
                    data = reader.read1(min(self._left, 65536))
                    if not data:
                        raise HttpTransportError("the connection closed %d bytes before the end of the body" % self._left)
                    self._left -= len(data)
                    yield data
            else:
                while True:
                    data = reader.read1(65536)
                    if not data:
                        return
                    yield data
        except socket.timeout:
            raise HttpTimeout("no data within the read timeout")
        except (OSError, ValueError) as exc:
            raise HttpTransportError(str(exc) or type(exc).__name__)

    def iter_bytes(self):
        """The body, as it arrives."""
        if self._done:
            return
        for data in self._raw():
            if self._decoder is not None:
                data = self._decoder.decompress(data)
            if data:
                yield data
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                yield tail
        self._done = True
        self.close()

    def read(self):
        """The whole body."""
        return b"".join(self.iter_bytes())

    def close(self):
        if self._conn is None:
            return
        if not self._done and self._keep:
            self._drain()
        conn, self._conn = self._conn, None
        if self._done and self._keep:
            self._client._release(conn)
        else:
            conn.close()

    def _drain(self, limit=65536, wait_s=0.02):
        """Read what is left of a body that has (nearly) all arrived, so the connection can be
        reused and is not reset (an SSE stream's closing chunk comes just after its last event)."""
        try:
            self._conn.sock.settimeout(wait_s)
            got = 0
            for data in self._raw():
                got += len(data)
                if got > limit:
                    return
            self._done = True
        except (HttpTimeout, HttpTransportError, OSError):
            pass
        finally:
            if self._conn is not None:
                try:
                    self._conn.sock.settimeout(self._client.idle_timeout_s)
                except OSError:
                    pass


class HttpClient(object):
    """A small HTTP/1.1 client for streaming model requests (the stdlib only).

    Plain HTTP and HTTPS, http:// proxies from the environment (absolute-URI requests, CONNECT
    tunnels for HTTPS, Basic proxy credentials, NO_PROXY), the CA bundle from
    CODEX_CA_CERTIFICATE / SSL_CERT_FILE / REQUESTS_CA_BUNDLE (else the system's roots and
    certifi's), a connect timeout and an idle read timeout, gzip/deflate bodies, and
    kept-alive connections reused per origin.  No redirects, cookies or HTTP/2 (the model
    endpoints need none).  Importing it costs ~1 ms where httpx costs ~60 ms.
    """

    def __init__(self, idle_timeout_s=300.0, environ=None):
        self.environ = os.environ if environ is None else environ
        self.idle_timeout_s = idle_timeout_s
        self._bundle = _ca_bundle(self.environ)  # a bad CA setting fails now, not at the first request
        self._ssl = None
        self._idle = {}
        self._lock = threading.Lock()

    def _ssl_context(self):
        if self._ssl is None:
            import ssl

            ctx = ssl.create_default_context()  # the system's roots (and SSL_CERT_FILE / SSL_CERT_DIR)
            if self._bundle is not None:
                try:
                    ctx.load_verify_locations(cafile=self._bundle[1])
                except (ssl.SSLError, OSError) as exc:
                    raise ConfigError("%s=%s: cannot load the CA certificates (%s)" % (self._bundle[0], self._bundle[1], exc))
            else:
                import importlib.util

                spec = importlib.util.find_spec("certifi")  # not imported: certifi.where() costs ~20 ms
                if spec is not None and spec.origin:
                    try:
                        ctx.load_verify_locations(cafile=os.path.join(os.path.dirname(spec.origin), "cacert.pem"))
                    except (ssl.SSLError, OSError):
                        pass
            ctx.set_alpn_protocols(["http/1.1"])
            self._ssl = ctx
        return self._ssl

    def build_request(self, method, url, headers=None, content=b""):
        return _Request(method, url, dict(headers or {}), content or b"")

    def _connect(self, scheme, host, port, proxy):
        import socket

        target = (proxy[0], proxy[1]) if proxy else (host, port)
        try:
            sock = socket.create_connection(target, timeout=CONNECT_TIMEOUT_S)
        except socket.timeout:
            raise HttpTimeout("no connection to %s:%d within %ds" % (target[0], target[1], CONNECT_TIMEOUT_S))
        except OSError as exc:
            raise HttpTransportError("cannot connect to %s:%d: %s" % (target[0], target[1], exc.strerror or exc))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                if proxy:
                    self._tunnel(sock, host, port, proxy)
                import ssl

                try:
                    sock = self._ssl_context().wrap_socket(sock, server_hostname=host)
                except ssl.SSLError as exc:
                    raise HttpTransportError("TLS with %s failed: %s" % (host, exc))
            sock.settimeout(self.idle_timeout_s)
            return sock
        except socket.timeout:
            sock.close()
            raise HttpTimeout("no TLS/proxy handshake with %s within %ds" % (host, CONNECT_TIMEOUT_S))
        except OSError as exc:
            sock.close()
            raise HttpTransportError("cannot connect to %s: %s" % (host, exc))
        except BaseException:
            sock.close()
            raise

    @staticmethod
    def _tunnel(sock, host, port, proxy):
        authority = "%s:%d" % ("[%s]" % host if ":" in host else host, port)
        head = "CONNECT %s HTTP/1.1\r\nHost: %s\r\n" % (authority, authority)
        if proxy[2]:
            head += "Proxy-Authorization: %s\r\n" % proxy[2]
        sock.sendall((head + "\r\n").encode("ascii"))
        answer = b""
        while b"\r\n\r\n" not in answer:
            more = sock.recv(4096)
            if not more or len(answer) > 65536:
                raise HttpTransportError("the HTTP proxy %s:%d closed the connection during CONNECT" % proxy[:2])
            answer += more
        status = answer.split(b"\r\n", 1)[0].decode("latin-1")
        if len(status.split()) < 2 or not status.split()[1].startswith("2"):
            raise HttpTransportError("the HTTP proxy %s:%d refused CONNECT %s: %s" % (proxy[0], proxy[1], authority, status))

    def _acquire(self, key):
        with self._lock:
            idle = self._idle.get(key) or []
            while idle:
                conn = idle.pop()
                if not conn.stale():
                    conn.reused = True
                    return conn
                conn.close()
        return None

    def _release(self, conn):
        with self._lock:
            idle = self._idle.setdefault(conn.key, [])
            idle.append(conn)
            while len(idle) > 4:
                idle.pop(0).close()

    def send(self, request, stream=True):
        """Send `request`; return the HttpResponse once its status line and headers are in."""
        from urllib.parse import urlsplit

        parts = urlsplit(request.url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise HttpTransportError("unsupported URL %s (http:// or https:// expected)" % request.url.split("?")[0])
        host = parts.hostname
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise HttpTransportError("bad port in %s" % request.url.split("?")[0])
        proxy = env_proxy(scheme, host, self.environ)
        shown = "[%s]" % host if ":" in host else host
        authority = shown if port == (443 if scheme == "https" else 80) else "%s:%d" % (shown, port)
        path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        target = ("http://%s%s" % (authority, path)) if (proxy and scheme == "http") else path
        lines = ["%s %s HTTP/1.1" % (request.method, target), "Host: " + authority]
        names = {k.lower() for k in request.headers}
        for name, value in request.headers.items():
            if "\r" in name or "\n" in name or "\r" in str(value) or "\n" in str(value):
                raise HttpTransportError("the request header %s contains a line break" % name)
            lines.append("%s: %s" % (name, value))
        if "accept-encoding" not in names:
            lines.append("Accept-Encoding: gzip, deflate")
        if request.content or request.method in ("POST", "PUT", "PATCH"):
            lines.append("Content-Length: %d" % len(request.content))
        if proxy and scheme == "http" and proxy[2]:
            lines.append("Proxy-Authorization: " + proxy[2])
        try:
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        except UnicodeEncodeError:
            raise HttpTransportError("a request header is not Latin-1 text; check http_headers and env_http_headers")
        key = (scheme, host, port, proxy)
        import socket

        for attempt in (1, 2):
            conn = self._acquire(key) if attempt == 1 else None
            if conn is None:
                conn = _Connection(key, self._connect(scheme, host, port, proxy))
            try:
                if len(request.content) < 65536:
                    conn.sock.sendall(head + request.content)
                else:
                    conn.sock.sendall(head)
                    conn.sock.sendall(request.content)
                status, headers, http10 = self._read_head(conn)
            except _StaleConnection:
                conn.close()
                if conn.reused and attempt == 1:
                    continue  # the server closed a kept-alive connection: once more on a new one
                raise HttpTransportError("the server closed the connection without answering")
            except socket.timeout:
                conn.close()
                raise HttpTimeout("no response within the read timeout")
            except OSError as exc:
                conn.close()
                if conn.reused and attempt == 1:
                    continue
                raise HttpTransportError(str(exc) or type(exc).__name__)
            except BaseException:
                conn.close()
                raise
            return HttpResponse(self, conn, status, headers, request.method, http10)

    @staticmethod
    def _read_head(conn):
        import socket

        reader = conn.reader
        try:
            while True:
                line = reader.readline(65537)
                if not line:
                    raise _StaleConnection()
                words = line.split(None, 2)
                if len(words) < 2 or not words[0].startswith(b"HTTP/") or not words[1].isdigit():
                    raise HttpTransportError("not an HTTP response: %r" % line[:80])
                status = int(words[1])
                headers = {}
                total = 0
                while True:
                    line = reader.readline(65537)
                    total += len(line)
                    if not line.endswith(b"\n") or total > 262144:
                        raise HttpTransportError("the response headers were cut off or too large")
                    if line in (b"\r\n", b"\n"):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    name, value = name.strip().lower(), value.strip()
                    headers[name] = headers[name] + ", " + value if name in headers else value
                if status >= 200 or status == 101:
                    return status, headers, words[0] == b"HTTP/1.0"
        except socket.timeout:
            raise HttpTimeout("no response within the read timeout")
        except OSError as exc:
            if conn.reused:
                raise _StaleConnection()
            raise HttpTransportError(str(exc) or type(exc).__name__)

    def close(self):
        with self._lock:
            for idle in self._idle.values():
                for conn in idle:
                    conn.close()
            self._idle.clear()


class _StaleConnection(Exception):
    """A kept-alive connection turned out closed before the response started."""


def model_http_client(idle_timeout_s=300.0, environ=None):
    """The HttpClient model requests go through (see HttpClient for what it supports)."""
    return HttpClient(idle_timeout_s, environ)


def _clip(text, limit):
    """`text` cut to `limit` characters with an ellipsis."""
    text = str(text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _plural(n, one, many):
    """"1 retry", "2 retries"."""
    return "%d %s" % (n, one if n == 1 else many)


def _html_text(text):
    """The gist of an HTML error page: its <title> and first heading, else its text, no tags."""
    found = [" ".join(re.sub(r"<[^>]+>", " ", m).split())
             for m in re.findall(r"(?is)<(?:title|h1)[^>]*>(.*?)</(?:title|h1)>", text)]
    found = [f for i, f in enumerate(found) if f and f not in found[:i]]
    if found:
        return " - ".join(found[:2])
    text = re.sub(r"(?is)<(script|style)[^>]*>.*?</\1>", " ", text)
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())


def _error_detail(body):
    """The server's error message from a JSON (or text) error body, one line, secrets redacted."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    detail = text
    try:
        obj = json.loads(text)
        err = obj.get("error") if isinstance(obj, dict) else None
        if isinstance(err, dict):
            detail = err.get("message") or err.get("code") or err.get("type") or text
        elif isinstance(err, str):
            detail = err
        elif isinstance(obj, dict) and obj.get("message"):
            detail = obj["message"]
    except ValueError:
        if re.match(r"(?is)\s*(<!doctype html|<html|<head|<body)", text):
            detail = "an HTML page: %s" % (_html_text(text) or "(no text)")  # a gateway's or proxy's error page
    detail = " ".join(str(detail).split())
    return redact(detail[:400] + ("..." if len(detail) > 400 else ""))


def _error_json(body):
    """The `error` object of a JSON error body, or {}."""
    try:
        obj = json.loads(body.decode("utf-8", "replace") if isinstance(body, bytes) else body)
        err = obj.get("error") if isinstance(obj, dict) else None
        return err if isinstance(err, dict) else {}
    except (ValueError, AttributeError):
        return {}


def http_status_error(status, url, body, model=None, provider=None):
    """A ProviderError whose one line says what went wrong and what to check."""
    detail = _error_detail(body)
    where = url.split("?")[0]
    if status == 401:
        hint = "the API key was rejected: check %s or run `codex login --api-key KEY`" % (
            (provider and provider.env_key) or "the provider's key")
    elif status == 403:
        hint = "access denied: the key may lack access to model `%s` or this endpoint" % model
    elif status == 404 and _error_json(body).get("code") == "DeploymentNotFound":
        hint = "Azure deployment `%s` not found: set the model to the deployment name (-m NAME)" % model
    elif status == 404:
        hint = "not found: check the provider base_url (Azure needs .../openai and query_params.api-version) and that model `%s` exists" % model
    elif status == 429:
        hint = "rate limited; wait a moment and try again"
    elif status >= 500:
        hint = "the provider failed; try again later"
    elif status in (400, 413) and _is_context_overflow(_error_json(body), detail):
        err = ContextWindowExceeded("the conversation does not fit the model's context window (HTTP %d from %s): %s"
                                    % (status, where, detail or "(empty body)"))
        err.status = status
        return err
    else:
        hint = "the provider rejected the request"
    err = ProviderError("%s (HTTP %d from %s): %s" % (hint, status, where, detail or "(empty body)"))
    err.status = status  # callers that adapt the request (Chat's stream_options fallback) look at it
    return err


def _interruptible_sleep(seconds, cancel):
    """Sleep, returning early (and raising Interrupted) when `cancel` is set."""
    if cancel is not None:
        if cancel.wait(seconds):
            raise Interrupted("interrupted")
    else:
        time.sleep(seconds)


def open_sse(client, url, headers, body, max_retries, cancel=None, on_retry=None, model=None, provider=None):
    """POST `body` through `client` (an HttpClient) and return the streaming 2xx HttpResponse,
    retrying per request_max_retries.

    429, 5xx and transport errors are retried with Retry-After/retry-after-ms or backoff;
    quota errors and other 4xx raise ProviderError at once.
    """
    data = json.dumps(body, ensure_ascii=False).encode("utf-8", "replace")  # lone surrogates become "?"
    attempt = 0
    while True:
        attempt += 1
        if cancel is not None and cancel.is_set():
            raise Interrupted("interrupted")
        delay = None
        try:
            request = client.build_request("POST", url, headers=headers, content=data)
            started = time.monotonic()
            resp = client.send(request, stream=True)
            log("debug", "POST %s (%d bytes, attempt %d) -> HTTP %d in %.3fs", url.split("?")[0], len(data), attempt,
                resp.status_code, time.monotonic() - started)
        except HttpTimeout as exc:
            if attempt > max_retries:  # the request layer is done: no second retry layer on top
                raise ProviderError("timed out connecting to %s (%s); check the network or proxy" % (url.split("?")[0], exc))
            error = "timeout"
        except HttpTransportError as exc:
            if attempt > max_retries:
                raise ProviderError("cannot reach %s: %s (check the network, HTTPS_PROXY/NO_PROXY, or the CA via CODEX_CA_CERTIFICATE)"
                                  % (url.split("?")[0], redact(exc) or type(exc).__name__))
            error = redact(exc) or type(exc).__name__
        else:
            status = resp.status_code
            if status < 300:
                return resp
            try:
                payload = resp.read()
            except (HttpTimeout, HttpTransportError):
                payload = b""
            resp.close()
            err = _error_json(payload)
            if status == 429 and (err.get("type") in ("usage_limit_reached", "usage_not_included")
                                  or err.get("code") == "insufficient_quota"):
                raise ProviderError("quota exhausted (HTTP 429 from %s): %s; check your plan and billing"
                                    % (url.split("?")[0], _error_detail(payload)))
            if status != 429 and status < 500:
                raise http_status_error(status, url, payload, model, provider)
            if attempt > max_retries:
                exc = http_status_error(status, url, payload, model, provider)
                raise ProviderError("%s (gave up after %s)" % (exc, _plural(max_retries, "retry", "retries")))
            delay = retry_after_seconds(resp.headers)
            error = "HTTP %d" % status
        if delay is None:
            delay = backoff(attempt)
        log("info", "model request to %s failed (%s); retry %d/%d in %.2fs", url, error, attempt, max_retries, delay)
        if on_retry is not None:
            on_retry(error, attempt, max_retries, delay)
        _interruptible_sleep(delay, cancel)


def _stream_errors():
    """(timeout errors, transport errors) of the HTTP clients in use: HttpClient's, and
    httpx's when something (the MCP HTTP transport) already imported it."""
    timeouts, transport = (HttpTimeout,), (HttpTransportError,)
    httpx = sys.modules.get("httpx")
    if httpx is not None:
        timeouts += (httpx.TimeoutException,)
        transport += (httpx.TransportError, httpx.StreamError)
    return timeouts, transport


def iter_sse(resp, cancel=None, idle_timeout_ms=None, parser=None):
    """Yield SseEvents from a streaming response (HttpClient's or httpx's); transport trouble
    raises StreamError.

    Pass your own `parser` to read its `last_id`/`retry_ms` afterwards (MCP resumes with them).
    """
    timeouts, transport = _stream_errors()
    parser = SseParser() if parser is None else parser
    try:
        for chunk in resp.iter_bytes():
            if cancel is not None and cancel.is_set():
                raise Interrupted("interrupted")
            for event in parser.feed(chunk):
                yield event
        for event in parser.finish():
            yield event
    except timeouts:
        raise StreamError("idle timeout waiting for SSE (no data for %s ms; see stream_idle_timeout_ms)" % (idle_timeout_ms,))
    except transport as exc:
        if cancel is not None and cancel.is_set():
            raise Interrupted("interrupted")
        raise StreamError("stream dropped: %s" % (redact(exc) or type(exc).__name__))
    finally:
        resp.close()


def abort_response(resp):
    """Unblock a thread reading `resp` by shutting its socket down (used by interrupt)."""
    import socket

    try:
        stream = resp.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except (OSError, AttributeError, KeyError):
        pass


###############################################################################
# §07 Providers: Responses and Chat Completions
###############################################################################

# A ModelClient turns a Prompt (instructions, input items,
# tools) into one streamed model request and yields normalized stream events:
#
#   ("created", None) ("text_delta", str) ("reasoning_delta", str) ("reasoning_break", None)
#   ("reasoning_raw_delta", str) ("item", response_item) ("completed", {"id", "usage"})
#
# Items are Responses-API input items (message, reasoning, function_call, ...) whatever the
# wire; `usage` is normalized by _usage_from_responses/_usage_from_chat or None.
# codex is stateless on the Responses wire: the full history goes in `input` every turn,
# `store` is false, item ids are not sent and encrypted reasoning is requested (upstream's
# behaviour from Sept 2025; avoids the ZDR and "item not found" 400s, openai/codex#3292).

#: model slug prefix -> (supports reasoning summaries, context window, family quirks)
MODEL_FAMILIES = (
    ("codex-mini-latest", True, 200000, ()),
    ("o3", True, 200000, ()),
    ("o4-mini", True, 200000, ()),
    ("codex-", True, 272000, ()),
    ("gpt-5", True, 272000, ()),
    ("gpt-4.1", False, 1047576, ("patch_instructions",)),
    ("gpt-oss", False, 96000, ("apply_patch_tool", "no_images")),
    ("gpt-4o", False, 128000, ()),
    ("gpt-3.5", False, 16385, ("no_images",)),
)

OUTPUT_SCHEMA_NAME = "codex_output_schema"  #: the json_schema `name` of --output-schema (as upstream)

#: Responses SSE `type`s that carry nothing the agent needs
_IGNORED_RESPONSES_EVENTS = frozenset((
    "response.in_progress", "response.output_item.added", "response.content_part.added",
    "response.content_part.done", "response.output_text.done", "response.function_call_arguments.delta",
    "response.function_call_arguments.done", "response.reasoning_summary_text.done",
    "response.reasoning_summary_part.done", "response.reasoning_text.done",
))
#: response item types kept in history and sent back to the model
HISTORY_ITEM_TYPES = ("message", "reasoning", "function_call", "function_call_output",
                      "local_shell_call", "custom_tool_call", "custom_tool_call_output")


class ModelFamily(object):
    """What codex needs to know about a model slug."""

    def __init__(self, slug, reasoning, context_window, quirks, known=True):
        self.slug = slug
        self.supports_reasoning = reasoning
        self.context_window = context_window
        self.needs_patch_instructions = "patch_instructions" in quirks
        self.wants_apply_patch_tool = "apply_patch_tool" in quirks
        #: images in tool results are sent on Chat only to models known to take them
        self.accepts_images = known and "no_images" not in quirks


def model_family(slug, cfg=None):
    """Look the slug up in MODEL_FAMILIES; config can force reasoning and the window."""
    found = None
    for prefix, reasoning, window, quirks in MODEL_FAMILIES:
        if slug.startswith(prefix):
            found = ModelFamily(slug, reasoning, window, quirks)
            break
    if found is None:
        found = ModelFamily(slug, False, None, (), known=False)
    if cfg is not None:
        if cfg.model_supports_reasoning_summaries is not None:
            found.supports_reasoning = bool(cfg.model_supports_reasoning_summaries) or found.supports_reasoning
        provider = cfg.provider
        served = _SERVED_WINDOWS.get((provider.base_url, slug))
        if served:
            found.context_window = served
        if cfg.model_context_window:
            found.context_window = cfg.model_context_window
    return found


#: (base_url, model) -> the context window its server reported (discover_context_window)
_SERVED_WINDOWS = {}
CONTEXT_PROBE_TIMEOUT_S = 2.0  #: per request when asking a Chat server for its window


def discover_context_window(provider, model, environ=None, timeout=CONTEXT_PROBE_TIMEOUT_S):
    """The context window the provider's server reports for `model` (tokens), or None.

    Asks, in order: llama.cpp's /props (the per-slot n_ctx), GET {base_url}/models (vLLM's
    max_model_len, llama.cpp's meta.n_ctx, OpenRouter's context_length), LM Studio's
    /api/v0/models/MODEL (loaded_context_length of a loaded model; provider `lmstudio`, `oss` or
    port 1234), Ollama's /api/show (num_ctx when the model sets it, else Ollama's default of
    4096).  The answer is remembered per (base_url, model) and model_family() uses it, so
    ModelFamily.context_window (task_started, token_count, compaction) is the served window.
    """
    key = (provider.base_url, model)
    if key in _SERVED_WINDOWS:
        return _SERVED_WINDOWS[key]
    base = (provider.base_url or "").rstrip("/")
    if not base:
        return None
    root = base[:-3] if base.endswith("/v1") else base
    try:
        headers = provider.headers(None, environ)
    except CodexError:
        headers = {}
    found = None
    client = None
    try:
        client = model_http_client(timeout, environ)

        def get_json(method, url, body=None):
            h = dict(headers, Accept="application/json")
            if body is not None:
                h["Content-Type"] = "application/json"
            try:
                resp = client.send(client.build_request(method, url, h, json.dumps(body).encode("utf-8") if body is not None else b""))
                try:
                    data = resp.read() if resp.status_code == 200 else None
                finally:
                    resp.close()
                return json.loads(data.decode("utf-8", "replace")) if data else None
            except Exception as exc:  # a probe never fails the session (refused, timeout, not JSON)
                log("debug", "context window probe %s: %s", url, exc)
                return None

        props = get_json("GET", root + "/props")
        if isinstance(props, dict):
            settings = props.get("default_generation_settings") or {}
            found = _positive_int(settings.get("n_ctx") if isinstance(settings, dict) else None) or _positive_int(props.get("n_ctx"))
        if found is None:
            listing = get_json("GET", base + "/models")
            entries = listing.get("data") if isinstance(listing, dict) else None
            if isinstance(entries, list):
                entries = [e for e in entries if isinstance(e, dict)]
                chosen = [e for e in entries if e.get("id") == model] or (entries if len(entries) == 1 else [])
                for entry in chosen[:1]:
                    meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
                    for value in (entry.get("max_model_len"), meta.get("n_ctx"), entry.get("loaded_context_length"),
                                  entry.get("context_length"), entry.get("max_context_length")):
                        found = found or _positive_int(value)
        if found is None and (provider.id in ("lmstudio", "oss") or ":1234" in root):
            # LM Studio's /v1/models says nothing of windows; its own REST API does, for a loaded model
            from urllib.parse import quote

            info = get_json("GET", root + "/api/v0/models/" + quote(model, safe=""))
            if isinstance(info, dict) and info.get("state") == "loaded":
                found = _positive_int(info.get("loaded_context_length"))
        if found is None and (provider.id in ("ollama", "oss") or ":11434" in root):
            show = get_json("POST", root + "/api/show", {"model": model})
            if isinstance(show, dict):
                m = re.search(r"(?m)^num_ctx\s+(\d+)", str(show.get("parameters") or ""))
                if m:
                    found = int(m.group(1))
                else:
                    trained = [_positive_int(v) for k, v in (show.get("model_info") or {}).items()
                               if str(k).endswith(".context_length")]
                    trained = [t for t in trained if t]
                    found = min([OLLAMA_DEFAULT_NUM_CTX] + trained) if show.get("model_info") is not None else None
    except Exception as exc:  # a probe never fails the session (no httpx, a bad CA bundle, ...)
        log("debug", "context window probe: %s", exc)
    finally:
        if client is not None:
            client.close()
    _SERVED_WINDOWS[key] = found
    return found


OLLAMA_DEFAULT_NUM_CTX = 4096  #: Ollama's window for a model whose Modelfile sets no num_ctx

#: where `--oss` looks for a local server, in order: (port, what usually listens there)
OSS_PORTS = ((11434, "Ollama"), (8080, "llama.cpp"), (1234, "LM Studio"), (8000, "vLLM"))
OSS_PROBE_TIMEOUT_S = 1.0


def find_local_server(host="127.0.0.1", ports=OSS_PORTS, timeout=OSS_PROBE_TIMEOUT_S):
    """(base_url, [model ids]) of the first OpenAI-compatible server answering GET /v1/models on
    one of `ports`; raises ConfigError naming every address tried when none answers."""
    import http.client  # startup budget: only --oss without a configured address probes

    tried = []
    for port, what in ports:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", "/v1/models", headers={"Accept": "application/json"})
            resp = conn.getresponse()
            body = resp.read(1 << 20)
            if resp.status == 200:
                try:
                    listing = json.loads(body.decode("utf-8", "replace"))
                except ValueError:
                    listing = None
                if isinstance(listing, dict) and isinstance(listing.get("data"), list):
                    ids = [m.get("id") for m in listing["data"] if isinstance(m, dict) and isinstance(m.get("id"), str)]
                    return "http://%s:%d/v1" % ("localhost" if host == "127.0.0.1" else host, port), ids
            tried.append("%d (%s: HTTP %d, not an OpenAI-compatible /v1/models)" % (port, what, resp.status))
        except (OSError, http.client.HTTPException) as exc:
            reason = "nothing listening" if isinstance(exc, ConnectionRefusedError) else (
                "no answer in %.0fs" % timeout if isinstance(exc, OSError) and "timed out" in str(exc) else str(exc) or type(exc).__name__)
            tried.append("%d (%s: %s)" % (port, what, reason))
        finally:
            conn.close()
    raise ConfigError("--oss: no local model server found on %s; tried ports %s. Start one (see README "
                      "\"Air-gapped with a local model\") or set CODEX_OSS_BASE_URL (e.g. http://host:8080/v1)"
                      % (host, ", ".join(tried)))


def oss_environment(environ, model=None):
    """For `--oss`: the environment with CODEX_OSS_BASE_URL set to the local server found (unless
    CODEX_OSS_BASE_URL or CODEX_OSS_PORT is set), and the model to use when none was named (the
    server's only or first model unless it serves DEFAULT_OSS_MODEL), as (environ, model)."""
    if environ.get("CODEX_OSS_BASE_URL", "").strip() or environ.get("CODEX_OSS_PORT", "").strip():
        return environ, model
    base, ids = find_local_server()
    environ = dict(environ, CODEX_OSS_BASE_URL=base)
    if model is None and ids and DEFAULT_OSS_MODEL not in ids:
        model = ids[0]
    return environ, model


def _positive_int(value):
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class Prompt(object):
    """One model request: the input items, the tools and the instructions (and the JSON
    schema the final answer must follow, from `codex exec --output-schema`)."""

    def __init__(self, input, tools, instructions, output_schema=None):
        self.input = input
        self.tools = tools
        self.instructions = instructions
        self.output_schema = output_schema


def user_agent(environ=None):
    """codex_cli_py/<version> (<os> <release>; <arch>) <terminal>"""
    import platform

    environ = os.environ if environ is None else environ
    term = environ.get("TERM_PROGRAM", "")
    if term and environ.get("TERM_PROGRAM_VERSION"):
        term += "/" + environ["TERM_PROGRAM_VERSION"]
    elif not term and environ.get("WEZTERM_VERSION"):
        term = "WezTerm/" + environ["WEZTERM_VERSION"]
    elif not term:
        term = environ.get("TERM", "unknown")
    term = re.sub(r"[^A-Za-z0-9._/-]", "_", term)
    return "%s/%s (%s %s; %s) %s" % (ORIGINATOR, __version__, platform.system(), platform.release(), platform.machine(), term)


def _usage_from_responses(u):
    """Normalize a Responses `usage` object."""
    if not isinstance(u, dict):
        return None
    inp = int(u.get("input_tokens") or 0)
    out = int(u.get("output_tokens") or 0)
    return {
        "input_tokens": inp,
        "cached_input_tokens": int((u.get("input_tokens_details") or {}).get("cached_tokens") or 0),
        "output_tokens": out,
        "reasoning_output_tokens": int((u.get("output_tokens_details") or {}).get("reasoning_tokens") or 0),
        "cache_write_input_tokens": _cache_write_tokens(u, "input_tokens_details"),
        "total_tokens": int(u.get("total_tokens") or inp + out),
    }


def _cache_write_tokens(u, details_key):
    """Prompt-cache writes, where a provider reports them (`<details>.cache_write_tokens`, or
    Anthropic-style `cache_creation_input_tokens` from compatible gateways); else 0."""
    details = u.get(details_key) or {}
    value = details.get("cache_write_tokens") if isinstance(details, dict) else None
    if value is None:
        value = u.get("cache_creation_input_tokens")
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _usage_from_chat(u):
    """Normalize a Chat Completions `usage` object."""
    if not isinstance(u, dict):
        return None
    inp = int(u.get("prompt_tokens") or 0)
    out = int(u.get("completion_tokens") or 0)
    return {
        "input_tokens": inp,
        "cached_input_tokens": int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0),
        "output_tokens": out,
        "reasoning_output_tokens": int((u.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0),
        "cache_write_input_tokens": _cache_write_tokens(u, "prompt_tokens_details"),
        "total_tokens": int(u.get("total_tokens") or inp + out),
    }


def _clean_item(item):
    """A model output item as we keep it in history (no ids, no status), or None to drop it."""
    if not isinstance(item, dict):
        return None
    kind = item.get("type")
    if kind == "message":
        role = item.get("role")
        if role not in ("user", "assistant") or not isinstance(item.get("content"), list):
            return None
        parts = []
        for part in item["content"]:
            if isinstance(part, dict) and part.get("type") in ("output_text", "input_text"):
                parts.append({"type": part["type"], "text": part.get("text") or ""})
            elif isinstance(part, dict) and part.get("type") == "refusal":
                parts.append({"type": "output_text", "text": part.get("refusal") or ""})
            elif isinstance(part, dict) and part.get("type") == "input_image":
                parts.append({"type": "input_image", "image_url": part.get("image_url")})
        return {"type": "message", "role": role, "content": parts}
    if kind == "reasoning":
        out = {"type": "reasoning", "summary": [
            {"type": "summary_text", "text": s.get("text", "")} for s in item.get("summary") or [] if isinstance(s, dict)
        ], "encrypted_content": item.get("encrypted_content")}
        if item.get("content"):
            out["content"] = item["content"]
        return out
    if kind == "function_call":
        if not item.get("name"):
            return None
        return {"type": "function_call", "name": item["name"], "arguments": item.get("arguments") or "",
                "call_id": item.get("call_id") or item.get("id") or ""}
    if kind == "local_shell_call":
        out = {k: v for k, v in item.items() if k != "id"}
        out["call_id"] = item.get("call_id") or item.get("id") or ""
        return out
    if kind == "custom_tool_call":
        return {"type": "custom_tool_call", "name": item.get("name"), "input": item.get("input") or "",
                "call_id": item.get("call_id") or ""}
    return None


class ModelClient(object):
    """Base of the two wire clients: headers, retries, the HTTP client."""

    wire_api = None
    path = None

    def __init__(self, cfg, session_id, environ=None):
        self.cfg = cfg
        self.provider = cfg.provider
        self.session_id = session_id
        self.family = model_family(cfg.model, cfg)
        self._environ = os.environ if environ is None else environ
        self._http = None

    def _client(self):
        if self._http is None:
            self._http = model_http_client(self.provider.stream_idle_timeout_ms / 1000.0, self._environ)
        return self._http

    def close(self):
        """Close the HTTP connection pool."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def headers(self):
        """Request headers: provider static/env headers + auth, SSE accept, identity."""
        h = self.provider.headers(self.cfg.codex_home, self._environ)
        h.setdefault("originator", self.cfg.responses_originator_header_internal_override or ORIGINATOR)
        h["User-Agent"] = user_agent(self._environ)
        h["Accept"] = "text/event-stream"
        h["Content-Type"] = "application/json"
        return h

    def url(self):
        """The endpoint URL with the provider's query_params."""
        return self.provider.url(self.path)

    def body(self, prompt):
        """The JSON request body (per wire)."""
        raise NotImplementedError

    def stream(self, prompt, cancel=None, on_retry=None, on_response=None):
        """Send the prompt; yield normalized stream events (see the section comment)."""
        resp = open_sse(self._client(), self.url(), self.headers(), self.body(prompt),
                        self.provider.request_max_retries, cancel=cancel, on_retry=on_retry,
                        model=self.cfg.model, provider=self.provider)
        ctype = resp.headers.get("content-type", "").lower()
        if "json" in ctype or "html" in ctype:
            # A 2xx that is not a stream: usually a base_url pointing at the wrong server.
            try:
                payload = resp.read()
            finally:
                resp.close()
            raise ProviderError("expected an event stream from %s but got %s: %s (check the provider base_url and wire_api)"
                                % (self.url().split("?")[0], ctype.split(";")[0], _error_detail(payload)[:200]))
        if on_response is not None:
            on_response(resp)
        return self._events(iter_sse(resp, cancel, self.provider.stream_idle_timeout_ms))


class ResponsesClient(ModelClient):
    """The OpenAI Responses API (`POST /responses`, SSE)."""

    wire_api = "responses"
    path = "/responses"

    def headers(self):
        """Base headers plus the Responses beta flag and the session id."""
        h = ModelClient.headers(self)
        h["OpenAI-Beta"] = "responses=experimental"
        h["session_id"] = self.session_id
        h["conversation_id"] = self.session_id
        return h

    def reasoning_param(self):
        """The `reasoning` object, or None when the model has no reasoning summaries."""
        if not self.family.supports_reasoning:
            return None
        effort = self.cfg.model_reasoning_effort or "medium"
        if effort == "none":
            return None
        out = {"effort": effort}
        summary = self.cfg.model_reasoning_summary or "auto"
        if summary != "none":
            out["summary"] = summary
        return out

    def body(self, prompt):
        """The Responses request body (stateless: full input, store false)."""
        reasoning = self.reasoning_param()
        body = {
            "model": self.cfg.model,
            "instructions": prompt.instructions,
            # Reasoning without encrypted content (from a Chat provider, e.g. in a resumed
            # session) cannot be replayed statelessly: leave it out.
            "input": [it for it in prompt.input if it.get("type") != "reasoning" or it.get("encrypted_content")],
            "tools": prompt.tools,
            "tool_choice": "auto",
            "parallel_tool_calls": False,
            "reasoning": reasoning,
            "store": False,
            "stream": True,
            "include": ["reasoning.encrypted_content"] if reasoning is not None else [],
            "prompt_cache_key": self.session_id,
        }
        if self.cfg.model_verbosity and self.cfg.model.startswith("gpt-5"):
            body["text"] = {"verbosity": self.cfg.model_verbosity}
        if prompt.output_schema is not None:
            body.setdefault("text", {})["format"] = {"type": "json_schema", "strict": True, "name": OUTPUT_SCHEMA_NAME,
                                                     "schema": prompt.output_schema}
        if self.cfg.model_max_output_tokens:
            body["max_output_tokens"] = self.cfg.model_max_output_tokens
        return body

    def _events(self, sse):
        completed = None
        failure = None
        bad = None  # the first event whose data was not JSON (named if the stream then fails)
        show_raw = bool(self.cfg.show_raw_agent_reasoning)
        for ev in sse:
            try:
                obj = json.loads(ev.data)
            except ValueError:
                log("debug", "skipping unparseable SSE data: %r", ev.data[:200])
                bad = bad or ev.data
                continue
            if not isinstance(obj, dict):
                continue
            kind = obj.get("type")
            if kind == "response.output_text.delta":
                yield ("text_delta", obj.get("delta") or "")
            elif kind == "response.output_item.done":
                item = _clean_item(obj.get("item"))
                if item is not None:
                    yield ("item", item)
            elif kind == "response.reasoning_summary_text.delta":
                yield ("reasoning_delta", obj.get("delta") or "")
            elif kind == "response.reasoning_summary_part.added":
                yield ("reasoning_break", None)
            elif kind == "response.reasoning_text.delta":
                if show_raw:
                    yield ("reasoning_raw_delta", obj.get("delta") or "")
            elif kind == "response.created":
                yield ("created", None)
            elif kind == "response.completed":
                resp = obj.get("response") or {}
                # response.output is ignored on purpose: the items came as output_item.done.
                completed = {"id": resp.get("id"), "usage": _usage_from_responses(resp.get("usage"))}
            elif kind in ("response.failed", "response.incomplete", "error"):
                resp = obj.get("response") or {}
                err = resp.get("error") or obj.get("error") or {}
                if kind == "error" and not err:
                    err = obj
                if kind == "response.incomplete":
                    reason = (resp.get("incomplete_details") or {}).get("reason") or "unknown"
                    err = {"message": "the response is incomplete (%s)" % reason}
                failure = _response_failure(err)
            elif kind not in _IGNORED_RESPONSES_EVENTS:
                log("debug", "ignoring SSE event %s", kind)
        if completed is not None:
            yield ("completed", completed)
        elif failure is not None:
            raise failure
        elif bad is not None:
            raise StreamError("the provider sent stream data that is not JSON (%r) and no response.completed"
                              % _clip(bad, 120))
        else:
            raise StreamError("stream closed before response.completed")


def _response_failure(err):
    """The exception for a response.failed error object (fatal or retryable)."""
    if not isinstance(err, dict):
        err = {"message": str(err)}
    message = err.get("message") or "response.failed event received"
    code = err.get("code")
    if code == "context_length_exceeded" or (code not in ("rate_limit_exceeded", "insufficient_quota")
                                             and _is_context_overflow(err)):
        return ContextWindowExceeded("the conversation does not fit the model's context window: %s" % message)
    if code in ("insufficient_quota", "usage_limit_reached", "usage_not_included"):
        return ProviderError("quota exhausted: %s; check your plan and billing" % message)
    delay = None
    if code == "rate_limit_exceeded":
        m = re.search(r"(?i)try again in\s*([\d.]+)\s*(ms|s)", message)
        if m:
            delay = float(m.group(1)) / (1000.0 if m.group(2).lower() == "ms" else 1.0)
    return StreamError(message, retry_after=delay)


class ChatClient(ModelClient):
    """Any Chat Completions endpoint (`POST /chat/completions`, streamed chunks)."""

    wire_api = "chat"
    path = "/chat/completions"
    #: ask for the final usage chunk; turned off for the session when a server rejects it
    include_usage = True

    def recovers_tool_calls(self):
        """Whether calls written as text are recovered (provider `recover_tool_calls`, default on)."""
        setting = getattr(self.provider, "recover_tool_calls", None)
        return True if setting is None else bool(setting)

    def body(self, prompt):
        """The Chat Completions request body."""
        body = {
            "model": self.cfg.model,
            "messages": history_to_chat_messages(prompt.instructions, prompt.input,
                                                 tool_images=model_family(self.cfg.model, self.cfg).accepts_images),
            "stream": True,
        }
        if self.include_usage:
            body["stream_options"] = {"include_usage": True}
        tools = tools_to_chat(prompt.tools)
        if tools:
            body["tools"] = tools
        if prompt.output_schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": OUTPUT_SCHEMA_NAME, "strict": True, "schema": prompt.output_schema}}
        if self.cfg.model_max_output_tokens:
            body["max_tokens"] = self.cfg.model_max_output_tokens
        return body

    def stream(self, prompt, cancel=None, on_retry=None, on_response=None):
        """Stream as ModelClient does; a 400 about stream_options retries once without it."""
        # the tools of this request, for recovering calls the model writes as text
        self._offered = {t["name"]: t.get("parameters") for t in prompt.tools or ()
                         if t.get("type") == "function" and t.get("name")}
        try:
            return ModelClient.stream(self, prompt, cancel=cancel, on_retry=on_retry, on_response=on_response)
        except ProviderError as exc:
            # Older servers and some gateways reject the field; this client (one per
            # session) then stops sending it and token counts fall back to none.
            if not (self.include_usage and getattr(exc, "status", None) == 400 and "stream_options" in str(exc)):
                raise
            log("info", "%s rejected stream_options; retrying without it for this session", self.url().split("?")[0])
            self.include_usage = False
            return ModelClient.stream(self, prompt, cancel=cancel, on_retry=on_retry, on_response=on_response)

    def _events(self, sse):
        text = []
        reasoning = []
        calls = {}  # index -> {"id", "name", "arguments"[]}; order = first seen
        order = []
        last_index = [None]
        usage = None
        finished = False
        finish_reason = [None]

        def flush():
            if reasoning:
                yield ("item", {"type": "reasoning", "summary": [], "encrypted_content": None,
                                "content": [{"type": "reasoning_text", "text": "".join(reasoning)}]})
                del reasoning[:]
            recovered = None
            if (text and self.recovers_tool_calls() and finish_reason[0] != "length"
                    and not any(calls[i]["name"] for i in order)):
                recovered = recover_tool_calls("".join(text), getattr(self, "_offered", None))
                if recovered is not None:
                    text[:] = [recovered[1].strip()] if recovered[1].strip() else []
            if text:
                yield ("item", {"type": "message", "role": "assistant",
                                "content": [{"type": "output_text", "text": "".join(text)}]})
                del text[:]
            for index in order:
                call = calls[index]
                if not call["name"]:
                    continue
                yield ("item", {"type": "function_call", "name": call["name"],
                                "arguments": "".join(call["arguments"]),
                                "call_id": call["id"] or "tool-call-%s" % index})
            calls.clear()
            del order[:]
            if recovered is not None:
                import uuid

                for name, arguments in recovered[2]:
                    call_id = "call_recovered_" + uuid.uuid4().hex[:20]
                    yield ("tool_call_recovered", {"call_id": call_id, "name": name, "format": recovered[0]})
                    yield ("item", {"type": "function_call", "name": name, "arguments": arguments, "call_id": call_id})

        bad = None
        cut = False
        for ev in sse:
            data = ev.data.strip()
            if data == "[DONE]":
                break
            try:
                obj = json.loads(data)
            except ValueError:
                log("debug", "skipping unparseable chat chunk: %r", data[:200])
                bad = bad or data
                continue
            if not isinstance(obj, dict):
                continue
            if obj.get("error"):
                raise _response_failure(obj["error"] if isinstance(obj["error"], dict) else {"message": str(obj["error"])})
            if obj.get("usage"):
                usage = _usage_from_chat(obj["usage"])
            for choice in obj.get("choices") or ():
                delta = choice.get("delta") or {}
                content = delta.get("content")
                if isinstance(content, str) and content:
                    text.append(content)
                    yield ("text_delta", content)
                    if (("{" in content or "`" in content) and self.recovers_tool_calls() and not order
                            and len(text) < CHAINED_CALL_SCAN_MAX_DELTAS):
                        joined = "".join(text)
                        end = chained_text_call_end(joined, getattr(self, "_offered", None))
                        if end is not None:  # the model writes call after call without seeing results
                            log("debug", "stopped reading after the first call written as text (%d chars)", end)
                            text[:] = [joined[:end]]
                            finished = cut = True
                            finish_reason[0] = "stop"
                            break
                rsn = delta.get("reasoning") or delta.get("reasoning_content")
                if isinstance(rsn, dict):
                    rsn = rsn.get("text") or rsn.get("content")
                if isinstance(rsn, str) and rsn:
                    reasoning.append(rsn)
                    yield ("reasoning_raw_delta", rsn)
                for tc in delta.get("tool_calls") or ():
                    index = tc.get("index")
                    if index is None:
                        index = next((i for i in order if tc.get("id") and calls[i]["id"] == tc.get("id")), None)
                    if index is None:
                        index = last_index[0] if (last_index[0] is not None and not tc.get("id")) else len(order)
                    last_index[0] = index
                    if index not in calls:
                        calls[index] = {"id": None, "name": None, "arguments": []}
                        order.append(index)
                    call = calls[index]
                    if tc.get("id") and not call["id"]:
                        call["id"] = tc["id"]
                    fn = tc.get("function") or {}
                    if fn.get("name") and not call["name"]:
                        call["name"] = fn["name"]
                    if fn.get("arguments"):
                        call["arguments"].append(fn["arguments"])
                if choice.get("finish_reason"):
                    finished = True
                    finish_reason[0] = choice["finish_reason"]
                    if choice["finish_reason"] == "length" and not order:
                        log("warn", "chat completion stopped at the length limit")
            if cut:
                sse.close()  # closes the response, so the server stops generating
                break
        if bad is not None and not finished:
            raise StreamError("the provider sent stream data that is not JSON (%r) and no finish_reason"
                              % _clip(bad, 120))
        for event in flush():
            yield event
        if not finished:
            log("debug", "chat stream ended without finish_reason")
        yield ("completed", {"id": "", "usage": usage})


# -- tool calls written as text (Chat providers) --
#
# Small open models often write a tool call into the message text instead of the API's
# `tool_calls` (their chat template asks for tags the server does not parse).  ChatClient
# turns such text back into calls when the provider's `recover_tool_calls` is on (the default
# for Chat providers).  A call is recovered only when ALL of this holds, so that text which
# merely quotes or discusses such a block stays text:
#   - the call block(s) end the message (only whitespace after them, and between them);
#   - each block holds exactly one JSON value: {"name": N, "arguments": {...}} (or
#     "parameters"; or OpenAI's {"type": "function", "function": {...}}) or a list of those;
#   - N is a tool offered in this request and the arguments validate against its schema;
#   - no other block of the message looks like a call, and the prose before the blocks does
#     not introduce them as an example ("for example:", "like this:", ...).
# Formats (RECOVERY_FORMATS): a fenced block (```json, ``` or ```tool_call), Hermes/Qwen
# <tool_call>...</tool_call> tags, Llama's <function=NAME>{...}</function> and
# <|python_tag|>, Mistral's [TOOL_CALLS], and a message that is nothing but the JSON.

RECOVERY_FORMATS = ("fenced_json", "tool_call_tags", "function_tags", "python_tag", "mistral_tool_calls", "bare_json")
_FENCE_LANGS = ("", "json", "tool_call", "tool_calls", "tool_code", "function_call")
_EXAMPLE_CUES = re.compile(
    r"(?i)(for example|for instance|e\.g\.|such as|like this|like so|looks like|would look|would be|format is|"
    r"formatted as|syntax is|as follows|example)\W*$")
_TAG_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_FUNCTION_TAG_RE = re.compile(r"<function=([A-Za-z0-9_.:-]+)>\s*(.*?)\s*(?:</function>|$)", re.S)


def _fence_segments(text):
    """Split markdown text into ("text", str) and ("fence", lang, body) segments (line based)."""
    segments, buf, lines = [], [], text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^ {0,3}(`{3,}|~{3,})[ \t]*([A-Za-z0-9_+-]*)[ \t]*(.*)$", line)
        if not m:
            buf.append(line)
            i += 1
            continue
        fence, lang, rest = m.group(1), m.group(2).lower(), m.group(3)
        one_line = re.match(r"^(.*?)" + re.escape(fence[0]) + "{%d,}[ \t]*$" % len(fence), rest)
        if buf:
            segments.append(("text", "\n".join(buf)))
            buf = []
        if rest and one_line:  # ```json {"name": ...} ```
            segments.append(("fence", lang, one_line.group(1)))
            i += 1
            continue
        body = [rest] if rest else []
        i += 1
        while i < len(lines) and not re.match(r"^ {0,3}" + re.escape(fence[0]) + "{%d,}[ \t]*$" % len(fence), lines[i]):
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence (or past the end: an unclosed last block)
        segments.append(("fence", lang, "\n".join(body)))
    if buf:
        segments.append(("text", "\n".join(buf)))
    return segments


_TRIPLE_QUOTED_RE = re.compile(r'"""\n?(.*?)"""', re.S)


def _json_value(text):
    """The one JSON value `text` holds (surrounding whitespace allowed), or None.  A Python
    triple-quoted string where a JSON string belongs (small models write a file's content so,
    indented, between three double quotes) is read as that string, dedented."""
    import textwrap

    text = text.strip()
    if not text or text[0] not in "{[":
        return None
    try:
        return json.loads(text)
    except ValueError:
        if '"""' not in text:
            return None
    repaired = _TRIPLE_QUOTED_RE.sub(lambda m: json.dumps(textwrap.dedent(m.group(1))), text)
    try:
        return json.loads(repaired)
    except ValueError:
        return None


def _json_calls_value(text):
    """Like _json_value, but JSON objects one after another (only whitespace between them, as
    small models write several calls: `{"name": ...}\n{"name": ...}`) come back as a list."""
    value = _json_value(text)
    if value is not None:
        return value
    text = text.strip()
    if not text.startswith("{"):
        return None
    decoder, values, i = json.JSONDecoder(), [], 0
    while i < len(text):
        try:
            value, i = decoder.raw_decode(text, i)
        except ValueError:
            return None
        if not isinstance(value, dict):
            return None
        values.append(value)
        while i < len(text) and text[i].isspace():
            i += 1
    return values if len(values) > 1 else None


def _looks_like_call(value):
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(isinstance(v, dict) and ("name" in v or "function" in v) for v in items)


def _split_trailing(segments):
    """(prose, [fence bodies]) when the message ends with one or more fenced blocks, else None."""
    tail = []
    k = len(segments)
    while k > 0:
        seg = segments[k - 1]
        if seg[0] == "text" and not seg[1].strip():
            k -= 1
            continue
        if seg[0] == "fence" and seg[1] in _FENCE_LANGS and _json_calls_value(seg[2]) is not None:
            tail.insert(0, seg[2])
            k -= 1
            continue
        break
    if not tail:
        return None
    for seg in segments[:k]:  # another call-like block earlier: a message about calls, not a call
        if seg[0] == "fence" and _looks_like_call(_json_calls_value(seg[2])):
            return None
    prose = "".join(seg[1] if seg[0] == "text" else "\n```%s\n%s\n```\n" % (seg[1], seg[2]) for seg in segments[:k])
    return prose, tail


def _find_text_calls(text):
    """(format, prose, [JSON values]) for the first format the text is written in, or None."""
    stripped = text.strip()
    if "<tool_call>" in text:
        matches = list(_TAG_RE.finditer(text))
        if matches and not text[matches[-1].end():].strip() and all(
                not text[a.end():b.start()].strip() for a, b in zip(matches, matches[1:])):
            bodies = []
            for m in matches:
                body = m.group(1)
                fenced = _split_trailing(_fence_segments(body)) if body.lstrip().startswith(("```", "~~~")) else None
                bodies.append(fenced[1][0] if fenced and len(fenced[1]) == 1 and not fenced[0].strip() else body)
            return "tool_call_tags", text[:matches[0].start()], [_json_value(b) for b in bodies]
        return None
    if "<function=" in text:
        matches = list(_FUNCTION_TAG_RE.finditer(text))
        if matches and not text[matches[-1].end():].strip() and all(
                not text[a.end():b.start()].strip() for a, b in zip(matches, matches[1:])):
            values = []
            for m in matches:
                args = _json_value(m.group(2))
                values.append({"name": m.group(1), "arguments": args} if isinstance(args, dict) else None)
            return "function_tags", text[:matches[0].start()], values
        return None
    for marker, fmt in (("<|python_tag|>", "python_tag"), ("[TOOL_CALLS]", "mistral_tool_calls")):
        if marker in text:
            prose, _, rest = text.partition(marker)
            return fmt, prose, [_json_value(rest)]
    value = _json_calls_value(stripped)
    if value is not None:
        return "bare_json", "", [value]
    if "```" in text or "~~~" in text:
        found = _split_trailing(_fence_segments(text))
        if found is not None:
            return "fenced_json", found[0], [_json_calls_value(b) for b in found[1]]
    return None


def _schema_error(value, schema, where="arguments"):
    """Why `value` does not fit the JSON schema (the subset tools use), or None."""
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    if isinstance(kind, list):
        kinds = kind
    else:
        kinds = [kind] if kind else []
    if kinds:
        ok = False
        for k in kinds:
            if k in ("number", "integer"):
                ok = ok or (isinstance(value, (int, float)) and not isinstance(value, bool)
                            and (k == "number" or float(value).is_integer()))
            elif k in types:
                ok = ok or isinstance(value, types[k])
            else:
                ok = True
        if not ok:
            return "%s must be of type %s" % (where, "/".join(kinds))
    if "enum" in schema and value not in schema["enum"]:
        return "%s must be one of %s" % (where, schema["enum"])
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name in schema.get("required") or ():
            if name not in value:
                return "%s lacks the required field `%s`" % (where, name)
        for name, item in value.items():
            if name in props:
                err = _schema_error(item, props[name], "%s.%s" % (where, name))
                if err:
                    return err
            elif schema.get("additionalProperties") is False:
                return "%s has an unknown field `%s`" % (where, name)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            err = _schema_error(item, schema["items"], "%s[%d]" % (where, i))
            if err:
                return err
    return None


def _call_from_value(value, tools):
    """[(name, arguments JSON)] for a call object (or list of them) naming offered tools, or None."""
    items = value if isinstance(value, list) else [value]
    calls = []
    for obj in items:
        if not isinstance(obj, dict):
            return None
        if set(obj) <= {"type", "function", "id"} and isinstance(obj.get("function"), dict):
            obj = obj["function"]
        keys = set(obj) - {"id", "type"}
        if "name" not in keys or not keys <= {"name", "arguments", "parameters"} or len(keys) > 2:
            return None
        name = obj.get("name")
        args = obj.get("arguments", obj.get("parameters", {}))
        if isinstance(args, str):
            args = _json_value(args) if args.strip() else {}
        if not isinstance(name, str) or name not in tools or not isinstance(args, dict):
            return None
        if _schema_error(args, tools[name]) is not None:
            return None
        calls.append((name, json.dumps(args, ensure_ascii=False)))
    return calls or None


_FENCED_CALL_RE = re.compile(r"(?m)^ {0,3}```[A-Za-z_]*[ \t]*\n(\s*\{.*?)\n[ \t]*```[ \t]*$", re.S)
_NEXT_FENCED_CALL_RE = re.compile(r"(?m)^ {0,3}```[A-Za-z_]*[ \t]*\n\s*\{")
CHAINED_CALL_SCAN_MAX_DELTAS = 4000  #: a message is checked for chained text calls up to this many deltas


def chained_text_call_end(text, tools):
    """Where the first call ends when `text` starts with a complete call written as text (a bare
    JSON object or a fenced JSON block naming an offered tool, with valid arguments), or has a
    fenced one after prose that does not introduce an example, and the model has begun another
    call-like block after it; else None.  A small model whose template
    has no stop token after a call writes call after call, each guessing the previous result,
    until its output limit: codex stops reading there and runs the first call only."""
    if not tools:
        return None
    start = len(text) - len(text.lstrip())
    if not text.startswith(("{", "```"), start):
        # prose first ("Let's execute these steps:"), then a fenced call, more prose, another call
        for m in _FENCED_CALL_RE.finditer(text):
            value = _json_value(m.group(1))
            prose = text[:m.start()].strip()
            if not isinstance(value, dict) or _call_from_value(value, tools) is None:
                continue
            if _EXAMPLE_CUES.search(prose) or not _NEXT_FENCED_CALL_RE.search(text, m.end()):
                return None
            return m.end()
        return None
    if text.startswith("{", start):
        try:
            value, end = json.JSONDecoder().raw_decode(text, start)
        except ValueError:
            return None
    elif text.startswith("```", start):
        m = re.compile(r"```[A-Za-z_]*[ \t]*\n?(.*?)\n?[ \t]*```[ \t]*(?=\n|$)", re.S).match(text, start)
        if not m or m.group(0).count("```") != 2:
            return None
        value, end = _json_value(m.group(1)), m.end()
    else:
        return None
    if not isinstance(value, dict) or _call_from_value(value, tools) is None:
        return None
    rest = text[end:].lstrip()
    return end if rest.startswith(("{", "```")) else None


def recover_tool_calls(text, tools):
    """Tool calls a model wrote as text: (format, prose before them, [(name, arguments JSON)]),
    or None when the text is not (only) such calls.  `tools`: offered name -> JSON schema."""
    if not tools or not text or not text.strip():
        return None
    found = _find_text_calls(text)
    if found is None:
        return None
    fmt, prose, values = found
    if prose.strip() and _EXAMPLE_CUES.search(prose.strip()):
        return None
    calls = []
    for value in values:
        got = _call_from_value(value, tools) if value is not None else None
        if got is None:
            return None
        calls.extend(got)
    return fmt, prose, calls


def output_text(output):
    """The text of a function_call_output `output`: the string, or its input_text parts joined."""
    if isinstance(output, list):
        return "\n".join(p.get("text") or "" for p in output if isinstance(p, dict) and p.get("type") == "input_text")
    if isinstance(output, dict):
        return str(output.get("content", ""))
    return output or ""


def history_to_chat_messages(instructions, items, tool_images=True):
    """Convert Responses input items into Chat Completions `messages` (system first).

    A tool output with images (an MCP result, §14) becomes a `tool` message with its text,
    and, when `tool_images` (the model takes images), a user message right after the tool
    results carrying the images: Chat has no images in tool messages.  Otherwise the model
    reads the images' one-line labels.
    """
    messages = [{"role": "system", "content": instructions}]
    pending_images = []
    for item in items:
        if pending_images and item.get("type") not in ("function_call_output", "custom_tool_call_output"):
            messages.append({"role": "user", "content": pending_images})
            pending_images = []
        kind = item.get("type")
        if kind == "message":
            texts = []
            images = []
            for part in item.get("content") or ():
                if part.get("type") in ("input_text", "output_text"):
                    texts.append(part.get("text") or "")
                elif part.get("type") == "input_image" and part.get("image_url"):
                    images.append(part["image_url"])
            if images and item.get("role") == "user":
                content = [{"type": "text", "text": t} for t in texts]
                content += [{"type": "image_url", "image_url": {"url": u}} for u in images]
            else:
                content = "".join(texts)
            messages.append({"role": item.get("role"), "content": content})
        elif kind in ("function_call", "local_shell_call", "custom_tool_call"):
            if kind == "function_call":
                call = {"id": item.get("call_id"), "type": "function",
                        "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"}}
            elif kind == "custom_tool_call":
                call = {"id": item.get("call_id"), "type": "function",
                        "function": {"name": item.get("name"), "arguments": json.dumps({"input": item.get("input")})}}
            else:
                action = item.get("action") or {}
                call = {"id": item.get("call_id"), "type": "function",
                        "function": {"name": "shell", "arguments": json.dumps({
                            "command": action.get("command") or [], "workdir": action.get("working_directory"),
                            "timeout": action.get("timeout_ms")})}}
            prev = messages[-1]
            # A call right after assistant text, or after another call of the same
            # response, joins that assistant message: strict gateways want one message
            # carrying all tool_calls followed by the tool results (openai/codex#7051).
            if prev.get("role") == "assistant" and (prev.get("tool_calls") or isinstance(prev.get("content"), str)):
                prev.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            out = item.get("output")
            images = [p.get("image_url") for p in out if isinstance(p, dict) and p.get("type") == "input_image"
                      and p.get("image_url")] if isinstance(out, list) else []
            text = output_text(out)
            if images and tool_images:
                pending_images.append({"type": "text", "text": "The image%s returned by tool call %s:" % (
                    "s" if len(images) > 1 else "", item.get("call_id"))})
                pending_images.extend({"type": "image_url", "image_url": {"url": u}} for u in images)
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": text})
    if pending_images:
        messages.append({"role": "user", "content": pending_images})
    _reorder_tool_results(messages)
    return messages


def _reorder_tool_results(messages):
    """Ensure tool results directly follow the assistant message holding their calls."""
    i = 0
    while i < len(messages):
        msg = messages[i]
        if msg.get("role") == "assistant" and msg.get("tool_calls"):
            ids = [c["id"] for c in msg["tool_calls"]]
            j = i + 1
            while j < len(messages) and messages[j].get("role") == "tool":
                j += 1
            # pull matching tool results that were separated by other messages
            k = j
            while k < len(messages):
                if messages[k].get("role") == "tool" and messages[k].get("tool_call_id") in ids:
                    messages.insert(j, messages.pop(k))
                    j += 1
                k += 1
        i += 1


def tools_to_chat(tools):
    """Responses function tools -> Chat `{"type":"function","function":{...}}` (others dropped)."""
    out = []
    for tool in tools:
        if tool.get("type") != "function":
            continue
        fn = {k: v for k, v in tool.items() if k != "type"}
        out.append({"type": "function", "function": fn})
    return out


def make_model_client(cfg, session_id, environ=None):
    """The client for the configured provider's wire_api."""
    if cfg.provider.wire_api == "chat":
        return ChatClient(cfg, session_id, environ)
    return ResponsesClient(cfg, session_id, environ)


###############################################################################
# §08 Protocol: ops and events
###############################################################################

# The contract every front end codes against:
#
#   session = Session(config, approval_handler=None, resume_path=None, turn_context=None).start()   # §16
#       (the constructor only builds state; start() does the I/O: instructions or the resumed
#       rollout, the rollout file, MCP servers, session_configured; no thread until used;
#       turn_context: start from this TurnContext instead of the config's)
#   session.turn_context -> TurnContext (§15a: the effective policy, overrides applied); session.closed,
#       session.busy (a task is running).  Front ends use these, never private state; how to add a
#       front end, a tool, a wire API or an MCP transport: docs/extending.md.
#       (resume_path, or config.experimental_resume, continues a recorded rollout, §15b)
#   session.submit({"type": "user_input", "items": [{"type": "text", "text": "..."}]}) -> submission id
#       (also accepts a whole submission {"id": "...", "op": {...}}; ids "0", "1", ... are
#       assigned when absent)
#   session.next_event(timeout=None) -> {"id": submission_id, "msg": {"type": "...", ...}} or None
#   pump_events(session, on_event, tick=None, poll=0.25) -> "event" | "tick" | "closed"
#       the one loop front ends read events with (below): on_event(event) / tick() return True to stop
#   session.interrupt(); session.shutdown()
#   session.session_id, session.rollout_path, session.history (list of response items)
#   session.fork(drop_last_user_messages) -> Session   (new id, same config, history cut before the
#       Nth-last user message; the REPL's Esc-Esc backtrack, upstream's fork_conversation)
#
# Op and event type names and fields follow upstream Codex's protocol (Aug 2025, with the
# later additions named in OP_TYPES/EVENT_TYPES; docs/agent.md lists them).  The first event is always
# `session_configured` (id ""); every task a user_input starts ends with `task_complete`
# (after an `error` event when it failed) or `turn_aborted` (interrupted).
#
# Approvals: without an approval_handler the session emits `exec_approval_request` /
# `apply_patch_approval_request` (id = the task's submission id) and waits for an
# `exec_approval` / `patch_approval` op whose `id` is that submission id and whose
# `decision` is one of REVIEW_DECISIONS.  With approval_handler(msg) -> decision the
# session calls it instead (synchronously, on the task thread) and emits no request event.
#
# The shell tool hands approvals to §13's execute_with_policy through
#   ask(kind="exec", argv=..., cwd=..., reason=...) -> decision
# and passes a SessionState whose `approved_commands` set
# holds argv tuples the user approved for the session.

#: op types a session accepts (`codex proto` passes these through unchanged)
OP_TYPES = (
    "user_input", "user_turn", "override_turn_context", "interrupt", "exec_approval", "patch_approval",
    "add_to_history", "get_history_entry_request", "list_mcp_tools", "compact", "shutdown",
)
#: event msg types a session emits
EVENT_TYPES = (
    "session_configured", "task_started", "task_complete", "token_count", "agent_message",
    "agent_message_delta", "agent_reasoning", "agent_reasoning_delta", "agent_reasoning_raw_content",
    "agent_reasoning_raw_content_delta", "agent_reasoning_section_break", "mcp_tool_call_begin",
    "mcp_tool_call_end", "exec_command_begin", "exec_command_output_delta", "exec_command_end",
    "exec_approval_request", "apply_patch_approval_request", "background_event", "stream_error",
    "patch_apply_begin", "patch_apply_end", "turn_diff", "get_history_entry_response",
    "mcp_list_tools_response", "plan_update", "turn_aborted", "user_message", "error",
    "shutdown_complete", "context_compacted", "tool_call_recovered", "loop_limit_request",
    "tool_call_blocked", "tool_call_begin", "tool_call_end",
)
REVIEW_DECISIONS = ("approved", "approved_for_session", "denied", "abort")  #: approval answers
TURN_END_EVENTS = ("task_complete", "turn_aborted", "shutdown_complete")  #: events after which a turn is over
PLAN_STATUSES = ("pending", "in_progress", "completed")  #: update_plan step statuses


def make_event(sub_id, msg_type, **fields):
    """An event envelope {"id": sub_id, "msg": {"type": msg_type, ...fields}}."""
    msg = {"type": msg_type}
    msg.update(fields)
    return {"id": sub_id, "msg": msg}


def wire_duration(seconds):
    """A duration as upstream serializes it: {"secs": int, "nanos": int}."""
    seconds = max(0.0, float(seconds))
    secs = int(seconds)
    return {"secs": secs, "nanos": int(round((seconds - secs) * 1e9)) % 1000000000}


def pump_events(session, on_event, tick=None, poll=0.25):
    """The one loop that drains a session's events, shared by every front end (exec, the REPL,
    the MCP server, proto): each round, tick() (if given) runs first and ends the pump by
    returning True (a front end's own checks: keys pressed, a call cancelled, stdin closed);
    then the next event (waited for up to `poll` seconds) goes to on_event(event), which ends
    the pump by returning True.  Returns why it ended: "event", "tick", or "closed" (the
    session shut down and its events are drained)."""
    while True:
        if tick is not None and tick():
            return "tick"
        event = session.next_event(timeout=poll)
        if event is None:
            if session.closed:
                return "closed"
            continue
        if on_event(event):
            return "event"


class SessionState(object):
    """Per-session state shared with the approval layer (§13)."""

    def __init__(self):
        self.approved_commands = set()  # argv tuples approved "for session" (§13 reads this name)
        self.lock = threading.Lock()


###############################################################################
# §09 Tools: definitions and the shell tool
###############################################################################

# The tools offered to the model (JSON schemas, built from the turn's TurnContext), the parsing
# of their arguments, the tool registry (Tool, register_tool; docs/extending.md), and the
# recognition of apply_patch inside shell calls.  Running a
# command goes through §11's execute_with_policy (approval + sandbox + §13's runner);
# the Session (§16) wires events and approvals around it.

DEFAULT_SHELL_TIMEOUT_MS = 10000  #: shell tool timeout when the model gives none (upstream)
UI_OUTPUT_MAX_CHARS = 5 * 1024  #: stdout/stderr size in exec_command_end events

SHELL_TOOL_DESCRIPTION = "Runs a shell command and returns its output."
UPDATE_PLAN_DESCRIPTION = (
    "Updates the task plan. Provide an optional explanation and a list of plan items, each with a step "
    "and status. At most one step can be in_progress at a time."
)
APPLY_PATCH_TOOL_DESCRIPTION = """Use the `apply_patch` tool to edit files. The `input` is a patch in this format:

*** Begin Patch
*** Add File: path/to/new.py
+line of the new file
*** Update File: path/to/existing.py
*** Move to: path/to/renamed.py   (optional)
@@ def function_to_change():
 context line
-removed line
+added line
*** Delete File: path/to/obsolete.py
*** End Patch

Paths are relative to the working directory, never absolute. Each update chunk starts with `@@`
(optionally followed by a line that locates it, such as a class or function header) and shows
about three lines of unchanged context around each change; prefix context lines with a space,
removed lines with `-`, added lines with `+`. Add `*** End of File` after a chunk that ends at
the end of the file. New files need `+` on every line."""


SHELL_COMMAND_TOOL_DESCRIPTION = (
    "Runs a shell script given as one string (bash: pipes, redirections, `&&` and here-documents "
    "work) and returns its output.")
SHELL_COMMAND_COMPACT_DESCRIPTION = "Run a bash script (one string); returns its output."
SHELL_COMPACT_DESCRIPTION = "Run a command (argv array; use [\"bash\", \"-c\", script] for shell syntax); returns its output."
#: shell operators that, as whole argv elements, show the model meant a script (see shell_argv_script)
SHELL_OPERATOR_WORDS = frozenset(("|", "||", "&&", ";", ">", ">>", "<", "<<", "2>", "2>>", "&>", "2>&1", ">&2", "|&", "&"))


def shell_tool_kind(cfg):
    """Which shell tool the model gets: the provider's `shell_tool`, else `shell_command` for
    Chat providers (small open models write scripts, not argv arrays) and `shell` otherwise."""
    if cfg.provider.shell_tool:
        return cfg.provider.shell_tool
    return "shell_command" if cfg.provider.wire_api == "chat" else "shell"


def compact_prompt_wanted(cfg, family):
    """Whether to send the compact base prompt and tool texts: `compact_prompt`, else when the
    model's context window is known and at most COMPACT_PROMPT_MAX_WINDOW tokens."""
    setting = cfg.compact_prompt
    if setting is not None:
        return bool(setting)
    window = family.context_window
    return bool(window) and window <= COMPACT_PROMPT_MAX_WINDOW


COMPACT_PROMPT_MAX_WINDOW = 32768  #: windows up to this many tokens get the compact prompt by default


def _shell_spec(name, props, ctx, compact, description, compact_description):
    """The one builder behind the `shell` and `shell_command` tools: `props` plus the
    escalation fields, and the description with the effective sandbox policy's notes
    (on-request; the compact form keeps the fields but not the notes)."""
    notes = _escalation_props(ctx, props)
    return {
        "type": "function",
        "name": name,
        "description": compact_description if compact else description + notes,
        "strict": False,
        "parameters": {"type": "object", "properties": props, "required": ["command"], "additionalProperties": False},
    }


def _escalation_props(cfg, props):
    """Add the escalation fields (on-request in workspace-write) and return the sandbox notes."""
    notes = ""
    if cfg.approval_policy == "on-request":
        if cfg.sandbox_mode == "workspace-write":
            props["with_escalated_permissions"] = {
                "type": "boolean",
                "description": "Whether to request escalated permissions (run outside the sandbox)",
            }
            props["justification"] = {
                "type": "string",
                "description": "Only with with_escalated_permissions: one sentence telling the user why",
            }
        notes = _SANDBOX_TOOL_NOTES.get(cfg.sandbox_mode, "")
        if cfg.sandbox_mode == "workspace-write":
            notes += " Network access is %s." % ("enabled" if cfg.network_access else "restricted")
    return notes


def shell_command_tool(cfg, compact=False):
    """The `shell_command` function tool: the command is one string run by the user's shell."""
    props = {
        "command": {"type": "string", "description": "The script to run, e.g. \"ls -la | head\""},
        "workdir": {"type": "string", "description": "The working directory (default: the session's)"},
        "timeout_ms": {"type": "number", "description": "Timeout in milliseconds (default 10000)"},
    }
    if compact:
        for prop in props.values():
            prop.pop("description", None)
        props["command"]["description"] = "bash script"
    return _shell_spec("shell_command", props, cfg, compact, SHELL_COMMAND_TOOL_DESCRIPTION, SHELL_COMMAND_COMPACT_DESCRIPTION)


def shell_tool(ctx, compact=False):
    """The `shell` function tool for a TurnContext (or a Config): richer descriptions and the
    escalation fields under on-request, describing the effective sandbox policy."""
    props = {
        "command": {"type": "array", "items": {"type": "string"}},
        "workdir": {"type": "string"},
        "timeout": {"type": "number"},
    }
    if not compact and ctx.approval_policy == "on-request":
        props["command"]["description"] = "The command to execute as an argv array, e.g. [\"bash\", \"-lc\", \"ls\"]"
        props["workdir"]["description"] = "The working directory to execute the command in"
        props["timeout"]["description"] = "The timeout for the command in milliseconds"
    return _shell_spec("shell", props, ctx, compact, SHELL_TOOL_DESCRIPTION, SHELL_COMPACT_DESCRIPTION)


_SANDBOX_TOOL_NOTES = {
    "workspace-write": (
        "\n\nCommands run in a sandbox that can write only inside the working directory and temporary "
        "directories. When a command needs more (writing elsewhere, the network when it is restricted, "
        "a failure that looks like the sandbox), run it again with with_escalated_permissions=true and a "
        "short justification; the user will be asked to approve."
    ),
    "read-only": (
        "\n\nCommands run in a read-only sandbox: they can read files but not write them. Commands that "
        "must write are shown to the user for approval."
    ),
    "danger-full-access": "\n\nCommands run without a sandbox.",
}


def update_plan_tool():
    """The `update_plan` function tool."""
    return {
        "type": "function",
        "name": "update_plan",
        "description": UPDATE_PLAN_DESCRIPTION,
        "strict": False,
        "parameters": {
            "type": "object",
            "properties": {
                "explanation": {"type": "string"},
                "plan": {
                    "type": "array",
                    "description": "The list of steps",
                    "items": {
                        "type": "object",
                        "properties": {
                            "step": {"type": "string"},
                            "status": {"type": "string", "description": "One of: pending, in_progress, completed"},
                        },
                        "required": ["step", "status"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["plan"],
            "additionalProperties": False,
        },
    }


def apply_patch_tool():
    """The `apply_patch` function tool (for models that want it, e.g. gpt-oss)."""
    return {
        "type": "function",
        "name": "apply_patch",
        "description": APPLY_PATCH_TOOL_DESCRIPTION,
        "strict": False,
        "parameters": {
            "type": "object",
            "properties": {"input": {"type": "string", "description": "The entire contents of the apply_patch command"}},
            "required": ["input"],
            "additionalProperties": False,
        },
    }


#: write_file / edit_file: plain file tools for small models, which write a whole file or one
#: replacement as JSON far more reliably than an apply_patch text or a here-document inside a
#: JSON string (measured with Qwen2.5-Coder-1.5B: bench/bench_local_model.py).  They run as an
#: apply_patch (approval, sandbox, file_change events); see file_tools_wanted.
WRITE_FILE_DESCRIPTION = "Create a file, or replace everything in it, with the given content."
EDIT_FILE_DESCRIPTION = "Replace one exact piece of text in a file (copy old_text from the file)."


def file_tools_wanted(cfg, family):
    """Whether write_file and edit_file are offered: `file_tools`, else with the compact prompt."""
    if cfg.file_tools is not None:
        return bool(cfg.file_tools)
    return compact_prompt_wanted(cfg, family)


def write_file_tool():
    """The `write_file` function tool."""
    return {"type": "function", "name": "write_file", "description": WRITE_FILE_DESCRIPTION, "strict": False,
            "parameters": {"type": "object", "properties": {
                "path": {"type": "string", "description": "relative to the working directory"},
                "content": {"type": "string", "description": "the whole new content"}},
                "required": ["path", "content"], "additionalProperties": False}}


def edit_file_tool():
    """The `edit_file` function tool."""
    return {"type": "function", "name": "edit_file", "description": EDIT_FILE_DESCRIPTION, "strict": False,
            "parameters": {"type": "object", "properties": {
                "path": {"type": "string"},
                "old_text": {"type": "string", "description": "text now in the file, exactly"},
                "new_text": {"type": "string", "description": "what replaces it"}},
                "required": ["path", "old_text", "new_text"], "additionalProperties": False}}


def build_tools(ctx, mcp_tools=None):
    """The tool list for a request under TurnContext `ctx`: every registered tool that offers
    itself this turn (TOOLS, in registration order), then the MCP tools."""
    tools = []
    for tool in TOOLS.values():
        spec = tool.spec(ctx)
        if spec is not None:
            tools.append(spec)
    for name in sorted(mcp_tools or {}):
        tool = mcp_tools[name]  # §14 hands out schemas already sanitized for the API
        tools.append({"type": "function", "name": name, "description": tool.get("description") or "",
                      "strict": False, "parameters": tool.get("inputSchema") or {"type": "object", "properties": {}}})
    return tools


# -- arguments --

class ToolArgumentError(CodexError):
    """The model's tool arguments do not parse (the message goes back to the model)."""


def parse_shell_arguments(arguments):
    """Parse `shell` arguments into {command: [str], workdir, timeout_ms, escalated, justification}."""
    try:
        args = json.loads(arguments or "{}")
    except ValueError as exc:
        raise ToolArgumentError("failed to parse function arguments: %s" % exc)
    if not isinstance(args, dict):
        raise ToolArgumentError("failed to parse function arguments: expected a JSON object")
    command = args.get("command")
    if isinstance(command, str):  # lenient: a bare string is run by bash
        command = ["bash", "-lc", command]
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        raise ToolArgumentError("failed to parse function arguments: `command` must be a non-empty array of strings")
    timeout = args.get("timeout", args.get("timeout_ms"))
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ToolArgumentError("failed to parse function arguments: `timeout` must be a positive number of milliseconds")
    workdir = args.get("workdir")
    if workdir is not None and not isinstance(workdir, str):
        raise ToolArgumentError("failed to parse function arguments: `workdir` must be a string")
    return {
        "command": command,
        "workdir": workdir,
        "timeout_ms": int(timeout) if timeout is not None else None,
        "escalated": bool(args.get("with_escalated_permissions")),
        "justification": args.get("justification"),
    }


def parse_shell_command_arguments(arguments, cfg, environ=None):
    """Parse `shell_command` arguments into the same dict as parse_shell_arguments (the script
    becomes [shell, "-c", script], or "-lc" with `shell_login`)."""
    try:
        args = json.loads(arguments or "{}")
    except ValueError as exc:
        raise ToolArgumentError("failed to parse function arguments: %s" % exc)
    if not isinstance(args, dict):
        raise ToolArgumentError("failed to parse function arguments: expected a JSON object")
    command = args.get("command")
    if isinstance(command, list) and command and all(isinstance(c, str) for c in command):
        command = " ".join(command)  # an argv array where a string was asked: the obvious script
    if not isinstance(command, str) or not command.strip():
        raise ToolArgumentError("failed to parse function arguments: `command` must be a non-empty string "
                                "(a bash script, e.g. {\"command\": \"ls -la\"})")
    args = dict(args, command=[script_shell(environ), "-lc" if cfg.shell_login else "-c", command])
    if "timeout_ms" in args and "timeout" not in args:
        args["timeout"] = args.pop("timeout_ms")
    if args.get("timeout") == 0 or args.get("timeout") is None:  # small models send 0 for "the default"
        args.pop("timeout", None)
    try:
        params = parse_shell_arguments(json.dumps(args))
    except ToolArgumentError as exc:
        raise ToolArgumentError(str(exc).replace("`timeout`", "`timeout_ms`"))
    params["text_output"] = True  # answered in plain text (format_exec_output_text), as upstream's shell_command
    return params


def script_shell(environ=None):
    """The shell that runs scripts for the model: the user's $SHELL when it is bash or zsh, else bash."""
    environ = os.environ if environ is None else environ
    name = os.path.basename(environ.get("SHELL", "").strip())
    return name if name in ("bash", "zsh") else "bash"


def normalize_shell_argv(argv, cfg, environ=None):
    """The argv that really runs for a model's argv (approval, sandbox and events all see it):

    - ["bash", "-lc", S] runs as ["bash", "-c", S] unless `shell_login` is true: a login shell
      pays for, and prints from, profile scripts (pyenv, nvm, ...) that often try to write
      outside the sandbox;
    - an argv with shell operators as whole elements (["echo", "hi", ">", "f"]) is the script it
      obviously is: [shell, "-c", "echo hi > f"].
    """
    argv = list(argv)
    name = os.path.basename(argv[0]) if argv else ""
    if name in ("bash", "sh", "zsh", "dash", "ksh"):
        if len(argv) == 3 and argv[1] == "-lc" and not cfg.shell_login:
            return [argv[0], "-c", argv[2]]
        return argv
    script = shell_argv_script(argv)
    if script is not None:
        return [script_shell(environ), "-lc" if cfg.shell_login else "-c", script]
    return argv


def shell_argv_script(argv):
    """The script an argv with shell operators as elements stands for, or None when it has none."""
    if not argv or os.path.basename(argv[0]) in ("test", "[", "expr", "find", "xargs", "env", "sudo", "timeout"):
        return None  # these take `<`, `>` or `;` as ordinary arguments
    if not any(a in SHELL_OPERATOR_WORDS for a in argv[1:]):
        return None
    words = []
    for a in argv:
        if a in SHELL_OPERATOR_WORDS or (a and not re.search(r"[\s'\"\\;&|<>()`]", a)):
            words.append(a)
        else:
            words.append("'" + a.replace("'", "'\\''") + "'")
    return " ".join(words)


def parse_plan_arguments(arguments):
    """Parse and validate `update_plan` arguments (strict, as upstream)."""
    try:
        args = json.loads(arguments or "{}")
    except ValueError as exc:
        raise ToolArgumentError("failed to parse function arguments: %s" % exc)
    if not isinstance(args, dict) or not isinstance(args.get("plan"), list):
        raise ToolArgumentError("failed to parse function arguments: missing field `plan`")
    unknown = set(args) - {"explanation", "plan"}
    if unknown:
        raise ToolArgumentError("failed to parse function arguments: unknown field `%s`" % sorted(unknown)[0])
    plan = []
    for step in args["plan"]:
        if not isinstance(step, dict) or not isinstance(step.get("step"), str) or step.get("status") not in PLAN_STATUSES:
            raise ToolArgumentError(
                "failed to parse function arguments: each plan item needs `step` (string) and `status` (%s)"
                % ", ".join(PLAN_STATUSES))
        plan.append({"step": step["step"], "status": step["status"]})
    explanation = args.get("explanation")
    if explanation is not None and not isinstance(explanation, str):
        raise ToolArgumentError("failed to parse function arguments: `explanation` must be a string")
    return {"explanation": explanation, "plan": plan}


_HEREDOC_SCRIPT_RE = re.compile(
    r"""^\s*(?:cd\s+(?P<cd>'[^']*'|"[^"]*"|[^\s;&|]+)\s*&&\s*)?(?:apply_patch|applypatch)\s*<<-?\s*"""
    r"""(?P<q>['"]?)(?P<tag>\w+)(?P=q)[ \t]*\n(?P<body>.*?)\n[ \t]*(?P=tag)[ \t]*\n?\s*$""",
    re.S,
)
_SHELLS = ("bash", "sh", "zsh", "/bin/bash", "/bin/sh", "/bin/zsh", "/usr/bin/bash", "/usr/bin/zsh")


def extract_apply_patch(argv):
    """If argv invokes apply_patch, return (patch_text, subdir or None); else None.

    Recognized: ["apply_patch"|"applypatch", PATCH] (PATCH may be heredoc-wrapped) and
    ["bash", "-lc", "[cd DIR && ]apply_patch <<'EOF'\\n...\\nEOF"].
    """
    if len(argv) == 2 and argv[0] in ("apply_patch", "applypatch"):
        return argv[1], None
    if len(argv) == 3 and argv[0] in _SHELLS and argv[1] in ("-lc", "-c"):
        m = _HEREDOC_SCRIPT_RE.match(argv[2])
        if m:
            cd = m.group("cd")
            if cd and cd[0] in "'\"":
                cd = cd[1:-1]
            return m.group("body").rstrip("\n"), cd
    return None


def _shell_join(argv):
    import shlex

    if len(argv) == 3 and argv[0] in _SHELLS and argv[1] in ("-lc", "-c"):
        return argv[2]
    return " ".join(shlex.quote(a) for a in argv)


def parse_command_summary(argv):
    """Best-effort classification of a command for UIs (upstream's parsed_cmd, simplified)."""
    import shlex

    if len(argv) == 3 and argv[0] in _SHELLS and argv[1] in ("-lc", "-c"):
        try:
            words = shlex.split(argv[2])
        except ValueError:
            words = []
        if any(w in ("|", "&&", "||", ";") for w in words):
            return [{"type": "unknown", "cmd": argv[2]}]
        argv = words or argv
    cmd = " ".join(shlex.quote(a) for a in argv)
    head = os.path.basename(argv[0]) if argv else ""
    if head in ("cat", "head", "tail", "less", "more", "nl") and len(argv) > 1:
        return [{"type": "read", "cmd": cmd, "name": os.path.basename(argv[-1])}]
    if head == "sed" and "-n" in argv and len(argv) > 2:
        return [{"type": "read", "cmd": cmd, "name": os.path.basename(argv[-1])}]
    if head in ("ls", "tree", "find") or (head == "rg" and "--files" in argv):
        path = next((a for a in argv[1:] if not a.startswith("-")), None)
        return [{"type": "list_files", "cmd": cmd, "path": path}]
    if head in ("rg", "grep", "ag", "ack", "git") and (head != "git" or argv[1:2] == ["grep"]):
        rest = [a for a in argv[1:] if not a.startswith("-")]
        return [{"type": "search", "cmd": cmd, "query": rest[0] if rest else None,
                 "path": rest[1] if len(rest) > 1 else None}]
    if head in ("pytest", "tox", "jest") or argv[:2] in (["cargo", "test"], ["npm", "test"], ["go", "test"]):
        return [{"type": "test", "cmd": cmd}]
    return [{"type": "unknown", "cmd": cmd}]


def shell_output_for_model(text, exit_code, duration):
    """The JSON string a shell call returns: {"output", "metadata": {exit_code, duration_seconds}}."""
    return json.dumps({
        "output": text,
        "metadata": {"exit_code": exit_code, "duration_seconds": round(duration, 1)},
    })


# -- the tool registry --
#
# A tool is one Tool entry (registered at the end of §16, next to the ToolRunner that runs
# it): its spec, its argument parser, its approval assessment, its runner and the events it
# emits.  Front ends render events, not tools: a tool that emits the existing event kinds
# (exec_command_*, patch_apply_*, mcp_tool_call_*, plan_update) shows up in exec, the REPL,
# the MCP server and proto without any change there.  docs/extending.md walks through adding one.

#: what a command-like tool emits (rendered by every front end)
EXEC_EVENTS = ("exec_command_begin", "exec_command_output_delta", "exec_command_end", "exec_approval_request")
#: what a file-editing tool emits
PATCH_EVENTS = ("patch_apply_begin", "patch_apply_end", "turn_diff", "apply_patch_approval_request")


class Tool(Record):
    """One tool the model can call."""

    name: str
    spec: "Callable[[TurnContext], dict | None]"  # the function tool offered this turn (None: not offered)
    parse: "Callable[[str, TurnContext, Mapping], dict]"  # (JSON arguments, ctx, environ) -> params; ToolArgumentError
    run: "Callable[[ToolRunner, _Task, str, dict], str]"  # runs it (approval included); the model's output text
    assess: "Callable[[TurnContext, dict, set], str] | None" = None  # COMMAND_DECISIONS for params, when known up front
    events: "tuple[str, ...]" = ()  # the event types it emits (all in EVENT_TYPES)
    aliases: "tuple[str, ...]" = ()  # other names the model may call it by
    #: set: the runner wraps each call in tool_call_begin / tool_call_end events, which every
    #: front end shows through these hooks (None: the tool shows through the events it emits)
    render: "ToolRender | None" = None


class ToolRender(Record):
    """How a registered tool's calls show in every front end.  Each hook gets the event msg:
    tool_call_begin {"call_id", "tool", "arguments"} or tool_call_end (also "output",
    "success", "duration"); a hook left None gives the generic form (tool_call_text/item)."""

    human: "Callable[[dict], str | None] | None" = None  # exec's progress line, the REPL's line (None: not shown)
    item: "Callable[[dict], dict] | None" = None  # fields added to the `--json` item (type "tool_call")


TOOLS = {}  #: name -> Tool, in the order tools are offered
_TOOL_NAMES = {}  #: name or alias -> Tool


def register_tool(tool):
    """Add (or replace) a tool; its events must be protocol events (§08)."""
    unknown = [e for e in tool.events if e not in EVENT_TYPES]
    if unknown:
        raise ValueError("tool %s emits %s, which is not in EVENT_TYPES" % (tool.name, unknown[0]))
    TOOLS[tool.name] = tool
    for name in (tool.name,) + tuple(tool.aliases):
        _TOOL_NAMES[name] = tool
    return tool


def find_tool(name):
    """The registered Tool called `name` (or an alias), or None."""
    return _TOOL_NAMES.get(name)


def _render_hook(msg, hook):
    tool = find_tool(msg.get("tool") or "")
    return getattr(tool.render, hook) if tool is not None and tool.render is not None else None


def tool_call_text(msg):
    """A tool_call_begin/tool_call_end event as one line for people (exec's progress, the
    REPL), from the tool's render.human hook or the generic form; None: nothing to show."""
    hook = _render_hook(msg, "human")
    if hook is not None:
        return hook(msg)
    if msg.get("type") == "tool_call_begin":
        return "%s %s" % (msg.get("tool"), json.dumps(msg.get("arguments"), ensure_ascii=False, sort_keys=True))
    lines = (msg.get("output") or "").strip().splitlines()
    return "%s %s: %s" % (msg.get("tool"), "succeeded" if msg.get("success") else "failed",
                          lines[0] if lines else "(no output)")


def tool_call_item(msg):
    """The `--json` item fields of a tool_call_begin/tool_call_end event (type tool_call: tool,
    arguments, status, and the output at the end), plus what the tool's render.item adds."""
    item = {"type": "tool_call", "tool": msg.get("tool"), "arguments": msg.get("arguments"), "status": "in_progress"}
    if msg.get("type") == "tool_call_end":
        item.update(output=msg.get("output") or "", status="completed" if msg.get("success") else "failed")
    hook = _render_hook(msg, "item")
    if hook is not None:
        item.update(hook(msg) or {})
    return item


def parse_apply_patch_arguments(arguments):
    """Parse `apply_patch` function arguments: {"input": patch text}."""
    try:
        args = json.loads(arguments or "{}")
    except ValueError as exc:
        raise ToolArgumentError("failed to parse function arguments: %s" % exc)
    if not isinstance(args, dict) or not isinstance(args.get("input"), str):
        raise ToolArgumentError("failed to parse function arguments: missing field `input`")
    return {"input": args["input"]}


def parse_file_tool_arguments(arguments, fields):
    """Parse write_file / edit_file arguments: every name in `fields` a string, `path` non-empty."""
    try:
        args = json.loads(arguments or "{}")
    except ValueError as exc:
        raise ToolArgumentError("failed to parse function arguments: %s" % exc)
    if not isinstance(args, dict):
        raise ToolArgumentError("failed to parse function arguments: expected a JSON object")
    for name in fields:
        if not isinstance(args.get(name), str):
            raise ToolArgumentError("failed to parse function arguments: `%s` must be a string (the fields are %s)"
                                    % (name, ", ".join("`%s`" % f for f in fields)))
    unknown = sorted(set(args) - set(fields))
    if unknown:
        raise ToolArgumentError("failed to parse function arguments: unknown field `%s` (the fields are %s)"
                                % (unknown[0], ", ".join("`%s`" % f for f in fields)))
    if not args["path"].strip():
        raise ToolArgumentError("failed to parse function arguments: `path` is empty")
    return {name: args[name] for name in fields}


###############################################################################
# §10 apply_patch: grammar, matching, applying
###############################################################################

# The patch format (reference core-agent.md §5):
#
#   *** Begin Patch
#   *** Add File: path          then lines starting with `+`
#   *** Delete File: path
#   *** Update File: path       optionally `*** Move to: new/path`, then chunks:
#   @@ [context line]           then ` ctx`, `-old`, `+new` lines, optionally `*** End of File`
#   *** End Patch
#
# Differences from upstream, on purpose: the whole patch is applied atomically (all files
# or none; upstream leaves earlier files changed when a later hunk fails), CRLF files keep
# their CRLF line ends, and errors name the hunk.  Kept quirks: pure-addition chunks go to
# the end of the file whatever their `@@` line says; the fuzzy matching passes; a file
# always ends with one newline; summary lines ordered A, M, D.

PATCH_BEGIN = "*** Begin Patch"  #: first line of a patch
PATCH_END = "*** End Patch"  #: last line of a patch
_ADD, _DELETE, _UPDATE, _MOVE = "*** Add File: ", "*** Delete File: ", "*** Update File: ", "*** Move to: "
_EOF_MARK = "*** End of File"
_HEREDOC_OPENERS = ("<<EOF", "<<'EOF'", '<<"EOF"')

#: Unicode punctuation folded to ASCII by the last matching pass
_PUNCT_FOLD = {}
for _cp in list(range(0x2010, 0x2016)) + [0x2212]:
    _PUNCT_FOLD[_cp] = "-"
for _cp in range(0x2018, 0x201C):
    _PUNCT_FOLD[_cp] = "'"
for _cp in range(0x201C, 0x2020):
    _PUNCT_FOLD[_cp] = '"'
for _cp in [0x00A0, 0x202F, 0x205F, 0x3000] + list(range(0x2002, 0x200B)):
    _PUNCT_FOLD[_cp] = " "
del _cp


class PatchChunk(object):
    """One `@@` chunk of an Update: optional context line, old and new lines, EOF flag."""

    def __init__(self, context, old, new, eof, line_no):
        self.context = context
        self.old = old
        self.new = new
        self.eof = eof
        self.line_no = line_no


class PatchHunk(object):
    """One file operation: kind add|delete|update, path, content (add), move_to, chunks."""

    def __init__(self, kind, path, content=None, move_to=None, chunks=None, line_no=0):
        self.kind = kind
        self.path = path
        self.content = content
        self.move_to = move_to
        self.chunks = chunks or []
        self.line_no = line_no


class FileChange(object):
    """The planned effect of a patch on one file (absolute paths)."""

    def __init__(self, kind, path, old=None, new=None, move_path=None, display=None):
        self.kind = kind  # "add" | "delete" | "update"
        self.path = path
        self.old = old
        self.new = new
        self.move_path = move_path
        self.display = display  # the path as written in the patch (summary lines)

    def unified_diff(self, context=1):
        """The unified diff of this change (update/add/delete)."""
        import difflib

        old = (self.old or "").splitlines(True)
        new = (self.new or "").splitlines(True)
        lines = difflib.unified_diff(old, new, n=context, lineterm="\n")
        out = []
        for line in lines:
            if line.startswith(("---", "+++")):
                continue
            out.append(line if line.endswith("\n") else line + "\n")
        return "".join(out)

    def to_protocol(self):
        """The protocol FileChange object."""
        if self.kind == "add":
            return {"add": {"content": self.new}}
        if self.kind == "delete":
            return {"delete": {"content": self.old}}
        return {"update": {"unified_diff": self.unified_diff(),
                           "move_path": str(self.move_path) if self.move_path else None}}


def parse_patch(text):
    """Parse patch text into PatchHunks; raise PatchError naming the line on bad input."""
    lines = [line[:-1] if line.endswith("\r") else line for line in text.strip().split("\n")]
    if not _patch_bounded(lines):
        if len(lines) >= 4 and lines[0].strip() in _HEREDOC_OPENERS and lines[-1].strip().endswith("EOF"):
            lines = lines[1:-1]
        if not lines or lines[0].strip() != PATCH_BEGIN:
            raise PatchError("Invalid patch: The first line of the patch must be '%s'" % PATCH_BEGIN)
        if lines[-1].strip() != PATCH_END:
            raise PatchError("Invalid patch: The last line of the patch must be '%s'" % PATCH_END)
    hunks = []
    i, end = 1, len(lines) - 1
    while i < end:
        raw = lines[i]
        line = raw.strip()
        if not line:
            i += 1
            continue
        if line.startswith(_ADD):
            start = i
            i += 1
            body = []
            while i < end and lines[i].startswith("+"):
                body.append(lines[i][1:] + "\n")
                i += 1
            hunks.append(PatchHunk("add", line[len(_ADD):], content="".join(body), line_no=start + 1))
        elif line.startswith(_DELETE):
            hunks.append(PatchHunk("delete", line[len(_DELETE):], line_no=i + 1))
            i += 1
        elif line.startswith(_UPDATE):
            start = i
            path = line[len(_UPDATE):]
            i += 1
            move_to = None
            if i < end and lines[i].startswith(_MOVE):
                move_to = lines[i][len(_MOVE):].strip()
                i += 1
            chunks = []
            while i < end:
                if not lines[i].strip():
                    i += 1
                    continue
                if lines[i].startswith("***"):
                    break
                chunk, i = _parse_chunk(lines, i, end, first=not chunks)
                chunks.append(chunk)
            if not chunks:
                raise PatchError("Invalid patch hunk on line %d: Update file hunk for path '%s' is empty" % (start + 1, path))
            hunks.append(PatchHunk("update", path, move_to=move_to, chunks=chunks, line_no=start + 1))
        else:
            raise PatchError(
                "Invalid patch hunk on line %d: '%s' is not a valid hunk header. Valid hunk headers: "
                "'*** Add File: {path}', '*** Delete File: {path}', '*** Update File: {path}'" % (i + 1, line)
            )
    return hunks


def _patch_bounded(lines):
    return bool(lines) and lines[0].strip() == PATCH_BEGIN and lines[-1].strip() == PATCH_END and len(lines) >= 2


def _parse_chunk(lines, i, end, first):
    """Parse one update chunk starting at lines[i]; return (PatchChunk, next index)."""
    start = i
    line = lines[i]
    context = None
    if line.rstrip() == "@@":
        i += 1
    elif line.startswith("@@ "):
        context = line[3:]
        i += 1
    elif not first:
        raise PatchError("Invalid patch hunk on line %d: Expected update hunk to start with a @@ context marker, got: '%s'" % (i + 1, line))
    old, new = [], []
    eof = False
    count = 0
    while i < end:
        line = lines[i]
        if line == _EOF_MARK:
            if count == 0:
                break
            eof = True
            i += 1
            break
        if not line:
            old.append("")
            new.append("")
        else:
            c = line[0]
            if c == " ":
                old.append(line[1:])
                new.append(line[1:])
            elif c == "+":
                new.append(line[1:])
            elif c == "-":
                old.append(line[1:])
            else:
                if count == 0:
                    raise PatchError(
                        "Invalid patch hunk on line %d: Unexpected line found in update hunk: '%s'. Every line should "
                        "start with ' ' (context line), '+' (added line), or '-' (removed line)" % (i + 1, line))
                break
        count += 1
        i += 1
    if count == 0:
        raise PatchError("Invalid patch hunk on line %d: Update hunk does not contain any lines" % (start + 1))
    return PatchChunk(context, old, new, eof, start + 1), i


def _fold(line):
    return line.strip().translate(_PUNCT_FOLD)


class _Matcher(object):
    """seek_sequence over one file's lines with lazily built normalized copies."""

    _NORMS = (None, str.rstrip, str.strip, _fold)

    def __init__(self, lines):
        self.lines = lines
        self._cache = {}

    def _view(self, k):
        if k == 0:
            return self.lines
        if k not in self._cache:
            self._cache[k] = [self._NORMS[k](s) for s in self.lines]
        return self._cache[k]

    def seek(self, pattern, start, eof):
        """Index where `pattern` occurs at/after start (exact, rstrip, strip, folded), or None."""
        n, m = len(self.lines), len(pattern)
        if m == 0:
            return start
        if m > n:
            return None
        lo = n - m if eof else start
        hi = n - m
        if lo > hi:
            return None
        for k, norm in enumerate(self._NORMS):
            view = self._view(k)
            pat = pattern if norm is None else [norm(p) for p in pattern]
            first = pat[0]
            i = lo
            while i <= hi:
                try:
                    i = view.index(first, i, hi + 1)
                except ValueError:
                    break
                if view[i:i + m] == pat:
                    return i
                i += 1
        return None


def _apply_chunks(text, chunks, display):
    """Return the new content of a file after applying update chunks (PatchError if one misses)."""
    crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")
    if crlf:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    matcher = _Matcher(lines)
    cursor = 0
    replacements = []
    for number, chunk in enumerate(chunks, 1):
        if chunk.context is not None:
            idx = matcher.seek([chunk.context], cursor, False)
            if idx is None:
                raise PatchError("Failed to find context '%s' in %s (chunk %d, patch line %d)"
                                 % (chunk.context, display, number, chunk.line_no))
            cursor = idx + 1
        if not chunk.old:
            at = len(lines) - 1 if lines and lines[-1] == "" else len(lines)
            replacements.append((at, 0, list(chunk.new)))
            continue
        old, new = chunk.old, chunk.new
        idx = matcher.seek(old, cursor, chunk.eof)
        if idx is None and old[-1] == "":
            old = old[:-1]
            if new and new[-1] == "":
                new = new[:-1]
            idx = matcher.seek(old, cursor, chunk.eof)
        if idx is None:
            raise PatchError("Failed to find expected lines in %s (chunk %d, patch line %d):\n%s"
                             % (display, number, chunk.line_no, "\n".join(chunk.old)))
        replacements.append((idx, len(old), list(new)))
        cursor = idx + len(old)
    replacements.sort(key=lambda r: r[0])
    for start, length, new in reversed(replacements):
        lines[start:start + length] = new
    if not lines or lines[-1] != "":
        lines.append("")
    out = "\n".join(lines)
    return out.replace("\n", "\r\n") if crlf else out


class LeanPath(object):
    """The part of pathlib.Path that plan_patch and apply_changes use (POSIX), for codex's
    apply-patch mode: a sandboxed child started for every patch, where importing pathlib (with
    re, fnmatch and urllib.parse) was a third of its cost.  Normalised as PurePosixPath: empty
    and `.` components dropped, `..` kept (the kernel resolves it), an absolute right side wins."""

    __slots__ = ("_s",)

    def __init__(self, path="."):
        path = os.fspath(path)
        parts = [c for c in path.split("/") if c and c != "."]
        self._s = ("/" if path.startswith("/") else "") + "/".join(parts) or "."

    def __truediv__(self, other):
        other = os.fspath(other)
        return LeanPath(other if other.startswith("/") else self._s + "/" + other)

    def __str__(self):
        return self._s

    __fspath__ = __str__

    def __repr__(self):
        return "LeanPath(%r)" % self._s

    def __eq__(self, other):
        return isinstance(other, LeanPath) and other._s == self._s

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self._s)

    @property
    def name(self):
        return self._s.rsplit("/", 1)[-1] if self._s not in ("/", ".") else ""

    @property
    def parent(self):
        head = self._s.rsplit("/", 1)[0] if "/" in self._s else "."
        return LeanPath(head or "/")

    def with_name(self, name):
        return self.parent / name

    def is_file(self):
        return os.path.isfile(self._s)

    def exists(self):
        return os.path.exists(self._s)

    def read_bytes(self):
        with open(self._s, "rb") as fh:
            return fh.read()


def _read_patch_file(path, what):
    try:
        with open(str(path), "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise PatchError("Failed to %s %s: %s" % (what, path, exc.strerror or exc))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PatchError("Failed to %s %s: the file is not UTF-8 text" % (what, path))


def plan_patch(text, cwd):
    """Parse and verify a patch against the filesystem; return [FileChange] (nothing written)."""
    hunks = parse_patch(text) if isinstance(text, str) else text
    if not hunks:
        raise PatchError("No files were modified.")
    cwd = Path(cwd)
    state = {}  # abs path -> current text (None = deleted) as the patch proceeds
    changes = []

    def current(path, what):
        if path in state:
            if state[path] is None:
                raise PatchError("Failed to %s %s: it was deleted earlier in this patch" % (what, path))
            return state[path]
        return _read_patch_file(path, what)

    for hunk in hunks:
        path = cwd / hunk.path
        if hunk.kind == "add":
            old = state.get(path) if path in state else (_read_patch_file(path, "read") if path.is_file() else None)
            changes.append(FileChange("add", path, old=old, new=hunk.content, display=hunk.path))
            state[path] = hunk.content
        elif hunk.kind == "delete":
            if path not in state and not path.is_file():
                raise PatchError("Failed to delete file %s: no such file" % path)
            old = current(path, "delete file")
            changes.append(FileChange("delete", path, old=old, display=hunk.path))
            state[path] = None
        else:
            old = current(path, "read file to update")
            new = _apply_chunks(old, hunk.chunks, hunk.path)
            dest = cwd / hunk.move_to if hunk.move_to else None
            changes.append(FileChange("update", path, old=old, new=new, move_path=dest,
                                      display=hunk.move_to or hunk.path))
            if dest is not None and dest != path:
                state[path] = None
                state[dest] = new
            else:
                state[path] = new
    return changes


def _final_states(changes):
    """path -> final text (None = remove) after all changes, in first-touched order."""
    final = {}
    for ch in changes:
        if ch.kind == "delete":
            final[ch.path] = None
        elif ch.kind == "add":
            final[ch.path] = ch.new
        elif ch.move_path is not None and ch.move_path != ch.path:
            final[ch.path] = None
            final[ch.move_path] = ch.new
        else:
            final[ch.path] = ch.new
    return final


def apply_changes(changes):
    """Write planned changes atomically: every file is changed, or none is (PatchError)."""
    final = _final_states(changes)
    temps = {}
    made_dirs = []
    originals = {}
    try:
        for path, text in final.items():
            originals[path] = path.read_bytes() if path.is_file() else None
            if text is None:
                continue
            missing = []
            parent = path.parent
            while not parent.exists():
                missing.append(parent)
                parent = parent.parent
            for d in reversed(missing):
                os.mkdir(str(d))
                made_dirs.append(d)
            # A fresh name, O_EXCL|O_NOFOLLOW: a sandboxed command may have planted a symlink at any
            # predictable name (".x.codex-patch.<pid>") pointing outside the writable roots.
            fd, tmp = _create_patch_temp(path)
            temps[path] = tmp
            with os.fdopen(fd, "wb") as fh:
                fh.write(text.encode("utf-8"))
            if originals[path] is not None:
                os.chmod(str(tmp), os.stat(str(path)).st_mode & 0o7777)
    except OSError as exc:
        _undo_temps(temps, made_dirs)
        raise PatchError("Failed to write %s: %s; no file was changed" % (getattr(exc, "filename", "") or "a file", exc.strerror or exc))
    done = []
    try:
        for path, text in final.items():
            if text is None:
                if originals[path] is not None:
                    os.unlink(str(path))
            else:
                os.replace(str(temps[path]), str(path))
                del temps[path]
            done.append(path)
    except OSError as exc:
        for path in done:  # roll back what was already replaced or removed
            try:
                if originals[path] is None:
                    os.unlink(str(path))
                else:
                    with open(str(path), "wb") as fh:
                        fh.write(originals[path])
            except OSError:
                pass
        _undo_temps(temps, made_dirs)
        raise PatchError("Failed to write %s: %s; no file was changed" % (getattr(exc, "filename", "") or "a file", exc.strerror or exc))


def _create_patch_temp(path):
    """Create a new empty temp file next to `path`; returns (fd, Path). Never follows a symlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.with_name(".%s.codex-patch.%s" % (path.name, os.urandom(8).hex()))
        try:
            return os.open(str(tmp), flags, 0o666), tmp  # umask applies, as for open(..., "wb")
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, "cannot create a temporary file", str(path.parent))


def _undo_temps(temps, made_dirs):
    for tmp in temps.values():
        try:
            os.unlink(str(tmp))
        except OSError:
            pass
    for d in reversed(made_dirs):
        try:
            os.rmdir(str(d))
        except OSError:
            pass


def whole_file_patch(path, old, new):
    """The apply_patch text that turns file `path` (content `old`, None when it does not exist)
    into `new`: an Add File, or one Update chunk replacing every line (write_file, edit_file)."""
    new_lines = new.replace("\r\n", "\n").split("\n")
    if new_lines[-1] == "":
        new_lines.pop()
    out = [PATCH_BEGIN]
    if old is None:
        out.append(_ADD + path)
        out.extend("+" + line for line in new_lines)
    else:
        old_lines = old.replace("\r\n", "\n").split("\n")
        if old_lines[-1] == "":
            old_lines.pop()
        out += [_UPDATE + path, "@@"]
        out.extend("-" + line for line in old_lines)
        out.extend("+" + line for line in new_lines)
        out.append(_EOF_MARK)
    out.append(PATCH_END)
    return "\n".join(out) + "\n"


def patch_summary(changes):
    """upstream's stdout: 'Success. Updated the following files:' then A, M, D lines."""
    adds = ["A " + c.display for c in changes if c.kind == "add"]
    mods = ["M " + c.display for c in changes if c.kind == "update"]
    dels = ["D " + c.display for c in changes if c.kind == "delete"]
    return "Success. Updated the following files:\n" + "".join(line + "\n" for line in adds + mods + dels)


def apply_patch(text, cwd):
    """Parse, verify and atomically apply a patch under cwd; return the summary text."""
    changes = plan_patch(text, cwd)
    apply_changes(changes)
    return patch_summary(changes)


#: argv[1] that turns codex into the `apply_patch` command (run inside the sandbox, §13)
APPLY_PATCH_ARGV = "__codex_apply_patch__"
APPLY_PATCH_NAMES = ("apply_patch", "applypatch")  #: the command's names on PATH in the sandbox


def apply_patch_main(args):
    """`apply_patch [PATCH]`: the patch from its one argument or stdin, applied under the cwd.

    What codex runs inside the sandbox for every patch (and what `apply_patch` on PATH runs
    there), so that Landlock and the mounts decide what the patch may write.  Prints the
    summary (exit 0) or the error (stderr, exit 1), as upstream's apply_patch.  codex itself
    passes `--cd DIR` first: the directory the patch's paths are relative to (the model's
    workdir, resolved by the kernel here, inside the sandbox).
    """
    base = None
    if len(args) >= 2 and args[0] == "--cd":
        base, args = args[1], args[2:]
    if len(args) > 1:
        sys.stderr.write("Error: apply_patch accepts exactly one argument.\n")
        return 2
    if args:
        text = args[0]
    else:
        data = sys.stdin.buffer.read() if sys.stdin is not None else b""
        text = data.decode("utf-8", "replace")
        if not text.strip():
            sys.stderr.write("Usage: apply_patch 'PATCH'\n       echo 'PATCH' | apply_patch\n")
            return 2
    try:
        out = apply_patch(text, base if base is not None else os.getcwd())
    except PatchError as exc:
        sys.stderr.write("%s\n" % exc)
        return 1
    except OSError as exc:  # the cwd vanished, a read the sandbox refused...
        sys.stderr.write("Failed to apply the patch: %s\n" % (exc.strerror or exc))
        return 1
    sys.stdout.write(out)
    return 0


###############################################################################
# §11 Safety: known-safe commands and approval decisions
###############################################################################

# Contract used by the agent (§16) and front ends.  `ctx` is the turn's TurnContext (§15a): its
# sandbox_policy and approval_policy are the one effective policy (a Config stands for the
# context it starts with, so tests and `codex sandbox` can pass one).
#
#   is_known_safe_command(argv) -> bool
#   assess_command_safety(argv, ctx, approved_for_session: set, escalated=False) -> "auto-approve" | "ask-user" | "reject"
#       (§13, next to execute_with_policy: it asks whether a sandbox is available and what PATH resolves)
#   assess_patch_safety(paths, ctx) -> "auto-approve" | "ask-user" | "reject"   (paths: absolute Paths
#       the patch writes, move destinations included)
#   execute_with_policy(argv, cwd, ctx, session_state, ask, on_output=None, cancel=None, timeout_ms=None,
#                       escalated=False, justification=None)
#       -> ExecOutcome(result=ExecResult | None, model_output=str, decision=str)
#       ask(kind="exec", argv=..., cwd=..., reason=...) -> "approved" | "approved_for_session" | "denied" | "abort"
#       runs the whole flow: safety check, approval, sandboxed run, on-failure retry question.
#       It is defined at the end of §13 because it runs commands (the sections above it stay pure).
#       session_state: an object with a set attribute `approved_commands` (or a dict with that key);
#       approved_for_session argv tuples go there.  decision is one of EXEC_DECISIONS.
#       escalated/justification: the shell tool's `with_escalated_permissions` / `justification`.
#   describe_policy(ctx) -> str; APPROVAL_PRESETS   the effective policy with sources, for /status
#   take_sandbox_notices() -> [str]   (§04) one-time warnings for the user (e.g. ".git cannot be made
#       read-only here"); front ends show them once, e.g. as a background event.
#
# Deliberate differences from upstream (docs/sandbox.md has the list):
#   * known-safe commands skip the question but still run sandboxed (upstream ran them
#     unsandboxed; with a writable .git that let a planted core.fsmonitor run outside);
#   * git counts as safe only for read-only subcommands without -c/--output/--ext-diff/...;
#   * a "yes" to the on-failure retry question approves that one run, not the whole session.

#: commands safe with any arguments (they only read, and run sandboxed anyway)
SAFE_ANY_ARGS = frozenset((
    "cat", "cd", "echo", "false", "grep", "head", "ls", "nl", "pwd", "tail", "true", "wc", "which",
    "cut", "expr", "id", "paste", "rev", "seq", "stat", "tr", "uname", "whoami", "tac", "numfmt",
    "basename", "dirname", "realpath", "readlink", "du", "df",
))
#: find options that execute, delete or write files (find takes whole words only)
UNSAFE_FIND_OPTIONS = frozenset(("-exec", "-execdir", "-ok", "-okdir", "-delete", "-fls", "-fprint", "-fprint0", "-fprintf"))
#: program -> (short option letters, long option names) that write files or run programs.
#: Matched as getopt_long parses them: a letter anywhere in a cluster (`-do`, `-oFILE`), a long
#: name or any abbreviation of it, with or without `=VALUE` (`--out=FILE`).  The programs of
#: SAFE_ANY_ARGS have no such option (GNU and BSD); find, git and sed are checked on their own.
UNSAFE_OPTIONS = {
    "base64": ("o", ("output",)),  # BSD/macOS base64 -o FILE writes FILE
    "rg": ("z", ("search-zip", "pre", "hostname-bin")),  # decompressors and --pre run programs
}
#: git subcommands that only read the repository
SAFE_GIT_SUBCOMMANDS = frozenset(("status", "log", "diff", "show", "branch", "blame", "ls-files", "rev-parse", "shortlog"))
#: subcommand options that write files or run programs, abbreviations included (global options
#: such as -c, -C, --config-env, --exec-path, -p are rejected anyway: the subcommand must come
#: right after git); `--text` is a whole option of its own, not short for --textconv
UNSAFE_GIT_OPTIONS = ("--output", "--ext-diff", "--textconv", "--exec", "--upload-pack", "--paginate")
_SAFE_GIT_PREFIX_OPTIONS = ("--text",)
#: flags that make `git branch` read-only (anything else may create/delete/rename branches)
SAFE_GIT_BRANCH_FLAGS = ("--list", "-l", "--show-current", "-a", "--all", "-r", "--remotes", "-v", "-vv",
                         "--verbose", "--no-color", "--color", "--contains", "--merged", "--no-merged", "--format")
#: shells whose `-c`/`-lc` script may be parsed into plain commands
SCRIPT_SHELLS = ("bash", "zsh", "sh")
#: the sed script forms allowed with `sed -n`: Np or M,Np
_SED_PRINT_RE = re.compile(r"^\d+(,\d+)?p$")
#: the presets front ends offer (/approvals, --help, docs/sandbox.md):
#: name -> (approval_policy, sandbox_mode, network_access, what it means)
APPROVAL_PRESETS = {
    "read-only": ("on-request", "read-only", False, "reads anything; asks before writing or using the network"),
    "auto": ("on-request", "workspace-write", False, "edits and runs commands in the workspace; asks for more"),
    "full-auto": ("on-failure", "workspace-write", False, "like auto, and asks only when the sandbox stops a command"),
    "full-access": ("never", "danger-full-access", True, "no sandbox and no questions (disposable machines only)"),
}


#: approval decisions for a command: assess_command_safety's answers
COMMAND_DECISIONS = ("auto-approve", "ask-user", "reject")
#: ExecOutcome.decision values
EXEC_DECISIONS = (
    "auto-approve",          # ran without a question (sandboxed unless policy/approval says otherwise)
    "approved",              # the user said yes (ran unsandboxed)
    "approved_for_session",  # yes, and this exact argv runs unasked for the rest of the session
    "denied",                # the user said no; the model is told so
    "abort",                 # the user aborted the turn; the caller ends the turn
    "reject",                # the policy refused it without asking
    "retry-approved",        # failed in the sandbox, the user allowed an unsandboxed retry
    "sandbox-failed",        # failed in the sandbox and was not retried
)


def describe_policy(cfg):
    """One line for /status and `codex sandbox --check`: approval, sandbox, network and their sources."""
    policy = cfg.sandbox_policy
    src = cfg.sources
    preset = next((name for name, (a, m, n, _) in APPROVAL_PRESETS.items()
                   if (a, m, n) == (cfg.approval_policy, policy.mode, policy.has_network())), None)
    return "approval_policy=%s (%s), sandbox_mode=%s (%s), network=%s%s" % (
        cfg.approval_policy, src.get("approval_policy", "default"), policy.mode, src.get("sandbox_mode", "default"),
        "on" if policy.has_network() else "off", " [preset %s]" % preset if preset else "")


def _uses_option(args, letters="", names=()):
    """Whether args use one of the options as getopt_long reads them: a short letter anywhere
    in a `-abc` cluster (`-oFILE` too), or a long name, an abbreviation of it (`--out`), with or
    without `=VALUE`.  Deliberately wide: a cluster's value (`-e zz`) may match too."""
    for arg in args:
        if arg.startswith("--") and len(arg) > 2:
            given = arg[2:].split("=", 1)[0]
            if any(name.startswith(given) for name in names):
                return True
        elif arg.startswith("-") and len(arg) > 1 and any(c in letters for c in arg[1:]):
            return True
    return False


def _git_is_safe(argv):
    """Read-only git: a safe subcommand right after `git`, no option that writes or runs."""
    if len(argv) < 2 or argv[1] not in SAFE_GIT_SUBCOMMANDS:
        return False
    for arg in argv[2:]:
        if arg.split("=", 1)[0] not in _SAFE_GIT_PREFIX_OPTIONS and _uses_option(
                [arg], "", [o[2:] for o in UNSAFE_GIT_OPTIONS]):
            return False
    if argv[1] == "branch":
        for arg in argv[2:]:
            if not arg.startswith("-"):
                # a positional names a branch to create unless it follows a filter option
                return False
            if arg.split("=", 1)[0] not in SAFE_GIT_BRANCH_FLAGS:
                return False
    return True


def _argv_is_safe(argv):
    """Whether one plain argv (no shell) is on the known-safe list with safe arguments."""
    if not argv:
        return False
    prog = argv[0]
    # A path is accepted only for the system directories; `./ls` may be planted by the model.
    if "/" in prog:
        head, _, base = prog.rpartition("/")
        if head not in ("/bin", "/usr/bin"):
            return False
        prog = base
    if prog in SAFE_ANY_ARGS:
        return True
    if prog == "find":
        return not any(arg in UNSAFE_FIND_OPTIONS for arg in argv[1:])
    if prog in UNSAFE_OPTIONS:
        letters, names = UNSAFE_OPTIONS[prog]
        return not _uses_option(argv[1:], letters, names)
    if prog == "git":
        return _git_is_safe(argv)
    if prog == "sed":
        return (len(argv) in (3, 4) and argv[1] == "-n" and bool(_SED_PRINT_RE.match(argv[2]))
                and (len(argv) == 3 or (bool(argv[3]) and not argv[3].startswith("-"))))  # --file=x.sed, -e, -i
    return False


#: characters that make an unquoted shell word more than a plain word
_SHELL_SPECIAL = set("$`\\><()&{}*?[]~!#=\n\r\t")


def parse_plain_script(script):
    """Split a shell script into commands when it is only plain words and && || ; |.

    Returns a list of argv lists, or None when anything else appears (redirections,
    substitutions, variables, globs, subshells, background jobs, assignments...).
    """
    commands, words = [], []
    word, have_word = [], False
    i, n = 0, len(script)

    def end_word():
        if have_word:
            words.append("".join(word))
        del word[:]

    while i < n:
        c = script[i]
        if c == " ":
            end_word()
            have_word = False
            i += 1
            continue
        if c in ";|&":
            end_word()
            have_word = False
            op = script[i:i + 2]
            if op in ("&&", "||"):
                i += 2
            elif c == "&" or op in (";;", "|&"):
                return None  # background job or case/pipe-stderr syntax
            else:
                i += 1
            if not words:
                return None  # an operator with no command before it
            commands.append(words)
            words = []
            continue
        if c == "'":
            j = script.find("'", i + 1)
            if j < 0:
                return None
            word.append(script[i + 1:j])
            have_word = True
            i = j + 1
            continue
        if c == '"':
            j = i + 1
            while j < n and script[j] != '"':
                if script[j] in "$`\\!":
                    return None  # expansions inside double quotes
                j += 1
            if j >= n:
                return None
            word.append(script[i + 1:j])
            have_word = True
            i = j + 1
            continue
        if c in _SHELL_SPECIAL:
            return None
        word.append(c)
        have_word = True
        i += 1
    end_word()
    if not words:
        return None  # empty script or a trailing operator
    commands.append(words)
    return commands


def is_known_safe_command(argv):
    """Whether argv only reads (known-safe list), directly or as `bash -lc "plain script"`."""
    argv = [str(a) for a in argv]
    if _argv_is_safe(argv):
        return True
    if len(argv) == 3 and argv[0].rpartition("/")[2] in SCRIPT_SHELLS and argv[1] in ("-lc", "-c"):
        commands = parse_plain_script(argv[2])
        return bool(commands) and all(_argv_is_safe(cmd) for cmd in commands)
    return False


def _command_words(argv):
    """The programs a known-safe argv runs: argv[0], or the shell and each script command's first word."""
    argv = [str(a) for a in argv]
    if len(argv) == 3 and argv[0].rpartition("/")[2] in SCRIPT_SHELLS and argv[1] in ("-lc", "-c"):
        return [argv[0]] + [cmd[0] for cmd in parse_plain_script(argv[2]) or []]
    return argv[:1]


def _patch_outside_reason(paths, cfg):
    """Why a patch needs approval, naming where it really writes: a path through a symlink
    (`docs/.bashrc` with docs -> ~) is shown with its resolved target, so that the user
    does not approve "a file in the workspace" that lands elsewhere.  None when all are writable."""
    sandbox, home = cfg.sandbox_policy, cfg.codex_home
    outside = []
    for p in paths:
        if sandbox.is_path_writable(Path(p), cfg.cwd, home):
            continue
        real = os.path.realpath(str(p))
        outside.append(str(p) if real == os.path.abspath(str(p)) else "%s (resolves to %s)" % (p, real))
    if not outside:
        return None
    return "writes outside the writable roots or to protected paths: %s" % ", ".join(outside)


def assess_patch_safety(paths, cfg):
    """Decide an apply_patch touching `paths`: auto-approve inside writable roots, else ask/reject."""
    policy = cfg.approval_policy
    if policy == "untrusted":
        return "ask-user"
    sandbox = cfg.sandbox_policy
    if not paths:
        return "reject"
    home = cfg.codex_home
    if all(sandbox.is_path_writable(Path(p), cfg.cwd, home) for p in paths):
        return "auto-approve"
    if policy == "never":
        return "reject"
    return "ask-user"


###############################################################################
# §12a Sandbox: macOS Seatbelt
###############################################################################

# The SandboxPolicy and the protected paths are §04's (derived from the config).  On macOS
# the policy becomes a Seatbelt profile run by /usr/bin/sandbox-exec; on Linux the helper
# of §12b applies it.

SEATBELT_EXECUTABLE = "/usr/bin/sandbox-exec"  #: absolute on purpose: never a PATH lookup
SANDBOX_TYPE_NAMES = {"linux": "LinuxSeccomp", "linux-python": "LinuxSeccomp", "seatbelt": "MacosSeatbelt"}

# -- macOS Seatbelt -------------------------------------------------------------------------

#: the fixed part of every Seatbelt profile: deny by default, let the command run and fork,
#: read the sysctls common tools need, and use POSIX semaphores (Python multiprocessing)
SEATBELT_BASE_POLICY = """(version 1)
(deny default)
(allow process-exec)
(allow process-fork)
(allow signal (target self))
(allow file-write-data
  (require-all (path "/dev/null") (vnode-type CHARACTER-DEVICE)))
(allow sysctl-read
  (sysctl-name "hw.activecpu") (sysctl-name "hw.busfrequency_compat") (sysctl-name "hw.byteorder")
  (sysctl-name "hw.cacheconfig") (sysctl-name "hw.cachelinesize_compat") (sysctl-name "hw.cpufamily")
  (sysctl-name "hw.cpufrequency_compat") (sysctl-name "hw.cputype") (sysctl-name "hw.l1dcachesize_compat")
  (sysctl-name "hw.l1icachesize_compat") (sysctl-name "hw.l2cachesize_compat") (sysctl-name "hw.l3cachesize_compat")
  (sysctl-name "hw.logicalcpu_max") (sysctl-name "hw.machine") (sysctl-name "hw.ncpu") (sysctl-name "hw.nperflevels")
  (sysctl-name "hw.memsize") (sysctl-name "hw.pagesize") (sysctl-name "hw.pagesize_compat")
  (sysctl-name "hw.physicalcpu") (sysctl-name "hw.physicalcpu_max") (sysctl-name "hw.logicalcpu")
  (sysctl-name "hw.tbfrequency_compat") (sysctl-name "hw.vectorunit")
  (sysctl-name "kern.hostname") (sysctl-name "kern.maxfilesperproc") (sysctl-name "kern.osproductversion")
  (sysctl-name "kern.osrelease") (sysctl-name "kern.ostype") (sysctl-name "kern.osvariant_status")
  (sysctl-name "kern.osversion") (sysctl-name "kern.secure_kernel") (sysctl-name "kern.usrstack64")
  (sysctl-name "kern.version") (sysctl-name "sysctl.proc_cputype")
  (sysctl-name-prefix "hw.optional.") (sysctl-name-prefix "hw.perflevel"))
(allow ipc-posix-sem)"""
#: what the network section adds when the policy allows the network
SEATBELT_NETWORK_POLICY = "(allow network-outbound)\n(allow network-inbound)\n(allow system-socket)"


def seatbelt_profile(policy, cwd, home=None, environ=None):
    """Return (profile text, [(param name, value)]) for `policy`; paths go in as -D params."""
    parts = [SEATBELT_BASE_POLICY, "(allow file-read*)"]
    params = []
    if policy.is_unrestricted():
        parts.append('(allow file-write* (regex #"^/"))')
    else:
        roots = policy.writable_roots_for(cwd, environ)
        clauses = []
        ro_all = protected_paths(roots, cwd, home) if roots else []
        for i, root in enumerate(roots):
            name = "WRITABLE_ROOT_%d" % i
            params.append((name, str(root)))
            ro = [p for p in ro_all if _is_within(p, str(root)) and p != str(root)]
            if not ro:
                clauses.append('(subpath (param "%s"))' % name)
                continue
            nots = []
            for j, sub in enumerate(ro):
                sub_name = "%s_RO_%d" % (name, j)
                params.append((sub_name, sub))
                nots.append('(require-not (subpath (param "%s")))' % sub_name)
            clauses.append('(require-all (subpath (param "%s")) %s)' % (name, " ".join(nots)))
        if clauses:
            parts.append("(allow file-write*\n  %s)" % "\n  ".join(clauses))
    if policy.has_network():
        parts.append(SEATBELT_NETWORK_POLICY)
    return "\n".join(parts) + "\n", params


def seatbelt_argv(argv, policy, cwd, home=None, environ=None):
    """The sandbox-exec command line for argv under policy."""
    profile, params = seatbelt_profile(policy, cwd, home, environ)
    return ([SEATBELT_EXECUTABLE, "-p", profile] + ["-D%s=%s" % (k, v) for k, v in params]
            + ["--"] + [str(a) for a in argv])


###############################################################################
# §12b Sandbox: the Linux helper
###############################################################################

# On Linux a helper process applies the SandboxPolicy (§04) to itself and then execs the
# command, so the command's pid, exit code and signals are its own.  The helper is
# sandbox_helpers/codex-linux-sandbox.c
# (compiled statically, shipped inside the zipapp, extracted content-addressed at run time);
# where no compiled helper fits the machine, codex re-executes itself as the same helper
# written in Python (ctypes Landlock + pyseccomp).  Both speak one argv protocol:
#
#   codex-linux-sandbox --cwd DIR [--writable PATH]... [--read-only PATH]... [--hide FILE]...
#                       [--hide-dir DIR]... [--pin PATH]... [--ro-mounts] [--max-procs N] [--network]
#                       [--status-fd N] -- CMD [ARG]...
#   codex-linux-sandbox --probe          (key=value lines: landlock_abi, seccomp, userns, mount_setattr)
#
#   --writable PATH   full Landlock rights beneath PATH (the writable roots; /dev/null always)
#   --read-only PATH  bind-mount PATH read-only inside a new user+mount namespace (.git,
#                     $CODEX_HOME, .codex inside writable roots)
#   --hide FILE       in that namespace /dev/null (read-only) covers FILE ($CODEX_HOME/auth.json;
#                     with the network on, unix sockets such as docker.sock)
#   --hide-dir DIR    in that namespace an empty read-only tmpfs covers DIR (with the network on:
#                     $XDG_RUNTIME_DIR with the D-Bus and systemd sockets, /tmp/.X11-unix, ...)
#   --pin PATH        in that namespace PATH (directory, file or symlink, not followed) is mounted
#                     onto itself, so it cannot be renamed, removed or replaced: every component
#                     between a writable root and a protected path (trusted_paths), so that no
#                     command moves a read-only mount aside and plants a copy at the trusted name
#   --ro-mounts       in that namespace every mount is read-only except the writable roots:
#                     closes chmod/chown/utime/xattr outside the roots (Landlock's gap)
#   --max-procs N     RLIMIT_NPROC in the command's own user namespace (SANDBOX_MAX_PROCS)
#   --network         leave the network alone (no socket rules in seccomp or Landlock)
#   --cwd DIR         chdir here after the mounts (so a cwd inside .git sees the read-only mount)
#   --status-fd N     the helper's own failures also go to fd N as "CODE message\n"; it is
#                     close-on-exec, so the command never holds it: codex believes "the sandbox
#                     failed" only from there (run_command), never from the command's stderr
#
# Order inside the helper: close fds > 2, PR_SET_NO_NEW_PRIVS, namespaces (user, mount, PID,
# IPC: always tried, required by the read-only options; pid 1 forked at once) + read-only
# mounts + a private /dev/shm, every capability dropped, seccomp, Landlock, chdir, execvp.  The helper's own failures print one line starting with
# "codex-linux-sandbox:" (and "CODE message" on --status-fd) and exit with one of
# HELPER_EXIT_CODES; a command that cannot be executed gives 127 (not found) or 126, like a shell.

#: helper exit code -> meaning (reported on the status fd)
HELPER_EXIT_CODES = {
    120: "setup failed (prctl or closing file descriptors)",
    121: "bad helper arguments",
    122: "Landlock is unavailable or could not be enforced",
    123: "seccomp could not be installed",
    125: "the read-only mounts (.git, $CODEX_HOME) could not be set up",
}
HELPER_NAME = "codex-linux-sandbox"  #: stem of the C helper (sandbox_helpers/<stem>.c)
HELPER_ERROR_PREFIX = HELPER_NAME + ":"  #: first word of the helper's own error lines
_SANDBOX_HELPER_ARGV = "__codex_linux_sandbox__"  #: argv[1] that turns codex.py into the Python helper
HIDDEN_HOME_FILES = ("auth.json",)  #: $CODEX_HOME files a command sees as empty (they hold credentials)
#: With the network on, connect() is allowed for every family; these unix sockets (or the
#: directories holding them) would run commands outside the sandbox -- container engines,
#: D-Bus (systemd-run), systemd's private sockets, terminal multiplexers, X11 keystroke
#: injection -- so commands do not see them.  "{uid}" and $XDG_RUNTIME_DIR are filled in.
NETWORK_HIDDEN_SOCKETS = (
    "/run/docker.sock", "/var/run/docker.sock", "/run/podman", "/run/containerd", "/run/dbus",
    "/run/systemd/private", "/run/libvirt", "/run/user/{uid}", "/tmp/.X11-unix", "/tmp/tmux-{uid}",
    "/run/screen", "~/.docker/run", "$XDG_RUNTIME_DIR",
)

#: Landlock access rights (linux/landlock.h; the system header may predate ABI 7)
LANDLOCK_FS = {
    "execute": 1 << 0, "write_file": 1 << 1, "read_file": 1 << 2, "read_dir": 1 << 3,
    "remove_dir": 1 << 4, "remove_file": 1 << 5, "make_char": 1 << 6, "make_dir": 1 << 7,
    "make_reg": 1 << 8, "make_sock": 1 << 9, "make_fifo": 1 << 10, "make_block": 1 << 11,
    "make_sym": 1 << 12, "refer": 1 << 13, "truncate": 1 << 14, "ioctl_dev": 1 << 15,
}
#: file-system rights each ABI handles: 1 up to make_sym, 2 adds refer, 3 truncate, 5 ioctl_dev
_LANDLOCK_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
_LANDLOCK_FILE_RIGHTS = (LANDLOCK_FS["execute"] | LANDLOCK_FS["write_file"] | LANDLOCK_FS["read_file"]
                         | LANDLOCK_FS["truncate"] | LANDLOCK_FS["ioctl_dev"])  #: rights a rule on a file may hold
_LANDLOCK_READ = LANDLOCK_FS["execute"] | LANDLOCK_FS["read_file"] | LANDLOCK_FS["read_dir"]  #: what "/" gets
_LANDLOCK_NET_TCP = (1 << 0) | (1 << 1)  #: bind_tcp + connect_tcp (ABI 4)
_LANDLOCK_SCOPE_ABSTRACT_UNIX, _LANDLOCK_SCOPE_SIGNAL = 1, 2  #: ABI 6
_SYS_LANDLOCK = (444, 445, 446)  #: create_ruleset, add_rule, restrict_self (same on every arch)

#: syscalls a sandboxed command never gets (EPERM): debugging other processes, io_uring
#: (which performs socket/file operations seccomp cannot see), mount changes (a root
#: command owns the user namespace the read-only binds live in), the kernel keyrings
#: (the session keyring is shared with the user's login session), file handles
#: (open_by_handle_at through a writable mount reaches what a read-only bind covers), new or
#: other namespaces (a fresh user namespace hands back every capability), and what only
#: attacks the kernel or other processes (bpf, perf, userfaultfd, pidfd_getfd, modules...).
#: sandbox_helpers/codex-linux-sandbox.c has the same list (tests/test_sandbox_isolation.py
#: compares them); clone with a CLONE_NEW* flag is denied too, and clone3 gets ENOSYS.
SECCOMP_ALWAYS_DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "mount", "umount2", "mount_setattr", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "pivot_root", "add_key", "request_key", "keyctl",
    "open_by_handle_at", "name_to_handle_at", "unshare", "setns", "bpf", "perf_event_open",
    "userfaultfd", "pidfd_getfd", "process_madvise", "init_module", "finit_module", "delete_module",
    "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "syslog", "acct", "quotactl",
    "quotactl_fd", "chroot", "fanotify_init", "iopl", "ioperm",
)
#: without an IPC namespace (no user namespaces): the outside's SysV IPC and POSIX message queues
SECCOMP_IPC_DENIED = (
    "shmget", "shmat", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget", "msgsnd", "msgrcv",
    "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
)
#: clone(2) flags that make a new namespace (CLONE_NEWNS, CGROUP, UTS, IPC, USER, PID, NET)
CLONE_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
#: AF_UNIX socket types a command may create with the network off: neither can send to an address
UNIX_SOCKET_TYPES_WITHOUT_NETWORK = (1, 5)  # SOCK_STREAM, SOCK_SEQPACKET
#: processes and threads one sandboxed command may have at once (RLIMIT_NPROC in its own user
#: namespace): room for `make -j` and test runners, not for a fork bomb
SANDBOX_MAX_PROCS = max(1024, 128 * (os.cpu_count() or 1))
#: the private /dev/shm each sandboxed command gets (with user namespaces), as the C helper's
_SHM_TMPFS_OPTIONS = b"size=64m,nr_inodes=4096,mode=1777"
#: syscalls denied for every socket family when the network is off (no docker.sock, no ssh-agent)
SECCOMP_NETWORK_DENIED = ("connect", "bind", "listen", "accept", "accept4")
_TIOCSTI, _TIOCLINUX = 0x5412, 0x541C  #: terminal ioctls that inject input into the parent's tty
#: chmod-family syscall -> index of its mode argument: a mode with S_ISUID or S_ISGID is denied,
#: so that no command leaves a set-user/group-ID program behind in a writable root (a root
#: codex's command would otherwise hand every local user a root shell: `chmod 4755 /tmp/sh`)
SECCOMP_CHMOD_MODE_ARG = (("chmod", 1), ("fchmod", 1), ("fchmodat", 2), ("fchmodat2", 2))
_SETID_MODE_BITS = 0o6000  #: S_ISUID | S_ISGID

# -- finding and extracting the compiled helper ---------------------------------------------


def _machine_arch():
    """x86_64 / aarch64 / ... as build.py names helper binaries."""
    m = os.uname().machine
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


_HELPER_CACHE = {}


def _helper_sources():
    """Where a compiled helper for this machine may be: the zipapp package, then build/helpers."""
    here = Path(os.path.abspath(__file__)).parent
    name = "%s-%s" % (HELPER_NAME, _machine_arch())
    return [here / "codex_sandbox_helpers" / name, here / "build" / "helpers" / name]


def _helper_install_dirs(home):
    """Directories to extract the helper into: $CODEX_HOME/bin, else a per-user cache."""
    dirs = []
    if home is not None:
        dirs.append(Path(home) / "bin")
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    dirs.append(Path(cache) / "codex" / "bin")
    dirs.append(Path("/tmp") / ("codex-%d" % os.getuid()) / "bin")
    return dirs


def _ancestors_are_safe(path):
    """Whether no other user can rename or replace `path` or a directory above it: every
    ancestor is owned by us or root and is not group/other-writable unless sticky (/tmp).
    A /tmp/codex-UID pre-created by somebody else would otherwise let them swap the helper."""
    import stat

    uid = os.getuid()
    for p in [Path(path)] + list(Path(path).parents):
        try:
            st = os.lstat(str(p))
        except OSError:
            return False
        if st.st_uid not in (0, uid):
            return False
        if st.st_mode & 0o022 and not (stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX):
            if not stat.S_ISLNK(st.st_mode):
                return False
    return True


def _install_helper(data, digest, home):
    """Write the helper once, content-addressed and 0700; return its path or None."""
    import hashlib  # startup budget: only when a command is sandboxed

    name = "%s-%s" % (HELPER_NAME, digest[:16])
    for d in _helper_install_dirs(home):
        target = d / name
        try:
            if target.exists() and _ancestors_are_safe(d):
                st = target.lstat()
                if (st.st_uid == os.getuid() and (st.st_mode & 0o7777) == 0o700
                        and hashlib.sha256(target.read_bytes()).hexdigest() == digest):
                    if os.access(str(target), os.X_OK):  # False on a noexec mount: try the next place
                        return target
                    continue
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            st = d.lstat()
            if st.st_uid != os.getuid() or st.st_mode & 0o022 or not _ancestors_are_safe(d):
                continue  # somebody else could swap the binary (or a directory above it) in a shared place
            tmp = d / (".%s.%d.tmp" % (name, os.getpid()))
            fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o700)
            try:
                os.write(fd, data)
                os.fchmod(fd, 0o700)
            finally:
                os.close(fd)
            os.replace(str(tmp), str(target))
            if os.access(str(target), os.X_OK):
                return target
        except OSError:
            continue
    return None


_MFD_EXEC = 0x0010  #: memfd_create flag (Linux 6.3+): executable even under vm.memfd_noexec=1


def _seal_in_memfd(data):
    """The helper's bytes in a sealed memfd (no write, grow or shrink, ever): its fd, or None.

    Nothing a command can write or rename reaches it: it has no name in any file system.
    """
    import fcntl  # startup budget: only when a command is sandboxed

    fd = None
    for flags in (_MFD_EXEC, 0):
        try:
            fd = os.memfd_create(HELPER_NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING | flags)
            break
        except (AttributeError, OSError):
            continue
    if fd is None:
        return None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                    fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
        if not os.access("/proc/self/fd/%d" % fd, os.X_OK):  # a noexec memfd (vm.memfd_noexec=2)
            raise OSError(errno.EACCES, "memfd not executable")
        return fd
    except OSError:
        os.close(fd)
        return None


def _open_verified(path, digest):
    """Open the extracted helper once and check its hash through that fd: the fd, or None.

    Executed as /proc/PID/fd/N, the file codex checked is the one that runs, whatever is
    renamed or recreated at its path afterwards.
    """
    import hashlib  # startup budget: only when a command is sandboxed

    try:
        fd = os.open(str(path), os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    h = hashlib.sha256()
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        h.update(chunk)
    if h.hexdigest() != digest:
        os.close(fd)
        return None
    return fd


_HELPER_FILES = {}  #: cache key -> the extracted file behind the fd (only without memfd), protected read-only


def linux_helper_path(home=None):
    """The compiled helper for this machine, ready to execute (None: use the Python helper).

    The helper's bytes (from the zipapp, build/helpers, or CODEX_SANDBOX_HELPER=/path for
    testing a build) go into a sealed memfd once per process; the path returned is
    /proc/PID/fd/N, never a name a command could rename or replace.  Where memfds cannot be
    executed it is extracted (content-addressed, 0700) and opened and verified once.
    CODEX_SANDBOX_HELPER=python forces the Python helper.
    """
    choice = os.environ.get("CODEX_SANDBOX_HELPER", "").strip()
    if choice == "python":
        return None
    key = (str(home), choice, os.getpid())
    if key in _HELPER_CACHE:
        return _HELPER_CACHE[key]
    import hashlib  # startup budget: only when a command is sandboxed

    found = None
    for src in ([Path(choice)] if choice else _helper_sources()):
        try:
            data = src.read_bytes()
        except OSError:
            if choice:  # executing it fails with a clear error (`codex sandbox --check` shows it)
                found = Path(choice)
                break
            continue
        fd = _seal_in_memfd(data)
        if fd is None:
            digest = hashlib.sha256(data).hexdigest()
            installed = _install_helper(data, digest, home)
            fd = _open_verified(installed, digest) if installed is not None else None
            if fd is None:
                _notice("cannot extract the sandbox helper to $CODEX_HOME/bin or a cache directory; "
                        "using the slower Python helper")
                break
            _HELPER_FILES[key] = installed
        found = Path("/proc/%d/fd/%d" % (os.getpid(), fd))
        _HELPER_ORIGIN[str(found)] = str(src)
        break
    _HELPER_CACHE[key] = found
    return found


_HELPER_ORIGIN = {}  #: /proc/PID/fd/N -> the file its bytes came from (for `codex sandbox --check`)


def _helper_backing_file(home):
    """The extracted helper file behind the fd when memfds are unavailable (None with a memfd)."""
    return _HELPER_FILES.get((str(home), os.environ.get("CODEX_SANDBOX_HELPER", "").strip(), os.getpid()))


_OWN_FILE = {}  #: __file__ -> its real path, resolved once (before any command could swap a symlink)


def _own_file():
    """codex.py's real path, resolved the first time it is needed and then kept for the process."""
    key = __file__
    if key not in _OWN_FILE:
        _OWN_FILE[key] = os.path.realpath(os.path.abspath(key))
    return _OWN_FILE[key]


_CODE_CACHES = {}  #: (home, codex.py, pid) -> pycache prefix directory, or None


def _code_cache_prefix(home=None):
    """A private sys.pycache_prefix holding codex.py's byte code when no cached .pyc sits next
    to it (a checkout run as `python3 codex.py` never writes one): the Python helper and the
    apply_patch mode then start in tens of milliseconds instead of compiling 12,000 lines.

    Content-addressed by codex.py's bytes and the Python version, written once, checked
    against the source hash at every load (CHECKED_HASH); it stays read-only for commands
    like the rest of codex's code.  None when not needed or no place works.
    """
    src = _own_file()
    key = (str(home), src, os.getpid())
    if key in _CODE_CACHES:
        return _CODE_CACHES[key]
    import importlib.util

    found = None
    try:
        if sys.pycache_prefix is None and not _pyc_is_current(importlib.util.cache_from_source(src), src):
            found = _write_code_cache(src, home)
    except (OSError, ValueError, SyntaxError):
        found = None
    _CODE_CACHES[key] = found
    return found


def _pyc_is_current(cfile, src):
    """Whether the .pyc next to codex.py matches it (a stale one is recompiled at every start)."""
    import importlib.util
    import struct

    try:
        with open(cfile, "rb") as fh:
            head = fh.read(16)
        st = os.stat(src)
    except OSError:
        return False
    if len(head) < 16 or head[:4] != importlib.util.MAGIC_NUMBER:
        return False
    flags, mtime, size = struct.unpack("<III", head[4:16])
    return bool(flags & 1) or (mtime == int(st.st_mtime) & 0xFFFFFFFF and size == st.st_size & 0xFFFFFFFF)


def _write_code_cache(src, home):
    import hashlib
    import importlib.util
    import py_compile

    with open(src, "rb") as fh:
        digest = hashlib.sha256(fh.read() + sys.version.encode()).hexdigest()
    for base in _helper_install_dirs(home):
        prefix = base / ("pycache-%s" % digest[:16])
        sys.pycache_prefix = str(prefix)
        try:
            cfile = importlib.util.cache_from_source(src)
        finally:
            sys.pycache_prefix = None
        try:
            if os.path.isfile(cfile) and _ancestors_are_safe(os.path.dirname(cfile)):
                return str(prefix)
            base.mkdir(parents=True, exist_ok=True, mode=0o700)
            st = base.lstat()
            if st.st_uid != os.getuid() or st.st_mode & 0o022 or not _ancestors_are_safe(base):
                continue
            d = str(prefix)
            for part in Path(os.path.dirname(cfile)).relative_to(prefix).parts:  # 0700 at every level
                os.makedirs(d, mode=0o700, exist_ok=True)
                d = os.path.join(d, part)
            os.makedirs(d, mode=0o700, exist_ok=True)
            tmp = "%s.%d.tmp" % (cfile, os.getpid())
            py_compile.compile(src, cfile=tmp, doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
            os.replace(tmp, cfile)
            return str(prefix)
        except (OSError, py_compile.PyCompileError):
            continue
    return None


def _codex_self_argv(mode, home=None):
    """argv prefix that runs codex.py itself in `mode` (the Python helper, or apply_patch).

    -I (isolated: no PYTHON* env, no user site, and above all no '' = the command's cwd on
    sys.path: a json.py the previous command planted in the workspace would run unsandboxed)
    and -S (no site: no .pth file of a site-packages a command could write runs; codex's
    directory and pyseccomp's are put on sys.path by name instead).  The interpreter is the
    real file behind sys.executable: a venv's bin/python3 symlink and pyvenv.cfg are not used.
    Imported rather than run as a script, so a cached .pyc (or _code_cache_prefix's) spares
    compiling this file.  The path is the real one resolved once (_own_file): it stays
    read-only for commands (§12b).
    """
    src = _own_file()
    here = os.path.dirname(src)
    prefix = _code_cache_prefix(home)
    dirs = [here]
    seccomp = _pyseccomp_path()
    if seccomp is not None and os.path.dirname(seccomp) != here:
        dirs.append(os.path.dirname(seccomp))
    # appended, not inserted first: a json.py planted next to codex.py must not shadow the stdlib
    boot = ("import sys, importlib.util as u; sys.path.extend(%r); %ss = u.spec_from_file_location('codex', %r); "
            "m = u.module_from_spec(s); sys.modules['codex'] = m; s.loader.exec_module(m); "
            "sys.exit(m.main(sys.argv[1:]))" % (dirs, "sys.pycache_prefix = %r; " % prefix if prefix else "", src))
    return [_real_executable(), "-I", "-S", "-B", "-c", boot, mode]


def _real_executable():
    """The interpreter running codex, symlinks resolved (a venv's bin/python3 is one)."""
    return os.path.realpath(sys.executable) if sys.executable else "python3"


_PYSECCOMP_PATHS = {}


def _pyseccomp_path():
    """The real path of the pyseccomp package (or module) this process would import, or None:
    the Python helper imports it from there, so it stays read-only for commands."""
    if "path" not in _PYSECCOMP_PATHS:
        import importlib.util

        found = None
        try:
            spec = importlib.util.find_spec("pyseccomp")
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin and os.path.isabs(spec.origin):
            found = os.path.realpath(os.path.dirname(spec.origin) if spec.submodule_search_locations else spec.origin)
        _PYSECCOMP_PATHS["path"] = found
    return _PYSECCOMP_PATHS["path"]


def python_root_warning(roots, userns=True):
    """A warning for the user when the Python codex runs under lies in one of the writable
    `roots` (an activated .venv in the workspace), else None."""
    roots = [str(r) for r in roots]
    for path in _interpreter_paths():
        if any(_is_within(r, path) for r in roots):
            return ("codex runs under the Python in %s, which holds a writable root: commands can change it, and "
                    "codex would run what they wrote outside the sandbox; run codex with a python3 outside the "
                    "workspace" % path)
        if any(_is_within(path, r) for r in roots):
            if not userns:
                return ("codex runs under the Python in %s, inside a writable root, and user namespaces are "
                        "unavailable to make it read-only: commands can change it, and codex would run what they "
                        "wrote outside the sandbox; run codex with a python3 outside the workspace" % path)
            return ("codex runs under the Python in %s, inside a writable root: it is read-only for commands (a "
                    "command that changed it would run code outside the sandbox); run codex with a python3 outside "
                    "the workspace to let commands install into it" % path)
    return None


def _interpreter_paths():
    """The Python installation codex runs under (real paths): its executable, sys.prefix (a
    venv: pyvenv.cfg, bin/, site-packages) and the base installation (the standard library).
    The Python helper runs it before it is sandboxed and the next codex start runs it: when it
    lies in a writable root it stays read-only for commands like codex's own code."""
    out = [_real_executable()]
    named = os.path.dirname(os.path.abspath(sys.executable)) if sys.executable else None
    # a venv is found by pyvenv.cfg next to the executable or one up (PEP 405; sys.prefix says
    # so only when `site` ran, and dist/codex starts with -S)
    venv = [d for d in (named, os.path.dirname(named or "")) if d and os.path.isfile(os.path.join(d, "pyvenv.cfg"))]
    for p in venv[:1] + [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix]:
        real = os.path.realpath(p)
        if p and os.path.isdir(real) and real != "/" and real not in out:
            out.append(real)
    return out


#: the sections codex's apply_patch mode needs (errors, apply_patch): both pure, standard library only
_APPLY_PATCH_SECTIONS = (("\n# \u00a703 ", "\n# \u00a704 "), ("\n# \u00a710 ", "\n# \u00a711 "))


_APPLY_PATCH_CODE = {}  #: (home, codex.py, pid) -> the marshalled §03+§10 code file, or None


def _apply_patch_code(home=None):
    """§03 and §10 of codex.py compiled once (at their own line numbers) and marshalled into a
    content-addressed file beside the helper's extraction ($CODEX_HOME/bin...): the apply-patch
    mode then loads code instead of reading and compiling codex.py for every patch.  Read-only
    for commands like the rest of codex's code (_sandbox_code_paths).  None when no place works."""
    import hashlib
    import marshal

    src = _own_file()
    key = (str(home), src, os.getpid())
    if key in _APPLY_PATCH_CODE:
        return _APPLY_PATCH_CODE[key]
    found = None
    try:
        with open(src, encoding="utf-8") as fh:
            text = fh.read()
        chunks = []
        for a, b in _APPLY_PATCH_SECTIONS:
            i = text.index(a) + 1
            chunks.append((i, text[i:text.index(b)]))
        digest = hashlib.sha256((sys.version + src).encode() + b"".join(c.encode() for _, c in chunks)).hexdigest()
        for base in _helper_install_dirs(home):
            target = base / ("apply_patch-code-%s" % digest[:16])
            if os.path.isfile(str(target)) and _ancestors_are_safe(str(target)) and os.stat(str(target)).st_uid == os.getuid():
                found = str(target)
                break
            try:
                base.mkdir(parents=True, exist_ok=True, mode=0o700)
                st = base.lstat()
                if st.st_uid != os.getuid() or st.st_mode & 0o022 or not _ancestors_are_safe(base):
                    continue
                code = [compile("\n" * text.count("\n", 0, i) + chunk, src, "exec") for i, chunk in chunks]
                tmp = base / (".apply_patch-code.%d.tmp" % os.getpid())
                fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(marshal.dumps(code))
                os.replace(str(tmp), str(target))
                found = str(target)
                break
            except (OSError, SyntaxError, ValueError):
                continue
    except (OSError, ValueError):
        found = None
    _APPLY_PATCH_CODE[key] = found
    return found


def _apply_patch_argv(home=None):
    """argv that runs codex's apply_patch mode (§10) fast: a fresh `python3 -I -S` that loads §03
    and §10 already compiled (_apply_patch_code; else it compiles just them from codex.py, at
    their own line numbers) instead of importing the whole module (~100 ms of module body), with
    LeanPath for pathlib.  The files are real paths resolved once, read-only for commands (§12b),
    as for the Python helper."""
    src = _own_file()
    code = _apply_patch_code(home)
    if code is not None:
        load = ("import marshal\n"
                "for c in marshal.loads(open(%r, 'rb').read()):\n"
                "    exec(c, g)\n" % code)
    else:
        load = ("p = %r\n"
                "t = open(p, encoding='utf-8').read()\n"
                "for a, b in %r:\n"
                "    i = t.index(a) + 1\n"
                "    exec(compile('\\n' * t.count('\\n', 0, i) + t[i:t.index(b)], p, 'exec'), g)\n"
                % (src, _APPLY_PATCH_SECTIONS))
    boot = ("import sys, os, errno\n"
            "g = {'__name__': 'codex', 'sys': sys, 'os': os, 'errno': errno}\n"
            + load +
            "g['Path'] = g['LeanPath']\n"
            "sys.exit(g['apply_patch_main'](sys.argv[1:]))\n")
    return [sys.executable, "-I", "-S", "-B", "-c", boot]


def _python_helper_argv(home=None):
    """argv prefix that runs codex.py itself as the Python sandbox helper."""
    return _codex_self_argv(_SANDBOX_HELPER_ARGV, home=home)


def _sandbox_code_paths(prefix, kind, roots, home=None):
    """(paths the next command's sandbox is built from, codex's own code) inside `roots`.

    Both stay read-only for commands: a command that rewrote the helper binary, or codex.py /
    its .pyc / pyseccomp for the Python helper, would run the next command unsandboxed; codex's
    package directory rewritten (the zipapp's ~/.shiv/... when the workspace is $HOME) runs at
    the next codex start.  A checkout of codex that is itself the workspace keeps only its
    files read-only.
    """
    roots = [str(r) for r in roots]
    src = _own_file()
    here = os.path.dirname(src)
    if any(_is_within(r, here) for r in roots):
        cache = os.path.join(here, "__pycache__")
        if kind != "linux":
            try:
                os.makedirs(cache, exist_ok=True)  # a directory the command could create and fill otherwise
            except OSError:
                pass
        own = [src] + [p for p in (cache, os.path.join(here, "pyseccomp"), os.path.join(here, "pyseccomp.py"),
                                   os.path.join(here, "codex_sandbox_helpers")) if os.path.exists(p)]
    else:
        own = [here]
    code_cache = _code_cache_prefix(home) if kind != "linux" else None
    if code_cache is not None:  # byte code the next Python helper runs before it is sandboxed
        own.append(code_cache)
    if kind == "linux":  # a sealed memfd needs nothing; an extracted helper file its directory
        backing = _helper_backing_file(home)
        needed = [os.path.dirname(str(backing))] if backing is not None else []
    else:
        needed = list(own)
    # the interpreter (and pyseccomp) the Python helper runs unsandboxed, and the next start too
    # (one that holds a writable root cannot be made read-only: python_root_warning says so)
    python = [p for p in _interpreter_paths() if not any(_is_within(r, p) for r in roots)]
    seccomp = _pyseccomp_path()
    if kind != "linux":
        needed += [p for p in python + ([seccomp] if seccomp else []) if p not in needed]
    own += [p for p in python if p not in own]
    # not needed to build the next sandbox, but run at the next start (the zipapp) or inside the
    # sandbox (the apply_patch command): nothing a command writes is trusted later
    own += [p for p in _launch_paths() if p not in own]
    patch_dir = apply_patch_command_dir(home)
    if patch_dir is not None:
        own.append(str(patch_dir))
    patch_code = _apply_patch_code(home)
    if patch_code is not None:  # what every sandboxed apply_patch runs
        own.append(patch_code)

    def inside(paths):
        return [p for p in paths if any(_is_within(p, r) for r in roots)]

    return inside(needed), inside(own)


_APPLY_PATCH_DIRS = {}  #: (home, pid) -> the directory holding the apply_patch scripts


def apply_patch_command_dir(home=None):
    """A directory with `apply_patch` and `applypatch`: scripts that run codex's apply_patch mode.

    Content-addressed and checked once per process like the helper's extraction (same places,
    same ownership rules); it stays read-only for commands like the rest of codex's code
    (trusted_paths).  None when no place works (then commands just lack the command).
    """
    import hashlib
    import shlex

    key = (str(home), os.getpid(), _own_file())
    if key in _APPLY_PATCH_DIRS:
        return _APPLY_PATCH_DIRS[key]
    script = "#!/bin/sh\nexec %s \"$@\"\n" % " ".join(shlex.quote(a) for a in _apply_patch_argv(home))
    digest = hashlib.sha256(script.encode("utf-8")).hexdigest()
    found = None
    for base in _helper_install_dirs(home):
        d = base / ("apply_patch-%s" % digest[:16])
        try:
            if all(_file_is(d / n, script) for n in APPLY_PATCH_NAMES) and _ancestors_are_safe(d):
                found = d
                break
            base.mkdir(parents=True, exist_ok=True, mode=0o700)
            st = base.lstat()
            if st.st_uid != os.getuid() or st.st_mode & 0o022 or not _ancestors_are_safe(base):
                continue
            tmp = base / (".apply_patch.%d.%s.tmp" % (os.getpid(), digest[:8]))
            tmp.mkdir(mode=0o700)
            for name in APPLY_PATCH_NAMES:
                fd = os.open(str(tmp / name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o700)
                with os.fdopen(fd, "w") as fh:
                    fh.write(script)
            try:
                os.rename(str(tmp), str(d))
            except OSError:  # another codex made it first (or a stale copy is in the way)
                for name in APPLY_PATCH_NAMES:
                    os.unlink(str(tmp / name))
                tmp.rmdir()
                if not all(_file_is(d / n, script) for n in APPLY_PATCH_NAMES):
                    continue
            if os.access(str(d / APPLY_PATCH_NAMES[0]), os.X_OK):
                found = d
                break
        except OSError:
            continue
    _APPLY_PATCH_DIRS[key] = found
    return found


def _file_is(path, text):
    """Whether `path` is a regular 0700 file of ours holding exactly `text`."""
    import stat

    try:
        st = os.lstat(str(path))
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o777 != 0o700:
            return False
        with open(str(path), "r", encoding="utf-8") as fh:
            return fh.read() == text
    except (OSError, UnicodeDecodeError):
        return False


def _launch_paths():
    """What the next codex start runs, beyond codex.py's directory (real paths): the zipapp
    file and the whole directory it unpacks into (zipapp_paths, §01: ~/.shiv, $SHIV_ROOT or
    the temp fallback), read-only as one, so that no command can chmod it unusable, rename it
    aside or plant a .pth in any build's site-packages."""
    paths = zipapp_paths()
    if not paths:
        return []
    return [os.path.realpath(str(paths["archive"])), os.path.realpath(str(paths["root"]))]


def _trusted_names(home):
    """The names codex finds its code and state by at the next start, as given (not resolved):
    $CODEX_HOME, codex.py, the zipapp and its unpack root.  A symlink among their components is pinned
    too (replacing it would redirect the next start), as is every directory above them."""
    names = [os.path.abspath(__file__)]
    if sys.executable:  # the interpreter, as named: a venv's bin/python3 symlink
        names.append(os.path.abspath(sys.executable))
    if home is not None:
        names.append(os.path.abspath(str(home)))
    paths = zipapp_paths()
    if paths:
        names += [os.path.abspath(str(paths[k])) for k in ("archive", "root", "unpacked")]
    if os.environ.get("SHIV_ROOT"):
        names.append(os.path.abspath(os.path.expanduser(os.environ["SHIV_ROOT"])))
    return names


def pins_for(paths, roots):
    """Every existing component of `paths` whose directory lies in a writable root, shallow first.

    The helper mounts each onto itself (--pin), so a command can neither rename an ancestor
    of a read-only path aside (the read-only mount moves with it) and recreate the name with
    its own content, nor swap a symlink on the way.
    """
    roots = [str(r) for r in roots]
    out, seen, real = [], set(), {}  # real: each directory resolved once per call (paths share prefixes)
    for path in paths:
        parts = Path(os.path.abspath(str(path))).parts
        for i in range(2, len(parts) + 1):
            comp = os.path.join(*parts[:i])
            parent = os.path.dirname(comp)
            if parent not in real:
                real[parent] = os.path.realpath(parent)
            if not any(_is_within(real[parent], r) for r in roots):
                continue
            if not os.path.lexists(comp):
                break
            if comp not in seen:
                seen.add(comp)
                out.append(comp)
    return sorted(out, key=lambda p: p.count(os.sep))


#: what the dynamic loader and libc read from the environment when a program starts (glibc's
#: list of variables it ignores for set-user-ID programs: libraries, modules, data files)
_LOADER_ENV_NAMES = ("GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH",
                     "MALLOC_TRACE", "NIS_PATH", "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR", "TZDIR")
_HELPER_ENV_VAR = "__CODEX_HELPER_COMMAND_ENV"  #: the command's variables set aside for the Python helper


def helper_env(env, kind):
    """The environment to start the sandbox helper of `kind` with, given the command's `env`.

    The Python helper is a dynamically linked python3 that runs before it sandboxes itself:
    an LD_LIBRARY_PATH with an empty or a workspace entry (or LD_PRELOAD, LD_AUDIT, GCONV_PATH...)
    would load a library a command planted, unsandboxed.  Those variables (LD_*, PYTHON*,
    _LOADER_ENV_NAMES) are set aside in one variable that the helper puts back right before it
    execs the command.  The compiled helper is static: it gets `env` as it is.
    """
    if kind != "linux-python":
        return dict(env)
    out, moved = {}, {}
    for name, value in env.items():
        if name.startswith(("LD_", "PYTHON")) or name in _LOADER_ENV_NAMES or name == _HELPER_ENV_VAR:
            moved[name] = value
        else:
            out[name] = value
    if moved:
        out[_HELPER_ENV_VAR] = json.dumps(moved)
    return out


def helper_argv_prefix(home=None):
    """(argv prefix, kind) for the Linux helper: the compiled one, else the Python one."""
    path = linux_helper_path(home)
    if path is not None:
        return [str(path)], "linux"
    return _python_helper_argv(home), "linux-python"


# -- probing what this machine offers -------------------------------------------------------

_PROBE_CACHE = {}


def _read_text(path):
    """A small /proc or /sys file's text, or '' when unreadable."""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def probe_sandbox(home=None):
    """Probe once per process: helper kind, Landlock ABI, seccomp, userns, container, WSL.

    Returns a dict; the helper itself answers `--probe`, so the result is what commands get.
    """
    key = str(home)
    if key in _PROBE_CACHE:
        return _PROBE_CACHE[key]
    import subprocess  # startup budget: only when a command is sandboxed

    info = {"platform": sys.platform}
    if _LINUX:
        prefix, kind = helper_argv_prefix(home)
        info["helper"] = kind
        info["helper_path"] = _HELPER_ORIGIN.get(prefix[0], prefix[0]) if kind == "linux" else _own_file()
        try:
            proc = subprocess.run(prefix + ["--probe"], capture_output=True, text=True, timeout=20,
                                  stdin=subprocess.DEVNULL, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
            for line in proc.stdout.splitlines():
                if "=" in line:
                    k, v = line.split("=", 1)
                    info[k.strip()] = v.strip()
            if proc.returncode != 0:
                info["helper_error"] = (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1]
        except (OSError, subprocess.SubprocessError) as exc:
            info["helper_error"] = str(exc)
        status = _read_text("/proc/self/status")
        m = re.search(r"^NoNewPrivs:\s*(\d)", status, re.M)
        info["codex_no_new_privs"] = m.group(1) if m else "?"
        m = re.search(r"^Seccomp:\s*(\d)", status, re.M)
        info["codex_seccomp_mode"] = m.group(1) if m else "?"
        osrelease = _read_text("/proc/sys/kernel/osrelease").lower()
        info["wsl"] = "2" if "wsl2" in osrelease else ("1" if "microsoft" in osrelease else "")
        cgroup = _read_text("/proc/1/cgroup")
        container = ""
        if os.path.exists("/.dockerenv"):
            container = "docker"
        elif os.path.exists("/run/.containerenv"):
            container = "podman"
        elif re.search(r"docker|kubepods|lxc|containerd", cgroup):
            container = "container"
        info["container"] = container
    elif _DARWIN:
        info["helper"] = "seatbelt"
        info["seatbelt"] = "1" if os.path.exists(SEATBELT_EXECUTABLE) else "0"
    _PROBE_CACHE[key] = info
    return info


_LANDLOCK_ONLY_CHECK[0] = lambda home=None: _LINUX and probe_sandbox(home).get("userns") == "0"


def sandbox_available(home=None):
    """Whether a sandbox can be applied here (Landlock + seccomp on Linux, Seatbelt on macOS)."""
    if _LINUX:
        info = probe_sandbox(home)
        ok = int(info.get("landlock_abi", "0") or 0) >= 1 and info.get("seccomp") == "1"
        if not ok:
            _notice("no sandbox is available: %s; run `codex sandbox --check` for details"
                    % (info.get("reason") or info.get("helper_error") or "Landlock or seccomp missing"))
        return ok
    if _DARWIN:
        return os.path.exists(SEATBELT_EXECUTABLE)
    return False


# -- wrapping a command ---------------------------------------------------------------------


#: what codex says once where user namespaces are missing and paths inside writable roots are protected
LANDLOCK_ONLY_NOTICE = ("user namespaces are unavailable here, so Landlock alone keeps .git, .codex and $CODEX_HOME "
                        "read-only: commands cannot create, rename or delete entries in the directories on the way "
                        "to them (a new file at the top of the workspace needs approval)")
#: real paths of every writable root a command of this process got: programs there are not run by codex
_WRITABLE_ROOTS_SEEN = set()


def sandbox_command(argv, policy, policy_cwd, command_cwd=None, home=None):
    """Wrap argv so it runs under `policy`; returns (argv, extra env, sandbox type or None).

    `policy_cwd` is the session's workspace (a writable root in workspace-write); the
    command's own cwd (a model-chosen workdir) never widens the policy (upstream #3874).
    """
    argv = [str(a) for a in argv]
    if policy.is_unrestricted():
        return argv, {}, None
    command_cwd = str(command_cwd or policy_cwd)
    named = [str(policy_cwd)] + [str(r) for r in policy.writable_root_names(policy_cwd)]
    for name in named:  # the workspace and each root are the directories the session started with
        check_root_identity(name)
    roots = policy.writable_roots_for(policy_cwd)
    _WRITABLE_ROOTS_SEEN.update(os.path.realpath(str(r)) for r in roots)  # git_argv (§17b) skips them
    if _LINUX:
        prefix, kind = helper_argv_prefix(home)
        out = prefix + ["--cwd", command_cwd, "--max-procs", str(SANDBOX_MAX_PROCS)]
        for root in roots:
            out += ["--writable", str(root)]
        userns = probe_sandbox(home).get("userns") == "1"
        if roots:
            names = []
            ro = protected_paths(roots, policy_cwd, home, entries=names)
            needed, own = _sandbox_code_paths(prefix, kind, roots, home)
            cache = _code_cache_prefix(home) if kind != "linux" else None
            if cache in needed and not userns:  # a byte-code cache nothing can protect here: do without it
                _CODE_CACHES[(str(home), _own_file(), os.getpid())] = None
                prefix, kind = helper_argv_prefix(home)
                out = prefix + out[out.index("--cwd"):]
                needed, own = _sandbox_code_paths(prefix, kind, roots, home)
            if needed and not userns:
                raise SandboxError("the sandbox helper (%s) is inside a writable root and cannot be made read-only "
                                   "here (no user namespaces): a command could replace it; set CODEX_HOME to a "
                                   "directory outside the workspace and /tmp" % needed[0])
            ro += [p for p in needed + own if p not in ro]
            if ro and not userns:
                _notice(LANDLOCK_ONLY_NOTICE)
            # and (mounts only: with Landlock alone a pin keeps its parent from getting new entries,
            # /tmp's top included) every directory between an enclosing writable root and the
            # workspace or a root: `mv /tmp/ci.X /tmp/old && ln -s ~ /tmp/ci.X/repo` would move the
            # next session's root (within this one check_root_identity refuses it)
            trusted = [n for n in _trusted_names(home) if os.path.lexists(n)]
            spots = [os.path.abspath(n) for n in named] + [str(r) for r in roots] if userns else []
            for p in pins_for(ro + names + trusted + spots, roots):
                # inside a read-only path it is protected already (and a pin there, copied by the
                # recursive read-only bind, would stay writable)
                parent = os.path.realpath(os.path.dirname(p))
                if not any(_is_within(parent, r) for r in ro):
                    out += ["--pin", p]
            for p in ro:
                out += ["--read-only", p]
        # with "/" itself writable (legacy disk-full-write-access) there is nothing to make read-only
        if userns and probe_sandbox(home).get("mount_setattr") == "1" and Path("/") not in roots:
            out.append("--ro-mounts")
        if home is not None:
            for name in HIDDEN_HOME_FILES:  # the API key stays out of reach of `cat`
                secret = os.path.join(str(home), name)
                if os.path.isfile(secret):
                    out += ["--hide", os.path.realpath(secret)]
        if policy.has_network():
            if userns:
                # kept visible: the roots and the user's workspace, never the model's workdir
                for path in _network_hidden_paths(roots + [Path(policy_cwd)]):
                    out += ["--hide-dir" if os.path.isdir(path) else "--hide", path]
            out.append("--network")
        return out + ["--"] + argv, {}, kind
    if _DARWIN:
        return seatbelt_argv(argv, policy, policy_cwd, home), {"CODEX_SANDBOX": "seatbelt"}, "seatbelt"
    raise SandboxError("no sandbox exists for %s; use -s danger-full-access to run commands unsandboxed" % sys.platform)


#: each workspace and writable root a command got, as named -> (real path, st_dev, st_ino) when
#: first seen in this process (session); st_dev/st_ino are None while it does not exist
_ROOT_IDENTITIES = {}


def check_root_identity(name):
    """The real path of the workspace or writable root `name`, which must still be the
    directory it was when this process first sandboxed a command with it: same real path,
    same (st_dev, st_ino).  A command that renamed it or a directory above it and planted a
    symlink (or a fresh directory) at its name would otherwise move the next command's
    writable root and cwd anywhere (~, /).  Raises SandboxError (one line) when it moved."""
    name = os.path.abspath(str(name))
    real = os.path.realpath(name)
    try:
        st = os.stat(real)
        ident = (real, st.st_dev, st.st_ino)
    except OSError:
        ident = (real, None, None)
    known = _ROOT_IDENTITIES.get(name)
    if known is None or (known[1] is None and known[0] == real):
        _ROOT_IDENTITIES[name] = ident  # first sight (or a root that did not exist yet appeared in place)
    elif known != ident:
        raise SandboxError("%s is no longer the directory this session started with (it was %s, it is now %s): "
                           "a command renamed it or a directory above it; refusing to run commands there, "
                           "restart codex after checking it" % (name, known[0], real))
    return real


def _network_hidden_paths(keep=(), environ=None):
    """NETWORK_HIDDEN_SOCKETS that exist here, resolved, without duplicates; none that is or
    holds one of the `keep` paths (an XDG_RUNTIME_DIR of /tmp must not hide the writable /tmp)."""
    environ = os.environ if environ is None else environ
    out = []
    for entry in NETWORK_HIDDEN_SOCKETS:
        if entry == "$XDG_RUNTIME_DIR":
            entry = environ.get("XDG_RUNTIME_DIR", "")
            if not os.path.isabs(entry):
                continue
        path = os.path.realpath(os.path.expanduser(entry.replace("{uid}", str(os.getuid()))))
        if os.path.exists(path) and path not in out and path != "/" and not any(
                _is_within(os.path.realpath(str(k)), path) for k in keep):
            out.append(path)
    return out


# -- the Python helper (fallback when no compiled helper fits) ------------------------------
#
# Runs in a fresh single-threaded interpreter started by sandbox_command() as
# `python codex.py __codex_linux_sandbox__ ARGS`; main() hands it over before anything
# else.  Same protocol, order and exit codes as the C helper.


_HELPER_STATUS_FD = [-1]  #: the Python helper's --status-fd (-1: none)


def _helper_fail(code, message):
    """Print the helper's one-line error (and report it on the status fd) and exit with its code."""
    try:
        os.write(2, ("%s %s\n" % (HELPER_ERROR_PREFIX, message)).encode("utf-8", "replace"))
        if _HELPER_STATUS_FD[0] >= 0:
            os.write(_HELPER_STATUS_FD[0], ("%d %s\n" % (code, message)).encode("utf-8", "replace"))
    finally:
        os._exit(code)


def _parse_helper_args(args):
    """Parse the helper protocol; returns a dict (raises ValueError on bad usage)."""
    opts = {"cwd": None, "writable": [], "read_only": [], "hide": [], "hide_dir": [], "pin": [], "network": False,
            "probe": False, "command": [], "ro_mounts": False, "max_procs": 0, "status_fd": -1}
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            opts["command"] = list(args[i + 1:])
            break
        if a == "--probe":
            opts["probe"] = True
        elif a == "--network":
            opts["network"] = True
        elif a == "--ro-mounts":
            opts["ro_mounts"] = True
        elif a == "--status-fd":
            i += 1
            if i >= len(args) or not args[i].isdigit() or int(args[i]) < 3:
                raise ValueError("--status-fd needs a file descriptor above 2")
            opts["status_fd"] = int(args[i])
        elif a == "--max-procs":
            i += 1
            if i >= len(args) or not args[i].isdigit() or int(args[i]) < 1:
                raise ValueError("--max-procs needs a positive number")
            opts["max_procs"] = int(args[i])
        elif a in ("--cwd", "--writable", "--read-only", "--hide", "--hide-dir", "--pin"):
            if i + 1 >= len(args):
                raise ValueError("%s needs a value" % a)
            i += 1
            if a == "--cwd":
                opts["cwd"] = args[i]
            else:
                opts[a[2:].replace("-", "_")].append(args[i])
        else:
            raise ValueError("unknown argument %r" % a)
        i += 1
    if not opts["probe"] and not opts["command"]:
        raise ValueError("no command given (expected -- CMD [ARG]...)")
    return opts


def _libc():
    """libc through ctypes with errno tracking."""
    import ctypes  # startup budget: helper and probes only

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _landlock_abi(libc):
    """The kernel's Landlock ABI version, or (0, reason)."""
    import ctypes

    abi = libc.syscall(ctypes.c_long(_SYS_LANDLOCK[0]), None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 0:
        err = ctypes.get_errno()
        reason = {errno.ENOSYS: "the kernel has no Landlock (built without CONFIG_SECURITY_LANDLOCK)",
                  errno.EOPNOTSUPP: "Landlock is disabled (add landlock to the lsm= boot parameter)",
                  errno.EPERM: "a container seccomp profile blocks the Landlock syscalls"}.get(err, os.strerror(err))
        return 0, reason
    return int(abi), ""


def _apply_landlock(libc, writable, network, private_shm=False, landlock_only=None):
    """Build and enforce the Landlock ruleset: / read+execute, writable roots and /dev/null full.

    `landlock_only` (no user namespace: nothing can be mounted) is (read_only, hidden, pins):
    then Landlock alone leaves them out, as the C helper's add_rules_around: reads everywhere
    but the hidden files, writes in the roots but beneath the read-only and hidden paths, and
    no entry on the way to any of them (or to a pin) may be created, renamed or removed."""
    import ctypes

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    abi, reason = _landlock_abi(libc)
    if abi < 1:
        _helper_fail(122, "Landlock is unavailable: %s" % reason)
    fs = _LANDLOCK_FS_BY_ABI.get(abi, (1 << 16) - 1)  # ABI 5..7 and newer: every right we know
    attr = RulesetAttr(fs, 0, 0)
    size = 8
    if abi >= 4:
        size = 16
        if not network:
            attr.net = _LANDLOCK_NET_TCP
    if abi >= 6:
        size = 24
        attr.scoped = _LANDLOCK_SCOPE_SIGNAL | _LANDLOCK_SCOPE_ABSTRACT_UNIX  # network or not: X11, D-Bus
    fd = libc.syscall(ctypes.c_long(_SYS_LANDLOCK[0]), ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        _helper_fail(122, "landlock_create_ruleset failed: %s" % os.strerror(ctypes.get_errno()))

    def allow(path, access, required, nofollow=False):
        try:
            pfd = os.open(path, os.O_PATH | os.O_CLOEXEC | (os.O_NOFOLLOW if nofollow else 0))
        except OSError as exc:
            if required:
                _helper_fail(122, "cannot open %s for a Landlock rule: %s" % (path, exc.strerror))
            return  # a configured root that does not exist is skipped, as upstream
        try:
            import stat as stat_mod

            mode = os.fstat(pfd).st_mode
            if stat_mod.S_ISLNK(mode):
                return  # swapped for a symlink since it was listed: its target has its own rule
            if not stat_mod.S_ISDIR(mode):
                access &= _LANDLOCK_FILE_RIGHTS
            rule = PathBeneath(access & fs, pfd)
            if libc.syscall(ctypes.c_long(_SYS_LANDLOCK[1]), ctypes.c_int(fd), ctypes.c_int(1),
                            ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                _helper_fail(122, "landlock_add_rule(%s) failed: %s" % (path, os.strerror(ctypes.get_errno())))
        finally:
            os.close(pfd)

    # network off: no socket gets a new name in a root (a hard link out of a dir hidden with it on)
    root_fs = fs if network else fs & ~LANDLOCK_FS["make_sock"]
    if landlock_only is not None:
        read_only, hidden, pins = landlock_only
        for path in _rules_around("/", hidden, hidden):
            allow(path, _LANDLOCK_READ, False, path != "/")
        for root in writable:
            for path in _rules_around(root, list(read_only) + list(hidden), list(read_only) + list(hidden) + list(pins)):
                allow(path, root_fs, False, path != root)
    else:
        allow("/", _LANDLOCK_READ, True)
        for root in writable:
            allow(root, root_fs, False)
    allow("/dev/null", fs, True)
    if private_shm:
        allow("/dev/shm", fs, True)
    if libc.syscall(ctypes.c_long(_SYS_LANDLOCK[2]), ctypes.c_int(fd), ctypes.c_uint32(0)) != 0:
        _helper_fail(122, "landlock_restrict_self failed: %s" % os.strerror(ctypes.get_errno()))
    os.close(fd)


def _rules_around(path, out, split, depth=0):
    """The paths that get a Landlock rule so that everything beneath `path` is covered except
    beneath `out`, and no directory on the way to an `out` or `split` path gets one of its own
    (see _apply_landlock; symlinks and unlistable directories get nothing)."""
    import stat as stat_mod

    if any(_is_within(path, o) for o in out):
        return []
    if not any(_is_within(s, path) and s != path for s in list(out) + list(split)):
        return [path]
    if depth > 256:
        return []
    try:
        names = os.listdir(path)
    except OSError:
        return []
    found = []
    for name in names:
        child = os.path.join(path, name)
        try:
            if stat_mod.S_ISLNK(os.lstat(child).st_mode):
                continue
        except OSError:
            continue
        found.extend(_rules_around(child, out, split, depth + 1))
    return found


def _import_pyseccomp():
    """Import pyseccomp, sparing it ctypes.util.find_library (which spawns ldconfig: ~80 ms)."""
    import ctypes
    import ctypes.util

    original = ctypes.util.find_library
    sonames = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}

    def find_library(name):
        soname = sonames.get(name)
        if soname:
            try:
                ctypes.CDLL(soname)
                return soname
            except OSError:
                pass
        return original(name)

    ctypes.util.find_library = find_library
    try:
        import pyseccomp  # the zipapp ships it; it needs libseccomp.so.2 at run time
    finally:
        ctypes.util.find_library = original
    return pyseccomp


#: syscalls numbered alike on every architecture (424 and up) that an older libseccomp may not
#: know by name: the Python helper denies them by number
_UNIFIED_SYSCALL_NUMBERS = {"clone3": 435, "pidfd_getfd": 438, "process_madvise": 440, "quotactl_fd": 443,
                            "fchmodat2": 452}
#: syscalls that exist on x86 only (nothing to deny elsewhere; aarch64 has fchmodat, not chmod)
_X86_ONLY_SYSCALLS = ("iopl", "ioperm", "chmod")


def _deny_syscall(flt, action, name, *conditions):
    """Add a rule answering `name` (when its arguments meet `conditions`, pyseccomp.Arg) with
    `action`; a syscall libseccomp cannot name is denied by number, and one it cannot deny at
    all fails the helper (it would stay open)."""
    try:
        flt.add_rule(action, name, *conditions)
        return
    except (OSError, ValueError, RuntimeError) as exc:
        error = exc
    if name in _UNIFIED_SYSCALL_NUMBERS:
        try:
            flt.add_rule(action, _UNIFIED_SYSCALL_NUMBERS[name], *conditions)
            return
        except (OSError, ValueError, RuntimeError) as exc:
            error = exc
    if name in _X86_ONLY_SYSCALLS and _machine_arch() not in ("x86_64", "i686"):
        return
    _helper_fail(123, "this libseccomp cannot deny %s (%s): the Python helper refuses to run commands without "
                 "that rule; upgrade libseccomp2 or use a codex build with the compiled helper" % (name, error))


def _apply_seccomp(network, pid_ns=True, ipc_ns=True):
    """Install the seccomp filter with pyseccomp (libseccomp.so.2); fail closed without it."""
    try:
        pyseccomp = _import_pyseccomp()
    except (ImportError, RuntimeError, OSError) as exc:
        _helper_fail(123, "seccomp is unavailable for the Python helper (%s): install libseccomp2 "
                     "(Debian/Ubuntu: apt-get install libseccomp2) or use a codex build with the "
                     "compiled helper for this machine" % exc)
    import socket

    try:
        deny = pyseccomp.ERRNO(errno.EPERM)
        flt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
        flt.set_attr(pyseccomp.Attr.ACT_BADARCH, pyseccomp.KILL_PROCESS)
        for name in SECCOMP_ALWAYS_DENIED:
            _deny_syscall(flt, deny, name)
        for req in (_TIOCSTI, _TIOCLINUX):
            flt.add_rule(deny, "ioctl", pyseccomp.Arg(1, pyseccomp.MASKED_EQ, 0xFFFFFFFF, req))
        for flag in CLONE_NAMESPACE_FLAGS:
            flt.add_rule(deny, "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag, flag))
        _deny_syscall(flt, pyseccomp.ERRNO(errno.ENOSYS), "clone3")  # flags behind a pointer: libc falls back to clone
        for name, arg in SECCOMP_CHMOD_MODE_ARG:
            for bit in (0o4000, 0o2000):
                _deny_syscall(flt, deny, name, pyseccomp.Arg(arg, pyseccomp.MASKED_EQ, bit, bit))
        if not ipc_ns:
            for name in SECCOMP_IPC_DENIED:
                _deny_syscall(flt, deny, name)
        if not pid_ns:  # RLIMIT_CPU/FSIZE set on codex kill it; in a PID namespace no outside pid exists
            flt.add_rule(deny, "prlimit64", pyseccomp.Arg(0, pyseccomp.NE, 0))
        if not network:
            for name in SECCOMP_NETWORK_DENIED:
                flt.add_rule(deny, name)
            for name in ("socket", "socketpair"):
                flt.add_rule(deny, name, pyseccomp.Arg(0, pyseccomp.NE, socket.AF_UNIX))
                # AF_UNIX only as stream or seqpacket: no datagram socket (SOCK_DGRAM, or SOCK_RAW,
                # which AF_UNIX turns into one) can sendto/sendmsg/sendmmsg a pathname socket outside
                for sock_type in range(16):
                    if sock_type not in UNIX_SOCKET_TYPES_WITHOUT_NETWORK:
                        flt.add_rule(deny, name, pyseccomp.Arg(0, pyseccomp.EQ, socket.AF_UNIX),
                                     pyseccomp.Arg(1, pyseccomp.MASKED_EQ, 0xF, sock_type))
            flt.add_rule(deny, "sendto", pyseccomp.Arg(4, pyseccomp.NE, 0))
        flt.load()
    except (OSError, RuntimeError, ValueError) as exc:
        _helper_fail(123, "installing the seccomp filter failed: %s" % exc)


#: mount flags a remount inside a user namespace must keep (statvfs bit -> MS_ bit)
_LOCKED_MOUNT_FLAGS = ((2, 2), (4, 4), (8, 8), (1024, 1024), (2048, 2048), (4096, 1 << 21))
_MS_RDONLY, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18


def _mount_setattr(libc, path, flags, attr_set, attr_clr):
    """mount_setattr(2) on path; returns 0 or -1 (errno set)."""
    import ctypes

    attr = (ctypes.c_uint64 * 4)(attr_set, attr_clr, 0, 0)
    return libc.syscall(ctypes.c_long(442), ctypes.c_int(-100), os.fsencode(path), ctypes.c_uint(flags),
                        ctypes.byref(attr), ctypes.c_size_t(32))


def _pin(libc, path):
    """Mount `path` onto itself without following it: rename/unlink/rmdir of it then fail (EBUSY)."""
    import ctypes

    flags = 1 | os.O_CLOEXEC | 0x8000 | 0x100  # OPEN_TREE_CLONE | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW
    fd = libc.syscall(ctypes.c_long(428), ctypes.c_int(-100), os.fsencode(path), ctypes.c_uint(flags))
    if fd >= 0:
        try:
            if libc.syscall(ctypes.c_long(429), ctypes.c_int(fd), b"", ctypes.c_int(-100), os.fsencode(path),
                            ctypes.c_uint(4)) != 0:  # move_mount(MOVE_MOUNT_F_EMPTY_PATH)
                _helper_fail(125, "pinning %s failed: %s" % (path, os.strerror(ctypes.get_errno())))
        finally:
            os.close(fd)
        return
    err = ctypes.get_errno()
    if err == errno.ENOENT:
        return  # nothing at that name any more: nothing to pin
    if err != errno.ENOSYS:
        _helper_fail(125, "pinning %s (open_tree) failed: %s" % (path, os.strerror(err)))
    bpath = os.fsencode(path)  # before Linux 5.2: a self-bind (a final symlink is followed)
    if libc.mount(bpath, bpath, None, ctypes.c_ulong(_MS_BIND | _MS_REC), None) != 0:
        _helper_fail(125, "pinning %s failed: %s" % (path, os.strerror(ctypes.get_errno())))


def _enter_namespaces(libc, max_procs=0):
    """Enter new user, mount, IPC (+ PID) namespaces, map our ids, set RLIMIT_NPROC (it then
    counts this namespace's processes only; never uid 0's).  No network namespace (it costs
    milliseconds; seccomp keeps every socket but AF_UNIX stream ones).
    Returns (entered, pid_ns, ipc_ns); entered is False when the kernel refuses (errno set)."""
    import ctypes

    uid, gid = os.getuid(), os.getgid()
    user_ns, ipc, pid = 0x10000000 | 0x00020000, 0x08000000, 0x20000000  # CLONE_NEWUSER|NEWNS, NEWIPC, NEWPID
    # where a container refuses the PID or IPC namespace, the next best set (as the C helper)
    for flags in (user_ns | ipc | pid, user_ns | pid, user_ns | ipc, user_ns):
        if libc.unshare(ctypes.c_int(flags)) == 0:
            break
    else:
        return False, False, False
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", "%d %d 1" % (uid, uid)), ("gid_map", "%d %d 1" % (gid, gid))):
            with open("/proc/self/" + name, "w") as fh:
                fh.write(text)
    except OSError as exc:
        _helper_fail(125, "writing /proc/self/%s failed: %s" % (name, exc.strerror))
    if max_procs:
        import resource

        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (max_procs, max_procs))
        except (OSError, ValueError) as exc:
            _helper_fail(120, "setrlimit(RLIMIT_NPROC) failed: %s" % exc)
    return True, bool(flags & pid), bool(flags & ipc)


def _drop_capabilities(libc):
    """Drop every capability for good, as the C helper (step 3 there); uid 0 keeping a
    non-empty bounding set fails closed."""
    import ctypes

    last = 63  # PR_CAPBSET_DROP past the kernel's last capability: EINVAL
    libc.prctl(28, 0xEF, 0, 0, 0)  # PR_SET_SECUREBITS: NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE, all locked
    for cap in range(last + 1):
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP
    if libc.prctl(47, 4, 0, 0, 0) != 0 and ctypes.get_errno() != errno.EINVAL:  # PR_CAP_AMBIENT_CLEAR_ALL
        _helper_fail(120, "clearing the ambient capabilities failed: %s" % os.strerror(ctypes.get_errno()))
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # two {effective, permitted, inheritable}, all zero
    if libc.capset(ctypes.byref(header), ctypes.byref(data)) != 0:
        _helper_fail(120, "dropping the capabilities (capset) failed: %s" % os.strerror(ctypes.get_errno()))
    bounded = any(libc.prctl(23, cap, 0, 0, 0) == 1 for cap in range(last + 1))  # PR_CAPBSET_READ
    if bounded and 0 in (os.getuid(), os.geteuid()):
        _helper_fail(120, "cannot empty the capability bounding set of a root user's command")


def _protect_read_only(libc, paths, ro_mounts=False, writable=(), hidden=(), hidden_dirs=(), pins=()):
    """Inside the namespaces of _enter_namespaces: with ro_mounts make every mount read-only but
    the writable roots; pin `pins` (_pin); bind-mount each of `paths` read-only onto itself; hide `hidden` files;
    give the command a private /dev/shm.  Returns whether that /dev/shm is there."""
    import ctypes

    # keep our mounts from propagating back (best effort: some overlay setups refuse)
    libc.mount(b"none", b"/", None, ctypes.c_ulong(_MS_REC | _MS_PRIVATE), None)
    if ro_mounts:
        if _mount_setattr(libc, "/", 0x8000, 1, 0) != 0:  # AT_RECURSIVE, MOUNT_ATTR_RDONLY
            _helper_fail(125, "making the mounts read-only (mount_setattr) failed: %s" % os.strerror(ctypes.get_errno()))
        for root in writable:
            if not os.path.exists(root):
                continue  # a configured root that does not exist is skipped
            broot = os.fsencode(root)
            if libc.mount(broot, broot, None, ctypes.c_ulong(_MS_BIND | _MS_REC), None) != 0:
                _helper_fail(125, "bind-mounting %s failed: %s" % (root, os.strerror(ctypes.get_errno())))
            if _mount_setattr(libc, root, 0x8000, 0, 1) != 0 and _mount_setattr(libc, root, 0, 0, 1) != 0:
                _helper_fail(125, "making writable %s failed: %s" % (root, os.strerror(ctypes.get_errno())))
    for path in pins:
        _pin(libc, path)
    for path in paths:
        _bind_read_only(libc, path, path)
    for path in hidden:
        _bind_read_only(libc, "/dev/null", path)
    for path in hidden_dirs:
        if _cover_dir(libc, path) != 0:
            _helper_fail(125, "covering %s failed: %s" % (path, os.strerror(ctypes.get_errno())))
    _hide_terminals(libc)
    import stat as stat_mod

    try:
        shm_is_dir = stat_mod.S_ISDIR(os.stat("/dev/shm").st_mode)
    except OSError:
        shm_is_dir = False
    return shm_is_dir and libc.mount(b"codex-shm", b"/dev/shm", b"tmpfs", ctypes.c_ulong(2 | 4),  # NOSUID|NODEV
                                     _SHM_TMPFS_OPTIONS) == 0


#: terminals and keyboards a command could read the user's keystrokes from (ptys cannot be
#: opened in the sandbox anyway: /dev/ptmx is not writable)
_HIDDEN_DEVICE_DIRS = ("/dev/pts", "/dev/input")


def _cover_dir(libc, path):
    """An empty read-only tmpfs over directory `path` (0 when done or nothing to cover, else -1)."""
    import ctypes

    if not os.path.isdir(path):
        return 0
    flags = _MS_RDONLY | 2 | 4 | 8  # MS_NOSUID | MS_NODEV | MS_NOEXEC
    return libc.mount(b"codex-hidden", os.fsencode(path), b"tmpfs", ctypes.c_ulong(flags), b"size=4k,mode=755")


def _hide_terminals(libc):
    """Cover /dev/pts and /dev/input with an empty read-only tmpfs, /dev/console with /dev/null (best effort)."""
    import ctypes
    import stat as stat_mod

    for path in _HIDDEN_DEVICE_DIRS:
        _cover_dir(libc, path)
    try:
        is_char = stat_mod.S_ISCHR(os.stat("/dev/console").st_mode)
    except OSError:
        is_char = False
    if is_char and libc.mount(b"/dev/null", b"/dev/console", None, ctypes.c_ulong(_MS_BIND), None) == 0:
        libc.mount(None, b"/dev/console", None, ctypes.c_ulong(_MS_REMOUNT | _MS_BIND | _MS_RDONLY | 2 | 8), None)


def _exec_command(cmd):
    """execvp the command; on failure the helper's one-line error and 127/126, like a shell."""
    moved = os.environ.pop(_HELPER_ENV_VAR, None)  # the command's loader variables (helper_env)
    if moved:
        os.environ.update(json.loads(moved))
    try:
        os.execvp(cmd[0], cmd)
    except OSError as exc:
        code = 127 if exc.errno in (errno.ENOENT, errno.ENOTDIR) else 126
        _helper_fail(code, "cannot execute %s: %s" % (cmd[0], exc.strerror))


def _fork_pid_namespace_init(libc, max_procs=0):
    """Fork pid 1 of the new PID namespace right after unshare; returns in pid 1 only, with
    (report fd, relay target) for _pid_namespace_init.  This process waits and exits like the
    command (or like pid 1, when the policy failed there), as the C helper.

    Pid 1 of a root user's command first sets the namespace's pid_max to max_procs + 300 (Linux
    6.14+; only a process inside can): the process limit of uid 0, whom RLIMIT_NPROC never stops.
    When the command exits, pid 1 exits and the kernel kills whatever the command left behind
    (setsid daemons included); a SIGKILL to the process group (timeouts) does the same.
    SIGTERM/SIGHUP/SIGUSR1/SIGUSR2 are passed on; SIGINT/SIGQUIT reach the group anyway.
    """
    import signal
    import struct

    target = [0]

    def forward(sig, _frame):
        if target[0] > 0:
            try:
                os.kill(target[0], sig)
            except OSError:
                pass

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)
    for sig in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, lambda _sig, _frame: None)
    rfd, wfd = os.pipe()
    init = os.fork()
    if init == 0:
        os.close(rfd)
        libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG=SIGKILL: the namespace dies with the helper
        if max_procs and os.getuid() == 0:  # other users have RLIMIT_NPROC already
            try:
                with open("/proc/sys/kernel/pid_max", "w") as fh:
                    fh.write(str(max_procs + 300))
            except OSError:
                pass  # older kernels: RLIMIT_NPROC alone
        return wfd, target
    target[0] = init
    os.close(wfd)
    _, init_status = os.waitpid(init, 0)
    data = b""
    while len(data) < 4:
        chunk = os.read(rfd, 4 - len(data))
        if not chunk:
            break
        data += chunk
    if len(data) < 4 and os.WIFEXITED(init_status):
        os._exit(os.WEXITSTATUS(init_status))  # the policy failed in pid 1: its exit code
    status = struct.unpack("i", data)[0] if len(data) == 4 else 9  # init killed: so was the command
    if os.WIFEXITED(status):
        os._exit(os.WEXITSTATUS(status))
    sig = os.WTERMSIG(status)
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # die of the command's signal without a core of our own
    if sig not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot (and need not) be reset
        signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)


def _pid_namespace_init(cmd, report):
    """Pid 1: run the command as pid 2, reap every orphan, report the command's wait status, exit."""
    import struct

    wfd, target = report
    child = os.fork()
    if child == 0:
        os.close(wfd)
        _exec_command(cmd)
    target[0] = child
    status = 9
    while True:
        try:
            pid, st = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid == child:
            status = st
            break
    os.write(wfd, struct.pack("i", status))
    os._exit(0)


def _bind_read_only(libc, src, dst):
    """Bind src onto dst and remount it read-only, keeping the flags the outer mount locked."""
    import ctypes

    bdst = os.fsencode(dst)
    if libc.mount(os.fsencode(src), bdst, None, ctypes.c_ulong(_MS_BIND | _MS_REC), None) != 0:
        _helper_fail(125, "bind-mounting onto %s failed: %s" % (dst, os.strerror(ctypes.get_errno())))
    flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY
    try:
        fflag = os.statvfs(dst).f_flag
    except OSError:
        fflag = 0
    for st_bit, ms_bit in _LOCKED_MOUNT_FLAGS:
        if fflag & st_bit:
            flags |= ms_bit
    if libc.mount(None, bdst, None, ctypes.c_ulong(flags), None) != 0:
        _helper_fail(125, "remounting %s read-only failed: %s" % (dst, os.strerror(ctypes.get_errno())))


def _probe_userns(setattr_too=False):
    """Whether this process could enter a user+mount namespace (and use mount_setattr there)."""
    pid = os.fork()
    if pid == 0:
        libc = _libc()
        if libc.unshare(0x10000000 | 0x00020000) != 0:
            os._exit(1)
        if setattr_too:
            libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None)
            os._exit(0 if _mount_setattr(libc, "/", 0x8000, 1, 0) == 0 else 1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _sandbox_helper_main(args):
    """The Python helper: apply the policy to this process, then exec the command."""
    try:
        opts = _parse_helper_args(args)
        if opts["status_fd"] >= 0:
            try:
                os.set_inheritable(opts["status_fd"], False)  # close-on-exec: the command never holds it
                _HELPER_STATUS_FD[0] = opts["status_fd"]
            except OSError:
                pass  # not open: nothing to report on
    except ValueError as exc:
        _helper_fail(121, "%s (usage: %s --cwd DIR [--writable PATH]... [--read-only PATH]... "
                     "[--hide FILE]... [--hide-dir DIR]... [--pin PATH]... [--ro-mounts] [--max-procs N] [--network] "
                     "[--status-fd N] -- CMD [ARG]...)"
                     % (exc, HELPER_NAME))
    libc = _libc()
    if opts["probe"]:
        abi, reason = _landlock_abi(libc)
        seccomp_ok, seccomp_reason = "1", ""
        try:
            _import_pyseccomp()
        except (ImportError, RuntimeError, OSError) as exc:
            seccomp_ok, seccomp_reason = "0", "pyseccomp/libseccomp.so.2 unavailable (%s)" % exc
        lines = ["implementation=python", "landlock_abi=%d" % abi, "seccomp=%s" % seccomp_ok,
                 "userns=%d" % _probe_userns(), "mount_setattr=%d" % _probe_userns(True)]
        if reason or seccomp_reason:
            lines.append("reason=%s" % "; ".join(r for r in (reason, seccomp_reason) if r))
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        return 0
    import ctypes

    # close_range (Linux 5.9+): every inherited fd but the status fd, as the C helper; else up to the fd limit
    keep = _HELPER_STATUS_FD[0]
    spans = [(3, 0xFFFFFFFF)] if keep < 0 else [(3, keep - 1), (keep + 1, 0xFFFFFFFF)]
    for lo, hi in spans:
        if lo <= hi and libc.syscall(ctypes.c_long(436), ctypes.c_uint(lo), ctypes.c_uint(hi), ctypes.c_uint(0)) != 0:
            os.closerange(lo, min(hi + 1, max(os.sysconf("SC_OPEN_MAX"), 1 << 16)))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        _helper_fail(120, "prctl(PR_SET_NO_NEW_PRIVS) failed")
    libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG=SIGKILL: the command dies with codex
    user_ns, pid_ns, ipc_ns = _enter_namespaces(libc, opts["max_procs"])
    private_shm, report = False, None
    if user_ns:
        if pid_ns:
            report = _fork_pid_namespace_init(libc, opts["max_procs"])
        private_shm = _protect_read_only(libc, opts["read_only"], opts["ro_mounts"], opts["writable"], opts["hide"],
                                         opts["hide_dir"], opts["pin"])
    elif opts["ro_mounts"] or opts["hide_dir"]:
        _helper_fail(125, "unshare(user+mount namespace) failed: %s" % os.strerror(ctypes.get_errno()))
    _drop_capabilities(libc)
    _apply_seccomp(opts["network"], pid_ns, ipc_ns)
    # without a namespace Landlock alone keeps the read-only, hidden and pinned paths (as the C helper)
    only = None if user_ns else (opts["read_only"], opts["hide"], opts["pin"])
    _apply_landlock(libc, opts["writable"], opts["network"], private_shm, only)
    if opts["cwd"]:
        try:
            os.chdir(opts["cwd"])
        except OSError as exc:
            _helper_fail(121, "cannot enter %s: %s" % (opts["cwd"], exc.strerror))
    if pid_ns:
        _pid_namespace_init(opts["command"], report)
    _exec_command(opts["command"])
    return 127



###############################################################################
# §13 Exec: running a command
###############################################################################

# Contract:
#
#   build_command_env(cfg, environ=None) -> dict      (shell_environment_policy + CODEX_SANDBOX_* vars)
#   is_secret_env_var(name, value="") -> bool         (the default excludes)
#   run_command(argv, cwd, cfg, env, timeout_ms=None, on_output=None, cancel=None, sandboxed=True,
#               stdin_data=None)
#       -> ExecResult(exit_code, stdout, stderr, aggregated_output, duration, timed_out, sandbox_denied)
#       on_output(stream_name, bytes) is called as output arrives; cancel is a threading.Event;
#       stdin_data (bytes) is the command's stdin instead of /dev/null
#       ExecResult also carries: sandbox_type (None | "linux" | "linux-python" | "seatbelt"),
#       sandbox_error (the helper's one-line reason when the sandbox itself failed), cancelled,
#       timeout_ms.  exit_code is 124 on timeout, 128+N when killed by signal N.
#   format_exec_output(result) -> str                 (the JSON envelope the model sees)
#   apply_patch_in_sandbox(text, cwd, cfg, timeout_ms=None) -> ExecResult
#       the patch applied by codex's own apply_patch mode (§10) run as a sandboxed command:
#       Landlock and the mounts decide what it may write, exactly as for a command
#
# Every command finds `apply_patch` (and `applypatch`) first on its PATH: a script that runs
# codex's apply_patch mode, so the forms codex does not intercept (`apply_patch <<'EOF' ...
# EOF && echo ok`, `apply_patch < p.diff`) work in the sandbox too, as upstream.
#
# Commands run as argv (no implicit shell), in a new session (own process group, no
# controlling terminal: /dev/tty and TIOCSTI cannot reach the user's terminal), stdin
# /dev/null.  A timeout, a cancel or codex being interrupted kills the whole group.  When the
# command exits, leftover background children holding its pipes get a short grace period
# and are then killed with the group.

DEFAULT_EXEC_TIMEOUT_MS = 10000  #: per-command timeout unless the call gives timeout_ms
TIMEOUT_EXIT_CODE = 124  #: exit code reported for a command killed by its timeout
CAPTURE_LIMIT_BYTES = 1024 * 1024  #: per stream kept in memory (head and tail halves)
MODEL_OUTPUT_MAX_BYTES = 10 * 1024  #: bytes of output the model sees
MODEL_OUTPUT_MAX_LINES = 256  #: lines of output the model sees (head + tail)
MODEL_OUTPUT_HEAD_LINES = 128  #: lines kept from the start when truncating
MAX_OUTPUT_DELTAS = 10000  #: on_output calls per command
_READ_CHUNK = 8192
_LEFTOVER_GRACE_SECONDS = 0.1  #: how long background children may keep the pipes after exit
#: variables kept by inherit = "core"
CORE_ENV_VARS = ("HOME", "LOGNAME", "PATH", "SHELL", "USER", "USERNAME", "TMPDIR", "TEMP", "TMP")
#: names dropped unless ignore_default_excludes = true (case-insensitive globs): upstream's
#: three, and spellings of passwords, credentials and session cookies that collide with no
#: PATH-like name (PGPASSWORD, BORG_PASSPHRASE, GOOGLE_APPLICATION_CREDENTIALS, SSHPASS)
DEFAULT_ENV_EXCLUDES = ("*KEY*", "*SECRET*", "*TOKEN*", "*PASSWORD*", "*PASSWD*", "*PASSPHRASE*", "*CREDENTIAL*",
                        "*COOKIE*", "SSHPASS", "BW_SESSION", "OP_SESSION_*")  # password managers' unlocked sessions
#: words (between `_`) that mark a secret in a name of two or more words: DB_PASS, GITHUB_PAT,
#: MYSQL_PWD, NPM_CONFIG__AUTH, REDISCLI_AUTH, SENTRY_DSN, GPG_PRIVATE_KEY, CI_JOB_JWT (GitLab's
#: OIDC token), SLACK_WEBHOOK_URL -- as whole words, so PATH, PYTHONPATH, PWD, OLDPWD,
#: GIT_AUTHOR_NAME and XDG_* stay
DEFAULT_ENV_EXCLUDED_WORDS = frozenset(("PASS", "PWD", "PAT", "AUTH", "CREDS", "PRIVATE", "DSN", "JWT", "WEBHOOK"))
#: names kept although a word matches: not a secret, and needed (git over ssh with the network on)
DEFAULT_ENV_KEPT = frozenset(("SSH_AUTH_SOCK",))
#: a value that carries a password in a URL (DATABASE_URL=postgres://user:pw@host/db, proxies)
#: (the password may hold a `/`: postgres://app:pa/ss@db; `host:8080/@scope` is a port, not one)
_URL_CREDENTIALS_RE = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:(?!\d+(?:/|$))[^@\s]+@")
#: output text that suggests a sandbox denial (checked only when the command failed sandboxed)
_DENIAL_TEXT_RE = re.compile(r"permission denied|operation not permitted|read-only file system", re.I)
_NETWORK_FAILURE_RE = re.compile(
    r"could not resolve host|temporary failure in name resolution|name or service not known|"
    r"network is unreachable|failed to connect|couldn't connect|connection refused|getaddrinfo", re.I)
#: paths named in common error messages: `touch: cannot touch 'X': ...`, `bash: line 1: X: ...`
_DENIED_PATH_RES = (
    re.compile(r"['\u2018`\"]([^'\u2019`\"\n]+)['\u2019`\"]\s*:\s*(?:permission denied|operation not permitted|read-only file system)", re.I),
    re.compile(r"(?:^|\s)([^\s:'\"]+)\s*:\s*(?:permission denied|operation not permitted|read-only file system)", re.I | re.M),
    re.compile(r"(?:open|opening|write|writing|create|creating)\s+['\"]?(/[^\s:'\"]+)", re.I),
)


class ExecResult(object):
    """What running one command produced."""

    def __init__(self, exit_code, stdout="", stderr="", aggregated_output="", duration=0.0, timed_out=False,
                 sandbox_denied=False, sandbox_type=None, sandbox_error=None, cancelled=False, timeout_ms=None):
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        self.aggregated_output = aggregated_output
        self.duration = duration
        self.timed_out = timed_out
        self.sandbox_denied = sandbox_denied
        self.sandbox_type = sandbox_type
        self.sandbox_error = sandbox_error
        self.cancelled = cancelled
        self.timeout_ms = timeout_ms

    def __repr__(self):
        return "ExecResult(exit_code=%r, timed_out=%r, sandbox_denied=%r, sandbox_error=%r, duration=%.3f)" % (
            self.exit_code, self.timed_out, self.sandbox_denied, self.sandbox_error, self.duration)


class ExecOutcome(object):
    """The end of execute_with_policy: the run (if any), what the model is told, and why."""

    def __init__(self, result, model_output, decision):
        self.result = result
        self.model_output = model_output
        self.decision = decision

    def __repr__(self):
        return "ExecOutcome(decision=%r, result=%r)" % (self.decision, self.result)


def is_secret_env_var(name, value=""):
    """Whether the default excludes drop this variable: a DEFAULT_ENV_EXCLUDES glob, a
    DEFAULT_ENV_EXCLUDED_WORDS word in a name of two or more words, or a URL with a password."""
    if name in DEFAULT_ENV_KEPT:
        return False
    return _secret_env_name(name) or bool(_URL_CREDENTIALS_RE.match(value or ""))


@functools.lru_cache(maxsize=4096)
def _secret_env_name(name):
    """The name part of is_secret_env_var, remembered: the patterns are constants, and every
    command's environment is built from the same few dozen names (3 builds per shell call)."""
    if any(glob_match(p, name) for p in DEFAULT_ENV_EXCLUDES):
        return True
    words = name.upper().split("_")
    return len([w for w in words if w]) >= 2 and bool(DEFAULT_ENV_EXCLUDED_WORDS.intersection(words))


def build_command_env(cfg, environ=None):
    """The whole environment a command gets, from [shell_environment_policy].

    Order as upstream: inherit (all|core|none), drop secret-looking variables (is_secret_env_var:
    upstream's *KEY*/*SECRET*/*TOKEN* and more) and every provider's key variable unless
    ignore_default_excludes, drop `exclude`, add `set`,
    keep only `include_only`.  Then CODEX_SANDBOX_NETWORK_DISABLED=1 when the policy has
    no network.
    """
    environ = os.environ if environ is None else environ
    pol = cfg.shell_environment_policy or {}
    inherit = pol.get("inherit", "all")
    if inherit == "all":
        env = dict(environ)
    elif inherit == "core":
        env = {k: v for k, v in environ.items() if k in CORE_ENV_VARS}
    else:
        env = {}
    if not pol.get("ignore_default_excludes", False):
        secret_vars = set()
        for provider in (cfg.providers or {}).values():
            if getattr(provider, "env_key", None):
                secret_vars.add(provider.env_key)
            for var in (getattr(provider, "env_http_headers", None) or {}).values():
                secret_vars.add(str(var))
        env = {k: v for k, v in env.items() if k not in secret_vars and not is_secret_env_var(k, v)}
    excludes = [str(p) for p in pol.get("exclude") or []]
    env = {k: v for k, v in env.items() if not any(glob_match(p, k) for p in excludes)}
    for k, v in (pol.get("set") or {}).items():
        env[str(k)] = str(v)
    include_only = [str(p) for p in pol.get("include_only") or []]
    if include_only:
        env = {k: v for k, v in env.items() if any(glob_match(p, k) for p in include_only)}
    if not cfg.sandbox_policy.has_network():
        env["CODEX_SANDBOX_NETWORK_DISABLED"] = "1"
    return env


class _CappedBuffer(object):
    """Keeps the first and last `limit/2` bytes of a stream and counts what fell between."""

    def __init__(self, limit=CAPTURE_LIMIT_BYTES):
        self.half = limit // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, data):
        """Append a chunk."""
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > self.half * 2:
                cut = len(self.tail) - self.half
                self.dropped += cut
                del self.tail[:cut]

    def text(self):
        """Everything kept, decoded (invalid UTF-8 replaced), with a note where bytes were dropped."""
        tail = bytes(self.tail)
        if len(tail) > self.half:
            self.dropped += len(tail) - self.half
            tail = tail[-self.half:]
            self.tail = bytearray(tail)
        mid = ("\n[... %d bytes not captured ...]\n" % self.dropped).encode() if self.dropped else b""
        return (bytes(self.head) + mid + tail).decode("utf-8", "replace")


def _kill_group(proc, sig=None):
    """Kill the command's whole process group (it leads its own session)."""
    import signal

    try:
        os.killpg(proc.pid, sig or signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _has_exited(proc):
    """Whether the command's process has exited, without reaping it (waitid WNOWAIT)."""
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _classify_helper_failure(exit_code, status):
    """The helper's own setup failure as one line, or None when the command itself ran.

    `status` is what the helper wrote on its --status-fd ("CODE message"): a pipe only the
    helper holds (close-on-exec), so a command that prints "codex-linux-sandbox: ..." and exits
    122 is a command that failed, not a sandbox that could not be set up."""
    line = (status or "").strip().splitlines()[:1]
    if not line:
        return None
    code, _, message = line[0].partition(" ")
    if code.isdigit() and int(code) == exit_code and exit_code in HELPER_EXIT_CODES:
        return message.strip() or HELPER_EXIT_CODES[exit_code]
    return None


def _read_status_pipe(fd):
    """What the helper wrote on its status pipe (every writer has exited: read to EOF, bounded)."""
    chunks = []
    try:
        os.set_blocking(fd, False)
        while sum(len(c) for c in chunks) < 4096:
            data = os.read(fd, 4096)
            if not data:
                break
            chunks.append(data)
    except OSError:
        pass
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


def looks_like_sandbox_denial(result, policy, policy_cwd, home=None, command_cwd=None):
    """Whether a failed sandboxed run failed because of the sandbox (not just any non-zero exit).

    A denial shows as EACCES/EPERM/EROFS text naming a path the policy does not let the
    command write, as a network error while the network is off, or as death by SIGSYS.
    Exit 0, 124 (timeout), 126/127 (not executable / not found) and plain failures without
    such text are not denials (upstream #4859, #18711); neither is EACCES on a path the
    policy lets the command write (a chmod 444 file in the workspace).
    """
    if result.exit_code == 0 or result.timed_out or result.cancelled or result.sandbox_type is None:
        return False
    if result.exit_code == 128 + 31:  # SIGSYS: seccomp killed a foreign-architecture syscall
        return True
    text = result.stderr + "\n" + result.stdout
    if not policy.has_network() and _NETWORK_FAILURE_RE.search(text):
        return True
    if not _DENIAL_TEXT_RE.search(text):
        return False
    paths = []
    for rx in _DENIED_PATH_RES:
        paths.extend(m.group(1) for m in rx.finditer(text))
    base = str(command_cwd or policy_cwd)
    paths = [p if os.path.isabs(p) else os.path.join(base, p) for p in paths]
    if not paths:
        return True  # a denial message without a path we can check: assume the sandbox
    return any(not policy.is_path_writable(p, policy_cwd, home) for p in paths)


def apply_patch_in_sandbox(text, cwd, cfg, timeout_ms=None):
    """Apply a patch as a sandboxed command (codex's apply_patch mode, §10): returns its ExecResult.

    The paths are resolved inside the sandbox, against `cwd` (the model's workdir as given):
    a symlink planted by an earlier command is followed by the kernel, under Landlock.
    """
    argv = _apply_patch_argv(cfg.codex_home) + ["--cd", str(cwd)]
    env = build_command_env(cfg)
    return run_command(argv, cfg.cwd, cfg, env, timeout_ms=timeout_ms or DEFAULT_EXEC_TIMEOUT_MS * 3,
                       stdin_data=text.encode("utf-8"))


def run_command(argv, cwd, cfg, env, timeout_ms=None, on_output=None, cancel=None, sandboxed=True, stdin_data=None):
    """Run argv (in the sandbox of cfg's policy when sandboxed) and capture its output."""
    import selectors  # startup budget: only when a command runs
    import subprocess

    argv = [str(a) for a in argv]
    if not argv:
        raise SandboxError("empty command: nothing to run")
    cwd = str(cwd or cfg.cwd)
    timeout_ms = DEFAULT_EXEC_TIMEOUT_MS if timeout_ms is None else int(timeout_ms)
    policy = cfg.sandbox_policy
    env = dict(env)
    patch_dir = apply_patch_command_dir(cfg.codex_home)
    if patch_dir is not None:
        import shlex

        env["PATH"] = str(patch_dir) + os.pathsep + env.get("PATH", os.defpath)
        for name in APPLY_PATCH_NAMES:  # bash functions too: a login shell's /etc/profile resets PATH
            env["BASH_FUNC_%s%%%%" % name] = "() {  %s \"$@\"\n}" % shlex.quote(str(patch_dir / name))
    sandbox_type = None
    full_argv = argv
    absent = []
    if sandboxed and not policy.is_unrestricted():
        full_argv, extra_env, sandbox_type = sandbox_command(argv, policy, cfg.cwd, cwd, cfg.codex_home)
        env.update(extra_env)
        env = helper_env(env, sandbox_type)
        absent = absent_trusted_names(policy.writable_roots_for(cfg.cwd), cfg.cwd)
    stdin = subprocess.DEVNULL
    if stdin_data is not None:
        import tempfile

        stdin = tempfile.TemporaryFile()  # a file, not a pipe: no writer thread, no deadlock on big input
        stdin.write(stdin_data)
        stdin.seek(0)
    status_r = status_w = None
    if sandbox_type in ("linux", "linux-python"):  # the helper's own failures come back on this pipe
        status_r, status_w = os.pipe()
        at = full_argv.index("--cwd")
        full_argv = full_argv[:at] + ["--status-fd", str(status_w)] + full_argv[at:]
    start = time.monotonic()
    try:
        proc = subprocess.Popen(full_argv, cwd=cwd, env=env, stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
                                pass_fds=(status_w,) if status_w is not None else ())
    except OSError as exc:
        if status_r is not None:
            os.close(status_r)
        code = 127 if exc.errno in (errno.ENOENT, errno.ENOTDIR) else 126
        msg = "codex: cannot execute %s: %s\n" % (argv[0], exc.strerror or exc)
        if exc.errno in (errno.ENOENT, errno.ENOTDIR) and not os.path.isdir(cwd):
            msg = "codex: working directory %s does not exist\n" % cwd
        return ExecResult(code, "", msg, msg, time.monotonic() - start, sandbox_type=sandbox_type, timeout_ms=timeout_ms)
    finally:
        if stdin_data is not None:
            stdin.close()
        if status_w is not None:
            os.close(status_w)
    bufs = {"stdout": _CappedBuffer(), "stderr": _CappedBuffer()}
    agg = _CappedBuffer()
    deltas = [0]
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
    sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
    pidfd = None
    if hasattr(os, "pidfd_open"):  # Linux 5.3+: the exit itself wakes select (no polling delay)
        try:
            pidfd = os.pidfd_open(proc.pid)
            sel.register(pidfd, selectors.EVENT_READ, "exit")
        except OSError:
            pidfd = None
    deadline = start + timeout_ms / 1000.0
    timed_out = cancelled = False
    exited_at = None
    try:
        while True:
            now = time.monotonic()
            if not timed_out and not cancelled:
                if now >= deadline:
                    timed_out = True
                    _kill_group(proc)
                elif cancel is not None and cancel.is_set():
                    cancelled = True
                    _kill_group(proc)
            if exited_at is None and _has_exited(proc):
                exited_at = now
            if exited_at is not None:
                if pidfd is not None and pidfd in sel.get_map():
                    sel.unregister(pidfd)
                if not sel.get_map():
                    break
                if now - exited_at > _LEFTOVER_GRACE_SECONDS:
                    _kill_group(proc)  # background children still hold the pipes
                if now - exited_at > _LEFTOVER_GRACE_SECONDS + 1.0:
                    break  # a child that left the group (setsid) keeps them: stop reading
            wait = max(0.001, min(0.05 if sel.get_map() else 0.002, deadline - now))
            for key, _ in sel.select(wait):
                if key.data == "exit":
                    continue  # handled at the top of the loop
                try:
                    data = os.read(key.fileobj.fileno(), _READ_CHUNK)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                bufs[key.data].add(data)
                agg.add(data)
                if on_output is not None and deltas[0] < MAX_OUTPUT_DELTAS:
                    deltas[0] += 1
                    on_output(key.data, data)
        # the leader is exited but not reaped yet, so its group id cannot belong to anyone else
        _kill_group(proc)  # anything that outlived the command in its group
        status = proc.wait()
    except BaseException:
        _kill_group(proc)  # KeyboardInterrupt and friends: never leave the group running
        proc.wait()
        if status_r is not None:
            os.close(status_r)
        raise
    finally:
        sel.close()
        if pidfd is not None:
            os.close(pidfd)
        proc.stdout.close()
        proc.stderr.close()
    duration = time.monotonic() - start
    exit_code = 128 - status if status < 0 else status
    if timed_out:
        exit_code = TIMEOUT_EXIT_CODE
    elif cancelled:
        exit_code = 130
    result = ExecResult(exit_code, bufs["stdout"].text(), bufs["stderr"].text(), agg.text(), duration,
                        timed_out, False, sandbox_type, None, cancelled, timeout_ms)
    log("debug", "exec %s in %s (sandbox %s) -> exit %d in %.3fs", argv, cwd, sandbox_type or "none", exit_code, duration)
    status = _read_status_pipe(status_r) if status_r is not None else ""
    if sandbox_type is not None:
        result.sandbox_error = _classify_helper_failure(exit_code, status)
        if result.sandbox_error:
            _notice("the sandbox could not be set up: %s (`codex sandbox --check` explains)" % result.sandbox_error)
        result.sandbox_denied = result.sandbox_error is not None or looks_like_sandbox_denial(
            result, policy, cfg.cwd, cfg.codex_home, cwd)
    failed = []
    moved = quarantine_new_names(absent, failed)
    if failed:  # the user and the model see it, in every front end (the command's own output)
        result.stderr += "".join(failed)
        result.aggregated_output += "".join(failed)
        result.sandbox_denied = True
    if moved:
        why = ("codex: the command created %s, which codex and git trust (project config, hooks, git "
               "config); moved aside to %s: creating them needs approval (run it outside the sandbox)\n"
               % (", ".join(p for p, _ in moved), ", ".join(q for _, q in moved)))
        _notice(why.strip())
        result.stderr += why
        result.aggregated_output += why
        result.sandbox_denied = True
    return result


def absent_trusted_names(roots, cwd):
    """`.git` and `.codex` names that do not exist yet where codex or git would trust them:
    at the top of each writable root, and in the workspace and each directory above it that
    lies in a writable root.  No mount can cover a name that does not exist, so a command may
    create one (`git init` with a planted core.fsmonitor or filter, .codex/hooks.json): codex
    moves it aside when the command ends (quarantine_new_names)."""
    roots = [os.path.realpath(str(r)) for r in roots]
    dirs = [r for r in roots if r != "/"]
    d = os.path.realpath(str(cwd))
    while d != "/" and any(_is_within(d, r) for r in roots):
        if d not in dirs:
            dirs.append(d)
        d = os.path.dirname(d)
    return [os.path.join(d, n) for d in dirs for n in sorted(PROTECTED_DIR_NAMES)
            if not os.path.lexists(os.path.join(d, n))]


def quarantine_new_names(names, failed=None):
    """Rename each of `names` that exists now (a sandboxed command made it) to a fresh
    `<name>.blocked-by-codex.<hex>` beside it, so that neither codex nor git reads it; returns
    [(name, new name)].  Called once the command and everything it started have ended.  A
    directory the command made unwritable gets its owner's write bit back first; what still
    cannot be moved is reported in `failed` (a list: one line each), which the caller shows."""
    failed = [] if failed is None else failed
    moved = []
    for path in names:
        try:
            os.lstat(path)
        except PermissionError:  # `chmod 0 .` hides the name from codex too: give the bits back first
            if not _restore_owner_write(os.path.dirname(path)) and not os.path.lexists(path):
                failed.append("codex: cannot check %s (a sandboxed command took away the permissions of its "
                              "directory): check it before running git or codex there\n" % path)
                continue
        except OSError:
            pass
        if not os.path.lexists(path):
            continue
        target = "%s.blocked-by-codex.%s" % (path, os.urandom(4).hex())
        try:
            try:
                os.rename(path, target)  # a symlink is moved as the link, never followed
            except OSError as exc:
                # `chmod 555 .` by the command: the owner (codex's user) may always restore the bits
                if exc.errno not in (errno.EACCES, errno.EPERM) or not _restore_owner_write(os.path.dirname(path)):
                    raise
                os.rename(path, target)
        except OSError as exc:
            failed.append("codex: cannot move aside %s, which a sandboxed command created (%s): remove it "
                          "before running git or codex there\n" % (path, exc.strerror or exc))
            _notice(failed[-1].strip())
            continue
        moved.append((path, target))
    return moved


def _restore_owner_write(directory):
    """Give `directory` (not followed if a symlink; ours only) back its owner's read, write and
    search bits, which a sandboxed command may have taken away to keep a planted name; True if changed."""
    import stat

    try:
        fd = os.open(directory, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if st.st_uid != os.getuid() or st.st_mode & 0o700 == 0o700:
            return False
        os.chmod("/proc/self/fd/%d" % fd, stat.S_IMODE(st.st_mode) | 0o700)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _truncate_for_model(text):
    """Head + tail of `text` within MODEL_OUTPUT_MAX_BYTES and MODEL_OUTPUT_MAX_LINES."""
    raw = text.encode("utf-8")
    lines = text.splitlines(True)
    if len(raw) <= MODEL_OUTPUT_MAX_BYTES and len(lines) <= MODEL_OUTPUT_MAX_LINES:
        return text
    half = MODEL_OUTPUT_MAX_BYTES // 2
    head_lines = lines[:MODEL_OUTPUT_HEAD_LINES]
    tail_count = MODEL_OUTPUT_MAX_LINES - MODEL_OUTPUT_HEAD_LINES
    tail_lines = lines[max(len(head_lines), len(lines) - tail_count):]
    head = "".join(head_lines).encode("utf-8")[:half].decode("utf-8", "ignore")
    tail_budget = MODEL_OUTPUT_MAX_BYTES - len(head.encode("utf-8"))
    tail_raw = "".join(tail_lines).encode("utf-8")
    tail = tail_raw[max(0, len(tail_raw) - tail_budget):].decode("utf-8", "ignore")
    shown = head.count("\n") + tail.count("\n")
    omitted = max(0, len(lines) - shown)
    return "%s\n[... omitted %d of %d lines ...]\n\n%s" % (head, omitted, len(lines), tail)


def format_exec_output(result):
    """The JSON envelope upstream gives the model: {"output": ..., "metadata": {...}}."""
    output = result.aggregated_output
    if result.timed_out:
        output = "command timed out after %d milliseconds\n%s" % (result.timeout_ms or 0, output)
    return json.dumps({
        "output": _truncate_for_model(output),
        "metadata": {"exit_code": result.exit_code, "duration_seconds": round(result.duration, 1)},
    })


def format_exec_output_text(result):
    """`shell_command`'s output for the model as plain text (upstream's freeform form): lines
    `Exit code: N`, `Wall time: S seconds`, `Total output lines: N` when truncated, `Output:`,
    then the output.  Small models read a traceback far better this way than as an escaped JSON
    string, and the exit code comes first."""
    output = result.aggregated_output or ""
    if result.timed_out:
        output = "command timed out after %d milliseconds\n%s" % (result.timeout_ms or 0, output)
    shown = _truncate_for_model(output)
    head = ["Exit code: %s" % result.exit_code, "Wall time: %.1f seconds" % result.duration]
    if shown != output:
        head.append("Total output lines: %d" % len(output.splitlines()))
    tail = []
    if result.exit_code not in (0, None):
        tail = ["", failed_command_note(result.exit_code)]
    return "\n".join(head + ["Output:", shown.rstrip("\n")] + tail)


def failed_command_note(exit_code):
    """The last paragraph of format_exec_output_text for a command that failed (the agent loop
    replaces it with a concrete next step when the output names a file: next_step_after_failure)."""
    return ("(The command failed with exit code %s. If it checks your work, the task is not done: look at the code it "
            "runs or tests with cat, and fix the cause there.)" % exit_code)


def _note_for_model(output, note):
    """`output` (the JSON envelope of format_exec_output, or plain text) with `note` as its first line."""
    try:
        data = json.loads(output)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("output"), str):
        data["output"] = "%s\n%s" % (note, data["output"])
        return json.dumps(data)
    return "%s\n%s" % (note, output)


def _sandbox_failure_text(result):
    """Upstream's model-facing text for a run the sandbox stopped."""
    kind = SANDBOX_TYPE_NAMES.get(result.sandbox_type, "LinuxSeccomp")
    if result.sandbox_error:
        err = "sandbox setup failed: %s" % result.sandbox_error
    else:
        err = "sandbox denied exec error, exit code: %d, stdout: %s, stderr: %s" % (
            result.exit_code, _truncate_for_model(result.stdout), _truncate_for_model(result.stderr))
    return "failed in sandbox %s with execution error: %s" % (kind, err)


def _planted_program(argv, cfg):
    """A program of argv that PATH resolves inside the workspace or a writable root, or None.

    `ls` found in ./node_modules/.bin is not the system `ls`: it gets no known-safe pass.
    """
    import shutil  # startup budget: only when a command is assessed

    path = build_command_env(cfg).get("PATH", os.defpath)  # the PATH the command will see (§13)
    roots = [str(r) for r in cfg.sandbox_policy.writable_roots_for(cfg.cwd)] + [os.path.realpath(str(cfg.cwd))]
    # "." or an empty entry resolves against the command's workdir, which the model chooses
    relative = any(not os.path.isabs(entry) for entry in path.split(os.pathsep))
    for word in _command_words(argv):
        if relative and "/" not in word:
            return word
        found = word if "/" in word else shutil.which(word, path=path)
        if found and any(_is_within(os.path.realpath(found), r) for r in roots if r != "/"):
            return word
    return None


def _approved_set(session_state):
    """The session's set of approved argv tuples (created on first use)."""
    if session_state is None:
        return set()
    if isinstance(session_state, dict):
        return session_state.setdefault("approved_commands", set())
    approved = getattr(session_state, "approved_commands", None)
    if approved is None:
        approved = set()
        setattr(session_state, "approved_commands", approved)
    return approved


def _command_plan(argv, cfg, approved_for_session, escalated=False):
    """Decide a command: (decision, run_sandboxed, reason) per the approval table.

    The table (docs/sandbox.md): untrusted asks for everything not known-safe; on-failure
    and never run sandboxed; on-request asks when the model escalates; danger-full-access
    runs unsandboxed.  Without a usable sandbox, never rejects and the others ask.
    """
    policy = cfg.approval_policy
    sandbox = cfg.sandbox_policy
    key = tuple(str(a) for a in argv)
    if approved_for_session and key in approved_for_session:
        return "auto-approve", False, "approved for this session"
    full = sandbox.is_unrestricted()
    available = full or sandbox_available(cfg.codex_home)
    if is_known_safe_command(argv) and _planted_program(argv, cfg) is None:
        # Upstream ran these unsandboxed; we keep them inside whatever sandbox the policy has.
        if available:
            return "auto-approve", not full, "known-safe command"
        return ("reject" if policy == "never" else "ask-user"), False, "no sandbox is available on this machine"
    if policy == "untrusted":
        return "ask-user", False, "untrusted: every command that is not known-safe needs approval"
    if full:
        return "auto-approve", False, "danger-full-access"
    if not available:
        if policy == "never":
            return "reject", False, "no sandbox is available on this machine and approval_policy is never"
        return "ask-user", False, "no sandbox is available on this machine"
    if policy == "on-request" and escalated:
        return "ask-user", False, "the model asked to run without the sandbox"
    return "auto-approve", True, "runs in the sandbox"


def assess_command_safety(argv, cfg, approved_for_session, escalated=False):
    """Whether to run argv without asking, ask the user, or reject it (see _command_plan)."""
    return _command_plan(argv, cfg, approved_for_session, escalated)[0]


def execute_with_policy(argv, cwd, cfg, session_state, ask, on_output=None, cancel=None, timeout_ms=None,
                        escalated=False, justification=None, formatter=None):
    """Decide, ask if needed, run (sandboxed unless approved otherwise), offer an unsandboxed retry.

    See the §11 contract; returns ExecOutcome(result, model_output, decision).  `formatter`
    turns a finished run into the model's text (default format_exec_output, the JSON envelope).
    """
    formatter = formatter or format_exec_output
    argv = [str(a) for a in argv]
    # resolved once: the question names the directory the command runs in, not a symlink to it
    cwd = os.path.realpath(str(cwd or cfg.cwd))
    approved = _approved_set(session_state)
    decision, sandboxed, reason = _command_plan(argv, cfg, approved, escalated)
    if decision == "reject":
        return ExecOutcome(None, "exec command rejected: %s" % reason, "reject")
    if decision == "ask-user":
        before = _dir_identity(cwd)
        workspace = os.path.realpath(str(cfg.cwd))
        if not _is_within(cwd, workspace):
            where = "note: it runs in %s, outside the workspace %s" % (cwd, workspace)
            justification = "%s (%s)" % (justification, where) if justification else where
        answer = ask(kind="exec", argv=argv, cwd=cwd, reason=justification)
        if answer not in ("approved", "approved_for_session"):
            return ExecOutcome(None, "exec command rejected by user", "abort" if answer == "abort" else "denied")
        if _dir_identity(cwd) != before:  # swapped while the question was open: not what was approved
            return ExecOutcome(None, "exec command rejected: its working directory %s was replaced after the "
                               "approval question was asked" % cwd, "denied")
        if answer == "approved_for_session":
            approved.add(tuple(argv))
        decision, sandboxed = answer, False  # the user approved running it as is, outside the sandbox
    env = build_command_env(cfg)
    result = run_command(argv, cwd, cfg, env, timeout_ms, on_output, cancel, sandboxed=sandboxed)
    if not (sandboxed and result.sandbox_denied):
        return ExecOutcome(result, formatter(result), decision)
    if cfg.approval_policy not in ("on-failure", "untrusted"):
        return ExecOutcome(result, _sandbox_failure_text(result), "sandbox-failed")
    answer = ask(kind="exec", argv=argv, cwd=cwd, reason="command failed; retry without sandbox?")
    if answer not in ("approved", "approved_for_session"):
        return ExecOutcome(result, "exec command rejected by user", "abort" if answer == "abort" else "denied")
    if answer == "approved_for_session":
        approved.add(tuple(argv))  # only on an explicit "always" (upstream added it on any yes)
    retry = run_command(argv, cwd, cfg, env, timeout_ms, on_output, cancel, sandboxed=False)
    return ExecOutcome(retry, formatter(retry), "retry-approved")


def _dir_identity(path):
    """(st_dev, st_ino) of the directory at `path` (not followed if a symlink), or None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


# -- codex debug landlock|seatbelt, codex sandbox --check / doctor --------------------------


def _cmd_debug(args, cfg_loader):
    """`codex debug landlock|seatbelt [--full-auto] [-s MODE] [-c k=v] -- CMD...`: run CMD sandboxed."""
    import subprocess  # startup budget: only for this subcommand

    cmd = list(args.cmd or [])
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise UsageError("no command given: codex debug %s [--full-auto] -- CMD [ARG]..." % args.debug_command)
    if args.debug_command == "seatbelt" and not _DARWIN:
        raise SandboxError("`codex debug seatbelt` needs macOS; on Linux use `codex debug landlock`")
    if args.debug_command == "landlock" and not _LINUX:
        raise SandboxError("`codex debug landlock` needs Linux; on macOS use `codex debug seatbelt`")
    extra = {} if (args.sandbox_mode or args.full_auto) else {"sandbox_mode": "read-only"}
    cfg = cfg_loader(**extra)
    policy = cfg.sandbox_policy
    if not policy.is_unrestricted() and not sandbox_available(cfg.codex_home):
        info = probe_sandbox(cfg.codex_home)
        raise SandboxError("the sandbox is not available here (%s); run `codex sandbox --check`"
                           % (info.get("reason") or info.get("helper_error") or "Landlock or seccomp missing"))
    env = build_command_env(cfg)
    full, extra_env, kind = sandbox_command(cmd, policy, cfg.cwd, os.getcwd(), cfg.codex_home)
    env.update(extra_env)
    env = helper_env(env, kind)
    for note in take_sandbox_notices():
        sys.stderr.write("codex: warning: %s\n" % note)
    try:
        code = subprocess.call(full, env=env)
    except OSError as exc:
        raise SandboxError("cannot start %s: %s" % (full[0], exc.strerror or exc))
    return 128 - code if code < 0 else code


def sandbox_check_lines(home=None, cfg=None):
    """The `codex sandbox --check` report: [(status, probe, text)], status ok|warn|fail."""
    lines = []
    info = probe_sandbox(home)
    if _DARWIN:
        ok = info.get("seatbelt") == "1"
        lines.append(("ok" if ok else "fail", "seatbelt",
                      "%s found: commands run under a generated Seatbelt profile" % SEATBELT_EXECUTABLE if ok else
                      "%s is missing: commands cannot be sandboxed; reinstall macOS command line tools" % SEATBELT_EXECUTABLE))
    elif _LINUX:
        kind = info.get("helper")
        if kind == "linux" and not info.get("helper_error"):
            lines.append(("ok", "helper", "compiled helper %s (%s), run from a sealed in-memory copy"
                          % (info.get("helper_path"), _machine_arch())))
        elif kind == "linux":
            lines.append(("fail", "helper", "compiled helper %s does not run: %s" % (info.get("helper_path"), info.get("helper_error"))))
        else:
            lines.append(("warn", "helper", "no compiled helper for %s: the Python helper is used (about 30 ms "
                          "slower per command); build one with `python3 build.py helpers`" % _machine_arch()))
        abi = int(info.get("landlock_abi", "0") or 0)
        if abi >= 6:
            lines.append(("ok", "landlock", "ABI %d: writes outside writable roots are denied; signals and abstract "
                          "unix sockets are scoped to the sandbox" % abi))
        elif abi >= 1:
            lines.append(("ok", "landlock", "ABI %d: writes outside writable roots are denied (kernel 6.7+ adds "
                          "network, 6.12+ signal/socket scoping)" % abi))
        else:
            why = info.get("reason") or info.get("helper_error") or "unknown"
            lines.append(("fail", "landlock", "unavailable (%s): sandboxed commands cannot run; use a kernel >= 5.13 "
                          "with landlock in the lsm= list, or run in a disposable VM/container with "
                          "-s danger-full-access" % why))
        if info.get("seccomp") == "1":
            lines.append(("ok", "seccomp", "filters can be installed: network syscalls, ptrace and io_uring are denied"))
        else:
            lines.append(("fail", "seccomp", "cannot install filters (%s); install libseccomp2 or use the compiled helper"
                          % (info.get("reason") or "unknown")))
        lines.append(("ok", "no_new_privs", "set by the helper for every command (codex itself: %s)"
                      % info.get("codex_no_new_privs", "?")))
        if info.get("userns") == "1":
            lines.append(("ok", "userns", "user namespaces work: .git and $CODEX_HOME inside writable roots are "
                          "mounted read-only"))
            if info.get("mount_setattr") == "1":
                lines.append(("ok", "ro_mounts", "every mount but the writable roots is read-only for commands "
                              "(chmod/chown/utime outside the roots fail too)"))
            else:
                lines.append(("warn", "ro_mounts", "mount_setattr unavailable (Linux < 5.12): chmod/chown/utime on "
                              "files outside the writable roots are not blocked (Landlock does not cover them)"))
        else:
            lines.append(("warn", "userns", "user namespaces unavailable: Landlock alone keeps .git, $CODEX_HOME and "
                          "auth.json out of reach, so the directories on the way to them cannot change (no new files "
                          "at the top of the workspace, `ls /` and `ls ~` fail); enable them (sysctl "
                          "kernel.unprivileged_userns_clone=1, or kernel.apparmor_restrict_unprivileged_userns=0)"))
        if info.get("container"):
            lines.append(("ok", "container", "running inside %s: the sandbox still applies; if Landlock is blocked "
                          "update the container runtime's seccomp profile" % info["container"]))
        if info.get("wsl") == "1":
            lines.append(("fail", "wsl", "WSL1 has neither Landlock nor seccomp filters: use WSL2"))
        elif info.get("wsl") == "2":
            lines.append(("ok", "wsl", "WSL2: a real Linux kernel; Landlock needs WSL kernel 5.15+ with landlock enabled"))
    else:
        lines.append(("fail", "platform", "no sandbox exists for %s: commands can only run with -s danger-full-access"
                      % sys.platform))
    if cfg is not None:
        lines.append(("ok", "policy", describe_policy(cfg)))
    return lines


def config_layers(cfg):
    """(key, value, layer, file) for every top-level effective value: which layer set it."""
    rows = []
    for key in sorted(CONFIG_KEYS):
        if key in ("profiles", "profile"):
            continue
        value = getattr(cfg, key, None)
        if key == "hooks":
            value = ["%s: %s" % (h.event, h.name) for h in value]
        elif key == "mcp_servers":
            value = sorted(value)
        elif key == "model_providers":
            value = sorted(value)
        layer = cfg.sources.get(key, "default")
        where = cfg.layer_paths.get(layer, "") if layer not in ("requirements",) else " or ".join(cfg.requirements.paths)
        if key == "hooks" and cfg.hooks:  # hooks.json files and [hooks] tables: name each place they came from
            by_path = {str(path): name for name, path in cfg.layer_paths.items()}
            origins = []
            for hook in cfg.hooks:
                origin = hook.source.split(": hooks", 1)[0]
                if origin not in origins:
                    origins.append(origin)
            layer = ", ".join(dict.fromkeys(HOOKS_FILE if o.endswith(HOOKS_FILE) else by_path.get(o, o) for o in origins))
            where = ", ".join(origins)
        rows.append((key, value, layer, where))
    rows.append(("sandbox_policy (effective)", cfg.sandbox_policy.to_wire(), cfg.sources.get("sandbox_mode", "default"), ""))
    return rows


def _cmd_config(args, cfg_loader):
    """`codex config show [--json]`: every effective value, the layer that set it, and the pins."""
    cfg = cfg_loader()
    rows = config_layers(cfg)
    project = {"root": str(cfg.project_root) if cfg.project_root else None, "trusted": cfg.trusted_project_root is not None}
    pins = dict(cfg.requirements.pins())
    if getattr(args, "json", False):
        out = {"values": {k: {"value": _jsonable(v), "layer": layer, "file": where or None} for k, v, layer, where in rows},
               "layers": dict(cfg.layer_paths), "project": project, "requirements": pins,
               "requirements_files": list(cfg.requirements.paths)}
        sys.stdout.write(json.dumps(out, indent=2, sort_keys=True) + "\n")
        return 0
    width = max(len(k) for k, _v, _l, _w in rows)
    for key, value, layer, where in rows:
        text = json.dumps(_jsonable(value)) if not isinstance(value, str) else value
        sys.stdout.write("%-*s  %-40s  %s%s\n" % (width, key, text if len(text) <= 40 else text[:37] + "...", layer,
                                                   " (%s)" % where if where and where != layer else ""))
    sys.stdout.write("\nproject: %s%s\n" % (project["root"] or "(none)", " (trusted)" if project["trusted"] else
                                           " (not trusted: its .codex/config.toml is not applied)" if project["root"] else ""))
    sys.stdout.write("(long values are cut here; `codex config show --json` has them whole)\n")
    if pins:
        sys.stdout.write("pinned by %s:\n" % " and ".join(cfg.requirements.paths))
        for key, allowed in pins.items():
            sys.stdout.write("  %s: %s\n" % (key, allowed))
    return 0


def _cmd_sandbox_check(args, cfg_loader):
    """`codex sandbox --check` / `codex doctor`: probe what the sandbox can use here;
    `codex sandbox [--full-auto] [-s MODE] -- CMD...` runs CMD as `codex debug` does."""
    cmd = [c for c in getattr(args, "cmd", None) or [] if c != "--"] and list(args.cmd)
    if cmd:
        if getattr(args, "check", False):
            raise UsageError("`codex sandbox --check` takes no command; use `codex sandbox -- CMD...` to run one")
        args.debug_command = "seatbelt" if _DARWIN else "landlock"
        return _cmd_debug(args, cfg_loader)
    try:
        cfg = cfg_loader()
    except CodexError as exc:
        sys.stderr.write("codex: warning: %s\n" % exc)
        cfg = None
    home = cfg.codex_home if cfg is not None else None
    lines = sandbox_check_lines(home, cfg)
    if cfg is not None:
        for key, allowed in cfg.requirements.pins():
            lines.append(("info", "pinned", "%s: %s (%s)" % (key, allowed, " and ".join(cfg.requirements.paths))))
    for status, probe, text in lines:
        sys.stdout.write("%-4s %-12s %s\n" % (status, probe, text))
    return 1 if any(status == "fail" for status, _, _ in lines) else 0



###############################################################################
# §14a MCP client: JSON-RPC over stdio and streamable HTTP, tool names, results
###############################################################################

# The contract the agent loop (§16) and the front ends use:
#
#   mgr = McpConnectionManager(cfg)      # cfg.mcp_servers: name -> {command, args, env, ...}
#                        # or {url, bearer_token_env_var, http_headers, ...} (§04 checks them)
#   mgr.start()          # spawns every enabled server concurrently in the background and
#                        # returns at once; servers marked `required = true` are waited for
#                        # (McpError naming the server if one of them fails to start)
#   mgr.tools() -> {qualified_name: {"name", "description", "inputSchema"}}
#                        # tools of the servers ready *now*; qualified_name = SERVER__TOOL
#                        # (chars outside [a-zA-Z0-9_-] -> `_`), over 64 chars: first 24
#                        # chars + sha1 hex of the full name (upstream)
#   mgr.lookup(qualified_name) -> (server, tool) or None    # for mcp_tool_call_* events
#   mgr.call(qualified_name, arguments: dict, timeout=None, cancel=None) -> CallToolResult dict
#                        # raises McpError on unknown tool, JSON-RPC error, timeout
#                        # (default timeout: the server's tool_timeout_sec), dead server;
#                        # cancel: a threading.Event that abandons the call when set (the
#                        # server is sent notifications/cancelled), e.g. on interrupt
#   mgr.call_tool(server, tool, arguments, timeout=None, cancel=None)   # by server and raw tool name
#   mgr.failures() -> ["MCP client for `NAME` failed to start: REASON; stderr: L1 | L2 | L3", ...]
#   mgr.new_failures() -> the failures not returned by an earlier new_failures() call, so a
#                        # front end reports each failed server exactly once
#   mgr.wait_ready(timeout=None) -> bool     # every server finished starting (ready or failed)
#   mgr.status() -> [{"name", "status", "tools", ...}]     # for `codex mcp list`
#   mgr.shutdown()       # closes stdin, then SIGTERM, then SIGKILL, every server in parallel
#   format_mcp_result_for_model(result) -> str       # the function_call_output text
#   format_mcp_result_for_display(result, max_lines=5) -> [str]   # lines for the UIs
#
# The JSON-RPC 2.0 session (ids, pending requests, timeouts, cancellation) is JsonRpcSession;
# its transports are JsonRpcConnection (stdio: one object per line, also used by the MCP
# server front end, §19) and McpHttpConnection (streamable HTTP over §06's client).
# McpClient picks the transport from the entry; everything above the session is shared.

#: protocol versions we speak, newest first; we offer the first and accept any of them
MCP_PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
MCP_TOOL_DELIMITER = "__"  #: SERVER__TOOL (upstream since July 2025)
MCP_MAX_TOOL_NAME = 64  #: longer qualified names are shortened with a SHA-1 suffix
MCP_STARTUP_TIMEOUT_MAX = 300.0  #: hard upper bound on startup_timeout_sec (seconds)
MCP_MAX_TOOL_PAGES = 1000  #: tools/list pages followed before giving up on a server
MCP_STDERR_TAIL_LINES = 40  #: stderr lines kept in memory per server
MCP_IMAGE_MAX_BYTES = 5 * 1024 * 1024  #: an MCP image larger than this reaches the model as a stand-in
MCP_MAX_IMAGES = 8  #: images of one tool result sent to the model
MCP_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")  #: what the model APIs take
MCP_HTTP_IDLE_TIMEOUT_S = 300.0  #: an HTTP stream silent this long counts as dropped
MCP_HTTP_SEND_TIMEOUT_S = 30.0  #: a notification or response POST (answered 202 at once)
MCP_HTTP_DELETE_TIMEOUT_S = 2.0  #: ending the session at shutdown
MCP_HTTP_RESUME_ATTEMPTS = 5  #: reconnects (GET + Last-Event-ID) of one request's dropped stream
MCP_HTTP_LISTEN_RETRIES = 8  #: failed reconnects of the GET stream in a row before giving up
_MCP_SESSION_ID_RE = re.compile(r"^[\x21-\x7e]+$")  #: what an Mcp-Session-Id may contain
_MCP_SERVER_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]+$")  #: allowed [mcp_servers.NAME] names
_MCP_TOOL_NAME_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_-]")  #: replaced by `_` in qualified tool names
#: parent environment variables a server inherits (the rest is not passed; upstream's list)
MCP_ENV_WHITELIST = (
    "HOME", "LOGNAME", "PATH", "SHELL", "USER", "__CF_USER_TEXT_ENCODING",
    "LANG", "LC_ALL", "TERM", "TMPDIR", "TZ",
)
#: launchers that download on first run: a startup timeout hints at startup_timeout_sec
_MCP_SLOW_LAUNCHERS = ("npx", "uvx", "bunx", "pnpx", "pipx", "docker")
#: JSON-RPC 2.0 error codes
JSONRPC_PARSE_ERROR = -32700
JSONRPC_INVALID_REQUEST = -32600
JSONRPC_METHOD_NOT_FOUND = -32601
JSONRPC_INVALID_PARAMS = -32602
JSONRPC_INTERNAL_ERROR = -32603


class McpSessionExpired(McpError):
    """A streamable HTTP server no longer knows our Mcp-Session-Id (HTTP 404): initialize again."""


class JsonRpcSession(object):
    """The JSON-RPC 2.0 session, whatever carries it: ids, pending requests, routing, cancel.

    A transport subclass implements `_write(msg)` (deliver one message) and feeds what it
    receives to `_dispatch(msg)`.  Responses go to the waiting request() by id; incoming
    requests and notifications go to the callbacks, in the transport's reader thread: a
    callback that needs to wait (for instance on a request of its own) must hand off to
    another thread.  stdio (JsonRpcConnection) and streamable HTTP (McpHttpConnection) share
    timeouts, cancellation and error texts through this class.
    """

    def __init__(self, on_request=None, on_notification=None, name="peer", answer_parse_errors=False):
        self.name = name
        self._on_request = on_request  # fn(id, method, params)
        self._on_notification = on_notification  # fn(method, params)
        self._answer_parse_errors = answer_parse_errors
        self._pending = {}  # request id -> [threading.Event, response dict or None, McpError or None]
        self._lock = threading.Lock()
        self._next_id = 1
        self.closed = threading.Event()
        self.close_reason = None

    # -- what the transport hands us ------------------------------------------------
    def _dispatch(self, msg):
        if isinstance(msg, list):  # a JSON-RPC batch (allowed by MCP 2025-03-26 only)
            for item in msg:
                self._dispatch(item)
            return
        if not isinstance(msg, dict):
            if self._answer_parse_errors:
                self.send({"jsonrpc": "2.0", "id": None, "error": {"code": JSONRPC_INVALID_REQUEST, "message": "Invalid Request"}})
            return
        method = msg.get("method")
        if isinstance(method, str):
            params = msg.get("params")
            if "id" in msg and msg["id"] is not None:
                if self._on_request is None:
                    self.respond_error(msg["id"], JSONRPC_METHOD_NOT_FOUND, "Method not found: %s" % method)
                else:
                    self._on_request(msg["id"], method, params)
            elif self._on_notification is not None:
                self._on_notification(method, params)
            return
        if "id" in msg and ("result" in msg or "error" in msg):
            with self._lock:
                slot = self._pending.pop(msg["id"], None)
            if slot is None:
                log("debug", "mcp %s: response for unknown id %r dropped", self.name, msg.get("id"))
                return
            slot[1] = msg
            slot[0].set()
            return
        if self._answer_parse_errors and "id" in msg:
            self.respond_error(msg.get("id"), JSONRPC_INVALID_REQUEST, "Invalid Request")

    def _fail_request(self, req_id, error):
        """End one pending request with a transport error (an McpError raised in request())."""
        with self._lock:
            slot = self._pending.pop(req_id, None)
        if slot is not None:
            slot[2] = error
            slot[0].set()

    def _is_pending(self, req_id):
        with self._lock:
            return req_id in self._pending

    def _close(self, reason):
        with self._lock:
            if self.close_reason is None:
                self.close_reason = reason
            pending, self._pending = self._pending, {}
        self.closed.set()
        for slot in pending.values():
            slot[0].set()

    # -- sending --------------------------------------------------------------------
    def _write(self, msg):
        raise NotImplementedError

    def send(self, msg):
        """Deliver one message; raise McpError if the peer is gone."""
        self._write(msg)

    def notify(self, method, params=None):
        """Send a notification (no reply expected)."""
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    def respond(self, id, result):
        """Answer request `id` with `result`; a vanished peer is not an error here."""
        try:
            self.send({"jsonrpc": "2.0", "id": id, "result": result})
        except McpError:
            pass

    def respond_error(self, id, code, message, data=None):
        """Answer request `id` with a JSON-RPC error object."""
        err = {"code": code, "message": message}
        if data is not None:
            err["data"] = data
        try:
            self.send({"jsonrpc": "2.0", "id": id, "error": err})
        except McpError:
            pass

    def request(self, method, params=None, timeout=None, cancel=None):
        """Send a request and wait for its result; raise McpError on error, timeout, close.

        `cancel` is an optional threading.Event: when it is set the wait stops and the peer
        is told with notifications/cancelled.
        """
        event = threading.Event()
        slot = [event, None, None]
        with self._lock:
            if self.closed.is_set():
                raise McpError("%s: %s before `%s` was sent" % (self.name, self.close_reason or "connection closed", method))
            req_id = self._next_id
            self._next_id += 1
            self._pending[req_id] = slot
        msg = {"jsonrpc": "2.0", "id": req_id, "method": method}
        if params is not None:
            msg["params"] = params
        try:
            self.send(msg)
        except McpError:
            with self._lock:
                self._pending.pop(req_id, None)
            raise
        deadline = None if timeout is None else time.monotonic() + timeout
        while not event.is_set():
            step = 0.1 if cancel is not None else None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                step = left if step is None else min(step, left)
            event.wait(step)
            if cancel is not None and cancel.is_set() and not event.is_set():
                self._forget(req_id, "cancelled")
                raise McpError("%s: `%s` request cancelled" % (self.name, method))
        if not event.is_set():
            self._forget(req_id, "timed out")
            raise McpError("%s: `%s` request timed out after %gs" % (self.name, method, timeout))
        if slot[2] is not None:
            raise slot[2]
        reply = slot[1]
        if reply is None:
            raise McpError("%s: %s before a reply to `%s` was received" % (self.name, self.close_reason or "connection closed", method))
        if "error" in reply:
            err = reply.get("error") or {}
            if not isinstance(err, dict):
                err = {"message": str(err)}
            raise McpError(
                "%s returned JSON-RPC error: code = %s, message = %s" % (self.name, err.get("code"), err.get("message"))
            )
        return reply.get("result")

    def _forget(self, req_id, reason):
        """Drop a pending request and tell the peer we no longer want its answer."""
        with self._lock:
            self._pending.pop(req_id, None)
        try:
            self.notify("notifications/cancelled", {"requestId": req_id, "reason": reason})
        except McpError:
            pass

    def close(self):
        """Mark the session closed and wake every waiter."""
        self._close("connection closed by codex")


class JsonRpcConnection(JsonRpcSession):
    """Newline-delimited JSON-RPC 2.0 over a pair of binary streams (MCP's stdio transport).

    A reader thread parses one message per line and dispatches it (see JsonRpcSession).
    Also used by the MCP server front end (§19).
    """

    def __init__(self, reader, writer, on_request=None, on_notification=None, name="peer", answer_parse_errors=False):
        JsonRpcSession.__init__(self, on_request, on_notification, name, answer_parse_errors)
        self._reader = reader
        self._writer = writer
        self._write_lock = threading.Lock()
        self._thread = None

    def start(self):
        """Start the reader thread; returns self."""
        self._thread = threading.Thread(target=self._read_loop, name="jsonrpc-%s" % self.name, daemon=True)
        self._thread.start()
        return self

    def _read_loop(self):
        reason = "connection closed"
        try:
            while True:
                line = self._reader.readline()
                if not line:
                    break
                line = line.strip()
                if not line:
                    continue
                try:
                    msg = json.loads(line.decode("utf-8", "replace") if isinstance(line, bytes) else line)
                except ValueError as exc:
                    log("warn", "mcp %s: unparseable line dropped: %s", self.name, exc)
                    if self._answer_parse_errors:
                        self.send({"jsonrpc": "2.0", "id": None, "error": {"code": JSONRPC_PARSE_ERROR, "message": "Parse error: %s" % exc}})
                    continue
                self._dispatch(msg)
        except (OSError, ValueError) as exc:
            reason = "connection closed (%s)" % exc
        finally:
            self._close(reason)

    def _write(self, msg):
        """Write one message as one line; raise McpError if the peer is gone."""
        data = (_json_line(msg) + "\n").encode("utf-8")
        with self._write_lock:
            try:
                self._writer.write(data)
                self._writer.flush()
            except (OSError, ValueError) as exc:
                if isinstance(exc, BrokenPipeError) or getattr(exc, "errno", None) == errno.EPIPE:
                    why = "it stopped reading its input (closed stdin or exited)"  # not a raw "Broken pipe"
                else:
                    why = getattr(exc, "strerror", None) or str(exc)
                self._close("cannot write to %s (%s)" % (self.name, why))
                raise McpError("cannot write to %s: %s" % (self.name, why))


def _json_line(msg):
    """One message as compact JSON (odd values such as Path keys made JSON-able)."""
    try:
        return json.dumps(msg, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # e.g. Path keys in an event's `changes`
        return json.dumps(_jsonable(msg), separators=(",", ":"), ensure_ascii=False)


class McpHttpConnection(JsonRpcSession):
    """MCP's streamable HTTP transport (2025-03-26 and later) under the shared JSON-RPC session.

    Every message is one POST to the server's URL with `Accept: application/json,
    text/event-stream`.  A request is answered by a JSON body or by an SSE stream that may
    carry the server's own requests and notifications before the response; each such POST
    is read in a thread of its own, so timeouts and cancellation work as on stdio.  The
    `Mcp-Session-Id` the server assigns at `initialize` and the negotiated
    `MCP-Protocol-Version` go on every later request.  A stream that drops before its
    response is resumed with GET + `Last-Event-ID` when the server numbered its events.
    listen() opens the GET stream for server-initiated messages where the server offers one
    (405: it does not), reconnecting when it drops.  close() sends DELETE to end the session.
    The HTTP client is the providers' (§06): same proxy and CA settings.
    """

    def __init__(self, url, headers=None, on_request=None, on_notification=None, name="peer",
                 server_name=None, bearer_env_var=None, environ=None):
        JsonRpcSession.__init__(self, on_request, on_notification, name)
        self.url = url
        self._headers = dict(headers or {})
        self._server_name = server_name or name
        self._bearer_env_var = bearer_env_var
        self._client = http_client(idle_timeout_s=MCP_HTTP_IDLE_TIMEOUT_S, environ=environ)
        self.session_id = None
        self.protocol_version = None  # sent as MCP-Protocol-Version once negotiated
        self._responses = {}  # request id -> open streaming response (aborted on cancel)
        self._listen_resp = None
        self._listen_thread = None
        self.listening = False  # the server offered a GET stream and it is open
        self.resumed = 0  # streams resumed with Last-Event-ID (for tests and `mcp list`)

    # -- HTTP plumbing -------------------------------------------------------------------
    def _request_headers(self, accept="application/json, text/event-stream", extra=None):
        headers = {"Accept": accept}
        headers.update(self._headers)
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.protocol_version:
            headers["MCP-Protocol-Version"] = self.protocol_version
        if extra:
            headers.update(extra)
        return headers

    def _open(self, method, body=None, accept="application/json, text/event-stream", extra=None, timeout=None):
        """Send one HTTP request and return the streaming response; McpError on transport errors."""
        import httpx  # startup budget

        headers = self._request_headers(accept, extra)
        if body is not None:
            headers["Content-Type"] = "application/json"
        kwargs = {"headers": headers}
        if body is not None:
            kwargs["content"] = body
        if timeout is not None:
            kwargs["timeout"] = httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_S))
        try:
            request = self._client.build_request(method, self.url, **kwargs)
            resp = self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise McpError("timed out talking to %s (%s); check the URL, the network or HTTPS_PROXY/NO_PROXY"
                           % (self._where(), type(exc).__name__))
        except (httpx.HTTPError, RuntimeError) as exc:  # RuntimeError: the client was closed under us
            raise McpError("cannot reach %s: %s (check the URL, the network, HTTPS_PROXY/NO_PROXY, or the CA "
                           "via CODEX_CA_CERTIFICATE)" % (self._where(), redact(exc) or type(exc).__name__))
        session = resp.headers.get("mcp-session-id")
        if session and not self.session_id and _MCP_SESSION_ID_RE.match(session):
            self.session_id = session
        return resp

    def _where(self):
        return "MCP server `%s` at %s" % (self._server_name, self.url.split("?")[0])

    def _status_error(self, resp, what):
        """The McpError for a non-2xx answer (the response is read and closed)."""
        import httpx  # startup budget

        try:
            body = resp.read()
        except httpx.HTTPError:
            body = b""
        resp.close()
        status = resp.status_code
        detail = _error_detail(body) or "(empty body)"
        var = self._bearer_env_var
        if status == 404 and self.session_id:
            return McpSessionExpired("%s forgot our session (HTTP 404 to %s)" % (self._where(), what))
        if status == 401:
            if var:
                hint = ("the server rejected the token in the environment variable %s "
                        "(mcp_servers.%s.bearer_token_env_var): set %s to a valid token" % (var, self._server_name, var))
            else:
                hint = ("the server wants a token: put it in an environment variable and set "
                        "mcp_servers.%s.bearer_token_env_var to that variable's name (OAuth login is not supported yet)"
                        % self._server_name)
            return McpError("%s answered HTTP 401 to %s: %s (%s)" % (self._where(), what, hint, detail))
        if status == 403:
            return McpError("%s answered HTTP 403 to %s: access denied (%s)" % (self._where(), what, detail))
        if status in (404, 405):
            return McpError("%s answered HTTP %d to %s: is this the server's streamable HTTP endpoint "
                            "(often .../mcp)? (%s)" % (self._where(), status, what, detail))
        return McpError("%s answered HTTP %d to %s: %s" % (self._where(), status, what, detail))

    # -- sending ---------------------------------------------------------------------
    def _write(self, msg):
        if self.closed.is_set():
            raise McpError("%s: %s" % (self.name, self.close_reason or "connection closed"))
        body = _json_line(msg).encode("utf-8")
        is_request = isinstance(msg, dict) and isinstance(msg.get("method"), str) and msg.get("id") is not None
        if is_request:
            req_id = msg["id"]
            threading.Thread(target=self._post_request, args=(req_id, msg["method"], body),
                             name="mcp-http-%s-%s" % (self._server_name, req_id), daemon=True).start()
            return
        what = "`%s`" % msg.get("method") if isinstance(msg, dict) and msg.get("method") else "a response"
        resp = self._open("POST", body, timeout=MCP_HTTP_SEND_TIMEOUT_S)
        if resp.status_code >= 300:
            raise self._status_error(resp, what)
        resp.close()  # 202 Accepted (a body, if any, carries nothing we wait for)

    def _post_request(self, req_id, method, body):
        """POST one request and read its answer (JSON or SSE) into the session."""
        try:
            resp = self._open("POST", body)
            if resp.status_code >= 300:
                raise self._status_error(resp, "`%s`" % method)
            self._read_answer(req_id, method, resp)
        except McpError as exc:
            self._fail_request(req_id, exc)
        except Exception as exc:  # never leave a caller waiting on a thread that died
            self._fail_request(req_id, McpError("%s: %s while reading the answer to `%s`: %s"
                                                % (self.name, type(exc).__name__, method, exc)))
        finally:
            self._responses.pop(req_id, None)

    def _read_answer(self, req_id, method, resp):
        ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "text/event-stream":
            parser = SseParser()
            self._responses[req_id] = resp
            self._read_events(resp, parser)
            attempts = 0
            while self._is_pending(req_id) and not self.closed.is_set():
                if parser.last_id is None:
                    raise McpError("%s closed the stream before answering `%s`, and gave its events no ids "
                                   "to resume from" % (self._where(), method))
                attempts += 1
                if attempts > MCP_HTTP_RESUME_ATTEMPTS:
                    raise McpError("%s kept dropping the stream of `%s` (resumed %d times)"
                                   % (self._where(), method, attempts - 1))
                delay = parser.retry_ms / 1000.0 if parser.retry_ms is not None else backoff(attempts)
                if self.closed.wait(min(delay, 5.0)) or not self._is_pending(req_id):
                    break
                log("info", "mcp %s: resuming the stream of `%s` after event %s", self._server_name, method, parser.last_id)
                resp = self._open("GET", accept="text/event-stream", extra={"Last-Event-ID": parser.last_id})
                if resp.status_code >= 300:
                    raise self._status_error(resp, "resuming `%s`" % method)
                self.resumed += 1
                parser = SseParser(last_id=parser.last_id)
                self._responses[req_id] = resp
                self._read_events(resp, parser)
            return
        import httpx  # startup budget

        try:
            payload = resp.read()
        except httpx.HTTPError as exc:
            raise McpError("%s dropped the connection while answering `%s` (%s)"
                           % (self._where(), method, redact(exc) or type(exc).__name__))
        finally:
            resp.close()
        if not payload.strip():
            if self._is_pending(req_id):
                raise McpError("%s answered `%s` with an empty body (HTTP %d)" % (self._where(), method, resp.status_code))
            return
        try:
            msg = json.loads(payload.decode("utf-8", "replace"))
        except ValueError as exc:
            raise McpError("%s answered `%s` with %s that is not JSON (%s)" % (self._where(), method, ctype or "a body", exc))
        self._dispatch(msg)
        if self._is_pending(req_id):
            raise McpError("%s answered `%s` without a JSON-RPC response to it" % (self._where(), method))

    def _read_events(self, resp, parser):
        """Dispatch the JSON-RPC messages of one SSE stream until it ends or drops."""
        try:
            for event in iter_sse(resp, parser=parser):
                if event.event != "message" or not event.data.strip():
                    continue
                try:
                    msg = json.loads(event.data)
                except ValueError as exc:
                    log("warn", "mcp %s: unparseable SSE event dropped: %s", self._server_name, exc)
                    continue
                self._dispatch(msg)
        except StreamError as exc:
            log("info", "mcp %s: %s", self._server_name, exc)

    def _forget(self, req_id, reason):
        JsonRpcSession._forget(self, req_id, reason)
        resp = self._responses.pop(req_id, None)
        if resp is not None:
            abort_response(resp)

    # -- the GET stream ---------------------------------------------------------------
    def listen(self):
        """Open the GET stream for server-initiated messages in the background (if offered)."""
        if self._listen_thread is None:
            self._listen_thread = threading.Thread(target=self._listen_loop, name="mcp-http-get-%s" % self._server_name, daemon=True)
            self._listen_thread.start()

    def _listen_loop(self):
        failures, last_id, retry_ms = 0, None, None
        while not self.closed.is_set():
            try:
                resp = self._open("GET", accept="text/event-stream", extra={"Last-Event-ID": last_id} if last_id else None)
            except McpError as exc:
                resp, error = None, str(exc)
            else:
                error = None
                if resp.status_code == 405:  # the server offers no GET stream
                    resp.close()
                    log("debug", "mcp %s: no GET stream offered", self._server_name)
                    return
                if resp.status_code >= 300:
                    error = str(self._status_error(resp, "the GET stream"))
                    resp = None
            if resp is not None and self.closed.is_set():  # close() ran while we connected
                abort_response(resp)
                resp.close()
                return
            if resp is not None:
                self._listen_resp, self.listening, failures = resp, True, 0
                parser = SseParser(last_id=last_id)
                self._read_events(resp, parser)
                self.listening = False
                last_id, retry_ms = parser.last_id, parser.retry_ms if parser.retry_ms is not None else retry_ms
            else:
                failures += 1
                if failures > MCP_HTTP_LISTEN_RETRIES:
                    log("warn", "mcp %s: giving up on the GET stream: %s", self._server_name, error)
                    return
            delay = retry_ms / 1000.0 if retry_ms is not None and failures == 0 else backoff(max(1, failures))
            if self.closed.wait(min(delay, 10.0)):
                return

    # -- shutdown -----------------------------------------------------------------------
    def close(self):
        """Stop the streams, DELETE the session (where there is one), close the client."""
        if self.closed.is_set():
            return
        self._close("connection closed by codex")
        for resp in [self._listen_resp] + list(self._responses.values()):
            if resp is not None:
                abort_response(resp)
        if self.session_id:
            try:
                resp = self._open("DELETE", timeout=MCP_HTTP_DELETE_TIMEOUT_S)
                resp.close()
                log("debug", "mcp %s: DELETE session -> HTTP %d", self._server_name, resp.status_code)
            except McpError as exc:
                log("info", "mcp %s: ending the session failed: %s", self._server_name, exc)
        try:
            self._client.close()
        except Exception:
            pass


def qualify_tool_name(server, tool):
    """SERVER__TOOL, or its first 24 chars plus the SHA-1 hex of it when over 64 chars.

    Characters the model APIs refuse in a tool name (anything outside [a-zA-Z0-9_-]) become
    `_`, as upstream does later: in mid-2025 one tool named `get.weather` made every
    request of the session fail.  Calls are routed by table lookup, never by splitting.
    """
    import hashlib  # startup budget: only MCP sessions need it

    name = _MCP_TOOL_NAME_BAD_CHARS.sub("_", server + MCP_TOOL_DELIMITER + tool)
    if len(name.encode("utf-8")) > MCP_MAX_TOOL_NAME:
        digest = hashlib.sha1(name.encode("utf-8")).hexdigest()
        name = name[: MCP_MAX_TOOL_NAME - len(digest)] + digest
    return name


def sanitize_input_schema(schema):
    """The tool's inputSchema, made a JSON-Schema object without altering what it says.

    Only a missing `type` or `properties` is filled in; `integer`, `anyOf`, `$ref`,
    `$defs` and everything else pass through unchanged (upstream once dropped tools whose
    schema used `integer`).
    """
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    out = dict(schema)
    if "type" not in out and not any(k in out for k in ("anyOf", "oneOf", "allOf", "$ref")):
        out["type"] = "object"
    if out.get("type") == "object" and not isinstance(out.get("properties"), dict):
        out["properties"] = {}
    return out


def _mcp_block_summary(block):
    """A short stand-in for a non-text content block (what the UIs and model see)."""
    kind = block.get("type")
    if kind == "image":
        return "<image content: %s, %d base64 chars>" % (block.get("mimeType", "?"), len(block.get("data") or ""))
    if kind == "audio":
        return "<audio content: %s>" % block.get("mimeType", "?")
    if kind == "resource_link":
        return "link: %s" % block.get("uri", "")
    if kind == "resource":
        res = block.get("resource") or {}
        if "text" in res:
            return "embedded resource: %s\n%s" % (res.get("uri", ""), res.get("text", ""))
        return "embedded resource: %s (%s, binary)" % (res.get("uri", ""), res.get("mimeType", "?"))
    return json.dumps(block, ensure_ascii=False)


def format_mcp_result_for_model(result):
    """The function_call_output text for a CallToolResult.

    `structuredContent` wins when present (as upstream does later); otherwise text blocks
    are joined as they are and other blocks become one-line stand-ins (an image's base64
    would only burn context).  Upstream sends the JSON of the whole result and hides
    `isError` from the model; we say "Error:" so the model can tell.
    """
    if not isinstance(result, dict):
        return json.dumps(result, ensure_ascii=False)
    structured = result.get("structuredContent")
    if structured is not None:
        text = json.dumps(structured, ensure_ascii=False)
    else:
        parts = []
        for block in result.get("content") or []:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif isinstance(block, dict):
                parts.append(_mcp_block_summary(block))
        text = "\n".join(parts)
    if result.get("isError"):
        return "Error: " + (text or "the tool reported an error without details")
    return text


def image_info(data):
    """(width, height, kind) from the first bytes of a PNG, JPEG, GIF or WebP image; None if unknown.

    `data` is base64 text (as MCP sends it) or bytes.
    """
    import base64
    import struct

    if isinstance(data, str):
        try:
            head = base64.b64decode(data[:87384].strip() + "=" * (-len(data[:87384].strip()) % 4), validate=False)
        except (ValueError, TypeError):
            return None
    else:
        head = bytes(data[:65536])
    try:
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            w, h = struct.unpack(">II", head[16:24])
            return w, h, "png"
        if head[:6] in (b"GIF87a", b"GIF89a"):
            w, h = struct.unpack("<HH", head[6:10])
            return w, h, "gif"
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            chunk = head[12:16]
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", head[26:30])
                return w & 0x3FFF, h & 0x3FFF, "webp"
            if chunk == b"VP8L":
                bits = struct.unpack("<I", head[21:25])[0]
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, "webp"
            if chunk == b"VP8X":
                return (int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1, "webp")
        if head[:2] == b"\xff\xd8":
            i = 2
            while i + 9 < len(head):
                if head[i] != 0xFF:
                    i += 1
                    continue
                marker = head[i + 1]
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                    i += 2
                    continue
                length = struct.unpack(">H", head[i + 2:i + 4])[0]
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    h, w = struct.unpack(">HH", head[i + 5:i + 9])
                    return w, h, "jpeg"
                i += 2 + length
    except struct.error:
        return None
    return None


def _mcp_image_label(block):
    """`[image: 640x480 png]` (or `[image: image/png, 12 KB]` when the size cannot be read)."""
    info = image_info(block.get("data") or "")
    if info is not None:
        return "[image: %dx%d %s]" % info
    size = len(block.get("data") or "") * 3 // 4
    return "[image: %s, %s]" % (block.get("mimeType", "?"), _human_bytes(size))


def _human_bytes(n):
    return "%d B" % n if n < 1024 else ("%.0f KB" % (n / 1024.0) if n < 1024 * 1024 else "%.1f MB" % (n / 1048576.0))


def _mcp_image_part(block):
    """The input_image part for an MCP image block, or a reason it is not sent."""
    mime = str(block.get("mimeType") or "").lower()
    data = block.get("data") or ""
    if mime not in MCP_IMAGE_TYPES:
        return None, "%s is not an image type the model APIs take (%s)" % (mime or "no type", ", ".join(MCP_IMAGE_TYPES))
    if not isinstance(data, str) or not data:
        return None, "no data"
    size = len(data) * 3 // 4
    if size > MCP_IMAGE_MAX_BYTES:
        return None, "%s is over the %s limit" % (_human_bytes(size), _human_bytes(MCP_IMAGE_MAX_BYTES))
    return {"type": "input_image", "image_url": "data:%s;base64,%s" % (mime, "".join(data.split()))}, None


def mcp_result_to_output(result):
    """The function_call_output `output` for a CallToolResult.

    Without images it is the text of format_mcp_result_for_model().  With image blocks it
    is a list of `input_text` and `input_image` parts in the server's order (the Responses
    API takes that; Chat gets the images as a user message where the model accepts them,
    see history_to_chat_messages), at most MCP_MAX_IMAGES images of MCP_IMAGE_MAX_BYTES
    each; an image over the limits stays a one-line stand-in.
    """
    if not isinstance(result, dict):
        return format_mcp_result_for_model(result)
    blocks = [b for b in result.get("content") or [] if isinstance(b, dict)]
    if not any(b.get("type") == "image" for b in blocks):
        return format_mcp_result_for_model(result)
    parts, texts, images = [], [], 0

    def flush():
        if texts:
            parts.append({"type": "input_text", "text": "\n".join(texts)})
            del texts[:]

    structured = result.get("structuredContent")
    if structured is not None:
        texts.append(json.dumps(structured, ensure_ascii=False))
    for block in blocks:
        kind = block.get("type")
        if kind == "image":
            part, why = _mcp_image_part(block) if images < MCP_MAX_IMAGES else (None, "more than %d images" % MCP_MAX_IMAGES)
            if part is not None:
                texts.append(_mcp_image_label(block))
                flush()
                parts.append(part)
                images += 1
            else:
                texts.append("%s (not shown: %s)" % (_mcp_image_label(block), why))
        elif structured is None:
            texts.append(str(block.get("text", "")) if kind == "text" else _mcp_block_summary(block))
    flush()
    if not images:  # none could be sent: the text, with why
        text = "\n".join(p["text"] for p in parts)
        return "Error: " + text if result.get("isError") else text
    if result.get("isError"):
        if parts[0].get("type") == "input_text":
            parts[0] = {"type": "input_text", "text": "Error: " + parts[0]["text"]}
        else:
            parts.insert(0, {"type": "input_text", "text": "Error:"})
    return parts


def format_mcp_result_for_display(result, max_lines=5):
    """Lines for the UIs: up to max_lines of each text block, stand-ins for the rest."""
    lines = []
    if not isinstance(result, dict):
        return [str(result)]
    for block in result.get("content") or []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        text = block.get("text", "") if kind == "text" else (_mcp_image_label(block) if kind == "image" else _mcp_block_summary(block))
        block_lines = str(text).splitlines() or [""]
        lines.extend(block_lines[:max_lines])
        if len(block_lines) > max_lines:
            lines.append("... (%d more lines)" % (len(block_lines) - max_lines))
    if not lines and result.get("structuredContent") is not None:
        lines.append(json.dumps(result["structuredContent"], ensure_ascii=False)[:400])
    return lines


###############################################################################
# §14b MCP client: servers and the connection manager
###############################################################################


def _mcp_server_env(configured, environ=None, passthrough=()):
    """The whitelisted parent variables that are set, those named in `env_vars`, then `env` over them."""
    environ = os.environ if environ is None else environ
    env = {k: environ[k] for k in tuple(MCP_ENV_WHITELIST) + tuple(passthrough or ()) if k in environ}
    for key, value in (configured or {}).items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        env[str(key)] = str(value)
    return env


def mcp_transport(spec):
    """`stdio` or `streamable_http` for a [mcp_servers.NAME] entry (as §04 resolved it)."""
    return spec.get("transport") or ("streamable_http" if spec.get("url") else "stdio")


def mcp_http_headers(name, spec, environ=None):
    """The headers a streamable HTTP server gets: http_headers, env_http_headers, the bearer token."""
    environ = os.environ if environ is None else environ
    headers = {str(k): str(v) for k, v in (spec.get("http_headers") or {}).items()}
    for header, var in (spec.get("env_http_headers") or {}).items():
        value = environ.get(str(var), "").strip()
        if value:
            headers[str(header)] = value
    var = spec.get("bearer_token_env_var")
    if var:
        token = environ.get(var, "").strip()
        if not token:
            raise McpError("the environment variable %s is not set (mcp_servers.%s.bearer_token_env_var): "
                           "export the server's token in it" % (var, name))
        headers["Authorization"] = "Bearer " + token
    return headers


class McpClient(object):
    """One configured MCP server: its transport (a process or a URL), its session, its tools."""

    def __init__(self, name, spec, log_dir=None, client_version=None):
        self.name = name
        self.spec = dict(spec)
        self.state = "starting"  # starting | ready | failed | disabled | stopped
        self.error = None
        self.tools = []  # tool dicts, in the server's order, after enabled_tools/disabled_tools
        self.transport = mcp_transport(self.spec)
        self.notice = None  # a note for the user (a tool filter that leaves no tools), reported once
        self.protocol_version = None
        self.server_info = {}
        self.capabilities = {}
        self.startup_seconds = None
        self.proc = None
        self.conn = None
        self.done = threading.Event()  # set once the start attempt has finished
        self._log_dir = log_dir
        self._tail = []
        self._tail_lock = threading.Lock()
        self._stderr_thread = None
        self._client_version = client_version or __version__
        self.on_tools_changed = None

    # -- startup -------------------------------------------------------------------
    def startup_timeout(self):
        """Seconds allowed for spawn + initialize + tools/list (capped)."""
        value = self.spec.get("startup_timeout_sec")
        value = 10.0 if value is None else float(value)
        return max(0.1, min(value, MCP_STARTUP_TIMEOUT_MAX))

    def tool_timeout(self):
        """Default seconds for one tools/call."""
        value = self.spec.get("tool_timeout_sec")
        return 60.0 if value is None else max(0.1, float(value))

    def start(self):
        """Spawn, initialize and list tools; never raises (see .state and .error)."""
        began = time.monotonic()
        deadline = began + self.startup_timeout()
        try:
            self._connect()
            self._initialize(deadline)
            self.tools = self._filter_tools(self.list_tools(deadline=deadline))
            self.startup_seconds = time.monotonic() - began
            self.state = "ready"
            log("info", "mcp %s: ready with %d tools in %.2fs", self.name, len(self.tools), self.startup_seconds)
        except McpError as exc:
            self._fail(str(exc))
        except Exception as exc:  # a broken server must never take the session down
            self._fail("%s: %s" % (type(exc).__name__, exc))
        finally:
            self.done.set()

    def _fail(self, reason):
        """Record a startup failure with the tail of stderr, and stop the process."""
        if self.proc is not None:
            try:
                self.proc.wait(timeout=0.3)
            except Exception:
                pass
            if self._stderr_thread is not None:
                self._stderr_thread.join(0.5)
            if self.proc.poll() is not None and "exited" not in reason:
                reason += " (the server exited with code %s)" % self.proc.returncode
        tail = self.stderr_tail(3)
        if tail:
            reason += "; stderr: " + " | ".join(tail)
        self.error = reason
        self.state = "failed"
        log("warn", "mcp %s: %s", self.name, reason)
        self.stop()
        self.state = "failed"

    def _connect(self):
        """Start the transport: spawn the process (stdio) or set up the HTTP session."""
        if self.transport == "streamable_http":
            url = self.spec.get("url")
            if not url:
                raise McpError("no `url` for a streamable HTTP server; set mcp_servers.%s.url" % self.name)
            self.conn = McpHttpConnection(
                url, mcp_http_headers(self.name, self.spec), on_request=self._on_request,
                on_notification=self._on_notification, name="MCP server `%s`" % self.name, server_name=self.name,
                bearer_env_var=self.spec.get("bearer_token_env_var"),
            )
        elif self.spec.get("command"):
            self._spawn()
        else:
            raise McpError("mcp_servers.%s needs `command` (a program to start) or `url` (a streamable HTTP server)" % self.name)

    def _filter_tools(self, tools):
        """The tools that enabled_tools (allow-list) and disabled_tools let through."""
        enabled = self.spec.get("enabled_tools")
        disabled = set(self.spec.get("disabled_tools") or ())
        if enabled is None and not disabled:
            return tools
        allowed = None if enabled is None else set(enabled)
        kept = [t for t in tools if (allowed is None or t["name"] in allowed) and t["name"] not in disabled]
        if tools and not kept and self.notice is None:
            names = ", ".join(t["name"] for t in tools[:12]) + (", ..." if len(tools) > 12 else "")
            self.notice = ("MCP server `%s`: enabled_tools/disabled_tools leave none of its %d tools, so the model "
                           "gets none; its tools are: %s" % (self.name, len(tools), names))
            log("warn", "%s", self.notice)
        return kept

    def _tool_allowed(self, tool):
        enabled = self.spec.get("enabled_tools")
        return (enabled is None or tool in enabled) and tool not in (self.spec.get("disabled_tools") or ())

    def _spawn(self):
        import shutil  # startup budget: only when an MCP server is configured
        import subprocess

        env = _mcp_server_env(self.spec.get("env"), passthrough=self.spec.get("env_vars") or ())
        command = str(self.spec.get("command") or "")
        cwd = self.spec.get("cwd") or None
        exe = command
        if os.sep not in command:
            exe = shutil.which(command, path=env.get("PATH", os.defpath))
            if exe is None:
                raise McpError("command `%s` not found on PATH; fix mcp_servers.%s.command" % (command, self.name))
        argv = [exe] + [str(a) for a in self.spec.get("args") or []]
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=env, cwd=cwd, start_new_session=True,
            )
        except OSError as exc:
            raise McpError("cannot start `%s`: %s" % (command, exc.strerror or exc))
        self._stderr_thread = threading.Thread(target=self._drain_stderr, name="mcp-stderr-%s" % self.name, daemon=True)
        self._stderr_thread.start()
        self.conn = JsonRpcConnection(
            self.proc.stdout, self.proc.stdin, on_request=self._on_request,
            on_notification=self._on_notification, name="MCP server `%s`" % self.name,
        ).start()

    def _drain_stderr(self):
        """Keep the last lines of the server's stderr, and append all of it to its log file."""
        sink = None
        if self._log_dir is not None:
            try:
                sink = open_private_append(Path(self._log_dir) / ("mcp-%s.log" % self.name))
                sink.write(("--- %s start: %s\n" % (_now_iso(), self.spec.get("command"))).encode("utf-8"))
            except OSError:
                sink = None
        try:
            for raw in iter(self.proc.stderr.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip()
                with self._tail_lock:
                    self._tail.append(line)
                    del self._tail[:-MCP_STDERR_TAIL_LINES]
                if sink is not None:
                    sink.write(raw)
                    sink.flush()
        except (OSError, ValueError):
            pass
        finally:
            if sink is not None:
                sink.close()

    def stderr_tail(self, lines=5):
        """The last non-empty lines the server wrote to stderr."""
        with self._tail_lock:
            return [line for line in self._tail if line.strip()][-lines:]

    def _left(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise McpError("timed out after %gs" % self.startup_timeout())
        return left

    def _initialize(self, deadline):
        params = {
            "protocolVersion": MCP_PROTOCOL_VERSIONS[0],
            "capabilities": {},
            "clientInfo": {"name": "codex-mcp-client", "title": "Codex", "version": self._client_version},
        }
        try:
            result = self.conn.request("initialize", params, timeout=self._left(deadline))
        except McpError as exc:
            msg = str(exc)
            if "timed out" in msg:
                msg = "no answer to `initialize` within %gs" % self.startup_timeout()
                if self.transport == "streamable_http":
                    msg += " from %s (raise mcp_servers.%s.startup_timeout_sec if it is just slow)" % (
                        self.spec.get("url"), self.name)
                elif os.path.basename(str(self.spec.get("command"))) in _MCP_SLOW_LAUNCHERS:
                    msg += " (first runs of %s download packages: raise mcp_servers.%s.startup_timeout_sec)" % (
                        self.spec.get("command"), self.name)
                else:
                    msg += " (raise mcp_servers.%s.startup_timeout_sec if it is just slow)" % self.name
            raise McpError(msg)
        if not isinstance(result, dict):
            raise McpError("`initialize` answered %r, not an object" % (result,))
        version = result.get("protocolVersion")
        if version not in MCP_PROTOCOL_VERSIONS:
            raise McpError(
                "server chose protocol version %r; codex speaks %s" % (version, ", ".join(reversed(MCP_PROTOCOL_VERSIONS)))
            )
        self.protocol_version = version
        self.capabilities = result.get("capabilities") or {}
        self.server_info = result.get("serverInfo") or {}
        if isinstance(self.conn, McpHttpConnection):
            self.conn.protocol_version = version
        self.conn.notify("notifications/initialized")
        if isinstance(self.conn, McpHttpConnection):
            self.conn.listen()

    def list_tools(self, deadline=None, timeout=None):
        """All tools, following nextCursor pages (upstream read only the first page)."""
        if deadline is None:
            deadline = time.monotonic() + (timeout or self.startup_timeout())
        tools, cursor, seen = [], None, set()
        for _page in range(MCP_MAX_TOOL_PAGES):
            params = {"cursor": cursor} if cursor is not None else {}
            result = self.conn.request("tools/list", params, timeout=self._left(deadline)) or {}
            page = result.get("tools") or []
            tools.extend(t for t in page if isinstance(t, dict) and isinstance(t.get("name"), str))
            cursor = result.get("nextCursor")
            if not cursor:
                return tools
            if cursor in seen:
                raise McpError("tools/list repeated the cursor %r" % (cursor,))
            seen.add(cursor)
        raise McpError("tools/list returned more than %d pages" % MCP_MAX_TOOL_PAGES)

    # -- what the server sends us -------------------------------------------------
    def _on_request(self, id, method, params):
        if method == "ping":
            self.conn.respond(id, {})
        else:  # we declare no client capabilities (roots, sampling, elicitation)
            self.conn.respond_error(id, JSONRPC_METHOD_NOT_FOUND, "codex does not support `%s`" % method)

    def _on_notification(self, method, params):
        if method == "notifications/tools/list_changed" and self.state == "ready":
            threading.Thread(target=self._refresh_tools, name="mcp-relist-%s" % self.name, daemon=True).start()
        elif method == "notifications/message" and isinstance(params, dict):
            log("info", "mcp %s: %s", self.name, params.get("data"))

    def _refresh_tools(self):
        try:
            self.tools = self._filter_tools(self.list_tools(timeout=self.tool_timeout()))
            log("info", "mcp %s: tool list changed, now %d tools", self.name, len(self.tools))
        except McpError as exc:
            log("warn", "mcp %s: re-listing tools failed: %s", self.name, exc)
            return
        if self.on_tools_changed is not None:
            self.on_tools_changed(self.name)

    # -- calls and shutdown ----------------------------------------------------------
    def call_tool(self, tool, arguments=None, timeout=None, cancel=None):
        """tools/call; returns the CallToolResult dict or raises McpError."""
        if self.state != "ready":
            raise McpError("MCP server `%s` is not available (%s)" % (self.name, self.error or self.state))
        if not self._tool_allowed(tool):
            raise McpError("MCP tool `%s` of server `%s` is filtered out by mcp_servers.%s.enabled_tools/disabled_tools"
                           % (tool, self.name, self.name))
        timeout = self.tool_timeout() if timeout is None else timeout
        params = {"name": tool, "arguments": arguments if arguments is not None else {}}
        try:
            try:
                result = self.conn.request("tools/call", params, timeout=timeout, cancel=cancel)
            except McpSessionExpired as exc:  # the server restarted or dropped us: a new session, once
                log("info", "mcp %s: %s; initializing a new session", self.name, exc)
                self.conn.session_id = None
                self.conn.protocol_version = None
                self._initialize(time.monotonic() + self.startup_timeout())
                result = self.conn.request("tools/call", params, timeout=timeout, cancel=cancel)
        except McpError as exc:
            if self.conn.closed.is_set() and self.proc is not None:
                try:
                    self.proc.wait(timeout=1.0)
                except Exception:
                    pass
                if self._stderr_thread is not None:
                    self._stderr_thread.join(0.5)
                tail = self.stderr_tail(3)
                self.state, self.error = "failed", "the server exited (code %s) during a call%s" % (
                    self.proc.poll(), "; stderr: " + " | ".join(tail) if tail else "")
            raise McpError("MCP tool `%s` of server `%s` failed: %s" % (tool, self.name, exc))
        if not isinstance(result, dict):
            raise McpError("MCP tool `%s` of server `%s` returned %r, not a CallToolResult" % (tool, self.name, result))
        return result

    def stop(self):
        """Close stdin, wait a moment, then SIGTERM and SIGKILL the server's process group."""
        import signal

        if self.conn is not None:
            self.conn.close()
        proc = self.proc
        if proc is None:
            return
        if self.state not in ("failed",):
            self.state = "stopped"
        try:
            proc.stdin.close()
        except (OSError, ValueError):
            pass
        for sig, wait in ((None, 0.5), (signal.SIGTERM, 1.0), (signal.SIGKILL, 1.0)):
            if sig is not None:
                try:
                    os.killpg(proc.pid, sig)
                except (OSError, ProcessLookupError):
                    pass
            try:
                proc.wait(timeout=wait)
                break
            except Exception:
                continue
        for stream in (proc.stdout, proc.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass


class McpConnectionManager(object):
    """Every configured MCP server of a session, started concurrently in the background."""

    def __init__(self, cfg, only=None):
        servers = cfg.mcp_servers or {}
        if only is not None:
            servers = {k: v for k, v in servers.items() if k in only}
        self._servers = servers
        home = cfg.codex_home
        self._log_dir = Path(home) / "log" if home is not None else None
        self._clients = {}
        self._reported = set()
        self._lock = threading.Lock()
        self._started = False

    def start(self, include_disabled=False, wait_required=True):
        """Start every enabled server in its own thread; wait only for `required` ones."""
        if self._started:
            return self
        self._started = True
        if self._servers and self._log_dir is not None:
            try:
                make_private_dirs(self._log_dir)
            except OSError:
                self._log_dir = None
        for name in sorted(self._servers):
            spec = self._servers[name]
            client = McpClient(name, spec, log_dir=self._log_dir)
            self._clients[name] = client
            if not spec.get("enabled", True) and not include_disabled:
                client.state = "disabled"
                client.done.set()
            elif not _MCP_SERVER_NAME_RE.match(name):
                client.state = "failed"
                client.error = "invalid server name %r: use letters, digits, `_` and `-` only" % name
                client.done.set()
            else:
                threading.Thread(target=client.start, name="mcp-start-%s" % name, daemon=True).start()
        for name, client in sorted(self._clients.items()):
            if wait_required and client.spec.get("required"):
                client.done.wait(client.startup_timeout() + 5)
                if client.state != "ready":
                    raise McpError(
                        "required MCP server `%s` failed to start: %s" % (name, client.error or "still starting")
                    )
        return self

    def wait_ready(self, timeout=None):
        """Wait until every server has finished starting; False if the wait timed out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for client in list(self._clients.values()):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not client.done.wait(left):
                return False
        return True

    def starting(self):
        """Names of the servers still starting, in name order."""
        return [name for name, c in sorted(self._clients.items()) if not c.done.is_set()]

    def wait_started(self, cancel=None, poll=0.05):
        """Wait until no server is still starting, each bounded by its startup_timeout_sec
        (plus a grace for the process to be stopped); False if `cancel` was set first."""
        began = time.monotonic()
        for client in list(self._clients.values()):
            limit = began + client.startup_timeout() + 5
            while not client.done.wait(poll):
                if (cancel is not None and cancel.is_set()) or time.monotonic() > limit:
                    return cancel is None or not cancel.is_set()
        return True

    def _table(self):
        """qualified name -> (client, tool dict), first server (by name) wins duplicates."""
        table = {}
        for name in sorted(self._clients):
            client = self._clients[name]
            if client.state != "ready":
                continue
            for tool in list(client.tools):
                qualified = qualify_tool_name(name, tool["name"])
                if qualified in table:
                    log("warn", "mcp: duplicate tool name %s skipped", qualified)
                    continue
                table[qualified] = (client, tool)
        return table

    def tools(self):
        """{qualified_name: {"name", "description", "inputSchema"}} of the ready servers."""
        out = {}
        for qualified, (_client, tool) in self._table().items():
            out[qualified] = {
                "name": tool["name"],
                "description": tool.get("description") or "",
                "inputSchema": sanitize_input_schema(tool.get("inputSchema")),
            }
        return out

    def lookup(self, qualified_name):
        """(server name, raw tool name) for a qualified name, or None."""
        entry = self._table().get(qualified_name)
        return None if entry is None else (entry[0].name, entry[1]["name"])

    def call(self, qualified_name, arguments=None, timeout=None, cancel=None):
        """Call a tool by its qualified name; returns the CallToolResult dict."""
        entry = self._table().get(qualified_name)
        if entry is None:
            raise McpError("unknown MCP tool `%s`" % qualified_name)
        client, tool = entry
        return client.call_tool(tool["name"], arguments, timeout, cancel)

    def call_tool(self, server, tool, arguments=None, timeout=None, cancel=None):
        """Call a tool by server name and raw tool name (used by `codex mcp call`)."""
        client = self._clients.get(server)
        if client is None:
            raise McpError("no MCP server named `%s` in [mcp_servers]" % server)
        return client.call_tool(tool, arguments, timeout, cancel)

    def failures(self):
        """One line per server that failed to start, with the tail of its stderr."""
        return [
            "MCP client for `%s` failed to start: %s" % (name, c.error)
            for name, c in sorted(self._clients.items())
            if c.state == "failed" and c.done.is_set()
        ]

    def new_failures(self):
        """The failures (and notes, such as a tool filter leaving no tools) not returned by an
        earlier call: report each server once."""
        out = []
        with self._lock:
            for name, c in sorted(self._clients.items()):
                if c.state == "failed" and c.done.is_set() and name not in self._reported:
                    self._reported.add(name)
                    out.append("MCP client for `%s` failed to start: %s" % (name, c.error))
                elif c.notice is not None and (name, "notice") not in self._reported:
                    self._reported.add((name, "notice"))
                    out.append(c.notice)
        return out

    def status(self):
        """One dict per configured server for `codex mcp list`."""
        out = []
        for name in sorted(self._servers):
            spec = self._servers[name]
            c = self._clients.get(name)
            state = c.state if c is not None else ("configured" if spec.get("enabled", True) else "disabled")
            out.append({
                "name": name,
                "status": state,
                "transport": mcp_transport(spec),
                "command": spec.get("command"),
                "args": list(spec.get("args") or []),
                "url": spec.get("url"),
                "enabled": bool(spec.get("enabled", True)),
                "required": bool(spec.get("required", False)),
                "tools": [t["name"] for t in c.tools] if c is not None and state == "ready" else [],
                "protocolVersion": c.protocol_version if c is not None else None,
                "serverInfo": c.server_info if c is not None else {},
                "startupSeconds": None if c is None or c.startup_seconds is None else round(c.startup_seconds, 3),
                "error": c.error if c is not None else None,
                "notice": c.notice if c is not None else None,
            })
        return out

    def shutdown(self):
        """Stop every server (in parallel, bounded to a few seconds)."""
        threads = []
        for client in list(self._clients.values()):
            t = threading.Thread(target=client.stop, name="mcp-stop-%s" % client.name, daemon=True)
            t.start()
            threads.append(t)
        deadline = time.monotonic() + 5
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))


def _mcp_config_path():
    """$CODEX_HOME/config.toml, the file `codex mcp add/get/remove` read and edit."""
    return codex_home() / "config.toml"


def _mcp_check_name(name):
    if not _MCP_SERVER_NAME_RE.match(name or ""):
        raise UsageError("invalid MCP server name %r: use letters, digits, `_` and `-` only" % name)


def _mcp_add(args):
    """`codex mcp add NAME [--env K=V] -- COMMAND ARGS...` or `codex mcp add NAME --url URL [--bearer-token-env-var VAR]`."""
    _mcp_check_name(args.name)
    argv = list(args.command_argv or [])
    if argv and argv[0] == "--":
        argv = argv[1:]
    if bool(argv) == bool(args.url):
        raise UsageError("give either `-- COMMAND [ARGS...]` (a local stdio server) or `--url URL` (a streamable HTTP "
                         "server), e.g. `codex mcp add docs -- npx -y some-mcp-server`")
    entry = {}
    if argv:
        if args.bearer_token_env_var:
            raise UsageError("--bearer-token-env-var is for --url servers")
        entry["command"] = argv[0]
        if argv[1:]:
            entry["args"] = argv[1:]
        env = {}
        for item in args.env or ():
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise UsageError("--env %r: expected KEY=VALUE" % item)
            env[key.strip()] = value
        if env:
            entry["env"] = env
    else:
        if args.env:
            raise UsageError("--env is for local (stdio) servers; a --url server gets headers or a bearer token instead")
        entry["url"] = args.url
        if args.bearer_token_env_var:
            entry["bearer_token_env_var"] = args.bearer_token_env_var
    path = _mcp_config_path()
    try:
        check_mcp_server("--url" if args.url else "codex mcp add", args.name, entry, [])
    except ConfigError as exc:
        raise UsageError(str(exc).replace("`mcp_servers.%s.url`" % args.name, "the URL"))
    lines = ["%s = %s" % (toml_key(key), toml_value(value)) for key, value in entry.items()]
    replaced = edit_config_table(path, ["mcp_servers", args.name], lines)
    print(("Replaced MCP server `%s` in %s." if replaced else "Added MCP server `%s` to %s.") % (args.name, path))
    if args.bearer_token_env_var and not os.environ.get(args.bearer_token_env_var, "").strip():
        print("Set %s to the server's token before starting codex." % args.bearer_token_env_var)
    return 0


def _mcp_remove(args):
    """`codex mcp remove NAME`: delete its table from config.toml, keeping the rest as it is."""
    _mcp_check_name(args.name)
    path = _mcp_config_path()
    if not path.exists() or not edit_config_table(path, ["mcp_servers", args.name], None):
        sys.stderr.write("codex: no MCP server named `%s` in %s\n" % (args.name, path))
        return 1
    print("Removed MCP server `%s` from %s." % (args.name, path))
    return 0


def _mcp_get(args):
    """`codex mcp get NAME [--json]`: one server's entry as config.toml has it."""
    home = codex_home()
    tree, path = read_config_file(home)
    servers = tree.get("mcp_servers") if isinstance(tree.get("mcp_servers"), dict) else {}
    if args.name not in servers:
        known = ", ".join(sorted(servers)) or "none"
        sys.stderr.write("codex: no MCP server named `%s` in %s; configured: %s\n" % (args.name, path, known))
        return 1
    problem, warnings = None, []
    try:
        entry = check_mcp_server(str(path), args.name, servers[args.name], warnings)
    except ConfigError as exc:
        problem = str(exc)
        raw = servers[args.name] if isinstance(servers[args.name], dict) else {}
        entry = dict(raw, transport=mcp_transport(raw))
    if entry["transport"] == "streamable_http":
        transport = {"type": "streamable_http", "url": entry.get("url"),
                     "bearer_token_env_var": entry.get("bearer_token_env_var"),
                     "http_headers": entry.get("http_headers") or {}, "env_http_headers": entry.get("env_http_headers") or {}}
    else:
        transport = {"type": "stdio", "command": entry.get("command"), "args": list(entry.get("args") or []),
                     "env": entry.get("env") or {}, "env_vars": list(entry.get("env_vars") or []), "cwd": entry.get("cwd")}
    info = {"name": args.name, "enabled": entry.get("enabled", True) is not False, "required": bool(entry.get("required")),
            "transport": transport, "startup_timeout_sec": entry.get("startup_timeout_sec", 10),
            "tool_timeout_sec": entry.get("tool_timeout_sec", 60), "enabled_tools": entry.get("enabled_tools"),
            "disabled_tools": list(entry.get("disabled_tools") or []), "problem": problem}
    if args.json:
        sys.stdout.write(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
        return 0

    def masked(table):  # values may be secrets: names only
        return ", ".join("%s=***" % k for k in table) or "-"

    out = [args.name, "  enabled: %s" % str(info["enabled"]).lower(), "  transport: %s" % transport["type"]]
    if transport["type"] == "stdio":
        out += ["  command: %s" % transport["command"], "  args: %s" % (" ".join(transport["args"]) or "-"),
                "  env: %s" % masked(transport["env"]), "  env_vars: %s" % (", ".join(transport["env_vars"]) or "-"),
                "  cwd: %s" % (transport["cwd"] or "-")]
    else:
        out += ["  url: %s" % transport["url"], "  bearer_token_env_var: %s" % (transport["bearer_token_env_var"] or "-"),
                "  http_headers: %s" % masked(transport["http_headers"]),
                "  env_http_headers: %s" % (", ".join("%s=%s" % kv for kv in transport["env_http_headers"].items()) or "-")]
    out += ["  startup_timeout_sec: %s" % info["startup_timeout_sec"], "  tool_timeout_sec: %s" % info["tool_timeout_sec"],
            "  enabled_tools: %s" % ("(all)" if info["enabled_tools"] is None else ", ".join(info["enabled_tools"]) or "(none)"),
            "  disabled_tools: %s" % (", ".join(info["disabled_tools"]) or "-")]
    if problem:
        out.append("  problem: %s" % problem)
    out.append("  remove: codex mcp remove %s" % args.name)
    print("\n".join(out))
    return 0


def _mcp_list(cfg, as_json=False):
    """Start every configured server, wait for them, print status and tool counts."""
    mgr = McpConnectionManager(cfg)
    try:
        mgr.start(wait_required=False)  # a failed required server is listed, not fatal here
        mgr.wait_ready(MCP_STARTUP_TIMEOUT_MAX + 5)
        rows = mgr.status()
    finally:
        mgr.shutdown()
    failed = 1 if any(r["status"] == "failed" for r in rows) else 0  # a script can tell
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return failed
    if not rows:
        print("No MCP servers configured. Add one with `codex mcp add NAME -- COMMAND ARGS...` or "
              "`codex mcp add NAME --url URL` (a [mcp_servers.NAME] table in %s)" % cfg.config_path)
        return 0
    width = max(4, max(len(r["name"]) for r in rows))
    print("%-*s  %-8s  %5s  %-9s  %s" % (width, "NAME", "STATUS", "TOOLS", "TRANSPORT", "COMMAND/URL"))
    for r in rows:
        count = str(len(r["tools"])) if r["status"] == "ready" else "-"
        if r["transport"] == "streamable_http":
            kind, target = "http", r["url"] or ""
        else:
            kind, target = "stdio", " ".join([r["command"] or ""] + r["args"])
        print("%-*s  %-8s  %5s  %-9s  %s" % (width, r["name"], r["status"], count, kind, target))
    for r in rows:  # one line per failed server
        if r["error"]:
            print("%s: %s" % (r["name"], r["error"]))
        elif r["notice"]:
            print("%s: %s" % (r["name"], r["notice"]))
    return failed


def _mcp_call(cfg, server, tool, arguments, as_json=False):
    """Start one server, call one tool, print its result; exit 1 when isError."""
    try:
        parsed = json.loads(arguments) if arguments and arguments.strip() else {}
    except ValueError as exc:
        raise UsageError("tool arguments must be a JSON object: %s" % exc)
    if not isinstance(parsed, dict):
        raise UsageError("tool arguments must be a JSON object, not %s" % type(parsed).__name__)
    if server not in cfg.mcp_servers:
        known = ", ".join(sorted(cfg.mcp_servers)) or "none"
        raise UsageError("no MCP server named `%s` in %s; configured: %s" % (server, cfg.config_path, known))
    mgr = McpConnectionManager(cfg, only=(server,))
    try:
        mgr.start(include_disabled=True)
        mgr.wait_ready()
        failures = mgr.failures()
        if failures:
            raise McpError(failures[0])
        result = mgr.call_tool(server, tool, parsed)
    finally:
        mgr.shutdown()
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    else:
        for line in format_mcp_result_for_display(result, max_lines=10 ** 6):
            print(line)
    return 1 if result.get("isError") else 0


###############################################################################
# §14c Hooks: lifecycle hooks that fail closed
###############################################################################

# Hooks are programs the user or an admin configured, run at points of a session's life with
# one JSON object on stdin (the field names upstream and Claude Code send) and answering with
# an exit code and optionally JSON on stdout.  They come from `[hooks]` in config.toml and
# from `hooks.json` files in Claude Code's shape:
#     {"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "..."}]}]}}
# They run outside the sandbox (the user put them there), from argv: a command string without
# shell syntax is split like a shell would and run directly; one with shell syntax runs under
# `/bin/sh -c`, whose exit status is the command's.  Unlike upstream, a hook that cannot start,
# crashes (exit code other than 0 and 2), times out, or prints something that is not its
# protocol BLOCKS the action it guards, unless that hook says `fail_closed = false`: a broken
# policy hook must not wave everything through.  Their configuration is parsed in §04.

HOOK_CONTEXT_EVENTS = ("SessionStart", "UserPromptSubmit")  #: events whose plain stdout is context for the model
#: Claude Code's names for codex's tools, so hook scripts written for it match
HOOK_TOOL_NAMES = {"shell": "Bash", "local_shell": "Bash", "shell_command": "Bash"}
HOOK_STOP_MAX_CONTINUES = 3  #: a Stop hook may keep one task going this many times in a row
HOOK_OUTPUT_LIMIT = 256 * 1024  #: bytes of a hook's stdout/stderr that are read
HOOK_BLOCK_EXIT = 2  #: the exit code that means "block", as in Claude Code


class HookOutcome(object):
    """What the hooks of one event decided: blocked (and why), allow/ask, context to add."""

    def __init__(self):
        self.blocked = False
        self.reasons = []
        self.permission = None  # PreToolUse: "allow" or "ask" (a "deny" blocks)
        self.context = []
        self.warnings = []

    @property
    def reason(self):
        """The reasons joined, for the model or the user."""
        return "; ".join(self.reasons) or "blocked by a hook"

    def block(self, why):
        self.blocked = True
        self.reasons.append(why)


def _read_capped(stream, limit=HOOK_OUTPUT_LIMIT):
    data = stream.read(limit)
    while stream.read(65536):  # drain the rest so the hook is not blocked on a full pipe
        pass
    return data


def run_hook(hook, payload, cwd=None, environ=None):
    """(exit code or None, stdout, stderr, failure) of one hook; failure names why it did not run properly."""
    import subprocess

    env = dict(os.environ if environ is None else environ)
    if cwd is not None:
        env.setdefault("CODEX_PROJECT_DIR", str(cwd))
        env.setdefault("CLAUDE_PROJECT_DIR", str(cwd))  # scripts written for Claude Code read this
    try:
        proc = subprocess.Popen(hook.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=str(cwd) if cwd else None, env=env, start_new_session=True, close_fds=True)
    except OSError as exc:
        return None, "", "", "could not start: %s" % (exc.strerror or exc)
    out, err = [b""], [b""]
    readers = [threading.Thread(target=lambda: out.__setitem__(0, _read_capped(proc.stdout)), daemon=True),
               threading.Thread(target=lambda: err.__setitem__(0, _read_capped(proc.stderr)), daemon=True)]
    for t in readers:
        t.start()
    try:
        proc.stdin.write(json.dumps(payload, separators=(",", ":")).encode("utf-8") + b"\n")
    except OSError:
        pass  # a hook that does not read its input is fine
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass
    try:
        code = proc.wait(timeout=hook.timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.wait()
        for t in readers:
            t.join(1)
        return None, "", "", "timed out after %g s" % hook.timeout
    for t in readers:
        t.join(5)
    text = lambda b: b.decode("utf-8", "replace").strip()
    if code < 0:
        return code, text(out[0]), text(err[0]), "was killed by signal %d" % -code
    return code, text(out[0]), text(err[0]), None


def run_hooks(hooks, event, payload, tool_name=None, cwd=None, environ=None):
    """Run every hook of `event` that matches, in order; return their combined HookOutcome."""
    outcome = HookOutcome()
    for hook in hooks or ():
        if hook.event != event or not hook.matches(tool_name):
            continue
        code, out, err, failure = run_hook(hook, dict(payload, hook_event_name=event), cwd, environ)
        if failure is None and code == HOOK_BLOCK_EXIT:
            outcome.block(err or out or "blocked by hook %s" % hook.name)
            continue
        if failure is None and code != 0:
            failure = "exited %d%s" % (code, ": " + err.splitlines()[-1] if err else "")
        if failure is None:
            failure = _apply_hook_output(event, out, outcome)
        if failure is not None:
            why = "hook %s %s" % (hook.name, failure)
            log("warn", "%s", why)
            if hook.fail_closed:
                outcome.block("%s; blocking (fail_closed; set fail_closed = false for this hook to let actions through)" % why)
            else:
                outcome.warnings.append(why + "; ignored (fail_closed = false)")
    return outcome


def _apply_hook_output(event, out, outcome):
    """Fold a successful hook's stdout into `outcome`; return a failure text for garbage."""
    if not out:
        return None
    if not out.startswith("{"):
        if event in HOOK_CONTEXT_EVENTS:
            outcome.context.append(out)
            return None
        return "printed something that is not a JSON object: %r" % out[:80]
    try:
        data = json.loads(out)
    except ValueError:
        return "printed invalid JSON: %r" % out[:80]
    if not isinstance(data, dict):
        return "printed JSON that is not an object"
    specific = data.get("hookSpecificOutput") if isinstance(data.get("hookSpecificOutput"), dict) else {}
    decision = data.get("decision")
    reason = str(data.get("reason") or specific.get("permissionDecisionReason") or data.get("stopReason") or "").strip()
    permission = specific.get("permissionDecision")
    if decision not in (None, "block", "approve", "allow") or permission not in (None, "allow", "deny", "ask"):
        return "answered an unknown decision (%r / %r)" % (decision, permission)
    if decision == "block" or permission == "deny" or data.get("continue") is False:
        outcome.block(reason or "blocked by a hook")
    elif permission == "ask" and outcome.permission is None:
        outcome.permission = "ask"
    elif (permission == "allow" or decision in ("approve", "allow")) and outcome.permission is None:
        outcome.permission = "allow"
    extra = specific.get("additionalContext")
    if isinstance(extra, str) and extra.strip():
        outcome.context.append(extra.strip())
    return None


def hook_permission_mode(approval_policy, sandbox_mode):
    """Claude Code's `permission_mode` for codex's approval policy and sandbox mode."""
    if approval_policy == "never" and sandbox_mode == "danger-full-access":
        return "bypassPermissions"
    if approval_policy in ("never", "on-failure") and sandbox_mode == "workspace-write":
        return "acceptEdits"
    return "default"


###############################################################################
# §15a Agent: instructions and environment context
###############################################################################

# What the model is told: the base prompt (instructions
# field), AGENTS.md files as a <user_instructions> message, and the <environment_context>
# message.  The Session that runs the turn loop is §16.

PROJECT_DOC_FILENAME = "AGENTS.md"  #: project instruction files collected from git root to cwd
PROJECT_DOC_OVERRIDE_FILENAME = "AGENTS.override.md"  #: read instead of AGENTS.md in its directory (upstream)
PROJECT_DOC_SEPARATOR = "\n\n--- project-doc ---\n\n"  #: between ~/.codex/AGENTS.md and project docs
COMPACT_PROMPT = (
    "You have exceeded the maximum number of tokens, please stop coding and instead write a short memento "
    "message for the next agent. Your note should:\n- Summarize what you finished and what still needs work. "
    "If there was a recent update_plan call, repeat its steps verbatim.\n- List outstanding TODOs with file "
    "paths / line numbers so they're easy to find.\n- Flag code that needs more tests (e.g. edge cases, "
    "performance, integration).\n- Record any open bugs, quirks, or setup steps that will make it easier "
    "for the next agent to pick up where you left off."
)

BASE_INSTRUCTIONS = """You are codex, a coding agent that works in the user's terminal. You and the user share one workspace: you read files, run commands and edit code there to finish the task the user gives you. Be precise, safe and helpful.

# How you work
- Before a group of tool calls, tell the user in one short sentence what you are about to do.
- Keep going until the task is completely solved before you end your turn; do not stop at a plan or a guess. If you are unsure about file contents or the structure of the code, use your tools to look instead of guessing.
- For tasks with several steps, keep a plan with the `update_plan` tool (when it is available): short steps, exactly one `in_progress` at a time, mark steps `completed` as you finish them.
- Fix problems at their root cause. Keep changes minimal and consistent with the style of the code base. Do not fix unrelated bugs or reformat code you are not changing; mention them instead. Do not add copyright headers or inline comments unless asked. Do not `git commit` or create branches unless the user asks.
- Files named AGENTS.md hold instructions from the user or the project. An AGENTS.md applies to the directory tree it is in; deeper files take precedence over shallower ones, and direct instructions from the user take precedence over both.
- Test your work when the project has tests or a build: start with the tests closest to your change, then widen. Do not add tests to a project that has none unless asked.

# Tools
- `shell` runs a command given as an argv array, without a shell: to use pipes, globs or `&&`, run `["bash", "-lc", "<script>"]`. Set `workdir` instead of using `cd`. Commands have a timeout (10 seconds by default; pass `timeout` in milliseconds for longer ones). Output is truncated when it is long (about 10 KiB or 256 lines), so prefer focused commands: `rg` for searching text and `rg --files` for listing files, and read files in chunks of at most 250 lines.
- Edit files with `apply_patch`, either through its own tool when offered or through `shell` as `{"command": ["apply_patch", "*** Begin Patch\\n...\\n*** End Patch\\n"]}`. The patch format:

*** Begin Patch
*** Add File: path/to/new_file.py
+every line of the new file, each starting with +
*** Update File: path/to/file.py
*** Move to: path/to/renamed.py
@@ class Or function header that locates the change
 an unchanged context line (starts with a space)
-a removed line
+an added line
*** Delete File: path/to/old.py
*** End Patch

  Paths are relative to the working directory, never absolute. Show about three lines of context around each change, and use `@@` lines to disambiguate repeated code. `*** Move to:` is optional. Mark a chunk that ends at the end of the file with `*** End of File`.

# Sandbox and approvals
The environment context message tells you the sandbox mode, the approval policy and whether the network is available.
- Sandbox `read-only`: commands can read but not write files. `workspace-write`: commands can write in the working directory and temporary directories only. `danger-full-access`: no sandbox.
- Network `restricted` means commands cannot reach the network.
- Approval policy `untrusted`: commands that are not known to be read-only are shown to the user for approval. `on-failure`: commands run in the sandbox and the user is asked to re-run a command without it when it fails. `on-request`: commands run in the sandbox; when one needs more (writing outside the workspace, network access), run it again with `with_escalated_permissions` and a one-sentence `justification`. `never`: nobody can approve anything, so work around sandbox failures yourself and never ask the user to run commands for you.
- When a command is rejected by the user, do not try to get around the rejection; find another way or explain what is needed.

# Finishing
When you are done, end your turn with a short final message: what you changed (with file paths) and how you verified it, and anything the user should do next. Use plain text or light Markdown (short bullet lists, `code` for commands and paths); do not paste large files you have written, reference their paths instead. If you could not finish, say what is left and why."""

APPLY_PATCH_EXTRA_INSTRUCTIONS = """
To edit files, call `shell` with `{"command": ["apply_patch", "<patch>"]}` where <patch> starts with `*** Begin Patch` and ends with `*** End Patch`, as described above. apply_patch prints `Success. Updated the following files:` and the changed paths when it worked; otherwise read its error, fix the patch and try again."""


# -- instructions --

def find_git_root(start):
    """The nearest directory at or above `start` holding `.git` (file or dir), or None."""
    path = Path(start)
    for candidate in [path] + list(path.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def project_doc_names(fallbacks=()):
    """File names tried in each directory, first found wins: AGENTS.override.md, AGENTS.md, then
    project_doc_fallback_filenames (e.g. CLAUDE.md)."""
    return [PROJECT_DOC_OVERRIDE_FILENAME, PROJECT_DOC_FILENAME] + [str(f) for f in fallbacks or ()]


def _first_doc(directory, names):
    for name in names:
        path = Path(directory) / name
        if path.is_file():
            return path
    return None


def read_project_docs(cwd, max_bytes=DEFAULT_PROJECT_DOC_MAX_BYTES, fallbacks=()):
    """One instruction file per directory (project_doc_names) from the git root down to cwd,
    root first, sharing max_bytes; or None."""
    if max_bytes <= 0:
        return None
    cwd = Path(cwd).resolve()
    root = find_git_root(cwd)
    dirs = [cwd]
    if root is not None:
        dirs = []
        d = cwd
        while True:
            dirs.append(d)
            if d == root or d == d.parent:
                break
            d = d.parent
        dirs.reverse()
    parts = []
    budget = max_bytes
    names = project_doc_names(fallbacks)
    top = os.path.realpath(str(dirs[0]))
    for d in dirs:
        path = _first_doc(d, names)
        if path is None:
            continue
        if budget <= 0:
            break
        if not _is_within(os.path.realpath(str(path)), top):
            # a symlink a sandboxed command may have planted (AGENTS.md -> ~/.codex/auth.json):
            # codex reads it unconfined, and would send what commands cannot read to the model
            log("warn", "%s leads outside the project (%s); not read as instructions", path, top)
            continue
        try:
            with open(str(path), "rb") as fh:
                data = fh.read(budget + 1)
        except OSError:
            continue
        if len(data) > budget:
            log("warn", "%s is larger than the remaining project_doc_max_bytes; truncated", path)
            data = data[:budget]
        text = data.decode("utf-8", "ignore")
        if text.strip():
            budget -= len(data)
            parts.append(text)
    return "\n\n".join(parts) if parts else None


def load_user_instructions(cfg):
    """$CODEX_HOME/AGENTS.md and the project docs joined as upstream does, or None."""
    home_text = None
    home_doc = _first_doc(cfg.codex_home, [PROJECT_DOC_OVERRIDE_FILENAME, PROJECT_DOC_FILENAME])
    try:
        home_text = home_doc.read_text(encoding="utf-8", errors="ignore").strip() if home_doc else None
    except OSError:
        pass
    project = read_project_docs(cfg.cwd, cfg.project_doc_max_bytes, cfg.project_doc_fallback_filenames)
    if home_text and project:
        return home_text + PROJECT_DOC_SEPARATOR + project
    return home_text or project or None


def detect_shell_name(environ=None):
    """The user's shell name from $SHELL (bash, zsh, ...), or None."""
    environ = os.environ if environ is None else environ
    shell = environ.get("SHELL", "").strip()
    return os.path.basename(shell) or None


def environment_context(ctx, shell=None):
    """The <environment_context> message text (upstream's XML form) for a TurnContext (or a
    Config): the effective policy, as enforced."""
    import html

    policy = ctx.sandbox_policy
    lines = ["<environment_context>",
             "  <cwd>%s</cwd>" % html.escape(str(ctx.cwd), quote=False),
             "  <approval_policy>%s</approval_policy>" % ctx.approval_policy,
             "  <sandbox_mode>%s</sandbox_mode>" % policy.mode,
             "  <network_access>%s</network_access>" % ("enabled" if policy.has_network() else "restricted")]
    if policy.mode == "workspace-write" and policy.writable_roots:
        lines.append("  <writable_roots>")
        lines.extend("    <root>%s</root>" % html.escape(str(r), quote=False) for r in policy.writable_roots)
        lines.append("  </writable_roots>")
    if shell:
        lines.append("  <shell>%s</shell>" % shell)
    lines.append("</environment_context>")
    return "\n".join(lines)


#: the `shell` paragraphs of BASE_INSTRUCTIONS and what replaces them when the tool is shell_command
_SHELL_ARGV_TEXT = "- `shell` runs a command given as an argv array, without a shell: to use pipes, globs or `&&`, run `[\"bash\", \"-lc\", \"<script>\"]`. Set `workdir` instead of using `cd`. Commands have a timeout (10 seconds by default; pass `timeout` in milliseconds for longer ones)."
_SHELL_COMMAND_TEXT = "- `shell_command` runs a bash script given as one string: pipes, globs, redirections, `&&` and here-documents work. Set `workdir` instead of using `cd`. Commands have a timeout (10 seconds by default; pass `timeout_ms` for longer ones)."
_PATCH_ARGV_TEXT = "through `shell` as `{\"command\": [\"apply_patch\", \"*** Begin Patch\\n...\\n*** End Patch\\n\"]}`"
_PATCH_SCRIPT_TEXT = "through `shell_command` as a here-document: `{\"command\": \"apply_patch <<'EOF'\\n*** Begin Patch\\n...\\n*** End Patch\\nEOF\"}`"

#: the base prompt for small context windows (compact_prompt); SHELL is the shell tool's line
#: and WRITE how to change a file (the file tools when offered, else a here-document).  Small
#: models describe steps instead of taking them, and claim work they did not do, unless told
#: plainly (measured with Qwen2.5-Coder-1.5B: bench/bench_local_model.py)
COMPACT_INSTRUCTIONS = """You are codex, an autonomous coding agent with a shell in the user's working directory. You do the work yourself by calling tools, one tool call per reply. Never explain to the user how to do it, and never ask the user to run anything.
- SHELL
- To change a file: first look at it with cat, then WRITE.
- After a change, run the tests or the program again to check it. Fix the code, not its tests: never change a test to make it pass unless asked.
- If a command fails, the task is not done: read the files involved, fix the cause, and run it again.
- Files change only through your tool calls: never say you changed or ran something you did not.
- Only when your last command shows that the task is done, stop calling tools and say in one or two sentences what you changed and how you checked it."""
_COMPACT_SHELL_LINES = {
    "shell_command": ("`shell_command` runs a bash script given as one string, e.g. {\"command\": \"cat main.py\"}.",
                      "write the whole corrected file with a here-document: cat > main.py <<'EOF' ... EOF"),
    "shell": ("`shell` runs an argv array without a shell, e.g. {\"command\": [\"cat\", \"main.py\"]}; for pipes or "
              "redirections use [\"bash\", \"-c\", \"SCRIPT\"].",
              "write the whole corrected file with a here-document: [\"bash\", \"-c\", \"cat > main.py <<'EOF' ... EOF\"]"),
}
_COMPACT_FILE_TOOLS_LINE = ("call edit_file to replace the wrong text with the right one (old_text copied exactly "
                            "from the file). To create a new file, call write_file with its whole content")


def build_instructions(cfg, family):
    """The `instructions` field: the base prompt (or the configured override) + patch notes.

    The compact prompt replaces the base prompt for small windows (compact_prompt_wanted), and
    the `shell` paragraphs follow the shell tool the model gets (shell_tool_kind)."""
    base = cfg.base_instructions
    if base:
        return base
    kind = shell_tool_kind(cfg)
    if compact_prompt_wanted(cfg, family):
        shell, write = _COMPACT_SHELL_LINES[kind]
        if file_tools_wanted(cfg, family):
            write = _COMPACT_FILE_TOOLS_LINE
        return COMPACT_INSTRUCTIONS.replace("SHELL", shell).replace("WRITE", write)
    text = BASE_INSTRUCTIONS
    if kind == "shell_command":
        text = text.replace(_SHELL_ARGV_TEXT, _SHELL_COMMAND_TEXT).replace(_PATCH_ARGV_TEXT, _PATCH_SCRIPT_TEXT)
    if family.needs_patch_instructions:
        return text + "\n" + APPLY_PATCH_EXTRA_INSTRUCTIONS
    return text


def text_message(role, text):
    """A message item with one text part."""
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


#: what an attached image's first bytes must be (the kind is taken from them, not from the name)
_IMAGE_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
                     (b"GIF89a", "image/gif"))


def _image_mime(head):
    """The MIME type of a PNG, JPEG, GIF or WebP image from its first bytes, else None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in _IMAGE_SIGNATURES if head.startswith(magic)), None)


def read_image_attachment(path, home=None):
    """(MIME type, bytes) of an image the user attached (`-i`, a local_image item); OSError with
    a sentence as strerror when codex does not send it.

    Codex reads it unconfined, from where sandboxed commands write: a command cannot read
    $CODEX_HOME/auth.json, but it can plant `shot.png -> ~/.codex/auth.json` and name it to the
    user.  So the file must be a regular file (no FIFO, no /dev/zero), its real path (of the
    file opened) must not lie in $CODEX_HOME, and its bytes must be a PNG, JPEG, GIF or WebP.
    """
    import stat

    fd = os.open(str(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        try:
            real = os.readlink("/proc/self/fd/%d" % fd)  # the file opened, whatever was swapped since
        except OSError:
            real = os.path.realpath(str(path))
        if home is not None and _is_within(real, os.path.realpath(str(home))):
            raise OSError(errno.EACCES, "it is %s, in $CODEX_HOME (credentials, sessions); codex does not send files "
                                        "from there (a command may have planted the link)" % real)
        data = fh.read()
    mime = _image_mime(data[:16])
    if mime is None:
        raise OSError(errno.EINVAL, "not a PNG, JPEG, GIF or WebP image (by its content)")
    return mime, data


def input_items_to_message(items, cwd, warn=None, home=None):
    """Protocol InputItems (text, image, local_image) -> one user message item (local images
    read by read_image_attachment; one that is refused is left out with a warning)."""
    import base64

    content = []
    for item in items or ():
        kind = item.get("type")
        if kind == "text":
            content.append({"type": "input_text", "text": item.get("text") or ""})
        elif kind == "image" and item.get("image_url"):
            content.append({"type": "input_image", "image_url": item["image_url"]})
        elif kind == "local_image" and item.get("path"):
            path = Path(cwd) / Path(item["path"]).expanduser()
            try:
                mime, raw = read_image_attachment(path, home)
            except OSError as exc:
                if warn is not None:
                    warn("skipping image %s: %s" % (path, exc.strerror or exc))
                continue
            data = base64.b64encode(raw).decode("ascii")
            content.append({"type": "input_image", "image_url": "data:%s;base64,%s" % (mime, data)})
    return {"type": "message", "role": "user", "content": content}


def message_text(item):
    """The text parts of a message item joined."""
    return "".join(p.get("text") or "" for p in item.get("content") or () if p.get("type") in ("input_text", "output_text"))

SHUTDOWN_TASK_GRACE_S = 3.0  #: how long Session.shutdown() waits for aborted tasks to kill their commands


def _is_context_message(item):
    text = message_text(item)
    return item.get("role") == "user" and (text.startswith("<user_instructions>") or text.startswith("<environment_context>"))


def run_notify(argv, payload):
    """Start the notify program with the JSON payload as last argument; never wait on it."""
    import subprocess

    try:
        proc = subprocess.Popen(list(argv) + [json.dumps(payload, separators=(",", ":"))],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)
    except OSError as exc:
        log("warn", "notify program %s could not start: %s", argv[0], exc)
        return None
    threading.Thread(target=proc.wait, name="notify-reaper", daemon=True).start()
    return proc


# -- reusable prompts --
# Markdown files in $CODEX_HOME/prompts/ (and a trusted project's .codex/prompts/) become
# slash commands: `/name args` or `/prompts:name args`, in the REPL and as `codex exec`'s prompt.

PROMPTS_SUBDIR = "prompts"  #: directory of reusable prompt files in $CODEX_HOME and a project's .codex
PROMPT_COMMAND_PREFIX = "prompts:"  #: `/prompts:name` always means a prompt file, even if a built-in has its name
_PROMPT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PROMPT_PLACEHOLDER_RE = re.compile(r"\$(\$|[1-9]|ARGUMENTS\b|[A-Z][A-Z0-9_]*)")
_PROMPT_NAMED_ARG_RE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$", re.S)


class CustomPrompt(object):
    """One reusable prompt file: its name, where it is, its front matter and body."""

    def __init__(self, name, path, body, description="", argument_hint=""):
        self.name = name
        self.path = path
        self.body = body
        self.description = description
        self.argument_hint = argument_hint

    @property
    def named_args(self):
        """The $NAME placeholders the body uses (each must be given as NAME=value)."""
        found = []
        for m in _PROMPT_PLACEHOLDER_RE.finditer(self.body):
            token = m.group(1)
            if token not in ("$", "ARGUMENTS") and not token.isdigit() and token not in found:
                found.append(token)
        return found


def _front_matter(text):
    """(fields, body) of a markdown file with an optional `---` YAML-ish front matter block."""
    if not text.startswith("---"):
        return {}, text
    lines = text.splitlines(True)
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            fields = {}
            for line in lines[1:i]:
                key, sep, value = line.partition(":")
                if sep and key.strip():
                    value = value.strip()
                    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                        value = value[1:-1]
                    fields[key.strip().lower()] = value
            return fields, "".join(lines[i + 1:])
    return {}, text


def load_custom_prompts(dirs):
    """name -> CustomPrompt from the `*.md` files of `dirs` (later directories win)."""
    prompts = {}
    for directory in dirs:
        try:
            names = sorted(os.listdir(str(directory)))
        except OSError:
            continue
        for fname in names:
            name, ext = os.path.splitext(fname)
            path = Path(directory) / fname
            if ext.lower() != ".md" or not _PROMPT_NAME_RE.match(name) or not path.is_file():
                continue
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                log("warn", "prompt file %s cannot be read: %s", path, exc)
                continue
            meta, body = _front_matter(text)
            prompts[name] = CustomPrompt(name, path, body.strip("\n"), meta.get("description", ""),
                                         meta.get("argument-hint", meta.get("argument_hint", "")))
    return prompts


def find_prompt_command(text, prompts, builtins=()):
    """(CustomPrompt, argument text) when `text` is `/name ...` or `/prompts:name ...` of a prompt file.

    A bare `/name` that is also a built-in slash command (`builtins`) stays the built-in.
    """
    if not text.startswith("/") or not prompts:
        return None
    word, _, rest = text[1:].partition(" ")
    word, _, tail = word.partition("\n")
    rest = (tail + " " + rest).strip() if tail else rest.strip()
    if word.startswith(PROMPT_COMMAND_PREFIX):
        word = word[len(PROMPT_COMMAND_PREFIX):]
    elif word in builtins:
        return None
    prompt = prompts.get(word)
    return (prompt, rest) if prompt is not None else None


def expand_custom_prompt(prompt, arg_text):
    """The prompt's body with $1..$9, $ARGUMENTS, $NAME (from NAME=value) and $$ filled in."""
    import shlex

    try:
        words = shlex.split(arg_text)
    except ValueError:  # an unbalanced quote: split on whitespace rather than refuse
        words = arg_text.split()
    positional, named = [], {}
    for word in words:
        m = _PROMPT_NAMED_ARG_RE.match(word)
        if m:
            named[m.group(1)] = m.group(2)
        else:
            positional.append(word)
    missing = [n for n in prompt.named_args if n not in named]
    if missing:
        raise UsageError("/%s needs %s (e.g. `/%s %s`)" % (
            prompt.name, ", ".join("%s=..." % n for n in missing), prompt.name,
            " ".join("%s=value" % n for n in missing)))

    def fill(m):
        token = m.group(1)
        if token == "$":
            return "$"
        if token == "ARGUMENTS":
            return " ".join(positional)
        if token.isdigit():
            index = int(token) - 1
            return positional[index] if index < len(positional) else ""
        return named[token]

    return _PROMPT_PLACEHOLDER_RE.sub(fill, prompt.body)


def expand_prompt_command(cfg, text, strict=False):
    """`text` with a `/name args` of a prompt file expanded (unchanged when it names none).

    `strict` (exec, where no slash command runs): a `/name` that names no prompt file is a
    UsageError naming the prompts there are, rather than text billed as a turn, unless
    /name is a path that exists (`/tmp is full` is a prompt)."""
    prompts = load_custom_prompts(prompt_dirs(cfg))
    found = find_prompt_command(text, prompts)
    if found is not None:
        return expand_custom_prompt(*found)
    m = re.match(r"/((?:%s)?[A-Za-z][\w.-]*)(?:\s|$)" % re.escape(PROMPT_COMMAND_PREFIX), text) if strict else None
    if m is not None and not os.path.exists("/" + m.group(1)):
        import difflib

        word = m.group(1)
        name = word[len(PROMPT_COMMAND_PREFIX):] if word.startswith(PROMPT_COMMAND_PREFIX) else word
        close = difflib.get_close_matches(name, sorted(prompts), n=1, cutoff=0.6)
        known = ", ".join("/" + n for n in sorted(prompts)) or "none (add NAME.md to %s)" % (
            Path(cfg.codex_home) / PROMPTS_SUBDIR)
        raise UsageError("/%s is not a reusable prompt%s: exec runs no slash commands, only prompt files "
                         "(%s); to send the text as it is, begin it with a space"
                         % (word, "; did you mean /%s?" % close[0] if close else "", known))
    return text


def prompt_dirs(cfg):
    """Where reusable prompts come from: $CODEX_HOME/prompts, then a trusted project's .codex/prompts."""
    dirs = [Path(cfg.codex_home) / PROMPTS_SUBDIR]
    project = cfg.trusted_project_root
    if project:
        dirs.append(Path(project) / ".codex" / PROMPTS_SUBDIR)
    return dirs


class TurnContext(Record):
    """What one turn runs under, computed once per turn from the config and the overrides.

    This is the one effective policy: §11-§13 enforce `sandbox_policy` and `approval_policy`,
    the model is told them (environment_context, the shell tool's description), the rollout
    records them and /status, `doctor` and the exec header show them.  Front ends change it
    only through override_turn_context (proto, the REPL's /approvals and /model) or through the
    config they load (exec flags, the MCP server's `codex` tool parameters); `with_overrides`
    returns a new context and never touches the Config.
    """

    config: "Config"  # the loaded config (model overrides applied with Config.replace)
    cwd: Path
    approval_policy: str
    sandbox_policy: "SandboxPolicy"
    family: "ModelFamily"
    instructions: str  # the request's `instructions` field (base prompt or the configured one)
    sources: "Mapping[str, str]"  # where model, approval_policy and sandbox_mode came from

    @classmethod
    def from_config(cls, cfg):
        """The context a session starts with: what the config (with its flags) asks for."""
        family = model_family(cfg.model, cfg)
        return cls(config=cfg, cwd=Path(cfg.cwd), approval_policy=cfg.approval_policy,
                   sandbox_policy=cfg.sandbox_policy, family=family,
                   instructions=build_instructions(cfg, family), sources=cfg.sources)

    def with_overrides(self, cwd=None, approval_policy=None, sandbox_policy=None, model=None, effort=None,
                       summary=None, source="override_turn_context"):
        """A new context with the overrides applied (None: keep); raises UsageError/ConfigError."""
        changes, sources = {}, dict(self.sources)
        if cwd:
            path = Path(cwd)
            if not path.is_absolute():
                path = self.cwd / path
            if not path.is_dir():
                raise UsageError("cwd %s is not a directory" % path)
            changes["cwd"] = path.resolve()
        if approval_policy:
            changes["approval_policy"] = _normalize_approval(approval_policy, source, "approval_policy")
            sources["approval_policy"] = source
        if sandbox_policy is not None:
            if isinstance(sandbox_policy, str):
                sandbox_policy = {"mode": sandbox_policy}
            if not isinstance(sandbox_policy, SandboxPolicy):
                if not isinstance(sandbox_policy, dict) or not sandbox_policy.get("mode"):
                    raise UsageError("sandbox_policy must be an object with a `mode`")
                _check_enum(source, "sandbox_policy.mode", sandbox_policy["mode"], SANDBOX_MODES)
                if sandbox_policy["mode"] == "workspace-write":  # fields left out keep the configured ones
                    sandbox_policy = dict(self.config.sandbox_workspace_write or {}, **sandbox_policy)
                sandbox_policy = SandboxPolicy.from_wire(sandbox_policy, self.config.cwd)
            changes["sandbox_policy"] = sandbox_policy
            sources["sandbox_mode"] = source
        config_changes = {}
        if model:
            config_changes["model"] = model
            sources["model"] = source
        if effort:
            config_changes["model_reasoning_effort"] = effort
        if summary:
            config_changes["model_reasoning_summary"] = summary
        if config_changes:
            cfg = self.config.replace(**config_changes)
            changes["config"] = cfg
            changes["family"] = model_family(cfg.model, cfg)
            changes["instructions"] = build_instructions(cfg, changes["family"])
        req = self.config.requirements
        approval = changes.get("approval_policy")
        if approval is not None and req.clamp_approval(approval) != approval:
            raise UsageError("approval policy %r is not allowed by %s (allowed: %s)"
                             % (approval, " or ".join(req.paths), ", ".join(req.allowed_approval_policies)))
        policy = changes.get("sandbox_policy")
        if policy is not None and req.clamp_sandbox(policy.mode) != policy.mode:
            raise UsageError("sandbox mode %r is not allowed by %s (allowed: %s)"
                             % (policy.mode, " or ".join(req.paths), ", ".join(req.allowed_sandbox_modes)))
        changes["sources"] = frozen_mapping(sources)
        return self.replace(**changes)

    # -- what §09-§15 read --
    model = property(lambda self: self.config.model, doc="the model slug of this turn")
    codex_home = property(lambda self: self.config.codex_home, doc="$CODEX_HOME (protected from commands)")
    shell_environment_policy = property(lambda self: self.config.shell_environment_policy,
                                        doc="[shell_environment_policy]: what commands' environments hold")
    providers = property(lambda self: self.config.providers, doc="the providers (their key variables are secrets)")
    sandbox_mode = property(lambda self: self.sandbox_policy.mode, doc="the effective sandbox mode")
    network_access = property(lambda self: self.sandbox_policy.has_network(), doc="whether commands may use the network")

    def to_wire(self):
        """The rollout's turn_context record and the fields of an override op."""
        return {"cwd": str(self.cwd), "approval_policy": self.approval_policy,
                "sandbox_policy": self.sandbox_policy.to_wire(), "model": self.model,
                "effort": self.config.model_reasoning_effort, "summary": self.config.model_reasoning_summary}


def turn_context(cfg_or_ctx):
    """`cfg_or_ctx` as a TurnContext (a Config gets the context it starts with)."""
    return cfg_or_ctx if isinstance(cfg_or_ctx, TurnContext) else TurnContext.from_config(cfg_or_ctx)


###############################################################################
# §15b History and rollouts
###############################################################################

# -- history.jsonl --------------------------------------------------------------------------
#
# Every prompt submitted in the REPL is one compact JSON line {"session_id", "ts", "text"} in
# $CODEX_HOME/history.jsonl (mode 0600).  An append is one write(2) on an O_APPEND descriptor
# under an exclusive flock taken with bounded retries, so concurrent sessions never interleave
# or lose lines.  `max_bytes` is honoured by writing the newest entries to a temporary file and
# renaming it over the log: the new inode tells every reader holding the old (inode, count)
# snapshot that its offsets are stale, and a writer that was waiting for the lock on the old
# inode notices the swap and reopens.  Readers take an (inode, size) snapshot when a session
# starts; bytes below `size` never change for that inode, so the newest entries are found by
# scanning backwards from `size`: Up-arrow cost does not grow with the file.

HISTORY_FILENAME = "history.jsonl"  #: file name under $CODEX_HOME
HISTORY_LOCK_TRIES = 10  #: flock attempts before giving up (upstream: 10)
HISTORY_LOCK_RETRY_SECONDS = 0.1  #: pause between flock attempts (upstream: 100 ms)
HISTORY_TRIM_RATIO = 0.8  #: a max_bytes rewrite keeps the newest entries up to this share of it
HISTORY_SESSION_KEYS = ("session_id", "conversation_id")  #: later upstream builds renamed the field
_HISTORY_CHUNK = 64 * 1024  #: bytes read per step when scanning the log


def history_path(home):
    """Path of $CODEX_HOME/history.jsonl."""
    return Path(home) / HISTORY_FILENAME


def _flock_retrying(fd, exclusive):
    """flock(fd) without blocking, retrying HISTORY_LOCK_TRIES times; return True when held."""
    import fcntl  # POSIX only; imported where needed

    op = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    for attempt in range(HISTORY_LOCK_TRIES):
        try:
            fcntl.flock(fd, op)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
        if attempt + 1 < HISTORY_LOCK_TRIES:
            time.sleep(HISTORY_LOCK_RETRY_SECONDS)
    return False


def _write_all(fd, data):
    """write(2) until `data` is written (one call in practice: O_APPEND keeps it whole)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def history_record(session_id, text, ts=None):
    """The JSON line (bytes, newline included) recorded for one prompt."""
    entry = {"session_id": str(session_id), "ts": int(time.time() if ts is None else ts), "text": text}
    # "replace": a prompt holding undecodable input (surrogate escapes) is kept, not a crash
    return (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8", "replace")


def append_history(home, session_id, text, persistence="save-all", max_bytes=None, ts=None):
    """Append one prompt to history.jsonl under an exclusive lock; return True if written.

    Raises OSError when the file cannot be written or the lock is not obtained after the
    bounded retries; callers in front ends log it and carry on (history never breaks a session).
    """
    if persistence == "none" or not text:
        return False
    path = history_path(home)
    make_private_dirs(path.parent)
    data = history_record(session_id, text, ts)
    for _ in range(HISTORY_LOCK_TRIES):
        fd = os.open(str(path), os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            st = os.fstat(fd)
            if st.st_mode & 0o777 != 0o600:
                os.fchmod(fd, 0o600)
            if not _flock_retrying(fd, exclusive=True):
                raise OSError(
                    errno.EWOULDBLOCK,
                    "could not acquire exclusive lock on history file after multiple attempts",
                    str(path),
                )
            try:
                now = os.stat(str(path))
            except FileNotFoundError:
                continue
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                continue  # a max_bytes rewrite replaced the file while we waited: reopen
            _write_all(fd, data)
            if max_bytes and os.fstat(fd).st_size > max_bytes:
                _rewrite_history_tail(path, fd, int(max_bytes))
            return True
        finally:
            os.close(fd)  # releases the lock
    raise OSError(errno.EAGAIN, "history file kept being replaced while appending", str(path))


def _rewrite_history_tail(path, fd, max_bytes):
    """Replace the (locked) log with a new file holding its newest whole lines (new inode)."""
    size = os.fstat(fd).st_size
    tail = b""
    for budget in (int(max_bytes * HISTORY_TRIM_RATIO), max_bytes):
        start = max(0, size - budget)
        tail = os.pread(fd, size - start, start)
        if start > 0 and os.pread(fd, 1, start - 1) != b"\n":
            cut = tail.find(b"\n")
            tail = tail[cut + 1:] if cut >= 0 else b""
        if tail:
            break
    write_private_file(path, tail)


def history_metadata(home, persistence="save-all"):
    """(log_id, entry_count): the log's inode and its number of lines; (0, 0) if absent."""
    if persistence == "none":
        return 0, 0
    try:
        fd = os.open(str(history_path(home)), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return 0, 0
    try:
        log_id, count = os.fstat(fd).st_ino, 0
        try:
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                count += chunk.count(b"\n")
        except OSError:
            count = 0
        return log_id, count
    finally:
        os.close(fd)


def _parse_history_line(raw):
    """A history line as {"session_id", "ts", "text"}; None if it is not a record."""
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return None
    sid = next((obj[k] for k in HISTORY_SESSION_KEYS if k in obj), "")
    return {"session_id": sid, "ts": obj.get("ts", 0), "text": obj["text"]}


def lookup_history_entry(home, offset, log_id, persistence="save-all"):
    """The record at zero-based line `offset` if the log's inode is still `log_id`, else None.

    This is the protocol's `get_history_entry_request` (a forward scan, as upstream does);
    the REPL browses with a HistorySnapshot instead, which scans backwards from the end.
    """
    if persistence == "none" or offset < 0:
        return None
    try:
        fd = os.open(str(history_path(home)), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        if os.fstat(fd).st_ino != log_id or not _flock_retrying(fd, exclusive=False):
            return None
        line_no, pos, carry = 0, 0, b""
        while True:
            chunk = os.pread(fd, 1 << 20, pos)
            if not chunk:
                return None
            pos += len(chunk)
            block_lines = chunk.count(b"\n")
            if line_no + block_lines <= offset:
                line_no += block_lines
                carry = chunk[chunk.rfind(b"\n") + 1:] if block_lines else carry + chunk
                continue
            lines = (carry + chunk).split(b"\n")
            return _parse_history_line(lines[offset - line_no])
    except OSError:
        return None
    finally:
        os.close(fd)


class HistorySnapshot(object):
    """One session's view of history.jsonl: its inode and size when the session started.

    `entry_from_end(k)` returns the k-th newest record (k = 0 is the newest) among the lines
    present at the snapshot, reading backwards in chunks and remembering the line breaks it
    has seen, so browsing costs the length of the lines shown, not the size of the file.
    `entry_count` (the upstream `history_entry_count`) is computed only when asked for.
    """

    def __init__(self, home, persistence="save-all"):
        self.path = history_path(home)
        self.enabled = persistence != "none"
        self.log_id, self.size = 0, 0
        if self.enabled:
            try:
                st = os.stat(str(self.path))
                self.log_id, self.size = st.st_ino, st.st_size
            except OSError:
                pass
        self._count = None
        self._newlines = []  # positions of b"\n" below size, newest first
        self._scanned_to = self.size  # everything at or above this position has been scanned
        self._lock = threading.Lock()

    @property
    def entry_count(self):
        """Number of complete lines in the snapshot (counted once, on first use)."""
        if self._count is None:
            count = 0
            if self.size:
                try:
                    with open(str(self.path), "rb") as fh:
                        if os.fstat(fh.fileno()).st_ino == self.log_id:
                            left = self.size
                            while left > 0:
                                chunk = fh.read(min(left, 1 << 20))
                                if not chunk:
                                    break
                                left -= len(chunk)
                                count += chunk.count(b"\n")
                except OSError:
                    count = 0
            self._count = count
        return self._count

    def _scan_back(self, fd, need):
        """Find newlines backwards until `need` of them are known or the start is reached."""
        while len(self._newlines) < need and self._scanned_to > 0:
            start = max(0, self._scanned_to - _HISTORY_CHUNK)
            chunk = os.pread(fd, self._scanned_to - start, start)
            if len(chunk) != self._scanned_to - start:
                raise OSError(errno.EIO, "history file shrank under its snapshot")
            end = len(chunk)
            while True:
                i = chunk.rfind(b"\n", 0, end)
                if i < 0:
                    break
                self._newlines.append(start + i)
                end = i
            self._scanned_to = start

    def entry_from_end(self, k):
        """The k-th newest record of the snapshot, or None (past the oldest, or log replaced)."""
        if not self.enabled or k < 0 or not self.log_id:
            return None
        with self._lock:
            try:
                fd = os.open(str(self.path), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                return None
            try:
                if os.fstat(fd).st_ino != self.log_id or not _flock_retrying(fd, exclusive=False):
                    return None
                self._scan_back(fd, k + 2)
                if k >= len(self._newlines):
                    return None
                end = self._newlines[k]
                if k + 1 < len(self._newlines):
                    begin = self._newlines[k + 1] + 1
                elif self._scanned_to == 0:
                    begin = 0
                else:
                    return None
                return _parse_history_line(os.pread(fd, end - begin, begin))
            except OSError:
                return None
            finally:
                os.close(fd)

    def search_back(self, needle, start=0, deadline=None):
        """Ctrl-R: (k, record) of the newest record at or past k = `start` whose text contains
        `needle` (case-insensitive); (None, None) if none; ("more", k) if time.monotonic()
        passed `deadline` first (search again from k: it goes on where it stopped).

        Reads backwards 1 MB at a time and looks at the lines of a block only when its raw
        bytes contain the needle, counting the other lines without keeping their positions,
        so a search through a 1 GB history costs about a second and no memory."""
        if not self.enabled or not self.log_id:
            return None, None
        needle = needle.lower()
        # JSON may write these as escapes, so only other needles are looked for in the raw bytes
        raw_needle = needle.encode() if needle.isascii() and needle.isprintable() and '"' not in needle \
            and "\\" not in needle else None
        k = max(0, start)
        with self._lock:
            try:
                fd = os.open(str(self.path), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                return None, None
            try:
                if os.fstat(fd).st_ino != self.log_id or not _flock_retrying(fd, exclusive=False):
                    return None, None
                cached = getattr(self, "_search_at", None)
                if cached is not None and cached[0] == k:
                    end = cached[1]
                else:
                    self._scan_back(fd, k + 1)
                    if k >= len(self._newlines):
                        return None, None
                    end = self._newlines[k]  # entry k ends just before this newline
                size = 1 << 20
                while end > 0:
                    low = max(0, end - size)
                    block = os.pread(fd, end - low, low)
                    if low:
                        cut = block.find(b"\n")
                        if cut < 0:  # one line longer than the block: read more at once
                            size *= 2
                            continue
                        block, low = block[cut + 1:], low + cut + 1
                    lines = block.split(b"\n")  # oldest first; the last one is entry k
                    if raw_needle is None or raw_needle in block.lower():
                        for i, raw in enumerate(reversed(lines)):
                            if raw_needle is not None and raw_needle not in raw.lower():
                                continue
                            record = _parse_history_line(raw)
                            if record is not None and needle in record["text"].lower():
                                return k + i, record
                    k += len(lines)
                    end = low - 1  # the newline before the oldest line of the block
                    if end > 0 and deadline is not None and time.monotonic() > deadline:
                        self._search_at = (k, end)
                        return "more", k
                return None, None
            except OSError:
                return None, None
            finally:
                os.close(fd)

    def lookup(self, offset):
        """The record at absolute line `offset` (0 = oldest) of the snapshot, or None."""
        count = self.entry_count
        if offset < 0 or offset >= count:
            return None
        return self.entry_from_end(count - 1 - offset)


# -- rollouts --
# One JSONL file per session:
#   $CODEX_HOME/sessions/YYYY/MM/DD/rollout-YYYY-MM-DDThh-mm-ss-<session id>.jsonl   (0600, local time)
# Each line is {"timestamp": "...Z", "type": T, "payload": {...}} with T one of
#   session_meta   {id, timestamp, cwd, originator, cli_version, instructions, git?}   (first line)
#   response_item  a history item exactly as sent to the model
#   event_msg      a protocol event msg worth replaying (user_message, agent_message, ...)
#   turn_context   {cwd, approval_policy, sandbox_policy, model, effort, summary}
#   compacted      {message, replacement_history}: history before this line was replaced by
#                  replacement_history (older records: rebuilt from the summary in message)
# load_rollout() also reads the mid-2025 format (bare meta object, then bare items).

ROLLOUT_SUBDIR = "sessions"  #: under $CODEX_HOME


def _read_small(path, limit=65536):
    """A small regular file's text, stripped, or None (a FIFO or device is never read: §02)."""
    data = read_regular_file(path, limit)
    return None if data is None else data.decode("utf-8", "replace").strip()


def _git_dirs(root):
    """(git dir, common dir) of the repository whose work tree is `root` (.git may be a
    `gitdir:` file, as in worktrees and submodules), or None."""
    dot = Path(root) / ".git"
    gitdir = dot
    if dot.is_file():
        text = _read_small(dot) or ""
        if not text.startswith("gitdir:"):
            return None
        gitdir = Path(text[7:].strip())
        if not gitdir.is_absolute():
            gitdir = Path(root) / gitdir
    if not (gitdir / "HEAD").is_file():
        return None
    common = _read_small(gitdir / "commondir")
    return gitdir, (gitdir / common if common else gitdir)


def _git_ref(common, gitdir, ref):
    """The commit a ref names: a loose ref file, else packed-refs; None if not found."""
    for base in (gitdir, common):
        value = _read_small(base / ref)
        if value and re.match(r"^[0-9a-f]{40,64}$", value):
            return value
    for line in (_read_small(common / "packed-refs", 1 << 24) or "").splitlines():
        sha, _, name = line.partition(" ")
        if name.strip() == ref and re.match(r"^[0-9a-f]{40,64}$", sha):
            return sha
    return None


def _git_remote_url(common, remote="origin"):
    """remote.<remote>.url from the repository's own config file (includes not followed)."""
    section = None
    for line in (_read_small(common / "config", 1 << 20) or "").splitlines():
        line = line.strip()
        if line.startswith("["):
            m = re.match(r'^\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]', line)
            section = (m.group(1).lower(), m.group(2)) if m else None
        elif section == ("remote", remote) and "=" in line:
            key, _, value = line.partition("=")
            if key.strip().lower() == "url":
                value = value.strip()
                return value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value
    return None


def _git_info(cwd):
    """{commit_hash, branch, repository_url} of cwd's repository (missing keys omitted).

    Read from the .git files (HEAD, refs, packed-refs, config) instead of running git three
    times: the same answers as `git rev-parse HEAD`, `git rev-parse --abbrev-ref HEAD` and
    `git config --get remote.origin.url` for ordinary repositories and worktrees.
    """
    root = find_git_root(cwd)
    dirs = _git_dirs(root) if root is not None else None
    if dirs is None:
        return None
    gitdir, common = dirs
    head = _read_small(gitdir / "HEAD") or ""
    info = {}
    if head.startswith("ref:"):
        ref = head[4:].strip()
        commit = _git_ref(common, gitdir, ref)
        if commit:
            info["commit_hash"] = commit
            info["branch"] = ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else ref
    elif re.match(r"^[0-9a-f]{40,64}$", head):
        info["commit_hash"], info["branch"] = head, "HEAD"
    url = _git_remote_url(common)
    if url:
        info["repository_url"] = redact(url)
    return info or None


def _ends_mid_line(path):
    """Whether a non-empty file's last byte is not a newline."""
    try:
        with open(str(path), "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return False
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except OSError:
        return False


class RolloutRecorder(object):
    """Appends a session's items and events to its rollout file."""

    def __init__(self, ctx, session_id, instructions, resume_path=None):
        """Open (or, resuming, append to) the rollout of a session that starts under TurnContext `ctx`."""
        self._lock = threading.Lock()
        if resume_path:
            self.path = Path(resume_path)
            self._fh = open_private_append(self.path)
            if _ends_mid_line(self.path):  # a crash mid-write: start our records on a line of their own
                self._fh.write(b"\n")
        else:
            now = time.localtime()
            day = Path(ctx.codex_home) / ROLLOUT_SUBDIR / time.strftime("%Y", now) / time.strftime("%m", now) / time.strftime("%d", now)
            self.path = day / ("rollout-%s-%s.jsonl" % (time.strftime("%Y-%m-%dT%H-%M-%S", now), session_id))
            self._fh = open_private_append(self.path)
            os.chmod(str(self.path), 0o600)
            meta = {"id": session_id, "timestamp": _now_iso(), "cwd": str(ctx.cwd), "originator": ORIGINATOR,
                    "cli_version": __version__, "instructions": instructions}
            git = _git_info(ctx.cwd)
            if git:
                meta["git"] = git
            self._write("session_meta", meta)
        self.record_turn_context(ctx)

    def record_turn_context(self, ctx):
        """Append a turn_context record: the effective policy the next turns run under."""
        self._write("turn_context", ctx.to_wire())

    def _write(self, kind, payload):
        line = json.dumps({"timestamp": _now_iso(), "type": kind, "payload": payload}, ensure_ascii=False) + "\n"
        with self._lock:
            if self._fh is None:
                return
            try:
                self._fh.write(line.encode("utf-8", "replace"))  # a lone surrogate must not end the session
                self._fh.flush()
            except OSError as exc:
                log("warn", "cannot write rollout %s: %s", self.path, exc)

    def record_items(self, items):
        """Append response items."""
        for item in items:
            self._write("response_item", item)

    def record_event(self, msg):
        """Append a protocol event msg."""
        self._write("event_msg", msg)

    def record_compacted(self, message, replacement_history=None):
        """Note that history was replaced by a summary (and by what, so resume sees it)."""
        payload = {"message": message}
        if replacement_history is not None:
            payload["replacement_history"] = list(replacement_history)
        self._write("compacted", payload)

    def close(self):
        """Flush and close the file."""
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def load_rollout(path):
    """Read a rollout: (session meta dict, history items, replayable event msgs)."""
    path = Path(path)
    try:
        # bytes first: one damaged line (a crash mid-write, a stray byte) must not lose the session
        raw = path.read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        raise ConfigError("cannot read session file %s: %s" % (path, exc.strerror or exc))
    # "\n" only: records hold U+2028, U+2029, U+0085 raw (ensure_ascii=False), which splitlines() splits on
    lines = [line for line in raw.split("\n") if line.strip()]
    if not lines:
        raise ConfigError("session file %s is empty" % path)
    meta, items, events = None, [], []
    for number, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
        except ValueError:
            log("warn", "%s:%d: not JSON, skipped", path, number)
            continue
        if not isinstance(obj, dict):
            continue
        kind = obj.get("type")
        payload = obj.get("payload")
        if kind == "session_meta" and isinstance(payload, dict):
            meta = payload
        elif kind == "response_item" and isinstance(payload, dict):
            items.append(payload)
        elif kind == "event_msg" and isinstance(payload, dict):
            events.append(payload)
        elif kind == "compacted" and isinstance(payload, dict) and isinstance(payload.get("replacement_history"), list):
            items = [it for it in payload["replacement_history"] if isinstance(it, dict)]
        elif kind == "compacted":  # older records: rebuild the bridge from the summary
            summary = payload.get("message") if isinstance(payload, dict) else None
            items = compacted_history(items, summary)
        elif number == 1 and meta is None and "id" in obj and kind is None:
            meta = obj  # the mid-2025 format: a bare meta object first
        elif obj.get("record_type") == "state":
            continue
        elif kind in HISTORY_ITEM_TYPES:
            items.append(obj)
    if meta is None:
        raise ConfigError("session file %s has no session meta line; it is not a codex rollout" % path)
    return meta, items, events


def list_rollouts(home):
    """Every rollout file under $CODEX_HOME/sessions, newest first."""
    root = Path(home) / ROLLOUT_SUBDIR
    if not root.is_dir():
        return []
    files = list(root.glob("*/*/*/rollout-*.jsonl")) + list(root.glob("rollout-*.jsonl"))
    return sorted(files, key=lambda p: (p.name[8:27], p.stat().st_mtime), reverse=True)


def rollout_summary(path, max_bytes=256 * 1024):
    """{"path", "id", "time", "cwd", "first_prompt"} of a rollout, from its first lines only.

    `time` is the session's start (epoch seconds: the meta timestamp, else the file's mtime);
    `first_prompt` the first thing the user typed (context messages skipped), or "".
    """
    path = Path(path)
    out = {"path": path, "id": path.stem[28:] if path.stem.startswith("rollout-") else path.stem,
           "time": None, "cwd": None, "first_prompt": ""}
    try:
        with open(str(path), "rb") as fh:
            head = fh.read(max_bytes)
        out["mtime"] = path.stat().st_mtime
    except OSError:
        return None
    for number, raw in enumerate(head.split(b"\n")):
        try:
            obj = json.loads(raw.decode("utf-8", "replace"))
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        kind, payload = obj.get("type"), obj.get("payload")
        if number == 0:
            meta = payload if kind == "session_meta" and isinstance(payload, dict) else obj
            out["id"] = meta.get("id") or out["id"]
            out["cwd"] = meta.get("cwd")
            stamp = meta.get("timestamp")
            if isinstance(stamp, str):
                import calendar

                try:
                    out["time"] = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
                except ValueError:
                    pass
            continue
        item = payload if kind == "response_item" else obj if kind == "message" else None
        if isinstance(item, dict) and item.get("type") == "message" and item.get("role") == "user" \
                and not _is_context_message(item):
            out["first_prompt"] = message_text(item)
            break
    if out["time"] is None:
        out["time"] = out["mtime"]
    return out


def list_sessions(home, limit=50, cwd=None):
    """rollout_summary() of the newest `limit` recorded sessions (those in `cwd` only, if given)."""
    out = []
    for path in list_rollouts(home):
        summary = rollout_summary(path)
        if summary is None or (cwd is not None and summary["cwd"] != str(cwd)):
            continue
        out.append(summary)
        if len(out) >= limit:
            break
    return out


def find_rollout(home, session_id=None, last=False, cwd=None):
    """The rollout for a session id (or unique prefix), or the newest one (in cwd first)."""
    files = list_rollouts(home)
    if session_id:
        matches = [p for p in files if p.stem.endswith(session_id)]
        if not matches:
            matches = [p for p in files if session_id in p.stem[28:]]
        if not matches:
            path = Path(session_id).expanduser()
            if path.is_file():
                return path
            raise UsageError("no recorded session %s under %s" % (session_id, Path(home) / ROLLOUT_SUBDIR))
        if len(matches) > 1 and not any(p.stem.endswith(session_id) for p in matches):
            raise UsageError("session id prefix %s is ambiguous; give more characters" % session_id)
        return matches[0]
    if not files:
        raise UsageError("no recorded sessions under %s" % (Path(home) / ROLLOUT_SUBDIR))
    if cwd is not None:
        for path in files[:200]:
            try:
                with open(str(path), encoding="utf-8") as fh:
                    first = json.loads(fh.readline() or "{}")
            except (OSError, ValueError):
                continue
            meta = first.get("payload") if first.get("type") == "session_meta" else first
            if isinstance(meta, dict) and meta.get("cwd") == str(cwd):
                return path
    return files[0]


#: added to shell_command's output when the same command gave the same output before in the task
#: (small models go round in circles: run the test, look at the test, run the test, ...)
REPEATED_OUTPUT_NOTE = ("\n(The same output as the last time this command ran. If nothing changed since, running it "
                        "again will not help: do something else, such as looking at another file or changing the code.)")
#: the follow-up for a model that ended its turn right after a failed command (%s: the exit code)
FAILED_COMMAND_NUDGE = ("Your last command failed (exit code %s), so the task is not done. Reply with your next "
                        "tool call now: look at the code it runs or tests, fix the cause there, then run the check "
                        "again.")
#: ... after a write_file / edit_file call that failed (its error says what to do)
FAILED_TOOL_NUDGE = ("Your last tool call failed, so the task is not done. Reply with your next tool call now: do "
                     "what its error message says, then run the check again.")
#: ... and for one that says it changed something when every call of the task only read files
UNMADE_CHANGE_NUDGE = ("No file has changed yet: your tool calls so far only read files. If the task needs a change, "
                       "make it now with a tool call, then check it.")
#: ... and for an empty answer after a tool call that worked (Qwen2.5-Coder-1.5B answered so right
#: after a failing test run and after a no-op edit; `codex exec` then ended with no message at all)
EMPTY_ANSWER_NUDGE = ("Your answer was empty. If the task is not done, reply with your next tool call now; if it is, "
                      "say in one or two sentences what you changed and how you checked it.")
_CLAIMED_CHANGE_RE = re.compile(r"(?i)\b(changed|updated|fixed|modified|created|renamed|replaced|added|edited|wrote|"
                                r"written|corrected|removed|deleted)\b")
FOLLOW_UP_NUDGES = 2  #: default follow_up_nudges with the compact prompt (0 without it)

# The next step after a failed command whose output names a file of the workspace (a Python
# traceback's frames, `path:line:` of compilers and test runners): the innermost one, passing
# over test files while the code under test is named too.  A small model given the general
# advice ("look at the code it runs with cat") explained the fix in prose instead; told the
# file, it looked at it, and once the file had been shown, it fixed the line (Qwen2.5-Coder-1.5B,
# fix-crash in tests/support/local_model.py).
_TRACEBACK_FRAME_RE = re.compile(r'^\s*File "([^"\n]+)", line (\d+)', re.M)
_PATH_LINE_RE = re.compile(r"^([\w./+-]+\.[A-Za-z0-9]+):(\d+)(?::\d+)?[:\s]", re.M)
_TEST_FILE_RE = re.compile(r"(^|/)(tests?/|test_[^/]*$|[^/]*_test\.[^/]*$|[^/]*\.(test|spec)\.[^/]*$)")
#: ... when the file has not been shown yet (%s: its path)
NEXT_STEP_LOOK = "The task is not done. Next: cat %s"
#: ... once it has (%s: its path); the second when write_file/edit_file are not offered
NEXT_STEP_EDIT = ("The task is not done. Next: fix the wrong line of %s with edit_file (old_text: the line as it is "
                  "now, new_text: the corrected line).")
NEXT_STEP_REWRITE = ("The task is not done. Next: write the corrected %s with a here-document (cat > %s <<'EOF' ... "
                     "EOF).")


def failure_location(output, cwd):
    """The workspace file (path relative to `cwd`) a failed command's output points at, or None:
    the innermost traceback frame (or the last `path:line:`) that is a file under `cwd`,
    skipping test files when another file is named."""
    cwd = Path(cwd)
    found = []
    for m in list(_TRACEBACK_FRAME_RE.finditer(output or "")) or list(_PATH_LINE_RE.finditer(output or "")):
        raw = m.group(1)
        path = Path(raw) if os.path.isabs(raw) else cwd / raw
        try:
            rel = os.path.relpath(os.path.realpath(str(path)), os.path.realpath(str(cwd)))
        except ValueError:
            continue
        if rel.startswith(".." + os.sep) or rel == ".." or "site-packages" in rel or not path.is_file():
            continue
        found.append(rel)
    code = [f for f in found if not _TEST_FILE_RE.search(f)]
    return (code or found or [None])[-1]


# -- automatic compaction --------------------------------------------------------------
# Before each request the session estimates its size: the last response's reported usage
# (input + output tokens) plus ~4 characters per token for what was added since (or the
# whole request when nothing was reported).  At model_auto_compact_token_limit (default
# AUTO_COMPACT_FRACTION of the context window) it asks the model for a summary and replaces
# the history by: the context messages, the user's recent messages verbatim, the summary and
# the current plan.  A context_length_exceeded answer gets one compaction and one retry of
# that request; a compaction is never repeated before another request went through, so a
# summary that is itself too large cannot loop (upstream #40213).

AUTO_COMPACT_FRACTION = 0.8  #: default model_auto_compact_token_limit, as a fraction of the window
COMPACT_USER_TOKENS = 20000  #: at most this much of the user's recent messages is kept verbatim...
COMPACT_USER_FRACTION = 0.25  #: ...and at most this fraction of the limit
COMPACT_KEEP_OUTPUT_CHARS = 600  #: a tool output trimmed for a compaction request keeps this much
CHARS_PER_TOKEN = 4  #: the estimate for text no usage was reported for
COMPACT_BRIDGE_PREFIX = "The conversation so far was compacted to fit the model's context window."  #: starts the bridge


IMAGE_TOKEN_ESTIMATE = 1000  #: what one image costs in the estimate (its base64 is not text the model reads)
_DATA_IMAGE_RE = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/=]*")


def estimate_tokens(obj):
    """A rough token count of a JSON-able value (CHARS_PER_TOKEN characters per token;
    an inline image counts IMAGE_TOKEN_ESTIMATE, not the length of its base64)."""
    text = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    images = 0
    if "base64," in text:
        text, images = _DATA_IMAGE_RE.subn("", text)
    return len(text) // CHARS_PER_TOKEN + 1 + images * IMAGE_TOKEN_ESTIMATE


def trim_tool_outputs(items, keep_last=2, keep_chars=COMPACT_KEEP_OUTPUT_CHARS):
    """A copy of `items` whose tool outputs (but the last `keep_last`) are cut to `keep_chars`."""
    outputs = [i for i, it in enumerate(items) if it.get("type") in ("function_call_output", "custom_tool_call_output")]
    cut = set(outputs[:-keep_last] if keep_last else outputs)
    out = []
    for i, it in enumerate(items):
        text = it.get("output")
        if i in cut and isinstance(text, list):  # an MCP result with images (§14): its text only
            text = output_text(text) + "\n[images removed for compaction]"
            it = dict(it, output=text)
        if i in cut and isinstance(text, str) and len(text) > keep_chars:
            head, tail = text[:keep_chars * 2 // 3], text[-(keep_chars // 3):]
            it = dict(it, output="%s\n[... %d characters trimmed for compaction ...]\n%s" % (head, len(text) - len(head) - len(tail), tail))
        out.append(it)
    return out


def drop_oldest_items(items, fraction=0.5):
    """`items` without (about) the oldest `fraction` of its non-context items, keeping calls
    and their outputs together (an output without its call is rejected by the APIs)."""
    context = [it for it in items if it.get("type") == "message" and _is_context_message(it)]
    rest = [it for it in items if not (it.get("type") == "message" and _is_context_message(it))]
    rest = rest[int(len(rest) * fraction):]
    calls = {it.get("call_id") for it in rest if it.get("type") in ("function_call", "local_shell_call", "custom_tool_call")}
    outputs = {it.get("call_id") for it in rest if it.get("type") in ("function_call_output", "custom_tool_call_output")}
    kept = [it for it in rest
            if not (it.get("type") in ("function_call_output", "custom_tool_call_output") and it.get("call_id") not in calls)
            and not (it.get("type") in ("function_call", "local_shell_call", "custom_tool_call") and it.get("call_id") not in outputs)]
    return context + kept


def compacted_history(history, summary, plan=None, limit_tokens=None):
    """The history that replaces `history` after a compaction: its context messages, the
    user's recent messages verbatim (newest kept first, within a budget), then one message
    with the summary and the current plan (a later compaction sees the same user messages)."""
    context = [it for it in history if it.get("type") == "message" and _is_context_message(it)]
    users = [message_text(it) for it in history
             if it.get("type") == "message" and it.get("role") == "user" and not _is_context_message(it)
             and message_text(it) != COMPACT_PROMPT and not message_text(it).startswith(COMPACT_BRIDGE_PREFIX)]
    budget = COMPACT_USER_TOKENS
    if limit_tokens:
        budget = min(budget, int(limit_tokens * COMPACT_USER_FRACTION))
    budget_chars = max(400, budget * CHARS_PER_TOKEN)
    kept = []
    for text in reversed(users):
        if budget_chars <= 0:
            break
        if len(text) > budget_chars:
            text = text[:budget_chars // 2] + "\n[...]\n" + text[-(budget_chars // 2):]
        kept.insert(0, text)
        budget_chars -= len(text)
    parts = [COMPACT_BRIDGE_PREFIX, "The user's most recent messages are above, verbatim.", "",
             "Summary of the work so far, written by you before the history was compacted:", "",
             summary or "(no summary available)"]
    if plan and plan.get("plan"):
        parts += ["", "The current plan (update it with update_plan as you go):"]
        if plan.get("explanation"):
            parts.append(plan["explanation"])
        for step in plan["plan"]:
            parts.append("- [%s] %s" % ({"completed": "x", "in_progress": "~"}.get(step.get("status"), " "), step.get("step")))
    parts += ["", "Continue the task from here; do not redo work the summary says is done."]
    return context[:2] + [text_message("user", text) for text in kept] + [text_message("user", "\n".join(parts))]


###############################################################################
# §16 Agent: the session and the turn loop
###############################################################################

# Session implements §08's contract: ops in, events out, one task thread at a time; _run_turn
# is one model request (under one TurnContext, task.ctx) with its tool calls, which the
# ToolRunner runs; the built-in tools are registered at the end of this section.


LOOP_PAIR_WINDOW = 16  #: pairs of calls kept to spot two calls taking turns (max_repeated_tool_calls)


class TurnStopped(CodexError):
    """A tool-call limit stopped the turn (max_repeated_tool_calls, max_tool_calls_per_turn)."""
class _Task(object):
    """One running task (the work started by a user_input)."""

    def __init__(self, sub_id, kind="user"):
        self.sub_id = sub_id
        self.kind = kind
        self.cancel = threading.Event()
        self.cancelled = False
        self.abort_requested = False
        self.pending_input = []
        self.items = []  # completed items of the current model request, not yet recorded
        self.response = None
        self.input_messages = []
        self.last_agent_message = None
        self.diff_base = {}  # path -> text before the task's first patch touched it (None: absent)
        self.thread = None
        self.ctx = None  # the TurnContext of the current model request (set by _run_turn)
        self.tool_calls = 0  # tool calls in this task (max_tool_calls_per_turn)
        self.last_call = None  # (name, arguments) of the latest call, and how often it came in a row
        self.repeats = 0
        self.recent_calls = []  # the signatures of the latest calls (two calls taking turns)
        self.compacted = False  # compacted since the last request went through (never twice in a row)
        self.streamed = ""  # text streamed by this attempt for the message not finished yet
        self.shown = ""  # ... and by the attempts before it that failed (a retry does not repeat it)
        self.stop_blocks = 0  # how often a Stop hook kept this task going (bounded by HOOK_STOP_MAX_CONTINUES)
        self.failed_exit = None  # the exit code when the latest call was a command that failed ("tool": a file tool)
        self.next_step = None  # what the model was told to do next after that failed command (NEXT_STEP_*)
        self.nudges = 0  # follow-ups sent after the model stopped on a failed command or an unmade change
        self.wrote = False  # a patch or a command that is not known to be read-only ran in this task
        self.outputs = {}  # (argv, cwd) -> (exit code, output) of the commands run in this task


class Session(object):
    """A conversation with the model: submit() ops, read events with next_event() (see §08)."""

    def __init__(self, config, approval_handler=None, resume_path=None, record_rollout=True, environ=None,
                 output_schema=None, turn_context=None):
        """The session's state, in memory only: start() does its I/O."""
        import queue
        import uuid

        self.cfg = config
        self._ctx = turn_context  # None: the config's, computed by start() (it reads AGENTS.md)
        self.tools = ToolRunner(self)
        self.approval_handler = approval_handler
        self._environ = os.environ if environ is None else environ
        self._events = queue.Queue()
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._decisions = {}
        self._next_sub = 0
        self._task = None
        self._closed = False
        self._client = None
        self.state = SessionState()
        self.history = []
        self.total_usage = {"input_tokens": 0, "cached_input_tokens": 0, "output_tokens": 0,
                            "reasoning_output_tokens": 0, "cache_write_input_tokens": 0, "total_tokens": 0}
        self.output_schema = output_schema  # the JSON schema of the final answer (exec --output-schema)
        self.compactions = 0  # automatic compactions so far
        self.plan = None  # the last update_plan arguments (kept across a compaction)
        self._usage_mark = None  # (tokens the last response reported, len(history) before its items)
        self.shell_name = detect_shell_name(self._environ)
        self.session_id = str(uuid.uuid4())
        #: asked (on the task thread) when a turn hits a tool-call limit: loop_handler(message)
        #: -> True to go on (the REPL asks the user); without one the turn stops
        self.loop_handler = None
        self._window_probe = None
        self.rollout_path = None
        self._rollout = None
        self._resume_path = resume_path or self.cfg.experimental_resume
        self._record_rollout = record_rollout
        self._resumed = bool(self._resume_path)
        self._session_hooks_ran = False  # SessionStart hooks run before the first task's request
        self._session_blocked = None  # the reason when they blocked
        self.user_instructions = None
        self.mcp = None
        self._started = False

    def start(self):
        """The session's I/O, once: read the instructions (AGENTS.md) or the resumed rollout,
        open the rollout, start the MCP servers and the context-window probe, read the history
        log's metadata, then emit session_configured (and startup warnings and errors).
        Returns the session, so that `Session(cfg).start()` is the usual way to get one."""
        if self._started:
            return self
        self._started = True
        if self._ctx is None:
            self._ctx = TurnContext.from_config(self.cfg)
        if self.cfg.provider.wire_api == "chat" and not self.family.context_window:
            # the served window decides the prompt's size and compaction; asked in the background
            self._window_probe = threading.Thread(
                target=discover_context_window, args=(self.cfg.provider, self.cfg.model, self._environ),
                name="codex-window-probe", daemon=True)
            self._window_probe.start()
        startup_errors = []
        startup_warnings = []
        policy = self.cfg.sandbox_policy
        if _LINUX and policy.mode == "workspace-write":  # an activated .venv in the workspace
            roots = policy.writable_roots_for(self.cfg.cwd)
            if python_root_warning(roots) is not None:
                startup_warnings.append("warning: " + python_root_warning(
                    roots, probe_sandbox(self.cfg.codex_home).get("userns") == "1"))
        resume_path = self._resume_path
        initial_messages = None
        new_items = []  # history items this constructor adds (recorded in the rollout)
        if resume_path:
            meta, items, events = load_rollout(resume_path)
            self.session_id = meta.get("id") or self.session_id
            self.user_instructions = meta.get("instructions")
            self.history = [it for it in items if it.get("type") in HISTORY_ITEM_TYPES]
            initial_messages = events
            for ev in reversed(events):  # the token count goes on from where it was
                total = (ev.get("info") or {}).get("total_token_usage") if ev.get("type") == "token_count" else None
                if isinstance(total, dict):
                    self.total_usage.update((k, v) for k, v in total.items() if isinstance(v, int))
                    break
            current = environment_context(self._ctx, self.shell_name)
            previous = [message_text(it) for it in self.history
                        if it.get("type") == "message" and message_text(it).startswith("<environment_context>")]
            if not previous or previous[-1] != current:  # resumed elsewhere or with other settings
                self.history.append(text_message("user", current))
                new_items = self.history[-1:]
        else:
            self.user_instructions = load_user_instructions(self.cfg)
            if self.user_instructions:
                self.history.append(text_message("user", "<user_instructions>\n\n%s\n\n</user_instructions>" % self.user_instructions))
            self.history.append(text_message("user", environment_context(self._ctx, self.shell_name)))
            new_items = list(self.history)
        if self._record_rollout:
            try:
                self._rollout = RolloutRecorder(self._ctx, self.session_id, self.user_instructions, resume_path=resume_path)
                self.rollout_path = self._rollout.path
                self._rollout.record_items(new_items)
            except (OSError, CodexError) as exc:
                # Not an error: the session works, it is just not recorded (exec still exits 0).
                startup_warnings.append("warning: cannot record the session under %s (%s): continuing without a "
                                        "rollout, so it cannot be resumed; fix the directory's permissions or use "
                                        "--ephemeral" % (Path(self.cfg.codex_home) / ROLLOUT_SUBDIR,
                                                         getattr(exc, "strerror", None) or exc))
        if self.cfg.mcp_servers:
            try:
                self.mcp = McpConnectionManager(self.cfg)
                self.mcp.start()
            except CodexError as exc:
                startup_errors.append(str(exc))
        log_id, count = 0, 0
        try:
            log_id, count = history_metadata(self.cfg.codex_home, self.cfg.history.get("persistence", "save-all"))
        except (OSError, CodexError):
            pass
        configured = dict(session_id=self.session_id, model=self._ctx.model, history_log_id=log_id,
                          history_entry_count=count, reasoning_effort=self._ctx.config.model_reasoning_effort,
                          rollout_path=str(self.rollout_path) if self.rollout_path else None)
        if initial_messages is not None:
            configured["initial_messages"] = initial_messages
        self._emit("", "session_configured", **configured)
        for message in startup_warnings:
            self._emit("", "background_event", message=message)
        for message in startup_errors:
            self._emit("", "error", message=message)
        return self

    def _require_started(self):
        if not self._started:
            raise RuntimeError("Session.start() was not called (Session(cfg).start())")

    # -- front-end API --
    @property
    def turn_context(self):
        """The TurnContext the next turn runs under (overrides already applied)."""
        return self._ctx

    @property
    def family(self):
        """The ModelFamily of the current model."""
        return self._ctx.family

    @property
    def instructions(self):
        """The `instructions` field of the next request."""
        return self._ctx.instructions

    @property
    def closed(self):
        """Whether shutdown() has finished (no more events will come after the queued ones)."""
        return self._closed

    @property
    def busy(self):
        """Whether a task is running."""
        return self._task is not None

    def submit(self, op):
        """Submit an op (or a whole {"id", "op"} submission); return its submission id."""
        self._require_started()
        with self._lock:
            if "op" in op and isinstance(op.get("op"), dict):
                sub_id = str(op.get("id") or self._new_sub_id())
                op = op["op"]
            else:
                sub_id = self._new_sub_id()
        kind = op.get("type")
        if self._closed and kind != "shutdown":
            self._emit(sub_id, "error", message="the session is shut down")
            return sub_id
        handler = getattr(self, "_op_" + str(kind), None) if kind in OP_TYPES else None
        if handler is None:
            self._emit(sub_id, "error", message="unknown op type %r; expected one of: %s" % (kind, ", ".join(OP_TYPES)))
            return sub_id
        try:
            handler(sub_id, op)
        except CodexError as exc:
            self._emit(sub_id, "error", message=str(exc))
        return sub_id

    def next_event(self, timeout=None):
        """The next event, or None when `timeout` seconds pass (or the session is over)."""
        import queue

        self._require_started()
        if self._closed and self._events.empty():
            return None
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            return None

    def interrupt(self):
        """Stop the running task (stream and command); emits turn_aborted if one was running."""
        with self._lock:
            task = self._task
            if task is None:
                return False
            self._abort_task(task, "interrupted")
            return True

    def shutdown(self):
        """Stop everything, flush the rollout, emit shutdown_complete."""
        with self._lock:
            if self._closed:
                return
            task = self._task
            if task is not None:
                self._abort_task(task, "interrupted")
        # Let aborted tasks notice their cancel (a running command polls it every 50 ms) and
        # kill their process groups before the interpreter exits under these daemon threads.
        deadline = time.monotonic() + SHUTDOWN_TASK_GRACE_S
        for thread in getattr(self, "_task_threads", ()):
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        if self._client is not None:
            self._client.close()
        if self.mcp is not None:
            try:
                self.mcp.shutdown()
            except Exception as exc:  # a broken MCP server must not block shutdown
                log("warn", "mcp shutdown: %s", exc)
        if self._rollout is not None:
            self._rollout.close()
        self._emit("", "shutdown_complete")
        self._closed = True

    def wait_for_mcp(self, cancel=None):
        """Before a first turn: wait for the MCP servers still starting (each bounded by its
        startup_timeout_sec) so their tools are offered, then emit each failure once as a
        session-level error.  Returns False when `cancel` (Esc in the REPL) ended the wait."""
        if self.mcp is None:
            return True
        done = self.mcp.wait_started(cancel=cancel)
        for message in self.mcp.new_failures():
            self._emit("", "error", message=message)
        return done

    def fork(self, drop_last_user_messages):
        """A new Session (new id, same config) whose history is this one's cut just before its
        Nth-last user message; this session is left as it is (Esc-Esc backtrack in §18)."""
        with self._lock:
            items = list(self.history)
        users = [i for i, it in enumerate(items)
                 if it.get("type") == "message" and it.get("role") == "user" and not _is_context_message(it)]
        drop = max(0, min(int(drop_last_user_messages), len(users)))
        cut = users[len(users) - drop] if drop else len(items)
        new = Session(self.cfg, approval_handler=self.approval_handler, record_rollout=self._rollout is not None,
                      environ=self._environ, turn_context=self._ctx).start()
        new._record([it for it in items[:cut] if not _is_context_message(it)])
        return new

    # -- ops --
    def _new_sub_id(self):
        sub = str(self._next_sub)
        self._next_sub += 1
        return sub

    def _op_interrupt(self, sub_id, op):
        self.interrupt()

    def _op_shutdown(self, sub_id, op):
        self.shutdown()

    def _op_user_input(self, sub_id, op):
        message = input_items_to_message(op.get("items") or [], self._ctx.cwd,
                                         warn=lambda m: self._emit(sub_id, "background_event", message=m),
                                         home=self.cfg.codex_home)
        if not message["content"]:
            self._emit(sub_id, "error", message="user_input needs at least one text or image item")
            return
        with self._lock:
            if self._task is not None:
                self._task.pending_input.append(message)
                return
            self._start_task(_Task(sub_id), message)

    def _op_user_turn(self, sub_id, op):
        self._apply_overrides(op, record=True)
        self._op_user_input(sub_id, op)

    def _op_override_turn_context(self, sub_id, op):
        self._apply_overrides(op, record=True)

    def _apply_overrides(self, op, record):
        """Replace the turn context with one that has the op's overrides (never the Config)."""
        policy = op.get("sandbox_policy")
        with self._lock:
            before = self._ctx
            after = before.with_overrides(
                cwd=op.get("cwd"), approval_policy=op.get("approval_policy"),
                sandbox_policy=policy if isinstance(policy, dict) and policy.get("mode") else None,
                model=op.get("model"), effort=op.get("effort"), summary=op.get("summary"))
            self._ctx = after
            if after.config is not before.config and self._client is not None:
                self._client.close()
                self._client = None
        if after.to_wire() != before.to_wire() and self._rollout is not None:
            self._rollout.record_turn_context(after)
        if environment_context(before) != environment_context(after):
            self._record([text_message("user", environment_context(after, self.shell_name))])

    def _op_exec_approval(self, sub_id, op):
        self._deliver_decision(op)

    def _op_patch_approval(self, sub_id, op):
        self._deliver_decision(op)

    def _deliver_decision(self, op):
        decision = op.get("decision", "denied")
        if decision not in REVIEW_DECISIONS:
            raise UsageError("decision %r is not one of: %s" % (decision, ", ".join(REVIEW_DECISIONS)))
        with self._cond:
            self._decisions[str(op.get("id"))] = decision
            self._cond.notify_all()

    def _op_add_to_history(self, sub_id, op):
        if op.get("text"):
            append_history(self.cfg.codex_home, self.session_id, op["text"], self.cfg.history.get("persistence", "save-all"),
               self.cfg.history.get("max_bytes"))

    def _op_get_history_entry_request(self, sub_id, op):
        entry = lookup_history_entry(self.cfg.codex_home, int(op.get("offset", 0)), int(op.get("log_id", 0)),
                                     self.cfg.history.get("persistence", "save-all"))
        self._emit(sub_id, "get_history_entry_response", offset=op.get("offset"), log_id=op.get("log_id"), entry=entry)

    def _op_list_mcp_tools(self, sub_id, op):
        tools = {}
        if self.mcp is not None:
            tools = {name: {"name": t["name"], "description": t.get("description"), "inputSchema": t.get("inputSchema")}
                     for name, t in self.mcp.tools().items()}
        self._emit(sub_id, "mcp_list_tools_response", tools=tools)

    def _op_compact(self, sub_id, op):
        with self._lock:
            if self._task is not None:
                self._task.pending_input.append(text_message("user", COMPACT_PROMPT))
                return
            self._start_task(_Task(sub_id, kind="compact"), text_message("user", COMPACT_PROMPT))

    # -- events and recording --
    def _emit(self, sub_id, msg_type, **fields):
        event = make_event(sub_id, msg_type, **fields)
        self._events.put(event)
        if self._rollout is not None and msg_type in ("user_message", "agent_message", "agent_reasoning", "token_count", "error",
                                                      "tool_call_recovered"):
            self._rollout.record_event(event["msg"])
        return event

    def _task_emit(self, task, msg_type, **fields):
        """Emit for a task unless it was aborted (a cancelled task's thread goes quiet)."""
        with self._lock:
            if task.cancelled:
                return None
            return self._emit(task.sub_id, msg_type, **fields)

    def _record(self, items):
        with self._lock:
            self.history.extend(items)
            if self._rollout is not None:
                self._rollout.record_items(items)

    def _commit_task_items(self, task, aborted=False):
        """Move the items of the current request into history (adding 'aborted' outputs if asked)."""
        items = list(task.items)
        task.items = []
        if aborted:
            answered = {it.get("call_id") for it in items if it.get("type") in ("function_call_output", "custom_tool_call_output")}
            fixed = []
            for it in items:
                fixed.append(it)
                if it.get("type") in ("function_call", "local_shell_call", "custom_tool_call") and it.get("call_id") not in answered:
                    kind = "custom_tool_call_output" if it["type"] == "custom_tool_call" else "function_call_output"
                    fixed.append({"type": kind, "call_id": it.get("call_id"), "output": "aborted: the user interrupted this call"})
            items = fixed
        self._record(items)

    def _abort_task(self, task, reason):
        """Cancel `task` (lock held): record what it finished, emit turn_aborted."""
        if task.cancelled:
            return
        self._commit_task_items(task, aborted=True)
        for message in task.pending_input:
            self._record([message])
        task.pending_input = []
        self._emit(task.sub_id, "turn_aborted", reason=reason)
        task.cancelled = True
        task.cancel.set()
        if task.response is not None:
            abort_response(task.response)
        if self._task is task:
            self._task = None
        self._cond.notify_all()

    # -- the task --
    def _start_task(self, task, message):
        self._task = task
        task.thread = threading.Thread(target=self._run_task, args=(task, message), name="codex-task-%s" % task.sub_id, daemon=True)
        # shutdown() waits for these: an aborted task's thread is what kills its command's group
        self._task_threads = [t for t in getattr(self, "_task_threads", ()) if t.is_alive()] + [task.thread]
        task.thread.start()

    def _client_for_turn(self):
        if self._client is None:
            self._client = make_model_client(self._ctx.config, self.session_id, self._environ)
        return self._client

    def _await_context_window(self):
        """Take in the window the server reported (first task only): family and prompt follow it."""
        probe, self._window_probe = self._window_probe, None
        if probe is None:
            return
        probe.join(3 * CONTEXT_PROBE_TIMEOUT_S + 1)
        cfg = self._ctx.config
        family = model_family(cfg.model, cfg)
        if family.context_window and family.context_window != self.family.context_window:
            self._ctx = self._ctx.replace(family=family, instructions=build_instructions(cfg, family))

    @property
    def context_window(self):
        """The model's context window in tokens (configured, known or served), or None."""
        return self.family.context_window

    def _run_task(self, task, message):
        failed = None
        self._await_context_window()
        self._task_emit(task, "task_started", model_context_window=self.family.context_window)
        try:
            task.ctx = self._ctx
            message = self._prompt_hooks(task, message)
            self._record([message])
            text = message_text(message)
            if text:
                task.input_messages.append(text)
                self._task_emit(task, "user_message", message=text, kind="plain")
            while True:
                with self._lock:
                    if task.cancelled:
                        return
                    pending, task.pending_input = task.pending_input, []
                for msg in pending:
                    self._record([msg])
                    if message_text(msg):
                        task.input_messages.append(message_text(msg))
                if task.kind == "user":
                    self._maybe_auto_compact(task)
                follow_up = self._run_turn(task)
                if task.abort_requested:
                    with self._lock:
                        self._abort_task(task, "interrupted")
                    return
                with self._lock:
                    if task.cancelled:
                        return
                    if follow_up or task.pending_input:
                        continue
                if task.kind == "user" and self._stop_hooks_continue(task):
                    continue
                if task.kind == "user" and self._nudge_after_failure(task):
                    continue
                break
        except Interrupted:
            return
        except CodexError as exc:
            failed = str(exc)
        except Exception as exc:  # a bug must end the task visibly, not kill the thread silently
            import traceback

            log("error", "task %s crashed: %s", task.sub_id, traceback.format_exc())
            failed = "internal error: %s: %s" % (type(exc).__name__, exc)
        with self._lock:
            if task.cancelled:
                return
            if failed is not None:
                self._emit(task.sub_id, "error", message=failed)
            elif task.kind == "compact":
                self._finish_compaction(task)
            if failed is None and task.kind == "user" and self.cfg.notify:
                run_notify(self.cfg.notify, {
                    "type": "agent-turn-complete", "turn-id": task.sub_id,
                    "input-messages": list(task.input_messages),
                    "last-assistant-message": task.last_agent_message,
                })
            self._task = None
            self._emit(task.sub_id, "task_complete", last_agent_message=task.last_agent_message)

    # -- compaction --
    def auto_compact_limit(self):
        """Tokens at which the history is compacted: model_auto_compact_token_limit, else
        AUTO_COMPACT_FRACTION of the model's context window; None when neither is known."""
        limit = self.cfg.model_auto_compact_token_limit
        if limit:
            return int(limit)
        window = self.family.context_window
        return int(window * AUTO_COMPACT_FRACTION) if window else None

    def estimate_request_tokens(self, tools=None):
        """The estimated size of the next request (see the comment above AUTO_COMPACT_FRACTION)."""
        with self._lock:
            items = list(self.history)
        mark = self._usage_mark
        if mark is not None and mark[1] <= len(items):
            return mark[0] + estimate_tokens(items[mark[1]:])
        tools = build_tools(self._ctx, self.mcp.tools() if self.mcp is not None else None) if tools is None else tools
        return estimate_tokens(self.instructions) + estimate_tokens(tools) + estimate_tokens(items)

    def _maybe_auto_compact(self, task):
        limit = self.auto_compact_limit()
        if not limit or task.compacted:
            return
        tokens = self.estimate_request_tokens()
        if tokens >= limit:
            self._compact(task, "auto", tokens)

    def _compact(self, task, reason, tokens=None):
        """Replace the history by a summary the model writes (plus the user's recent messages
        and the plan); record it in the rollout and emit context_compacted."""
        limit = self.auto_compact_limit()
        tokens = self.estimate_request_tokens() if tokens is None else tokens
        blocked = self._run_hooks(task, "PreCompact", trigger="auto")
        if blocked.blocked:
            self._task_emit(task, "background_event", message="not compacting: %s" % blocked.reason)
            task.compacted = True  # not again before the next request
            return
        self._task_emit(task, "background_event", message="compacting the conversation (~%s tokens%s)..." % (
            "{:,}".format(tokens), " of %s" % "{:,}".format(limit) if limit else ""))
        items = self._prompt_input() + [text_message("user", COMPACT_PROMPT)]
        window = self.family.context_window or (int(limit / AUTO_COMPACT_FRACTION) if limit else None)
        budget = int(window * 0.9) if window else None
        if budget:
            if estimate_tokens(self.instructions) + estimate_tokens(items) > budget:
                items = trim_tool_outputs(items)
            for _ in range(8):  # each pass halves what is left: bounded
                if estimate_tokens(self.instructions) + estimate_tokens(items) <= budget:
                    break
                items = drop_oldest_items(items[:-1]) + items[-1:]
        summary = None
        for attempt in range(2):
            try:
                summary = self._request_summary(task, items)
                break
            except ContextWindowExceeded:
                if attempt:
                    raise
                items = drop_oldest_items(trim_tool_outputs(items[:-1], keep_last=0)) + items[-1:]
        with self._lock:
            if task.cancelled:
                raise Interrupted("interrupted")
            new = compacted_history(self.history, summary, self.plan, limit)
            self.history = new
            if self._rollout is not None:
                self._rollout.record_compacted(summary or "", replacement_history=new)
        self._usage_mark = None
        task.compacted = True
        self.compactions += 1
        after = self.estimate_request_tokens()
        self._task_emit(task, "context_compacted", reason=reason, tokens_before=tokens, tokens_after=after,
                        compactions=self.compactions)
        log("info", "compacted the history (%s): ~%d -> ~%d tokens", reason, tokens, after)

    def _request_summary(self, task, items):
        """One request without tools asking for the summary; returns its text."""
        client = self._client_for_turn()
        retries = 0
        while True:
            text, completed = [], None
            try:
                def on_response(resp):
                    with self._lock:
                        task.response = resp
                        if task.cancelled:
                            abort_response(resp)

                for kind, payload in client.stream(Prompt(items, [], self.instructions), cancel=task.cancel,
                                                   on_response=on_response):
                    if task.cancelled:
                        raise Interrupted("interrupted")
                    if kind == "item" and payload.get("type") == "message":
                        text.append(message_text(payload))
                    elif kind == "completed":
                        completed = payload
            except StreamError as exc:
                if retries >= self.cfg.provider.stream_max_retries:
                    raise
                retries += 1
                _interruptible_sleep(exc.retry_after if exc.retry_after is not None else backoff(retries), task.cancel)
                continue
            finally:
                with self._lock:
                    task.response = None
            usage = (completed or {}).get("usage")
            if usage:
                for key in self.total_usage:
                    self.total_usage[key] += usage.get(key) or 0
            return "\n".join(t for t in text if t).strip()

    def _finish_compaction(self, task):
        """After a /compact task: the model's answer is the summary (see compacted_history)."""
        summary = task.last_agent_message or "(no summary available)"
        self.history = compacted_history(self.history, summary, self.plan, self.auto_compact_limit())
        self._usage_mark = None
        if self._rollout is not None:
            self._rollout.record_compacted(summary, replacement_history=self.history)
        self._emit(task.sub_id, "agent_message", message="Compact task completed")

    def _prompt_input(self):
        """History for the next request, with an 'aborted' output after any unanswered call."""
        with self._lock:
            items = list(self.history)
        answered = {it.get("call_id") for it in items if it.get("type") in ("function_call_output", "custom_tool_call_output")}
        out = []
        for it in items:
            out.append(it)
            if it.get("type") in ("function_call", "local_shell_call", "custom_tool_call") and it.get("call_id") not in answered:
                kind = "custom_tool_call_output" if it["type"] == "custom_tool_call" else "function_call_output"
                out.append({"type": kind, "call_id": it.get("call_id"), "output": "aborted"})
        return out

    def _tools(self, task):
        if task.kind == "compact":
            return []
        mcp_tools = self.mcp.tools() if self.mcp is not None else None
        if self.mcp is not None:
            for message in self.mcp.new_failures():  # session-level: not a failure of this task
                self._emit("", "error", message=message)
        return build_tools(task.ctx, mcp_tools)

    def _nudge_after_failure(self, task):
        """When the model ended its turn right after a command that failed, or claims a change
        although every call of the task only read files, send it a short follow-up (at most
        `follow_up_nudges` per task): small models often answer "fixed it" or "I will now
        ..." there without doing it.  True when the turn goes on."""
        limit = self.cfg.follow_up_nudges
        if limit is None:
            limit = FOLLOW_UP_NUDGES if compact_prompt_wanted(self.cfg, self.family) else 0
        if task.nudges >= limit or task.cancelled or not task.tool_calls:
            return False
        if task.failed_exit == "tool":
            why, text = "stopped right after a tool call that failed", FAILED_TOOL_NUDGE
        elif task.failed_exit is not None:
            why = "stopped right after a command that failed (exit code %s)" % task.failed_exit
            text = "Your last command failed (exit code %s). %s" % (task.failed_exit, task.next_step) \
                if task.next_step else FAILED_COMMAND_NUDGE % task.failed_exit
        else:
            with self._lock:
                last = self.history[-1] if self.history else {}
                answer = next((message_text(it) for it in reversed(self.history)
                               if it.get("type") == "message" and it.get("role") == "assistant"), "")
            if last.get("type") in ("function_call_output", "custom_tool_call_output"):
                # nothing after the last tool result: the model's answer was empty
                why, text = "gave an empty answer", EMPTY_ANSWER_NUDGE
            elif task.wrote or not _CLAIMED_CHANGE_RE.search(answer or ""):
                return False
            else:
                why, text = "claims a change although its commands only read files", UNMADE_CHANGE_NUDGE
        task.nudges += 1
        self._task_emit(task, "background_event", message="the model %s; asking it to go on (follow_up_nudges = %d)"
                        % (why, limit))
        with self._lock:
            # The answer is left out of what the model reads next (it stays in the rollout and was
            # shown): a small model given its own wrong answer back repeats it word for word.
            last = self.history[-1] if self.history else {}
            if last.get("type") == "message" and last.get("role") == "assistant":
                self.history.pop()
        self._record([text_message("user", text)])
        return True  # failed_exit stays: an answer without a tool call is still one right after it

    def _run_turn(self, task):
        """One model request (with stream retries), running tools as items arrive.

        Returns True when the model called tools (so another request must follow).
        """
        retries = 0
        max_retries = self.cfg.provider.stream_max_retries
        while True:
            with self._lock:
                task.ctx = self._ctx  # computed once per turn: what the tools enforce and the model is told
            prompt = Prompt(self._prompt_input(), self._tools(task), task.ctx.instructions,
                            output_schema=self.output_schema if task.kind == "user" else None)
            tool_called = [False]
            try:
                completed = self._stream_once(task, prompt, tool_called)
            except TurnStopped:
                with self._lock:
                    if task.response is not None:
                        abort_response(task.response)
                        task.response = None
                    self._commit_task_items(task)
                raise
            except ContextWindowExceeded as exc:
                with self._lock:
                    if task.cancelled:
                        raise Interrupted("interrupted")
                    self._commit_task_items(task)
                if task.kind != "user" or task.compacted:
                    raise ProviderError("%s; compacting did not help: start a new session (or raise "
                                        "model_context_window if the model's window is larger)" % exc)
                self._compact(task, "context_length_exceeded")  # then retry this request once
                continue
            except StreamError as exc:
                with self._lock:
                    if task.cancelled:
                        raise Interrupted("interrupted")
                    # Record the calls that already ran: the retry continues after them
                    # instead of re-running them.
                    self._commit_task_items(task)
                if task.abort_requested:
                    return True
                if retries >= max_retries:
                    raise ProviderError("%s (gave up after %s)" % (exc, _plural(max_retries, "stream retry", "stream retries")))
                retries += 1
                delay = exc.retry_after if exc.retry_after is not None else backoff(retries)
                message = "stream error: %s; retrying %d/%d in %.1fs..." % (exc, retries, max_retries, delay)
                self._task_emit(task, "stream_error", message=message)
                self._task_emit(task, "background_event", message=message)
                _interruptible_sleep(delay, task.cancel)
                continue
            with self._lock:
                if task.cancelled:
                    raise Interrupted("interrupted")
                before = len(self.history)
                self._commit_task_items(task)
            task.compacted = False
            usage = completed.get("usage")
            self._usage_mark = None
            if usage and usage.get("input_tokens"):
                self._usage_mark = (int(usage.get("input_tokens") or 0) + int(usage.get("output_tokens") or 0), before)
            if usage:
                for key in self.total_usage:
                    self.total_usage[key] += usage.get(key) or 0
                fields = dict(usage)
                fields["info"] = {"total_token_usage": dict(self.total_usage), "last_token_usage": usage,
                                  "model_context_window": self.family.context_window}
                self._task_emit(task, "token_count", **fields)
            return tool_called[0]

    def _stream_once(self, task, prompt, tool_called):
        client = self._client_for_turn()

        def on_retry(error, attempt, max_retries, delay):
            self._task_emit(task, "background_event",
                            message="model request failed (%s); retrying %d/%d in %.1fs..." % (error, attempt, max_retries, delay))

        def on_response(resp):
            with self._lock:
                task.response = resp
                if task.cancelled:
                    abort_response(resp)

        completed = None
        show_raw = bool(self.cfg.show_raw_agent_reasoning)
        hide = bool(self.cfg.hide_agent_reasoning)
        # Text a failed attempt already streamed (task.shown) is not streamed again by the
        # retry: its deltas are swallowed while they repeat it, only what is new is emitted.
        task.streamed = ""
        try:
            for kind, payload in client.stream(prompt, cancel=task.cancel, on_retry=on_retry, on_response=on_response):
                if task.cancelled:
                    raise Interrupted("interrupted")
                if kind == "item" and payload.get("type") == "message":
                    task.streamed, task.shown = "", ""
                if kind == "text_delta":
                    if payload:
                        self._emit_text_delta(task, payload)
                    continue
                completed = self._stream_event(task, kind, payload, tool_called, show_raw, hide) or completed
        except StreamError:
            if len(task.streamed) > len(task.shown):
                task.shown = task.streamed
            raise
        with self._lock:
            task.response = None
        return completed or {}

    def _emit_text_delta(self, task, delta):
        before = len(task.streamed)
        task.streamed += delta
        shown = task.shown
        if len(task.streamed) <= len(shown) and shown.startswith(task.streamed):
            return  # the retry repeats what is on screen
        if shown and not task.streamed.startswith(shown):
            self._task_emit(task, "background_event", message="the retried answer differs from the partial one above")
            task.shown = ""
            self._task_emit(task, "agent_message_delta", delta="\n" + task.streamed)
            return
        new = task.streamed[max(before, len(shown)):]
        if shown and before < len(shown):
            task.shown = ""
        if new:
            self._task_emit(task, "agent_message_delta", delta=new)

    def _stream_event(self, task, kind, payload, tool_called, show_raw, hide):
        """Handle one non-text stream event; returns the `completed` payload when it is one."""
        if kind == "reasoning_delta":
            if not hide:
                self._task_emit(task, "agent_reasoning_delta", delta=payload)
        elif kind == "reasoning_break":
            if not hide:
                self._task_emit(task, "agent_reasoning_section_break")
        elif kind == "reasoning_raw_delta":
            if show_raw:
                self._task_emit(task, "agent_reasoning_raw_content_delta", delta=payload)
        elif kind == "item":
            if self._handle_item(task, payload):
                tool_called[0] = True
        elif kind == "tool_call_recovered":
            self._task_emit(task, "tool_call_recovered", **payload)
        elif kind == "completed":
            return payload
        return None


    def _ask(self, task, msg_type, **fields):
        """Ask the front end for a decision (approval_handler or request event + op); the
        ToolRunner's questions come here."""
        if self.approval_handler is not None:
            msg = {"type": msg_type}
            msg.update(fields)
            decision = self.approval_handler(msg)
            decision = decision if decision in REVIEW_DECISIONS else "denied"
        else:
            with self._cond:
                if task.cancelled:
                    return "abort"
                self._decisions.pop(task.sub_id, None)
                self._emit(task.sub_id, msg_type, **fields)
                while task.sub_id not in self._decisions and not task.cancelled:
                    self._cond.wait(0.5)
                if task.cancelled:
                    return "abort"
                decision = self._decisions.pop(task.sub_id)
        if decision == "abort":
            task.abort_requested = True
        return decision

    # -- items --
    def _guard_loop(self, task, item):
        """Count a tool call; past a limit ask loop_handler, else answer the call and stop the turn."""
        kind = item.get("type")
        if kind not in ("function_call", "local_shell_call", "custom_tool_call"):
            return
        if kind == "function_call":
            try:
                args = json.dumps(json.loads(item.get("arguments") or "{}"), sort_keys=True)
            except ValueError:
                args = item.get("arguments") or ""
            signature = (item.get("name"), args)
        else:
            signature = (kind, json.dumps(item.get("action") or item.get("input"), sort_keys=True, default=str))
        task.tool_calls += 1
        task.repeats = task.repeats + 1 if signature == task.last_call else 1
        task.last_call = signature
        # two calls taking turns (run the test, look at the test, run the test, ...) count too
        sigs = task.recent_calls = (task.recent_calls + [signature])[-2 * LOOP_PAIR_WINDOW:]
        pairs = 1
        while 2 * (pairs + 1) <= len(sigs) and sigs[-2 * (pairs + 1):-2 * pairs] == sigs[-2:] and sigs[-1] != sigs[-2]:
            pairs += 1
        max_repeats = self.cfg.max_repeated_tool_calls or 0
        max_calls = self.cfg.max_tool_calls_per_turn or 0
        message = None
        if max_repeats and task.repeats >= max_repeats:
            message = ("the model called `%s` with the same arguments %d times in a row (max_repeated_tool_calls = %d)"
                       % (signature[0], task.repeats, max_repeats))
        elif max_repeats and pairs >= max_repeats:
            message = ("the model made the same two calls (`%s`, `%s`) by turns %d times in a row "
                       "(max_repeated_tool_calls = %d)" % (sigs[-2][0], sigs[-1][0], pairs, max_repeats))
        elif max_calls and task.tool_calls > max_calls:
            message = "the model made more than %d tool calls in this turn (max_tool_calls_per_turn = %d)" % (max_calls, max_calls)
        if message is None:
            return
        if self.loop_handler is not None:
            go_on = bool(self.loop_handler(message))
        elif getattr(self, "ask_on_loop_limit", False):  # the REPL: the user decides (exec_approval op)
            go_on = self._ask(task, "loop_limit_request", message=message) in ("approved", "approved_for_session")
        else:
            go_on = False
        if go_on:
            task.repeats = 0
            task.tool_calls = 0
            task.recent_calls = []
            return
        output = "not run: the turn was stopped because %s" % message
        output_kind = "custom_tool_call_output" if kind == "custom_tool_call" else "function_call_output"
        with self._lock:
            task.items.append(item)
            task.items.append({"type": output_kind, "call_id": item.get("call_id"), "output": output})
        raise TurnStopped("stopped the turn: %s; raise the limit in config.toml (0 turns it off) or "
                          "send a new message to go on" % message)

    def _handle_item(self, task, item):
        """Record one finished output item; run it when it is a tool call. True for calls."""
        kind = item.get("type")
        self._guard_loop(task, item)
        if kind in ("function_call", "local_shell_call", "custom_tool_call"):
            task.failed_exit = None  # _run_shell sets it again when this call is a command that fails
        with self._lock:
            if task.cancelled:
                raise Interrupted("interrupted")
            task.items.append(item)
        if kind == "message":
            for part in item.get("content") or ():
                if part.get("type") == "output_text":
                    self._task_emit(task, "agent_message", message=part.get("text") or "")
            text = message_text(item)
            if text:
                task.last_agent_message = text
            return False
        if kind == "reasoning":
            if not self.cfg.hide_agent_reasoning:
                for part in item.get("summary") or ():
                    self._task_emit(task, "agent_reasoning", text=part.get("text") or "")
            if self.cfg.show_raw_agent_reasoning:
                for part in item.get("content") or ():
                    if part.get("type") == "reasoning_text":
                        self._task_emit(task, "agent_reasoning_raw_content", text=part.get("text") or "")
            return False
        if kind == "function_call":
            name, arguments = item.get("name") or "", item.get("arguments") or ""
            output = self._hooked(task, item.get("call_id") or "", *self._hook_tool(name, arguments),
                                  run=lambda: self.tools.dispatch(task, item.get("call_id") or "", name, arguments))
            self._add_output(task, {"type": "function_call_output", "call_id": item.get("call_id"), "output": output})
            return True
        if kind == "local_shell_call":
            action = item.get("action") or {}
            params = {"command": action.get("command") or [], "workdir": action.get("working_directory"),
                      "timeout_ms": action.get("timeout_ms"), "escalated": False, "justification": None}
            output = self._hooked(task, item.get("call_id") or "", *self._hook_tool("shell", {"command": params["command"]}),
                                  run=lambda: self.tools.run(task, item.get("call_id") or "", "shell", params))
            self._add_output(task, {"type": "function_call_output", "call_id": item.get("call_id"), "output": output})
            return True
        if kind == "custom_tool_call":
            if item.get("name") == "apply_patch":
                output = self._hooked(task, item.get("call_id") or "", *self._hook_tool("apply_patch", {"input": item.get("input") or ""}),
                                      run=lambda: self.tools.run(task, item.get("call_id") or "", "apply_patch", {"input": item.get("input") or ""}))
            else:
                output = "unsupported custom tool call: %s" % item.get("name")
            self._add_output(task, {"type": "custom_tool_call_output", "call_id": item.get("call_id"), "output": output})
            return True
        return False

    # -- hooks (§14c) --
    def _run_hooks(self, task, event, tool_name=None, **fields):
        """Run the config's hooks for `event` with the common payload fields; a HookOutcome."""
        hooks = self.cfg.hooks
        if not hooks or not any(h.event == event for h in hooks):
            return HookOutcome()
        ctx = (task.ctx if task is not None else None) or self._ctx
        payload = {"session_id": self.session_id,
                   "transcript_path": str(self.rollout_path) if self.rollout_path else None,
                   "cwd": str(ctx.cwd), "hook_event_name": event, "model": ctx.model,
                   "permission_mode": hook_permission_mode(ctx.approval_policy, ctx.sandbox_mode)}
        if task is not None and event != "SessionStart":
            payload["turn_id"] = task.sub_id
        if tool_name is not None:
            payload["tool_name"] = tool_name
        payload.update(fields)
        outcome = run_hooks(hooks, event, payload, tool_name=tool_name, cwd=ctx.cwd, environ=self._environ)
        for warning in outcome.warnings:
            self._task_emit(task, "background_event", message=warning) if task is not None else self._emit("", "background_event", message=warning)
        return outcome

    def _prompt_hooks(self, task, message):
        """SessionStart (before the first prompt) and UserPromptSubmit: block the task (CodexError)
        or return the message with the hooks' context added."""
        extra = []
        if not self._session_hooks_ran:
            self._session_hooks_ran = True
            started = self._run_hooks(task, "SessionStart", source="resume" if self._resumed else "startup")
            if started.blocked:
                self._session_blocked = started.reason
            extra += started.context
        if self._session_blocked:
            raise CodexError("a SessionStart hook blocked this session: %s" % self._session_blocked)
        if task.kind == "compact":
            compacting = self._run_hooks(task, "PreCompact", trigger="manual")
            if compacting.blocked:
                raise CodexError("a PreCompact hook blocked compaction: %s" % compacting.reason)
        if task.kind != "user":
            return message
        submitted = self._run_hooks(task, "UserPromptSubmit", prompt=message_text(message))
        if submitted.blocked:
            raise CodexError("the prompt was blocked by a UserPromptSubmit hook: %s" % submitted.reason)
        extra += submitted.context
        if not extra:
            return message
        content = list(message["content"]) + [{"type": "input_text", "text": "<hook_context>\n%s\n</hook_context>" % "\n\n".join(extra)}]
        return dict(message, content=content)

    def _hook_tool(self, name, arguments):
        """(tool_name, tool_input) as hooks see a call: Bash with the command as one string,
        apply_patch with the patch and its files, mcp__SERVER__TOOL with the arguments."""
        if not self.cfg.hooks:
            return name, {}
        try:
            args = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError:
            args = {"arguments": arguments}
        args = args if isinstance(args, dict) else {"arguments": args}
        if name in ("shell", "container.exec") and isinstance(args.get("command"), list):
            patch = extract_apply_patch([str(a) for a in args["command"]])
            if patch is None:
                return "Bash", {"command": _shell_join([str(a) for a in args["command"]])}
            name, args = "apply_patch", {"input": patch[0]}
        if name == "apply_patch" and isinstance(args.get("input"), str):
            files = re.findall(r"(?m)^\*\*\* (?:Add|Update|Delete) File: (.+)$|^\*\*\* Move to: (.+)$", args["input"])
            return "apply_patch", {"patch": args["input"], "files": [a or b for a, b in files]}
        found = self.mcp.lookup(name) if self.mcp is not None else None
        if found is not None:
            return "mcp__%s__%s" % found, args
        return HOOK_TOOL_NAMES.get(name, name), args

    def _hooked(self, task, call_id, tool, tool_input, run):
        """Run one tool call between its PreToolUse and PostToolUse hooks; return the model's output."""
        if not self.cfg.hooks:
            return run()
        pre = self._run_hooks(task, "PreToolUse", tool_name=tool, tool_input=tool_input, tool_use_id=call_id)
        if pre.blocked:
            self._task_emit(task, "tool_call_blocked", call_id=call_id, tool=tool, tool_input=tool_input,
                            reason="blocked by a PreToolUse hook: %s" % pre.reason)
            return "blocked by a PreToolUse hook: %s" % pre.reason
        if pre.permission == "ask":
            decision = self._ask(task, "exec_approval_request", call_id=call_id,
                                 command=["%s:" % tool, json.dumps(tool_input)], cwd=str(task.ctx.cwd),
                                 reason="a PreToolUse hook asks for your approval")
            if decision not in ("approved", "approved_for_session"):
                refusal = getattr(self.approval_handler, "refusal", None)
                return "rejected: a PreToolUse hook asked for approval%s" % (": %s" % refusal if refusal else " and it was denied")
        output = run()
        post = self._run_hooks(task, "PostToolUse", tool_name=tool, tool_input=tool_input, tool_use_id=call_id,
                               tool_response=output)
        if post.blocked:
            output = "%s\n\n[PostToolUse hook] %s" % (output, post.reason)
        if post.context:
            output = "%s\n\n[PostToolUse hook] %s" % (output, "\n".join(post.context))
        return output

    def _stop_hooks_continue(self, task):
        """Stop hooks at the end of a task: True when one blocked (its reason becomes the next instruction)."""
        outcome = self._run_hooks(task, "Stop", stop_hook_active=task.stop_blocks > 0,
                                  last_assistant_message=task.last_agent_message)
        if not outcome.blocked:
            return False
        if task.stop_blocks >= HOOK_STOP_MAX_CONTINUES:
            self._task_emit(task, "background_event", message="a Stop hook blocked %d times in a row; ending the turn: %s"
                            % (task.stop_blocks, outcome.reason))
            return False
        task.stop_blocks += 1
        with self._lock:
            task.pending_input.append(text_message("user", outcome.reason))
        self._task_emit(task, "background_event", message="a Stop hook keeps the turn going: %s" % outcome.reason)
        return True

    def _add_output(self, task, output_item):
        with self._lock:
            if task.cancelled:
                raise Interrupted("interrupted")
            task.items.append(output_item)



class ToolRunner(object):
    """Runs the model's tool calls for a Session: finds the Tool (§09's registry), parses its
    arguments, and runs it under the turn's TurnContext (task.ctx).  It talks to its session
    only through _task_emit (events), _ask (approvals), approval_handler, state (approved
    commands), mcp and plan.
    """

    def __init__(self, session):
        self.session = session

    def _task_emit(self, task, msg_type, **fields):
        return self.session._task_emit(task, msg_type, **fields)

    def _ask(self, task, msg_type, **fields):
        return self.session._ask(task, msg_type, **fields)

    state = property(lambda self: self.session.state, doc="the session's SessionState (approved commands)")
    mcp = property(lambda self: self.session.mcp, doc="the session's McpConnectionManager, or None")
    approval_handler = property(lambda self: self.session.approval_handler, doc="the session's approval_handler, or None")

    def dispatch(self, task, call_id, name, arguments):
        """Run one function call; return the output string for the model."""
        try:
            tool = find_tool(name)
            if tool is not None:
                return self._run_tool(tool, task, call_id, tool.parse(arguments, task.ctx, self.session._environ))
            if self.mcp is not None and self.mcp.lookup(name) is not None:  # hashed names may lack "__"
                return self._run_mcp(task, call_id, name, arguments)
            return "unsupported call: %s" % name
        except ToolArgumentError as exc:
            return str(exc)

    def run(self, task, call_id, name, params):
        """Run the registered tool `name` with already parsed params (local_shell_call, custom tools)."""
        return self._run_tool(find_tool(name), task, call_id, params)

    def _run_tool(self, tool, task, call_id, params):
        """tool.run, wrapped in tool_call_begin/tool_call_end when the tool declares a render."""
        if tool.render is None:
            return tool.run(self, task, call_id, params)
        started, output = time.monotonic(), None
        self._task_emit(task, "tool_call_begin", call_id=call_id, tool=tool.name, arguments=params)
        try:
            output = tool.run(self, task, call_id, params)
            return output
        finally:
            self._task_emit(task, "tool_call_end", call_id=call_id, tool=tool.name, arguments=params,
                            output=output or "", success=output is not None,
                            duration=wire_duration(time.monotonic() - started))

    def assess(self, task, name, params):
        """The registered tool's approval assessment of params under the turn's context (None: the
        tool decides while it runs, e.g. apply_patch once the patch is parsed)."""
        tool = find_tool(name)
        if tool is None or tool.assess is None:
            return None
        return tool.assess(task.ctx, params, self.state.approved_commands)

    def _run_plan(self, task, call_id, plan):
        self.session.plan = plan  # kept across a compaction
        self._task_emit(task, "plan_update", **plan)
        return "Plan updated"

    def _resolve_cwd(self, task, workdir):
        cwd = Path(task.ctx.cwd)
        if workdir:  # resolved once: events, the approval question and the run name the real directory
            cwd = Path(os.path.realpath(str(cwd / Path(workdir).expanduser())))
        return cwd

    def _run_shell(self, task, call_id, params):
        argv = normalize_shell_argv(params["command"], task.ctx.config, self.session._environ)  # what really runs
        cwd = self._resolve_cwd(task, params.get("workdir"))
        patch = extract_apply_patch(argv)
        if patch is not None:
            text, subdir = patch
            return self._run_apply_patch(task, call_id, text, cwd / subdir if subdir else cwd)
        import base64

        begun = [False]

        def begin():
            # exec_command_begin means "running now": after an approval, never before it.
            if not begun[0]:
                begun[0] = True
                self._task_emit(task, "exec_command_begin", call_id=call_id, command=argv, cwd=str(cwd),
                                parsed_cmd=parse_command_summary(argv))

        def on_output(stream, data):
            begin()
            self._task_emit(task, "exec_command_output_delta", call_id=call_id, stream=stream,
                            chunk=base64.b64encode(data).decode("ascii"))

        def ask(kind="exec", argv=argv, cwd=cwd, reason=None, **extra):
            decision = self._ask(task, "exec_approval_request", call_id=call_id, command=list(argv), cwd=str(cwd), reason=reason)
            if decision in ("approved", "approved_for_session"):
                begin()
            return decision

        verdict = self.assess(task, "shell", params)
        if verdict == "auto-approve":
            begin()
        timeout_ms = params.get("timeout_ms") or DEFAULT_SHELL_TIMEOUT_MS
        cap = task.ctx.config.max_command_timeout_ms
        capped = None
        if timeout_ms > cap:  # a model's timeout must not hold codex (a CI job) for ever
            capped = ("timeout_ms %d is above the limit (max_command_timeout_ms = %d): the command ran with "
                      "a timeout of %d ms" % (timeout_ms, cap, cap))
            timeout_ms = cap
        started = time.monotonic()
        try:
            outcome = execute_with_policy(argv, cwd, task.ctx, self.state, ask, on_output=on_output, cancel=task.cancel,
                                          timeout_ms=timeout_ms, escalated=bool(params.get("escalated")),
                                          justification=params.get("justification"),
                                          formatter=format_exec_output_text if params.get("text_output") else None)
        except CodexError as exc:
            begin()
            self._task_emit(task, "exec_command_end", call_id=call_id, stdout="", stderr=str(exc), aggregated_output=str(exc),
                            exit_code=-1, duration=wire_duration(time.monotonic() - started), formatted_output=str(exc))
            return "execution error: %s" % exc
        if task.cancelled:
            raise Interrupted("interrupted")
        if outcome.decision == "abort":
            task.abort_requested = True
        if capped:
            outcome = ExecOutcome(outcome.result, _note_for_model(outcome.model_output, capped), outcome.decision)
        if outcome.decision == "denied" and getattr(self.approval_handler, "refusal", None):
            # nobody was asked (exec): not "rejected by user"
            outcome = ExecOutcome(outcome.result, "exec command not run: %s" % self.approval_handler.refusal,
                                  outcome.decision)
        result = outcome.result
        if result is None:
            if begun[0]:
                self._task_emit(task, "exec_command_end", call_id=call_id, stdout="", stderr=outcome.model_output,
                                aggregated_output=outcome.model_output, exit_code=-1,
                                duration=wire_duration(time.monotonic() - started), formatted_output=outcome.model_output)
            else:
                self._task_emit(task, "tool_call_blocked", call_id=call_id, tool="Bash",
                                tool_input={"command": _shell_join(argv)}, reason=outcome.model_output)
        else:
            begin()
            duration = result.duration
            duration = duration.total_seconds() if hasattr(duration, "total_seconds") else float(duration or 0)
            extra = {"timed_out": True, "timeout_ms": result.timeout_ms} if getattr(result, "timed_out", False) else {}
            task.failed_exit = result.exit_code if result.exit_code not in (0, None) else None
            task.wrote = task.wrote or not is_known_safe_command(argv)
            key, seen = (tuple(argv), str(cwd)), (result.exit_code, result.aggregated_output)
            step = self._next_step_after_failure(task, result, cwd) if params.get("text_output") else None
            task.next_step = step
            if step:  # the concrete step replaces the general advice (and the note about a repeat)
                note = failed_command_note(result.exit_code)
                outcome = ExecOutcome(result, outcome.model_output.replace(note, step), outcome.decision)
            elif task.outputs.get(key) == seen and params.get("text_output"):
                outcome = ExecOutcome(result, outcome.model_output + REPEATED_OUTPUT_NOTE, outcome.decision)
            task.outputs[key] = seen
            self._task_emit(task, "exec_command_end", call_id=call_id,
                            stdout=(result.stdout or "")[:UI_OUTPUT_MAX_CHARS], stderr=(result.stderr or "")[:UI_OUTPUT_MAX_CHARS],
                            aggregated_output=(result.aggregated_output or "")[:UI_OUTPUT_MAX_CHARS * 4],
                            exit_code=result.exit_code, duration=wire_duration(duration), formatted_output=outcome.model_output,
                            **extra)
        return outcome.model_output

    def _run_apply_patch(self, task, call_id, text, cwd):
        cwd = Path(cwd) if cwd is not None else Path(task.ctx.cwd)
        try:
            changes = plan_patch(text, cwd)
        except PatchError as exc:
            return "error: %s" % exc
        paths = []
        for ch in changes:
            paths.append(ch.path)
            if ch.move_path is not None:
                paths.append(ch.move_path)
        verdict = assess_patch_safety(paths, task.ctx)
        protocol_changes = {str(ch.path): ch.to_protocol() for ch in changes}
        # The verdict is the user interface; the boundary is the sandbox: an auto-approved patch
        # is applied by codex's apply_patch mode run as a sandboxed command (§13), so Landlock and
        # the mounts decide what it writes.  A patch the user approved runs unsandboxed, as an
        # approved command does.
        sandboxed = verdict == "auto-approve" and not task.ctx.sandbox_policy.is_unrestricted()
        if sandboxed and not sandbox_available(task.ctx.codex_home):
            verdict = "reject" if task.ctx.approval_policy == "never" else "ask-user"
            sandboxed = False
        if verdict == "reject":
            return "patch rejected: writing outside of the project; rejected by user approval settings"
        auto = verdict == "auto-approve"
        if not auto:
            decision = self._ask(task, "apply_patch_approval_request", call_id=call_id, changes=protocol_changes,
                                 reason=_patch_outside_reason(paths, task.ctx), grant_root=None)
            if decision not in ("approved", "approved_for_session"):
                if getattr(self.approval_handler, "refusal", None):
                    self._task_emit(task, "background_event", message="patch rejected: %s" % self.approval_handler.refusal)
                    return "patch not applied: %s" % self.approval_handler.refusal  # nobody was asked
                return "patch rejected by user"
        self._task_emit(task, "patch_apply_begin", call_id=call_id, auto_approved=auto, changes=protocol_changes)
        task.wrote = True
        for ch in changes:
            for path, before in ((ch.path, ch.old if ch.kind != "add" else None), (ch.move_path, None)):
                if path is not None and path not in task.diff_base:
                    task.diff_base[path] = before if path == ch.path else (
                        path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None)
        started = time.monotonic()
        stdout, stderr = "", ""
        if sandboxed:
            try:
                result = apply_patch_in_sandbox(text, cwd, task.ctx)
            except CodexError as exc:  # no sandbox can be built here (SandboxError): fail closed
                result = ExecResult(1, "", "execution error: %s\n" % exc)
            stdout, stderr = (result.stdout, "") if result.exit_code == 0 else ("", result.stderr or result.stdout)
            if result.exit_code != 0 and result.sandbox_denied and task.ctx.approval_policy == "on-failure":
                decision = self._ask(task, "apply_patch_approval_request", call_id=call_id, changes=protocol_changes,
                                     reason="patch failed in the sandbox; apply it without the sandbox?", grant_root=None)
                sandboxed = decision not in ("approved", "approved_for_session")
        if not sandboxed:
            try:
                apply_changes(changes)
                stdout, stderr = patch_summary(changes), ""
            except PatchError as exc:
                stderr = str(exc) + "\n"
        if not stdout and not stderr.strip():
            stderr = "apply_patch failed without a message\n"
        self._task_emit(task, "patch_apply_end", call_id=call_id, stdout=stdout, stderr=stderr, success=not stderr)
        diff = self._turn_diff(task)
        if diff:
            self._task_emit(task, "turn_diff", unified_diff=diff)
        return shell_output_for_model(stdout or stderr, 0 if not stderr else 1, time.monotonic() - started)

    def _run_write_file(self, task, call_id, params):
        """write_file: the whole file, applied as a patch (approval and sandbox as apply_patch)."""
        out = self._write_file(task, call_id, params)
        if out.startswith("error:"):
            task.failed_exit = "tool"  # a follow-up when the model stops here (_nudge_after_failure)
        return out

    def _edit_file(self, task, call_id, params):
        out = self._edit_file_text(task, call_id, params)
        if out.startswith(("error:", "no change:")):  # new_text == old_text: a no-op edit did not fix anything
            task.failed_exit = "tool"
        return out

    def _write_file(self, task, call_id, params):
        path = Path(task.ctx.cwd) / params["path"]
        try:
            old = _read_patch_file(path, "read") if path.is_file() else None
        except PatchError as exc:
            return "error: %s" % exc
        if path.is_dir():
            return "error: %s is a directory; give the path of a file" % params["path"]
        if old is not None and old == params["content"]:
            return "no change: %s already has this content" % params["path"]
        if old is not None and old.strip() and not self._seen_in_outputs(task, old):
            return ("error: %s already exists and its current content has not been shown in this conversation, so "
                    "writing it could lose code: look at it first (cat %s), then change it with edit_file"
                    % (params["path"], params["path"]))
        return self._run_apply_patch(task, call_id, whole_file_patch(params["path"], old, params["content"]), None)

    def _next_step_after_failure(self, task, result, cwd):
        """NEXT_STEP_LOOK / _EDIT / _REWRITE for a failed command whose output names a workspace
        file (failure_location), or None."""
        if result.exit_code in (0, None) or getattr(result, "timed_out", False):
            return None
        rel = failure_location(result.aggregated_output, cwd)
        if rel is None:
            return None
        try:
            content = (Path(cwd) / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        if not content.strip() or not self._seen_in_outputs(task, content):
            return NEXT_STEP_LOOK % _shell_join([rel])
        if file_tools_wanted(task.ctx.config, task.ctx.family):
            return NEXT_STEP_EDIT % rel
        return NEXT_STEP_REWRITE % (rel, _shell_join([rel]))

    def _seen_in_outputs(self, task, content):
        """Whether `content` (a file's text) appears whole in a tool output of this session: the
        model has seen what write_file would replace."""
        needle = content.replace("\r\n", "\n").strip()
        with self.session._lock:
            items = list(self.session.history) + list(task.items)
        for item in reversed(items):
            if item.get("type") in ("function_call_output", "custom_tool_call_output"):
                if needle in output_text(item.get("output")).replace("\r\n", "\n"):
                    return True
        return False

    def _run_edit_file(self, task, call_id, params):
        """edit_file: one exact replacement, applied as a patch; errors say what to do instead."""
        return self._edit_file(task, call_id, params)

    def _edit_file_text(self, task, call_id, params):
        name, old_text = params["path"], params["old_text"]
        path = Path(task.ctx.cwd) / name
        if not path.is_file():
            return ("error: %s does not exist (list the files with ls; to create a file use write_file)" % name)
        try:
            old = _read_patch_file(path, "read")
        except PatchError as exc:
            return "error: %s" % exc
        if not old_text:
            return "error: old_text is empty: copy the exact lines to replace from the file (cat %s)" % name
        count = old.count(old_text)
        if count == 0 and "\r\n" in old:
            old, count = old.replace("\r\n", "\n"), old.replace("\r\n", "\n").count(old_text)
        if count == 0:
            return ("error: old_text was not found in %s; it must be copied exactly from the file, spaces and "
                    "line breaks included. Look at the file again (cat %s), or write the whole file with write_file."
                    % (name, name))
        words = list(re.finditer(r"(?<!\w)%s(?!\w)" % re.escape(old_text), old)) if re.fullmatch(r"\w+", old_text) else []
        if count > 1 and len(words) == 1:  # a name: once as a whole word ("number" in "len(number)", not "numbers")
            at = words[0]
            new = old[:at.start()] + params["new_text"] + old[at.end():]
        elif count > 1:
            return ("error: old_text occurs %d times in %s; include more of the surrounding lines so that it "
                    "occurs once" % (count, name))
        else:
            new = old.replace(old_text, params["new_text"], 1)
        if new == old:
            return "no change: new_text is the same as old_text"
        return self._run_apply_patch(task, call_id, whole_file_patch(name, old, new), None)

    def _turn_diff(self, task):
        """The cumulative unified diff of the files this task's patches touched."""
        import difflib

        out = []
        for path in sorted(task.diff_base, key=str):
            before = task.diff_base[path]
            try:
                after = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
            except OSError:
                after = None
            if before == after:
                continue
            try:
                rel = str(Path(path).relative_to(task.ctx.cwd))
            except ValueError:
                rel = str(path)
            a = "a/" + rel if before is not None else "/dev/null"
            b = "b/" + rel if after is not None else "/dev/null"
            out.append("diff --git a/%s b/%s\n" % (rel, rel))
            out.extend(difflib.unified_diff((before or "").splitlines(True), (after or "").splitlines(True), a, b))
        return "".join(line if line.endswith("\n") else line + "\n" for line in out)

    def _run_mcp(self, task, call_id, name, arguments):
        found = self.mcp.lookup(name)
        if found is None:
            return "unsupported call: %s" % name
        server, tool = found
        try:
            args = json.loads(arguments) if arguments and arguments.strip() else None
        except ValueError as exc:
            return "err: %s" % exc
        invocation = {"server": server, "tool": tool, "arguments": args}
        self._task_emit(task, "mcp_tool_call_begin", call_id=call_id, invocation=invocation)
        started = time.monotonic()
        try:
            result = self.mcp.call(name, args if isinstance(args, dict) else {}, cancel=task.cancel)
            wire_result = {"Ok": result}
        except Exception as exc:  # any MCP failure goes back to the model as text
            result = None
            wire_result = {"Err": "tool call error: %s" % exc}
        self._task_emit(task, "mcp_tool_call_end", call_id=call_id, invocation=invocation,
                        duration=wire_duration(time.monotonic() - started), result=wire_result)
        if result is None:
            return wire_result["Err"]
        return mcp_result_to_output(result)


# -- the built-in tools: one entry each (see §09's registry and docs/extending.md) --

def _compact(ctx):
    """Whether this turn sends the compact tool texts (small context windows)."""
    return compact_prompt_wanted(ctx.config, ctx.family)


register_tool(Tool(
    name="shell", aliases=("container.exec",),
    spec=lambda ctx: shell_tool(ctx, _compact(ctx)) if shell_tool_kind(ctx.config) == "shell" else None,
    parse=lambda arguments, ctx, environ: parse_shell_arguments(arguments),
    assess=lambda ctx, params, approved: assess_command_safety(params["command"], ctx, approved, bool(params.get("escalated"))),
    run=lambda runner, task, call_id, params: runner._run_shell(task, call_id, params),
    events=EXEC_EVENTS + PATCH_EVENTS,  # an intercepted apply_patch runs as a patch
))
register_tool(Tool(
    name="shell_command",  # one string run by bash: what small open models write (§07 picks it for Chat)
    spec=lambda ctx: shell_command_tool(ctx, _compact(ctx)) if shell_tool_kind(ctx.config) == "shell_command" else None,
    parse=lambda arguments, ctx, environ: parse_shell_command_arguments(arguments, ctx.config, environ),
    assess=lambda ctx, params, approved: assess_command_safety(params["command"], ctx, approved, bool(params.get("escalated"))),
    run=lambda runner, task, call_id, params: runner._run_shell(task, call_id, params),
    events=EXEC_EVENTS + PATCH_EVENTS,
))
register_tool(Tool(
    name="update_plan",  # compact turns leave it out unless the config asks for it explicitly
    spec=lambda ctx: update_plan_tool() if ctx.config.include_plan_tool and (
        not _compact(ctx) or ctx.config.sources.get("include_plan_tool", "default") != "default") else None,
    parse=lambda arguments, ctx, environ: parse_plan_arguments(arguments),
    run=lambda runner, task, call_id, params: runner._run_plan(task, call_id, params),
    events=("plan_update",),
))
register_tool(Tool(
    name="write_file",  # small models: a whole file as JSON (file_tools; runs as an apply_patch)
    spec=lambda ctx: write_file_tool() if file_tools_wanted(ctx.config, ctx.family) else None,
    parse=lambda arguments, ctx, environ: parse_file_tool_arguments(arguments, ("path", "content")),
    run=lambda runner, task, call_id, params: runner._run_write_file(task, call_id, params),
    events=PATCH_EVENTS,
))
register_tool(Tool(
    name="edit_file",  # small models: one exact replacement (file_tools; runs as an apply_patch)
    spec=lambda ctx: edit_file_tool() if file_tools_wanted(ctx.config, ctx.family) else None,
    parse=lambda arguments, ctx, environ: parse_file_tool_arguments(arguments, ("path", "old_text", "new_text")),
    run=lambda runner, task, call_id, params: runner._run_edit_file(task, call_id, params),
    events=PATCH_EVENTS,
))
register_tool(Tool(
    name="apply_patch",
    spec=lambda ctx: apply_patch_tool() if ctx.family.wants_apply_patch_tool or (ctx.config.tools or {}).get("apply_patch") else None,
    parse=lambda arguments, ctx, environ: parse_apply_patch_arguments(arguments),
    run=lambda runner, task, call_id, params: runner._run_apply_patch(task, call_id, params["input"], None),
    events=PATCH_EVENTS,
))


###############################################################################
# §17 Front end: codex exec
###############################################################################

# `codex exec` runs one task with approval `never` and prints
# either human progress (on stderr; the final message alone on stdout, so pipelines get just
# the answer) or, with --json, one JSON object per line on stdout in upstream's current
# schema (docs/agent.md):
#   thread.started{thread_id}  turn.started{}  item.started|item.updated|item.completed{item}
#   turn.completed{usage{input_tokens, cached_input_tokens, output_tokens}}  turn.failed{error{message}}
#   error{message}
# Items: agent_message{text} reasoning{text} command_execution{command, aggregated_output,
# exit_code, status} file_change{changes[{path, kind}], status} mcp_tool_call{server, tool,
# status} todo_list{items[{text, completed}]} error{message}; each has an `id` ("item_N").

EXEC_NO_PROMPT = "No prompt provided. Either specify one as an argument or pipe the prompt into stdin."
EXEC_NOT_GIT = ("Not inside a trusted directory and --skip-git-repo-check was not specified "
                "(run codex exec inside a git repository, or pass --skip-git-repo-check)")
EXEC_OUTPUT_LINES = 20  #: lines of command output shown per command in human mode
EXEC_LINE_MAX_CHARS = 400  #: characters of one output line shown in human mode
EXEC_USAGE_KEYS = ("input_tokens", "cached_input_tokens", "cache_write_input_tokens", "output_tokens",
                   "reasoning_output_tokens")  #: turn.completed.usage fields (upstream's order)
EXEC_SCHEMA_EXIT = 3  #: exit code when the final message does not follow --output-schema
EXEC_STDIN_GRACE_S = 1.0  #: with a prompt argument, how long a silent stdin pipe is waited for

_ANSI = {"bold": "1", "dim": "2", "italic": "3", "red": "31", "green": "32", "magenta": "35", "cyan": "36"}


def _use_color(choice, stream, environ=None):
    """--color always|never|auto (auto: a TTY and NO_COLOR unset)."""
    environ = os.environ if environ is None else environ
    if choice == "always":
        return True
    if choice == "never" or environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def format_elapsed(seconds, spaced=False):
    """A duration for people: upstream's exec form 250ms, 1.50s, 2m05s; spaced (the REPL's
    cells and status line): 1.2s, 45s, 3m 05s."""
    if spaced:
        if seconds < 10:
            return "%.1fs" % seconds
        if seconds < 60:
            return "%ds" % seconds
        return "%dm %02ds" % (seconds // 60, seconds % 60)
    if seconds < 1:
        return "%dms" % int(seconds * 1000)
    if seconds < 60:
        return "%.2fs" % seconds
    return "%dm%02ds" % (int(seconds // 60), int(seconds % 60))


def _duration_seconds(value):
    if isinstance(value, dict):
        return value.get("secs", 0) + value.get("nanos", 0) / 1e9
    return float(value or 0)


def _stdin_kind(stdin):
    """What stdin is: "closed", "tty", "file" (a regular file), "null" (/dev/null and other
    devices), "pipe" (a pipe, FIFO or socket) or "unknown" (no file descriptor)."""
    import stat

    if stdin is None:
        return "closed"
    try:
        fd = stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return "unknown"
    try:
        if os.isatty(fd):
            return "tty"
        mode = os.fstat(fd).st_mode
    except OSError:
        return "closed"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return "pipe"
    return "null"


def _pipe_has_input(stdin, seconds):
    """Whether a pipe on stdin becomes readable (data or EOF) within `seconds`."""
    import select

    try:
        ready, _, _ = select.select([stdin.fileno()], [], [], seconds)
    except (OSError, ValueError):
        return True
    return bool(ready)


def _read_stdin_text(stdin):
    raw = getattr(stdin, "buffer", None)
    # Bytes, not text: a prompt that is not UTF-8 is decoded with U+FFFD, never a crash.
    return raw.read().decode("utf-8", "replace") if raw is not None else _valid_text(stdin.read())


def read_exec_prompt(prompt, stdin=None, err=None):
    """The prompt: the argument, or all of stdin for `-`/none (UsageError when there is none).

    With a prompt argument, input piped in is appended as a `<stdin>` block.  Whether stdin
    is read is decided by what it is, so codex never waits on a pipe nobody writes to
    (upstream #27019): a regular file is read; a terminal, /dev/null or a closed stdin are
    not; a pipe is read to its end when it has input (or is closed) within
    EXEC_STDIN_GRACE_S, and otherwise left alone with a one-line note."""
    stdin = sys.stdin if stdin is None else stdin
    err = sys.stderr if err is None else err
    if prompt is not None and prompt != "-":
        prompt = _valid_text(prompt)
        kind = _stdin_kind(stdin)
        if kind == "pipe" and not _pipe_has_input(stdin, EXEC_STDIN_GRACE_S):
            err.write("codex: stdin is a pipe with no input after %gs: not waiting for it (use `-` as the prompt to "
                      "read stdin to its end, or </dev/null)\n" % EXEC_STDIN_GRACE_S)
            return prompt
        if kind not in ("pipe", "file"):
            return prompt
        extra = _read_stdin_text(stdin)
        if extra.strip():
            prompt = "%s\n\n<stdin>\n%s\n</stdin>" % (prompt.rstrip("\n"), extra.rstrip("\n"))
        return prompt
    if stdin is None:  # started with stdin closed (`<&-`)
        raise UsageError("no prompt: give it as an argument (stdin is closed)")
    if prompt is None:
        try:
            if stdin.isatty():
                raise UsageError(EXEC_NO_PROMPT)
        except (AttributeError, ValueError):
            pass
        sys.stderr.write("Reading prompt from stdin...\n")
    text = _read_stdin_text(stdin)
    if not text.strip():
        raise UsageError("No prompt provided via stdin.")
    return text


def _valid_text(text):
    """`text` with undecodable bytes (surrogate escapes from argv or stdin) replaced by U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def config_summary(ctx, session_id=None):
    """(key, value) pairs of the exec header for a TurnContext (or a Config): the effective policy."""
    cfg = turn_context(ctx).config
    policy = ctx.sandbox_policy
    rows = [("workdir", str(ctx.cwd)), ("model", ctx.model), ("provider", cfg.provider.id),
            ("approval", ctx.approval_policy)]
    sandbox = policy.mode
    if sandbox == "workspace-write":
        roots = (["workdir"] if policy.include_cwd else []) + ([] if policy.exclude_slash_tmp else ["/tmp"]) + (
            [] if policy.exclude_tmpdir_env_var else ["$TMPDIR"]) + [str(r) for r in policy.writable_roots]
        sandbox += " [%s]" % ", ".join(roots)
        if policy.has_network():
            sandbox += " (network access enabled)"
    rows.append(("sandbox", sandbox))
    if cfg.provider.wire_api == "responses" and model_family(ctx.model, cfg).supports_reasoning:
        rows.append(("reasoning effort", cfg.model_reasoning_effort or "medium"))
        rows.append(("reasoning summaries", cfg.model_reasoning_summary or "auto"))
    if session_id:
        rows.append(("session id", session_id))
    return rows


class HumanPrinter(object):
    """Prints exec progress for people (stderr) and the final message (stdout)."""

    def __init__(self, cfg, color, out=None, err=None):
        self.cfg = cfg
        self.color = color
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.in_delta = False
        self.streamed = False
        self.commands = {}
        self.hide_answer = False  # the caller shows the answer its own way (a review's findings)

    def c(self, style, text):
        """Wrap text in ANSI styles when colour is on."""
        if not self.color:
            return text
        codes = ";".join(_ANSI[s] for s in style.split())
        return "\x1b[%sm%s\x1b[0m" % (codes, text)

    def line(self, text=""):
        """Write one progress line."""
        self.err.write(text + "\n")
        self.err.flush()

    def ts(self, text):
        """Write a timestamped progress line."""
        stamp = time.strftime("[%Y-%m-%dT%H:%M:%S]", time.gmtime())
        self.end_delta()
        self.line("%s %s" % (self.c("dim", stamp), text))

    def rel(self, path):
        """A path relative to the working directory when it is inside it."""
        try:
            return str(Path(path).relative_to(self.cfg.cwd))
        except ValueError:
            return str(path)

    def end_delta(self):
        """Finish a line of streamed text."""
        if self.in_delta:
            self.err.write("\n")
            self.in_delta = False

    def header(self, session_id, prompt, ctx=None):
        """The config summary (of the session's TurnContext) and the prompt."""
        self.ts("codex v%s" % __version__)
        self.line("--------")
        for key, value in config_summary(ctx or self.cfg, session_id):
            self.line("%s: %s" % (self.c("bold", key), value))
        self.line("--------")
        self.ts(self.c("bold cyan", "User instructions:"))
        self.line(prompt)

    def event(self, msg, session_level=False):
        """Print one protocol event."""
        msg = terminal_safe(msg)  # model, command and MCP text is untrusted
        kind = msg["type"]
        if kind in ("agent_message_delta", "agent_message") and self.hide_answer:
            return
        if kind == "agent_message_delta":
            if not self.in_delta:
                self.ts(self.c("italic magenta", "codex"))
                self.in_delta = True
                self.streamed = True
            self.err.write(msg.get("delta", ""))
            self.err.flush()
        elif kind == "agent_message":
            if self.streamed:  # already shown delta by delta
                self.streamed = False
                self.end_delta()
                return
            self.ts(self.c("italic magenta", "codex"))
            self.line(msg.get("message", ""))
        elif kind == "agent_reasoning":
            if not self.cfg.hide_agent_reasoning:
                self.ts(self.c("italic magenta", "thinking"))
                self.line(self.c("italic", msg.get("text", "")))
        elif kind == "exec_command_begin":
            cmd = _shell_join(msg.get("command") or [])
            self.commands[msg.get("call_id")] = cmd
            self.ts("%s %s in %s" % (self.c("magenta", "exec"), self.c("bold", cmd), msg.get("cwd")))
        elif kind == "exec_command_end":
            cmd = self.commands.pop(msg.get("call_id"), "command")
            dur = format_elapsed(_duration_seconds(msg.get("duration")))
            code = msg.get("exit_code")
            if code == 0:
                self.ts(self.c("green", "%s succeeded in %s:" % (cmd, dur)))
            elif msg.get("timed_out"):
                self.ts(self.c("red", "%s timed out after %s (killed; exit %s):" % (
                    cmd, format_elapsed((msg.get("timeout_ms") or 0) / 1000.0), code)))
            else:
                self.ts(self.c("red", "%s exited %s in %s:" % (cmd, code, dur)))
            text = msg.get("aggregated_output") or (msg.get("stdout") if code == 0 else msg.get("stderr")) or ""
            lines = text.rstrip("\n").split("\n") if text.strip() else []
            for out_line in lines[:EXEC_OUTPUT_LINES]:
                self.line(self.c("dim", _clip_line(out_line)))
            if len(lines) > EXEC_OUTPUT_LINES:
                self.line(self.c("dim", "... +%d lines" % (len(lines) - EXEC_OUTPUT_LINES)))
        elif kind == "patch_apply_begin":
            self.ts("%s auto_approved=%s:" % (self.c("magenta", "apply_patch"), str(msg.get("auto_approved")).lower()))
            for path, change in sorted((msg.get("changes") or {}).items()):
                path = self.rel(path)
                if "add" in change:
                    self.line(self.c("green", "A %s" % path))
                    for text in (change["add"].get("content") or "").splitlines():
                        self.line(self.c("green", "+" + text))
                elif "delete" in change:
                    self.line(self.c("red", "D %s" % path))
                else:
                    upd = change.get("update") or {}
                    self.line("%s %s" % ("R" if upd.get("move_path") else "M",
                                         path + (" -> %s" % self.rel(upd["move_path"]) if upd.get("move_path") else "")))
                    for text in (upd.get("unified_diff") or "").splitlines():
                        style = "green" if text.startswith("+") else "red" if text.startswith("-") else "dim"
                        self.line(self.c(style, text))
        elif kind == "patch_apply_end":
            ok = msg.get("success")
            self.ts(self.c("green" if ok else "red", "apply_patch %s" % ("succeeded" if ok else "failed")))
            for text in (msg.get("stdout") if ok else msg.get("stderr") or "").splitlines():
                self.line(self.c("dim", text))
        elif kind == "mcp_tool_call_begin":
            inv = msg.get("invocation") or {}
            self.ts("%s %s.%s(%s)" % (self.c("magenta", "tool"), inv.get("server"), inv.get("tool"),
                                      json.dumps(inv.get("arguments"), separators=(",", ":"))))
        elif kind == "mcp_tool_call_end":
            inv = msg.get("invocation") or {}
            result = msg.get("result") or {}
            ok = "Ok" in result and not (result.get("Ok") or {}).get("isError")
            self.ts(self.c("green" if ok else "red", "%s.%s %s in %s" % (
                inv.get("server"), inv.get("tool"), "success" if ok else "failed",
                format_elapsed(_duration_seconds(msg.get("duration"))))))
            shown = format_mcp_result_for_display(result["Ok"]) if "Ok" in result else [str(result.get("Err", ""))]
            for text in shown:  # up to 5 lines of each block, as upstream's TUI (§14)
                self.line(self.c("dim", _clip_line(text)))
        elif kind == "plan_update":
            self.ts(self.c("magenta", "plan"))
            if msg.get("explanation"):
                self.line(msg["explanation"])
            for step in msg.get("plan") or ():
                mark = {"completed": "[x]", "in_progress": "[~]"}.get(step.get("status"), "[ ]")
                self.line("  %s %s" % (mark, step.get("step")))
        elif kind == "error":
            self.ts("%s %s" % (self.c("red bold", "ERROR:"), msg.get("message")))
        elif kind in ("background_event",):
            self.ts(self.c("dim", msg.get("message", "")))
        elif kind in ("tool_call_begin", "tool_call_end"):  # a registered tool's own rendering (§09)
            text = tool_call_text(msg)
            if text:
                self.ts("%s %s" % (self.c("magenta", "tool"), text))
        elif kind == "tool_call_blocked":
            command = (msg.get("tool_input") or {}).get("command")
            self.ts("%s %s%s: %s" % (self.c("red", "declined"), msg.get("tool"), " `%s`" % command if command else "",
                                     msg.get("reason", "")))
        elif kind == "tool_call_recovered":
            self.ts(self.c("dim", "tool call recovered from the model's text (%s): %s" % (msg.get("format"), msg.get("name"))))
        elif kind == "context_compacted":
            self.ts(self.c("magenta", "context compacted") + " (%s): ~%s -> ~%s tokens" % (
                msg.get("reason"), "{:,}".format(msg.get("tokens_before") or 0), "{:,}".format(msg.get("tokens_after") or 0)))
        elif kind == "turn_aborted":
            self.ts(self.c("red", "task interrupted"))

    def finish(self, last_message, usage):
        """Token total on stderr, the final message on stdout."""
        blended = (usage["input_tokens"] - usage["cached_input_tokens"]) + usage["output_tokens"]
        if usage["total_tokens"]:
            self.ts("tokens used: {:,}".format(blended))
        self.end_delta()
        if last_message:
            # With both streams on one terminal the message was already shown above.
            if not (_isatty(self.out) and _isatty(self.err)):
                text = terminal_safe(last_message) if _isatty(self.out) else last_message  # piped: verbatim
                self.out.write(text.rstrip("\n") + "\n")
                self.out.flush()


def _clip_line(line, limit=None):
    """One line of command or tool output as the human output shows it: at most
    EXEC_LINE_MAX_CHARS (a 2 MB minified line would flood the terminal)."""
    limit = limit or EXEC_LINE_MAX_CHARS
    if len(line) <= limit:
        return line
    return "%s... (+%s characters)" % (line[:limit], "{:,}".format(len(line) - limit))


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class JsonPrinter(object):
    """Prints exec events as upstream's JSONL thread events on stdout."""

    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.n = 0
        self.open_items = {}
        self.todo = None
        self.failed = None
        self.recovered = {}  # call_id -> format of a call recovered from the model's text

    def emit(self, obj):
        """Write one JSON line."""
        # compact separators, as upstream prints them and the README shows
        self.out.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.out.flush()

    def _item(self, kind, call_id=None, **fields):
        item = {"id": "item_%d" % self.n, "type": kind}
        self.n += 1
        item.update(fields)
        if call_id in self.recovered:  # the model wrote this call as text (tool_call_recovered)
            item["recovered_from"] = self.recovered.pop(call_id)
        return item

    def event(self, msg, session_level=False):
        """Translate one protocol event into thread events."""
        kind = msg["type"]
        if kind == "session_configured":
            self.emit({"type": "thread.started", "thread_id": msg.get("session_id")})
        elif kind == "task_started":
            self.emit({"type": "turn.started"})
        elif kind == "agent_message":
            self.emit({"type": "item.completed", "item": self._item("agent_message", text=msg.get("message", ""))})
        elif kind == "agent_reasoning":
            self.emit({"type": "item.completed", "item": self._item("reasoning", text=msg.get("text", ""))})
        elif kind == "tool_call_recovered":
            self.recovered[msg.get("call_id")] = msg.get("format")
        elif kind == "exec_command_begin":
            item = self._item("command_execution", call_id=msg.get("call_id"), command=_shell_join(msg.get("command") or []),
                              aggregated_output="", exit_code=None, status="in_progress")
            self.open_items[msg.get("call_id")] = item
            self.emit({"type": "item.started", "item": item})
        elif kind == "exec_command_end":
            item = self.open_items.pop(msg.get("call_id"), None) or self._item("command_execution", command="")
            item = dict(item, aggregated_output=msg.get("aggregated_output") or "", exit_code=msg.get("exit_code"),
                        status="completed" if msg.get("exit_code") == 0 else "failed")
            self.emit({"type": "item.completed", "item": item})
        elif kind == "patch_apply_begin":
            changes = []
            for path, change in sorted((msg.get("changes") or {}).items()):
                changes.append({"path": path, "kind": "add" if "add" in change else "delete" if "delete" in change else "update"})
            item = self._item("file_change", call_id=msg.get("call_id"), changes=changes, status="in_progress")
            self.open_items[("patch", msg.get("call_id"))] = item
            self.emit({"type": "item.started", "item": item})
        elif kind == "patch_apply_end":
            item = self.open_items.pop(("patch", msg.get("call_id")), None) or self._item("file_change", changes=[])
            self.emit({"type": "item.completed", "item": dict(
                item, status="completed" if msg.get("success") else "failed")})
        elif kind == "mcp_tool_call_begin":
            inv = msg.get("invocation") or {}
            # upstream's McpToolCallItem: server, tool, arguments, result {content,
            # structured_content} or null, error {message} or null, status
            item = self._item("mcp_tool_call", call_id=msg.get("call_id"), server=inv.get("server"), tool=inv.get("tool"),
                              arguments=inv.get("arguments"), result=None, error=None, status="in_progress")
            self.open_items[("mcp", msg.get("call_id"))] = item
            self.emit({"type": "item.started", "item": item})
        elif kind == "mcp_tool_call_end":
            inv = msg.get("invocation") or {}
            item = self.open_items.pop(("mcp", msg.get("call_id")), None) or self._item(
                "mcp_tool_call", server=inv.get("server"), tool=inv.get("tool"), arguments=inv.get("arguments"))
            result = msg.get("result") or {}
            ok = result.get("Ok") if isinstance(result.get("Ok"), dict) else None
            if ok is not None:  # a tool's own error (isError) still has its content
                done = dict(item, result={"content": ok.get("content") or [],
                                          "structured_content": ok.get("structuredContent")},
                            error=None, status="failed" if ok.get("isError") else "completed")
            else:
                done = dict(item, result=None, error={"message": str(result.get("Err") or "the tool call failed")},
                            status="failed")
            self.emit({"type": "item.completed", "item": done})
        elif kind == "plan_update":
            items = [{"text": s.get("step"), "completed": s.get("status") == "completed"} for s in msg.get("plan") or ()]
            if self.todo is None:
                self.todo = self._item("todo_list", items=items)
                self.emit({"type": "item.started", "item": self.todo})
            else:
                self.todo = dict(self.todo, items=items)
                self.emit({"type": "item.updated", "item": self.todo})
        elif kind == "tool_call_begin":  # a registered tool's own item (§09)
            fields = tool_call_item(msg)
            item = self._item(fields.pop("type"), call_id=msg.get("call_id"), **fields)
            self.open_items[("tool", msg.get("call_id"))] = item
            self.emit({"type": "item.started", "item": item})
        elif kind == "tool_call_end":
            item = self.open_items.pop(("tool", msg.get("call_id")), None) or self._item("tool_call")
            self.emit({"type": "item.completed", "item": dict(item, **{k: v for k, v in tool_call_item(msg).items() if k != "type"})})
        elif kind == "tool_call_blocked":  # refused before it ran (a hook, an approval exec cannot ask)
            command = (msg.get("tool_input") or {}).get("command")
            if msg.get("tool") == "Bash" and command is not None:
                item = self._item("command_execution", command=command, aggregated_output=msg.get("reason") or "",
                                  exit_code=None, status="declined")
            else:
                item = self._item("error", message="%s: %s" % (msg.get("tool"), msg.get("reason")))
            self.emit({"type": "item.completed", "item": item})
        elif kind in ("stream_error",):
            self.emit({"type": "item.completed", "item": self._item("error", message=msg.get("message", ""))})
        elif kind == "context_compacted":
            self.emit({"type": "item.completed", "item": self._item(
                "context_compaction", reason=msg.get("reason"), tokens_before=msg.get("tokens_before"),
                tokens_after=msg.get("tokens_after"))})
        elif kind == "error" and session_level:  # e.g. an MCP server that failed to start: not fatal
            self.emit({"type": "item.completed", "item": self._item("error", message=msg.get("message", ""))})
        elif kind == "error":
            self.failed = msg.get("message", "")
            self.emit({"type": "error", "message": self.failed})

    def finish(self, last_message, usage, failed):
        """Close open items and print turn.completed or turn.failed."""
        if self.todo is not None:
            self.emit({"type": "item.completed", "item": self.todo})
            self.todo = None
        if failed is not None:
            self.emit({"type": "turn.failed", "error": {"message": failed}})
        else:
            self.emit({"type": "turn.completed", "usage": {key: usage.get(key, 0) for key in EXEC_USAGE_KEYS}})


def _check_exec_paths(images, last_message_file, home=None):
    """Fail before the turn (and its cost) on an -i file that cannot be read or is refused
    (read_image_attachment) or an --output-last-message that cannot be written."""
    for image in images or ():
        path = Path(image).expanduser()
        if not path.is_file() or not os.access(str(path), os.R_OK):
            why = "is a directory" if path.is_dir() else ("cannot be read" if path.exists() else "does not exist")
            raise UsageError("image %s %s (check -i/--image)" % (image, why))
        try:
            read_image_attachment(path, home)
        except OSError as exc:
            raise UsageError("image %s is not sent: %s (check -i/--image)" % (image, exc.strerror or exc))
    if last_message_file:
        path = Path(last_message_file).expanduser()
        parent = path.parent
        if path.is_dir():
            raise UsageError("--output-last-message %s is a directory; name a file" % last_message_file)
        if not parent.is_dir():
            raise UsageError("--output-last-message %s: directory %s does not exist; create it first" % (last_message_file, parent))
        try:  # its directory is held open from now on: see OutputFile (§02)
            return OutputFile(last_message_file, "--output-last-message")
        except OSError as exc:
            raise UsageError("cannot write --output-last-message %s: %s" % (last_message_file, exc.strerror or exc))
    return None


def trusted_project(cfg):
    """Whether the working directory is in a `projects."<path>".trust_level = "trusted"` entry
    (as upstream: exec then runs there without --skip-git-repo-check)."""
    cwd = Path(cfg.cwd)
    for name, project in (cfg.projects or {}).items():
        if isinstance(project, dict) and project.get("trust_level") == "trusted":
            root = Path(os.path.realpath(os.path.expanduser(str(name))))
            if os.path.isabs(os.path.expanduser(str(name))) and (cwd == root or root in cwd.parents):
                return True
    return False


def load_output_schema(path):
    """The JSON schema of `--output-schema FILE` (UsageError naming the file when it is not one)."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError("--output-schema %s: cannot read it (%s)" % (path, getattr(exc, "strerror", None) or exc))
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise UsageError("--output-schema %s is not JSON: %s" % (path, exc))
    if not isinstance(schema, dict):
        raise UsageError("--output-schema %s must hold one JSON object (a JSON schema)" % path)
    return schema


_SCHEMA_TYPES = {
    "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "null": lambda v: v is None,
}


def schema_error(value, schema, root=None, where="$"):
    """The first way `value` breaks the JSON schema (the subset strict structured outputs
    allow: type, enum, const, properties, required, additionalProperties, items, anyOf,
    $ref, bounds), as one line; None when it follows it."""
    root = schema if root is None else root
    if not isinstance(schema, dict):
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return schema_error(value, target, root, where)
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        if not any(_SCHEMA_TYPES.get(k, lambda v: True)(value) for k in kinds):
            return "%s: expected %s, got %s" % (where, " or ".join(kinds), json.dumps(value)[:60])
    if "enum" in schema and value not in schema["enum"]:
        return "%s: %s is not one of %s" % (where, json.dumps(value)[:60], json.dumps(schema["enum"])[:100])
    if "const" in schema and value != schema["const"]:
        return "%s: must be %s" % (where, json.dumps(schema["const"])[:60])
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            errors = [schema_error(value, sub, root, where) for sub in schema[key]]
            if all(errors):
                return errors[0]
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name in schema.get("required") or ():
            if name not in value:
                return "%s: missing required property %r" % (where, name)
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                problem = schema_error(item, props[name], root, "%s.%s" % (where, name))
            elif extra is False:
                problem = "%s: unexpected property %r" % (where, name)
            else:
                problem = schema_error(item, extra, root, "%s.%s" % (where, name)) if isinstance(extra, dict) else None
            if problem:
                return problem
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            return "%s: %d items is outside the allowed count" % (where, len(value))
        for i, item in enumerate(value):
            problem = schema_error(item, schema.get("items"), root, "%s[%d]" % (where, i))
            if problem:
                return problem
    if _SCHEMA_TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"] or "maximum" in schema and value > schema["maximum"]:
            return "%s: %s is out of range" % (where, value)
    return None


class _ExecApprover(object):
    """exec with an explicit `-a` that asks: nobody can answer, so every question is refused
    and the model is told why (upstream's exec silently ran everything as `never`)."""

    def __init__(self, policy):
        self.refusal = ("codex exec cannot ask for approval (approval policy %s and nobody to answer); it was not "
                        "run: continue without it or stop and say what needs approval" % policy)

    def __call__(self, msg):
        return "denied"


def run_exec(cfg, prompt, images=(), as_json=False, color="auto", last_message_file=None,
             skip_git_repo_check=False, resume_path=None, out=None, err=None, shown_prompt=None,
             output_schema=None, ephemeral=False, approver=None, answer=None):
    """Run one task to completion, printing progress; return the exit code (0, 1, 3 or 130).

    `shown_prompt` replaces a long generated prompt (a review's diff) in the human header.
    `answer`, a list, receives the last agent message, which the human progress then does
    not show (a review prints it as findings)."""
    import signal

    out = out or sys.stdout
    err = err or sys.stderr
    output_file = _check_exec_paths(images, last_message_file, cfg.codex_home)  # opened before any command runs
    prompt = expand_prompt_command(cfg, prompt, strict=True)
    # refused before anything starts: no header, no session, rollout or MCP server for a run
    # that never reaches the model (upstream prints the header first)
    if not skip_git_repo_check and find_git_root(cfg.cwd) is None and not trusted_project(cfg):
        raise UsageError(EXEC_NOT_GIT)
    session = Session(cfg, resume_path=resume_path, record_rollout=not ephemeral, output_schema=output_schema,
                      approval_handler=approver).start()
    first = session.next_event(timeout=5)
    printer = JsonPrinter(out) if as_json else HumanPrinter(cfg, _use_color(color, err), out, err)
    printer.hide_answer = answer is not None and not as_json
    if as_json:
        printer.event(first["msg"])
    else:
        printer.header(session.session_id, shown_prompt or prompt, session.turn_context)
    items = [{"type": "text", "text": prompt}] + [{"type": "local_image", "path": str(p)} for p in images or ()]
    interrupts = [0]
    stop_waiting = threading.Event()

    def on_sigint(signum, frame):
        interrupts[0] += 1
        stop_waiting.set()
        if interrupts[0] > 1:
            raise KeyboardInterrupt
        session.interrupt()

    terminated = [None]

    def on_terminate(signum, frame):
        # SIGTERM/SIGHUP (CI cancelling a job, a closed terminal): stop like Ctrl-C, so the
        # command's process group is killed and the rollout flushed, then exit 128+signal.
        terminated[0] = signum
        stop_waiting.set()
        session.interrupt()

    old_handlers = {}
    if threading.current_thread() is threading.main_thread():
        old_handlers[signal.SIGINT] = signal.signal(signal.SIGINT, on_sigint)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            old_handlers[sig] = signal.signal(sig, on_terminate)
    failed = None
    last = None
    code = 0
    try:
        # MCP servers still starting are waited for (each bounded by its startup_timeout_sec),
        # so their tools are in the first request; failures are reported before the turn.
        starting = session.mcp.starting() if session.mcp is not None else []
        if starting and not as_json:
            printer.ts(printer.c("dim", "waiting for MCP server%s to start: %s" % (
                "s" if len(starting) > 1 else "", ", ".join(starting))))
        if not session.wait_for_mcp(cancel=stop_waiting):
            failed, code = "interrupted while MCP servers were starting", 130
            sub_id = None
        else:
            sub_id = session.submit({"type": "user_input", "items": items})

        def on_event(event):
            nonlocal failed, last, code
            msg = event["msg"]
            if msg["type"] == "error" and event["id"] == sub_id:  # startup errors (id "") are not fatal
                failed = msg.get("message")
            printer.event(msg, session_level=event["id"] == "")
            if event["id"] == sub_id and msg["type"] == "task_complete":
                last = msg.get("last_agent_message")
                return True
            if event["id"] == sub_id and msg["type"] == "turn_aborted":
                failed = failed or "task interrupted"
                code = 130
                return True
            return False

        if sub_id is not None:
            pump_events(session, on_event, poll=0.5)
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        session.shutdown()
    if terminated[0] is not None:
        code = 128 + terminated[0]
    if as_json:
        printer.finish(last, session.total_usage, failed)
    else:
        printer.finish(last, session.total_usage)
    if answer is not None:
        answer.append(last)
    if output_file is not None:
        if last is None:
            err.write("Warning: no last agent message; wrote empty content to %s\n" % output_file.path)
        try:
            output_file.write(last or "")
        except OSError as exc:
            raise UsageError("cannot write %s %s: %s" % (output_file.what, output_file.path, exc.strerror or exc))
        finally:
            output_file.close()
    if code:
        return code
    if failed is not None:
        return 1
    if output_schema is not None:
        try:
            problem = schema_error(json.loads(last or ""), output_schema)
        except ValueError as exc:
            problem = "not JSON (%s)" % exc
        if problem:
            message = "the final message does not follow --output-schema: %s" % problem
            if as_json:
                printer.emit({"type": "error", "message": message})
            err.write("codex: %s\n" % message)
            return EXEC_SCHEMA_EXIT
    return 0


def _config_with(cfg, **changes):
    """A copy of `cfg` with `changes` (Config is immutable)."""
    return cfg.replace(**changes)


def _exec_config(args, cfg_loader):
    """The exec Config: approval `never` unless -a names one (then questions are refused,
    see _ExecApprover); --include-plan-tool, --ignore-user-config and --add-dir honoured."""
    extra = {}
    if not getattr(args, "approval_policy", None):
        extra["approval_policy"] = "never"
    if getattr(args, "include_plan_tool", None):
        extra["include_plan_tool"] = True
    if getattr(args, "ignore_user_config", False):
        extra["ignore_user_config"] = True
    cfg = cfg_loader(**extra)
    if getattr(args, "add_dirs", None):
        roots = []
        for raw in args.add_dirs:
            path = Path(raw).expanduser()
            if not path.is_dir():
                raise UsageError("--add-dir %s: %s" % (raw, "not a directory" if path.exists() else "does not exist"))
            roots.append(str(path.resolve()))
        if cfg.sandbox_mode == "read-only":
            sys.stderr.write("codex: warning: --add-dir has no effect with the read-only sandbox (use -s workspace-write)\n")
        ww = dict(cfg.sandbox_workspace_write or {})
        ww["writable_roots"] = list(ww.get("writable_roots") or []) + roots
        cfg = _config_with(cfg, sandbox_workspace_write=ww)
    return cfg


RESUME_LIST_LIMIT = 20  #: sessions `codex resume` lists to pick from


def pick_session(cfg, everywhere=False, stdin=None, out=None):
    """`codex resume` without an id: list the recent sessions of this directory (every
    directory with --all) as time, directory and first prompt, and read a number on a
    terminal.  The chosen rollout path, or None when the user cancelled; UsageError when
    there is nothing to pick or nobody to pick it."""
    stdin, out = stdin or sys.stdin, out or sys.stdout
    sessions = [s for s in list_sessions(cfg.codex_home, limit=RESUME_LIST_LIMIT * 3,
                                         cwd=None if everywhere else cfg.cwd) if s["first_prompt"]][:RESUME_LIST_LIMIT]
    if not sessions:
        where = "under %s" % (Path(cfg.codex_home) / ROLLOUT_SUBDIR) if everywhere else "in %s (--all lists every directory)" % cfg.cwd
        raise UsageError("no recorded sessions %s" % where)
    home = os.path.expanduser("~")
    for n, s in enumerate(sessions, 1):
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s["time"] or s.get("mtime") or 0))
        where = str(s["cwd"] or "?")
        where = "~" + where[len(home):] if home and where.startswith(home + os.sep) else where
        first = " ".join(s["first_prompt"].split())
        out.write("%3d  %s  %s  %s  %s\n" % (n, when, s["id"][:8], where, terminal_safe(_clip(first, 80))))
    out.flush()
    if not (_isatty(stdin) and _isatty(out)):
        raise UsageError("pick one with `codex resume ID` (the id shown, or more of it), or use --last")
    out.write("Resume which session? [1-%d, Enter cancels] " % len(sessions))
    out.flush()
    answer = stdin.readline().strip()
    if not answer:
        return None
    if not answer.isdigit() or not 1 <= int(answer) <= len(sessions):
        raise UsageError("%r is not one of the listed numbers (1-%d)" % (answer, len(sessions)))
    return sessions[int(answer) - 1]["path"]


###############################################################################
# §17b Front end: code review (scopes, diffs, findings)
###############################################################################

# `codex review` and `codex exec review` review a change non-interactively; `/review` does it
# in the REPL (§18d).  The steps, each a function here:
#   resolve_review_scope  which change: --uncommitted | --base BRANCH | --commit SHA | default
#   collect_review_diff   the change as per-file diffs, from git, never from the working tree
#                         when a branch or commit is reviewed (upstream #8404)
#   budget_review_diff    files by priority into a byte budget from the model's window
#   review_prompt         upstream's review contract (so prompts and tooling carry over) plus
#                         the scope, the user's focus (combinable with any scope, #7825), the diff
#   parse_review          the model's answer as findings, tolerant of fences, prose and junk
#   render_review         a readable list with file:line links; JSON for --json
# The session runs read-only with approval `never`, whatever the config says.

#: git options that keep a hostile repository's config from running programs while we read it
#: (safe.bareRepository=explicit: a command may write HEAD, config and objects/ into a workspace
#: that is no repository, and git would take that for a bare repository with its config)
_GIT_SAFE_OPTIONS = ["-c", "core.fsmonitor=false", "-c", "core.pager=cat", "-c", "safe.bareRepository=explicit",
                     "--no-pager"]


def git_argv(cwd):
    """The argv prefix for a git that codex itself runs (unsandboxed) in `cwd`: the first `git`
    on PATH that lies outside every directory a sandboxed command may write -- the workspace
    (cwd and its repository), /tmp, $TMPDIR, every writable root the loaded configuration can
    grant (grantable_writable_roots, §04) and those used in this process -- and
    not in a relative PATH entry, then _GIT_SAFE_OPTIONS.  A `git` a command dropped into
    .venv/bin or node_modules/.bin (on PATH in an activated environment) is never run."""
    cwd = os.path.realpath(str(cwd))
    untrusted = {cwd, os.path.realpath("/tmp"), os.path.realpath(os.environ.get("TMPDIR") or "/tmp")}
    root = find_git_root(cwd)
    if root is not None:
        untrusted.add(os.path.realpath(str(root)))
    untrusted.update(_WRITABLE_ROOTS_SEEN)
    untrusted.update(_GRANTABLE_ROOTS)  # what the configuration can grant, even when this run is read-only
    untrusted.discard("/")
    for entry in os.environ.get("PATH", os.defpath).split(os.pathsep):
        if not os.path.isabs(entry):
            continue
        candidate = os.path.join(entry, "git")
        if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            continue
        if any(_is_within(os.path.realpath(candidate), u) or _is_within(os.path.realpath(entry), u) for u in untrusted):
            log("warn", "not running %s: it lies where sandboxed commands may write", candidate)
            continue
        return [candidate] + _GIT_SAFE_OPTIONS
    raise FileNotFoundError(errno.ENOENT, "git is not on PATH (outside the workspace and /tmp)", "git")
#: `git diff` options for a review: no colour, no external diff or textconv drivers, renames
REVIEW_DIFF_OPTIONS = ["--no-color", "--no-ext-diff", "--no-textconv", "-M"]
REVIEW_PRIORITIES = ("P0", "P1", "P2", "P3")  #: finding priorities, most urgent first
REVIEW_FINDINGS_EXIT = 4  #: exit code when --fail-on finds a finding at or above its priority
REVIEW_DIFF_WINDOW_SHARE = 0.4  #: share of the model's context window the diff may fill
REVIEW_BYTES_PER_TOKEN = 3  #: bytes of diff per token (code tokenises densely)
REVIEW_DEFAULT_DIFF_BYTES = 150 * 1024  #: diff budget when the model's window is unknown
REVIEW_MIN_DIFF_BYTES = 4 * 1024  #: never budget less than this
#: file name patterns reviewed last (and first left out): lock files, generated and vendored code
REVIEW_LOW_PRIORITY_GLOBS = ("*.lock", "*-lock.json", "*.lock.json", "go.sum", "*.min.js", "*.min.css",
                             "*.map", "*.svg", "*.pb.go", "*_pb2.py", "vendor/*", "node_modules/*",
                             "dist/*", "build/*", "*.snap", "*.generated.*")

#: the review contract, in upstream's JSON shape; the scope, focus and diff follow it
REVIEW_INSTRUCTIONS = """\
You are reviewing a proposed code change made by another engineer. Find the problems this
change introduces that the author would want to fix before it is merged: bugs, security holes,
data loss, broken error handling, races, wrong results, missing or wrong tests for new
behaviour. Leave out style nits, naming preferences and problems that existed before the
change. Each finding must be specific: name the file and the smallest line range that shows
it, say why it is wrong and under which input or condition it fails. Prefer no finding to a
speculative one. You may read files and run read-only commands to understand the change; you
cannot modify anything.

Priority: 0 = must fix before merge (breaks things for users, security), 1 = should fix before
merge, 2 = fix soon, 3 = minor. Put the priority in the title as [P0]..[P3] and as a number.

Answer with ONE JSON object and nothing else (no code fences, no prose around it):
{"findings": [{"title": "[P1] short imperative title (at most 80 characters)",
  "body": "why it is a problem, in one or two short paragraphs (markdown allowed)",
  "confidence_score": 0.0-1.0, "priority": 0-3,
  "code_location": {"absolute_file_path": "/absolute/path", "line_range": {"start": 1, "end": 1}}}],
 "overall_correctness": "patch is correct" or "patch is incorrect",
 "overall_explanation": "one to three sentences justifying the verdict",
 "overall_confidence_score": 0.0-1.0}
Line numbers are those of the file after the change. An empty "findings" list is a fine answer."""


class ReviewScope(object):
    """Which change a review looks at: `kind` is uncommitted, base or commit."""

    def __init__(self, kind, root, description, base=None, commit=None):
        self.kind = kind
        self.root = root
        self.description = description
        self.base = base  # the merge base (kind base) or the parent (kind commit), a full sha
        self.commit = commit  # the reviewed commit (kind commit)


class FileDiff(object):
    """One file's part of a diff."""

    def __init__(self, path, text, binary=False, added=0, removed=0):
        self.path = path
        self.text = text
        self.binary = binary
        self.added = added
        self.removed = removed


def run_git(cwd, *args, ok_codes=(0,), timeout=60):
    """stdout (bytes) of a git command run by codex itself (not the model), with the safe options."""
    import subprocess

    try:
        proc = subprocess.run(git_argv(cwd) + list(args), cwd=str(cwd), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=timeout)
    except FileNotFoundError:
        raise UsageError("review needs git, which is not on PATH outside the workspace, /tmp and the writable roots "
                         "(a git there could be one a command planted); install git")
    except subprocess.TimeoutExpired:
        raise CodexError("`git %s` took over %d s in %s" % (" ".join(args), timeout, cwd))
    if proc.returncode not in ok_codes:
        why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError("`git %s` failed in %s: %s" % (" ".join(args), cwd, why[-1] if why else "exit %d" % proc.returncode))
    return proc.stdout


def _git_line(cwd, *args):
    """The first line of a git command's output, or None when the command fails."""
    try:
        out = run_git(cwd, *args).decode("utf-8", "replace").strip()
    except UsageError:
        return None
    return out.splitlines()[0] if out else None


def resolve_review_scope(cwd, uncommitted=False, base=None, commit=None):
    """The ReviewScope for the flags; with none: uncommitted changes if any, else the branch."""
    if sum(bool(x) for x in (uncommitted, base, commit)) > 1:
        raise UsageError("give at most one of --uncommitted, --base BRANCH and --commit SHA")
    root = _git_line(cwd, "rev-parse", "--show-toplevel")
    if root is None:
        raise UsageError("%s is not inside a git repository; review needs one (run it in your checkout, or -C DIR)" % cwd)
    root = Path(root)
    if commit:
        sha = _git_line(root, "rev-parse", "--verify", "--quiet", "%s^{commit}" % commit)
        if sha is None:
            raise UsageError("--commit %s: no such commit in %s" % (commit, root))
        parent = _git_line(root, "rev-parse", "--verify", "--quiet", "%s^1" % sha)
        subject = _git_line(root, "log", "-1", "--format=%s", sha) or ""
        return ReviewScope("commit", root, "commit %s (%s)" % (sha[:12], subject), base=parent, commit=sha)
    if base:
        return _branch_scope(root, base)
    if uncommitted or run_git(root, "status", "--porcelain", "--untracked-files=normal").strip():
        return ReviewScope("uncommitted", root, "uncommitted changes (staged, unstaged and untracked)")
    for target in (_git_line(root, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}"),
                   _default_branch(root)):
        if target:
            scope = _branch_scope(root, target, quiet=True)
            if scope is not None:
                return scope
    raise UsageError("nothing to review in %s: no uncommitted changes, and HEAD has no commits that its "
                     "upstream or the default branch lacks (give --base BRANCH or --commit SHA)" % root)


def _default_branch(root):
    """origin's HEAD branch, else the first of main/master/trunk that exists."""
    head = _git_line(root, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD")
    if head:
        return head
    for name in ("main", "master", "trunk"):
        if _git_line(root, "rev-parse", "--verify", "--quiet", "refs/heads/%s" % name):
            return name
    return None


def _branch_scope(root, branch, quiet=False):
    """The scope of what HEAD changed since its merge base with `branch` (None if nothing, when quiet)."""
    if _git_line(root, "rev-parse", "--verify", "--quiet", "%s^{commit}" % branch) is None:
        raise UsageError("--base %s: no such branch or commit in %s" % (branch, root))
    merge_base = _git_line(root, "merge-base", "HEAD", branch)
    if merge_base is None:
        raise UsageError("--base %s: HEAD and %s have no common ancestor" % (branch, branch))
    head = _git_line(root, "rev-parse", "HEAD")
    if merge_base == head:
        if quiet:
            return None
        raise UsageError("--base %s: HEAD has no commits that %s lacks; nothing to review" % (branch, branch))
    current = _git_line(root, "rev-parse", "--abbrev-ref", "HEAD") or "HEAD"
    return ReviewScope("base", root, "changes on %s since it left %s (merge base %s)" % (current, branch, merge_base[:12]),
                       base=merge_base)


def _empty_tree(root):
    """The sha of the empty tree in this repository's hash format."""
    return run_git(root, "hash-object", "-t", "tree", os.devnull).decode().strip()


def collect_review_diff(scope):
    """The change as a list of FileDiff, in git's order."""
    root = scope.root
    if scope.kind == "commit":
        raw = run_git(root, "diff", *REVIEW_DIFF_OPTIONS, scope.base or _empty_tree(root), scope.commit, "--")
    elif scope.kind == "base":
        raw = run_git(root, "diff", *REVIEW_DIFF_OPTIONS, scope.base, "HEAD", "--")
    else:
        head = _git_line(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}") or _empty_tree(root)
        raw = run_git(root, "diff", *REVIEW_DIFF_OPTIONS, head, "--")
        for name in run_git(root, "ls-files", "--others", "--exclude-standard", "-z").split(b"\0"):
            if name:  # `git diff --no-index` exits 1 when the files differ, which they do
                raw += run_git(root, "diff", *REVIEW_DIFF_OPTIONS, "--no-index", "--", os.devnull,
                               os.fsdecode(name), ok_codes=(0, 1))
    return split_diff(raw.decode("utf-8", "replace"))


def split_diff(text):
    """A unified git diff split into FileDiffs (path, binary flag, +/- line counts)."""
    files = []
    for chunk in re.split(r"(?m)^(?=diff --git )", text):
        if not chunk.startswith("diff --git "):
            continue
        path = None
        for line in chunk.splitlines()[:8]:
            if line.startswith("+++ ") and line[4:] != "/dev/null":
                path = line[6:] if line.startswith("+++ b/") else line[4:]
            elif line.startswith("--- ") and path is None and line[4:] != "/dev/null":
                path = line[6:] if line.startswith("--- a/") else line[4:]
            elif line.startswith(("rename to ", "copy to ")):
                path = line.split(" to ", 1)[1]
        if path is None:  # binary or mode-only change: the b/ side of the header
            m = re.match(r"diff --git (?:\"?a/.*?\"? )?\"?b/(.*?)\"?$", chunk.splitlines()[0])
            path = m.group(1) if m else chunk.splitlines()[0][11:]
        binary = bool(re.search(r"(?m)^(Binary files .* differ|GIT binary patch)$", chunk))
        body = [l for l in chunk.splitlines() if not l.startswith(("+++ ", "--- "))]
        files.append(FileDiff(path, chunk if chunk.endswith("\n") else chunk + "\n", binary,
                              sum(1 for l in body if l.startswith("+")), sum(1 for l in body if l.startswith("-"))))
    return files


def _review_rank(diff):
    """0: code and tests, 1: docs, 2: lock files, generated and vendored, 3: binary."""
    if diff.binary:
        return 3
    name = diff.path.lower()
    if any(fnmatch.fnmatch(name, g) or fnmatch.fnmatch(name.rsplit("/", 1)[-1], g) for g in REVIEW_LOW_PRIORITY_GLOBS):
        return 2
    if name.endswith((".md", ".rst", ".txt", ".adoc")):
        return 1
    return 0


def review_diff_budget(context_window):
    """Bytes of diff a model with this context window (tokens, or None) gets."""
    if not context_window:
        return REVIEW_DEFAULT_DIFF_BYTES
    return max(REVIEW_MIN_DIFF_BYTES, int(context_window * REVIEW_DIFF_WINDOW_SHARE * REVIEW_BYTES_PER_TOKEN))


def budget_review_diff(files, budget):
    """(shown, left_out): whole files by priority, then size, while they fit in `budget` bytes.

    Binary files are shown as their one-line git summary.  The first file that does not fit
    is cut (with a note) rather than dropped when nothing else has been shown yet.
    """
    shown, left_out, used = [], [], 0
    for diff in sorted(files, key=lambda d: (_review_rank(d), len(d.text))):
        size = len(diff.text.encode("utf-8"))
        if used + size <= budget:
            shown.append(diff)
            used += size
        elif not shown:
            cut = diff.text.encode("utf-8")[:budget].decode("utf-8", "ignore")
            shown.append(FileDiff(diff.path, cut + "\n[... diff of %s cut at %d of %d bytes ...]\n" % (diff.path, budget, size),
                                  diff.binary, diff.added, diff.removed))
            used = budget
        else:
            left_out.append(diff)
    order = {id(d): i for i, d in enumerate(files)}
    shown.sort(key=lambda d: order.get(id(d), 0))
    return shown, left_out


def review_prompt(scope, shown, left_out, focus=None):
    """The whole user message of a review turn."""
    parts = [REVIEW_INSTRUCTIONS, "", "Repository root: %s" % scope.root, "What to review: %s." % scope.description]
    if focus:
        parts.append("The user asks you to focus on: %s" % focus.strip())
    if left_out:
        parts.append("Left out of the diff below to fit your context (read them with commands if they matter): %s."
                     % ", ".join("%s (+%d -%d)" % (d.path, d.added, d.removed) for d in left_out))
    parts += ["", "The diff:", "", "".join(d.text for d in shown).rstrip("\n")]
    return "\n".join(parts)


def _json_objects(text):
    """Every top-level JSON object that parses inside `text`, in order."""
    decoder = json.JSONDecoder()
    found, i = [], text.find("{")
    while i != -1 and len(found) < 20:
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        i = text.find("{", end)
    return found


def _review_priority(finding):
    """A finding's priority 0-3 from `priority` (number or "P1") or a [Pn] tag in its title."""
    value = finding.get("priority")
    if isinstance(value, str):
        m = re.match(r"\s*[Pp]?([0-3])\s*$", value)
        value = int(m.group(1)) if m else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 3:
        m = re.match(r"\s*\[\s*[Pp]([0-3])\s*\]", str(finding.get("title") or ""))
        return int(m.group(1)) if m else None
    return int(value)


def _score(value):
    """A confidence in [0, 1] or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
    return max(0.0, min(1.0, float(value)))


def _review_location(finding, root):
    """(absolute path or None, start, end) of a finding, accepting the common misspellings."""
    loc = finding.get("code_location") if isinstance(finding.get("code_location"), dict) else {}
    path = loc.get("absolute_file_path") or loc.get("file_path") or loc.get("path") or finding.get("file") or finding.get("path")
    rng = loc.get("line_range") if isinstance(loc.get("line_range"), dict) else {}
    start = rng.get("start", loc.get("line", finding.get("line")))
    end = rng.get("end", start)
    try:
        start = int(start) if start is not None else None
        end = int(end) if end is not None else start
    except (TypeError, ValueError):
        start = end = None
    if start is not None and end is not None and end < start:
        start, end = end, start
    if isinstance(path, str) and path.strip():
        path = path.strip()
        if not os.path.isabs(path):
            path = os.path.normpath(os.path.join(str(root), path))
    else:
        path = None
    return path, start, end


def parse_review(text, root):
    """The model's answer as a review dict (upstream's fields plus `parsed`); never raises.

    Accepts the JSON object bare, fenced or inside prose; a finding without a title is
    dropped.  An answer with no such object becomes an unparsed review whose explanation is
    the model's text, so a prose review is still shown whole.
    """
    text = text or ""
    obj = next((o for o in _json_objects(text) if "findings" in o or "overall_correctness" in o), None)
    if obj is None:
        return {"findings": [], "overall_correctness": None, "overall_explanation": text.strip(),
                "overall_confidence_score": None, "parsed": False}
    findings = []
    for raw in obj.get("findings") if isinstance(obj.get("findings"), list) else ():
        if not isinstance(raw, dict) or not str(raw.get("title") or "").strip():
            continue
        path, start, end = _review_location(raw, root)
        findings.append({
            "title": str(raw["title"]).strip(), "body": str(raw.get("body") or "").strip(),
            "confidence_score": _score(raw.get("confidence_score")), "priority": _review_priority(raw),
            "code_location": {"absolute_file_path": path, "line_range": {"start": start, "end": end}},
        })
    findings.sort(key=lambda f: 4 if f["priority"] is None else f["priority"])
    verdict = str(obj.get("overall_correctness") or "").strip().lower() or None
    return {"findings": findings, "overall_correctness": verdict,
            "overall_explanation": str(obj.get("overall_explanation") or "").strip(),
            "overall_confidence_score": _score(obj.get("overall_confidence_score")), "parsed": True}


def review_fails(review, fail_on):
    """True when `review` has a finding at or above `fail_on` ("P0".."P3")."""
    limit = REVIEW_PRIORITIES.index(fail_on.upper())
    return any(f["priority"] is not None and f["priority"] <= limit for f in review["findings"])


def _editor_link(opener, path, line, label):
    """`label` as an OSC 8 hyperlink to path:line in the configured editor (file_opener)."""
    from urllib.parse import quote

    if opener in (None, "none") or opener not in FILE_OPENERS:
        return label
    target = "%s://file%s:%d" % (opener, quote(path, safe="/:._-~+@,="), line or 1)
    return "\x1b]8;;%s\x1b\\%s\x1b]8;;\x1b\\" % (target, label)


def render_review(review, scope, left_out=(), file_opener="none", links=False, color=False, title=None):
    """The review as readable text: one block per finding, then the verdict."""
    def c(code, text):
        return "\x1b[%sm%s\x1b[0m" % (code, text) if color else text

    safe = terminal_safe(review)  # the model's text is untrusted on a terminal
    lines = ["Review%s of %s" % (" \"%s\"" % terminal_safe(title) if title else "", scope.description)]
    findings = safe["findings"]
    if not safe["parsed"]:
        lines += ["(the model answered in prose, not in the review format; its answer follows)", "",
                  safe["overall_explanation"] or "(empty answer)"]
    elif not findings:
        lines.append("No findings.")
    else:
        lines.append("%d finding%s:" % (len(findings), "" if len(findings) == 1 else "s"))
    for i, f in enumerate(findings, 1):
        prio = "P%d" % f["priority"] if f["priority"] is not None else "P?"
        title = re.sub(r"^\s*\[\s*[Pp][0-3]\s*\]\s*", "", f["title"])
        lines.append("")
        lines.append("%d. %s %s" % (i, c("1;31" if prio in ("P0", "P1") else "1;33", "[%s]" % prio), c("1", title)))
        loc = f["code_location"]
        path, rng = loc["absolute_file_path"], loc["line_range"]
        if path:
            try:
                shown = os.path.relpath(path, str(scope.root))
                shown = path if shown.startswith("..") else shown
            except ValueError:
                shown = path
            label = shown + (":%d" % rng["start"] if rng["start"] else "") + \
                ("-%d" % rng["end"] if rng["end"] and rng["end"] != rng["start"] else "")
            lines.append("   " + (_editor_link(file_opener, path, rng["start"], label) if links else label))
        for para in (f["body"] or "").splitlines():
            lines.append("   " + para if para.strip() else "")
        if f["confidence_score"] is not None:
            lines.append("   " + c("2", "confidence %.2f" % f["confidence_score"]))
    if safe["parsed"]:
        lines.append("")
        verdict = safe["overall_correctness"] or "no verdict given"
        score = safe["overall_confidence_score"]
        lines.append("Verdict: %s%s" % (c("1;32" if verdict == "patch is correct" else "1;31", verdict),
                                        " (confidence %.2f)" % score if score is not None else ""))
        if safe["overall_explanation"]:
            lines.append(safe["overall_explanation"])
    if left_out:
        lines += ["", "Left out of the review to fit the model's context: %s" % ", ".join(terminal_safe(d.path) for d in left_out)]
    return "\n".join(lines) + "\n"


def review_json(review, scope, left_out=()):
    """The review as the JSON object --json prints (upstream's fields, plus the scope)."""
    out = {k: review[k] for k in ("findings", "overall_correctness", "overall_explanation", "overall_confidence_score")}
    out["parsed"] = review["parsed"]
    out["scope"] = {"kind": scope.kind, "description": scope.description, "root": str(scope.root),
                    "base": scope.base, "commit": scope.commit}
    out["left_out"] = [d.path for d in left_out]
    return out


class ReviewRequest(object):
    """A prepared review: the scope, the budgeted diff and the prompt for the model."""

    def __init__(self, scope, shown, left_out, prompt):
        self.scope = scope
        self.shown = shown
        self.left_out = left_out
        self.prompt = prompt

    def summary(self, title=None, focus=None):
        """What the human header shows instead of the whole prompt."""
        lines = ["Review%s: %s" % (" \"%s\"" % title if title else "", self.scope.description),
                 "%d file%s in the diff (+%d -%d)" % (len(self.shown), "" if len(self.shown) == 1 else "s",
                                                     sum(d.added for d in self.shown), sum(d.removed for d in self.shown))]
        if self.left_out:
            lines.append("left out to fit the model's context: %s" % ", ".join(d.path for d in self.left_out))
        if focus:
            lines.append("focus: %s" % focus)
        return "\n".join(lines)


def prepare_review(cwd, uncommitted=False, base=None, commit=None, focus=None, context_window=None):
    """Resolve the scope, collect and budget the diff, build the prompt."""
    scope = resolve_review_scope(cwd, uncommitted=uncommitted, base=base, commit=commit)
    files = collect_review_diff(scope)
    if not files:
        raise UsageError("nothing to review: %s has no changes" % scope.description)
    shown, left_out = budget_review_diff(files, review_diff_budget(context_window))
    return ReviewRequest(scope, shown, left_out, review_prompt(scope, shown, left_out, focus))


def _review_config(cfg_loader):
    """The review's Config: read-only sandbox and approval never, whatever config and flags say."""
    return cfg_loader(sandbox_mode="read-only", approval_policy="never", dangerously_bypass=False)


def _cmd_review(args, cfg_loader):
    """`codex review` / `codex exec review`: review a change and print the findings."""
    if args.fail_on and args.fail_on.upper() not in REVIEW_PRIORITIES:
        raise UsageError("--fail-on %s: use one of %s" % (args.fail_on, ", ".join(REVIEW_PRIORITIES)))
    cfg = _review_config(cfg_loader)
    focus = " ".join(getattr(args, "review_prompt", None) or []) or None
    request = prepare_review(cfg.cwd, uncommitted=args.uncommitted, base=args.base, commit=args.commit,
                             focus=focus, context_window=model_family(cfg.model, cfg).context_window)
    err = sys.stderr
    color = _use_color(getattr(args, "color", "auto"), sys.stdout)
    as_json = bool(getattr(args, "json", False))
    schema = load_output_schema(args.output_schema) if getattr(args, "output_schema", None) else None
    # With --output-schema the model's JSON itself is the output, as in `codex exec` (upstream's #35596).
    run_out = sys.stdout if as_json or schema is not None else open(os.devnull, "w")
    answer = []
    try:
        code = run_exec(cfg, request.prompt, as_json=as_json, color=getattr(args, "color", "auto"),
                        last_message_file=getattr(args, "output_last_message", None), skip_git_repo_check=True,
                        out=run_out, err=err, shown_prompt=request.summary(args.title, focus), output_schema=schema,
                        ephemeral=bool(getattr(args, "ephemeral", False)), answer=answer)
    finally:
        if run_out is not sys.stdout:
            run_out.close()
    if code != 0:
        return code
    review = parse_review((answer or [None])[-1] or "", request.scope.root)
    if schema is not None:
        pass  # run_exec printed the schema-checked answer
    elif as_json:
        sys.stdout.write(json.dumps({"type": "review.completed", "review": review_json(review, request.scope, request.left_out)},
                                    separators=(",", ":")) + "\n")
    else:
        sys.stdout.write(render_review(review, request.scope, request.left_out, cfg.file_opener,
                                       links=color, color=color, title=args.title))
    sys.stdout.flush()
    if args.fail_on:
        if not review["parsed"]:
            err.write("codex: the review is not in the findings format, so --fail-on %s cannot be checked; "
                      "failing\n" % args.fail_on.upper())
            return 1
        if review_fails(review, args.fail_on):
            return REVIEW_FINDINGS_EXIT
    return 0


###############################################################################
# §18a Front end: the REPL, its helpers and `@` file search
###############################################################################

# The interactive session renders inline and append-only: a finished cell (an answer block, a
# command with its output, a diff, a decision) is printed once into the terminal's normal
# scrollback and never redrawn.  Only the composer (prompt-toolkit, no alternate screen, no
# mouse capture unless `tui.disable_mouse_capture = false`) and, while a turn runs, one live
# status line are redrawn, so native scrollback, selection and tmux/zellij copy modes keep
# working (upstream #1247, #2836, #10331).  Data flow:
#
#     Composer (keys, `/` and `@` completion, history) -> op -> Session (§16)
#     Session events -> ReplRenderer (rich: streamed markdown, cells, approvals) -> stdout
#
# Keys: Enter sends, Ctrl-J (or Alt-Enter) inserts a newline, Up/Down browse history on an
# empty composer, `@` searches files, `/` lists commands, Esc Esc edits an earlier message,
# Ctrl-C clears the line (twice on an empty line quits) or interrupts a turn, Ctrl-D on an
# empty line quits.  While a turn runs, Esc or Ctrl-C interrupts it.

#: slash commands in presentation order: (name, description)
SLASH_COMMANDS = (
    ("new", "start a new chat during a conversation"),
    ("init", "create an AGENTS.md file with instructions for Codex"),
    ("compact", "summarize conversation to prevent hitting the context limit"),
    ("diff", "show git diff (including untracked files)"),
    ("mention", "mention a file"),
    ("status", "show current session configuration and token usage"),
    ("model", "choose what model and reasoning effort to use"),
    ("approvals", "choose what Codex can do without approval"),
    ("resume", "resume an earlier session"),
    ("mcp", "list MCP servers, their state and tools"),
    ("review", "review a change (uncommitted, a branch or a commit) and list findings"),
    ("quit", "exit Codex"),
)
SLASH_ALIASES = {"exit": "quit", "clear": "new"}  #: other spellings accepted
#: file_opener value -> URI scheme of the editor link a citation becomes ("none": left as is)
FILE_OPENER_SCHEMES = {"vscode": "vscode", "vscode-insiders": "vscode-insiders", "windsurf": "windsurf", "cursor": "cursor"}
#: a model's file citation 【F:path†L10-L20】: path, start line, optional end line (or "?")
CITATION_RE = re.compile(u"\u3010F:([^\u2020]+)\u2020L(\\d+)(?:-L(\\d+|\\?))?\u3011")
#: approval prompt: key -> (ReviewDecision, label); Esc and Ctrl-C also abort
APPROVAL_CHOICES = (
    ("y", "approved", "Yes"),
    ("a", "approved_for_session", "Yes, always this session"),
    ("n", "denied", "No"),
    ("esc", "abort", "No, and stop the turn"),
)
#: the /approvals menu: (key, label, approval_policy, sandbox_mode, description)
APPROVALS_MENU = (
    ("1", "Read Only", "on-request", "read-only", "read files; ask before edits, commands or network"),
    ("2", "Auto", "on-request", "workspace-write", "edit and run in the workspace; ask to leave it"),
    ("3", "Full Access", "never", "danger-full-access", "no sandbox, never ask (use with care)"),
)
#: /model presets: (model, reasoning effort or None); `/model NAME` takes any name
MODEL_PRESETS = (
    ("codex-mini-latest", None),
    ("gpt-5", "minimal"),
    ("gpt-5", "low"),
    ("gpt-5", "medium"),
    ("gpt-5", "high"),
    ("o3", None),
    ("o4-mini", None),
    ("gpt-4.1", None),
)
#: what /init asks the agent to do
INIT_PROMPT = (
    "Create an AGENTS.md file in the current directory for future coding agents working in this "
    "repository. Look at the project first (layout, build and test commands, code style, how to "
    "run a single test, conventions for commits and pull requests), then write concise, accurate "
    "instructions under clear headings. Do not invent commands you have not verified."
)
FILE_SEARCH_LIMIT = 8  #: `@` results shown (upstream: 8)
HISTORY_SEARCH_SECONDS = 0.15  #: Ctrl-R: time one keypress may spend reading history.jsonl
PASTE_COLLAPSE_CHARS, PASTE_COLLAPSE_LINES = 1000, 10  #: a paste beyond either shows as `[pasted N lines]`
FILE_SEARCH_MAX_FILES = 1000000  #: stop listing a workspace beyond this many files
EXEC_PREVIEW_HEAD, EXEC_PREVIEW_TAIL = 4, 2  #: command output lines shown before/after "…"
EXEC_KEEP_CHARS = 64 * 1024  #: output of a running command kept for its cell (head and tail)
RESUME_SHOW_EXCHANGES = 2  #: a resumed session shows its last exchanges (prompt and answers)
RESUME_PICKER_LIMIT = 50  #: sessions /resume lists, newest first
STATUS_FRAMES = u"\u280b\u2819\u2839\u2838\u283c\u2834\u2826\u2827\u2807\u280f"  #: spinner
_BACKTRACK = object()  #: what the composer returns when Esc Esc asks for the backtrack picker
#: spaces rich pads lines with (kept out of the scrollback so copied text has none)
_TRAILING_PAD_RE = re.compile(r"(?:[ \t]|\x1b\[[0-9;]*m)*[ \t](?:[ \t]|\x1b\[[0-9;]*m)*$", re.M)


# -- terminal and text helpers --------------------------------------------------------------


#: output width when it is not a terminal: lines are not wrapped (a pipe or a log file wrapped
#: at 80 columns broke long lines, URLs and code); COLUMNS sets another width
PIPE_WIDTH = 100000


def _terminal_caps(stream=None, environ=None):
    """{"tty", "color", "hyperlinks", "width"} for the output stream (NO_COLOR, TERM=dumb)."""
    environ = os.environ if environ is None else environ
    stream = sys.stdout if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    term = environ.get("TERM", "")
    dumb = term in ("dumb", "unknown")
    try:
        width = os.get_terminal_size(stream.fileno()).columns if tty else PIPE_WIDTH
    except (OSError, AttributeError, ValueError):
        width = PIPE_WIDTH
    if not tty and str(environ.get("COLUMNS", "")).isdigit() and int(environ["COLUMNS"]) > 0:
        width = int(environ["COLUMNS"])  # asked for explicitly
    forced = environ.get("FORCE_HYPERLINK")
    if forced is not None:
        links = forced not in ("0", "false", "")
    else:
        program = environ.get("TERM_PROGRAM", "")
        links = (
            program in ("iTerm.app", "WezTerm", "vscode", "ghostty", "Hyper", "rio")
            or bool(environ.get("KITTY_WINDOW_ID") or environ.get("WT_SESSION") or environ.get("KONSOLE_VERSION"))
            or term in ("xterm-kitty", "xterm-ghostty", "alacritty", "wezterm")
            or term.startswith("foot")
            or (environ.get("VTE_VERSION", "0").isdigit() and int(environ.get("VTE_VERSION", "0")) >= 5000)
        )
    return {
        "tty": tty,
        "dumb": dumb,
        "color": tty and not dumb and not environ.get("NO_COLOR"),
        "hyperlinks": bool(tty and not dumb and links),
        "width": max(20, width or 80),
    }


def citation_link(match, file_opener, cwd, links=True):
    """(label, url or None) for a CITATION_RE match; None when `file_opener` is "none".

    The label keeps the line range (`path:10-20`); the link opens the first line of the
    path, joined to the session cwd and lexically cleaned (as upstream).
    """
    scheme = FILE_OPENER_SCHEMES.get(file_opener)
    if scheme is None:
        return None
    import posixpath
    from urllib.parse import quote

    path, start, end = match.group(1), match.group(2), match.group(3)
    label = "%s:%s" % (path, start) + ("-%s" % end if end and end != "?" else "")
    if not links:
        return label, None
    raw = path.replace("\\", "/")
    full = posixpath.normpath(raw if raw.startswith("/") else posixpath.join(str(cwd).replace("\\", "/"), raw))
    if full.startswith("//"):
        full = "/" + full.lstrip("/")
    return label, "%s://file%s:%s" % (scheme, quote(full, safe="/:._-~+@,="), start)


def rewrite_citations(text, file_opener, cwd, links=True):
    """Turn 【F:path†L5-L9】 into `[path:5-9](scheme://file/ABS:5)` (or `path:5-9` without links).

    Nothing changes for file_opener "none"; no space is added around the citation.
    """
    if FILE_OPENER_SCHEMES.get(file_opener) is None or u"\u3010F:" not in text:
        return text

    def repl(m):
        label, url = citation_link(m, file_opener, cwd, links)
        return "[%s](%s)" % (label.replace("]", "\\]"), url) if url else label

    return CITATION_RE.sub(repl, text)


#: characters a model-chosen command could use to hide part of itself on the terminal:
#: C0/C1 controls but tab and newline (ESC sequences, CR, backspace) and bidi overrides
_HIDING_CHARS_RE = re.compile(u"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _reveal_hidden_chars(text):
    """Show control and bidi characters as escapes, so what is displayed is what runs."""
    return _HIDING_CHARS_RE.sub(lambda m: "\\x%02x" % ord(m.group()) if ord(m.group()) < 0x100
                                else "\\u%04x" % ord(m.group()), text)


def _display_command(command):
    """A command argv as the user reads it: the script of `bash -lc SCRIPT`, else shell-quoted."""
    import shlex

    if isinstance(command, str):
        return _reveal_hidden_chars(command)
    command = [str(c) for c in command or []]
    if len(command) == 3 and os.path.basename(command[0]) in ("bash", "sh", "zsh") and command[1] in ("-lc", "-c"):
        return _reveal_hidden_chars(command[2])
    return _reveal_hidden_chars(" ".join(shlex.quote(c) for c in command))


def _seconds(duration):
    """A duration from an event ({"secs","nanos"}, seconds, or "1.2s") as float seconds."""
    if isinstance(duration, dict):
        return float(duration.get("secs", 0)) + float(duration.get("nanos", 0)) / 1e9
    if isinstance(duration, (int, float)):
        return float(duration)
    if isinstance(duration, str):
        m = re.match(r"\s*([\d.]+)\s*(ms|s)?", duration)
        if m:
            return float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
    return 0.0


def _format_seconds(seconds):
    """10 s, 1.5 s, 2 min 30 s: a configured duration, as a person says it."""
    if seconds >= 60:
        return "%d min%s" % (seconds // 60, " %d s" % (seconds % 60) if seconds % 60 else "")
    return ("%d s" if seconds == int(seconds) else "%.1f s") % seconds


def _preview_lines(text, head=EXEC_PREVIEW_HEAD, tail=EXEC_PREVIEW_TAIL, width=200):
    """The lines of command output worth showing: head, a "… +N lines" marker, tail."""
    lines = (text or "").rstrip("\n").split("\n") if (text or "").strip() else []
    lines = [l if len(l) <= width else l[: width - 1] + u"\u2026" for l in lines]
    if len(lines) <= head + tail + 1:
        return lines
    return lines[:head] + [u"\u2026 +%d lines" % (len(lines) - head - tail)] + lines[-tail:]


def _normalize_change(change):
    """A FileChange in any of its wire shapes -> (kind, content, unified_diff, move_path)."""
    if isinstance(change, str):
        return change, "", "", None
    if not isinstance(change, dict):
        return "update", "", "", None
    if "type" in change:
        kind = change.get("type")
        body = change
    else:
        kind = next(iter(change), "update")
        body = change.get(kind) if isinstance(change.get(kind), dict) else {}
    return (
        kind,
        body.get("content") or "",
        body.get("unified_diff") or body.get("diff") or "",
        body.get("move_path"),
    )


def _relative_to(path, cwd):
    """`path` relative to `cwd` when it lies inside it, else as given."""
    try:
        rel = os.path.relpath(str(path), str(cwd))
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _diff_counts(lines):
    """(+added, -removed) of unified diff lines."""
    added = sum(1 for l in lines if l.startswith("+") and not l.startswith("+++"))
    removed = sum(1 for l in lines if l.startswith("-") and not l.startswith("---"))
    return added, removed


# -- `@` file search ------------------------------------------------------------------------


def _gitignore_regex(pattern):
    """Compile one .gitignore pattern; return (regex, negated, dir_only, anchored) or None."""
    pattern = pattern.rstrip("\n").rstrip("\r")
    if not pattern.strip() or pattern.startswith("#"):
        return None
    if not pattern.endswith("\\ "):
        pattern = pattern.rstrip(" ")
    negated = pattern.startswith("!")
    if negated:
        pattern = pattern[1:]
    elif pattern.startswith("\\"):
        pattern = pattern[1:]
    dir_only = pattern.endswith("/")
    pattern = pattern.rstrip("/")
    if not pattern:
        return None
    anchored = "/" in pattern
    pattern = pattern.lstrip("/")
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("/.*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = pattern.find("]", i + 2)
            if j < 0:
                out.append("\\[")
                i += 1
            else:
                body = pattern[i + 1:j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j + 1
        elif c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z"), negated, dir_only, anchored


def _read_ignore_rules(directory):
    """The compiled rules of `directory`'s .gitignore and .ignore files."""
    rules = []
    for name in (".gitignore", ".ignore"):
        try:
            with open(os.path.join(directory, name), encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    rule = _gitignore_regex(line)
                    if rule is not None:
                        rules.append(rule)
        except OSError:
            pass
    return rules


def _ignored(stack, rel, name, is_dir):
    """Whether `rel` (relative to the search root) is ignored by the rule stack (last match wins)."""
    verdict = False
    for base, rules in stack:
        sub = rel[len(base) + 1:] if base else rel
        for regex, negated, dir_only, anchored in rules:
            if dir_only and not is_dir:
                continue
            if regex.match(sub if anchored else name):
                verdict = not negated
    return verdict


def walk_workspace_files(root, limit=FILE_SEARCH_MAX_FILES, cancel=None):
    """Relative paths of the files under `root`, skipping hidden entries and what .gitignore /
    .ignore files exclude (used outside git repositories)."""
    root = str(root)
    out = []
    stack = [("", [("", _read_ignore_rules(root))])]
    while stack:
        rel_dir, rules = stack.pop()
        if cancel is not None and cancel():
            break
        try:
            entries = list(os.scandir(os.path.join(root, rel_dir) if rel_dir else root))
        except OSError:
            continue
        for entry in sorted(entries, key=lambda e: e.name):
            name = entry.name
            if name.startswith("."):
                continue
            rel = rel_dir + "/" + name if rel_dir else name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if _ignored(rules, rel, name, is_dir):
                continue
            if is_dir:
                sub_rules = _read_ignore_rules(entry.path)
                stack.append((rel, rules + [(rel, sub_rules)] if sub_rules else rules))
            else:
                out.append(rel)
                if len(out) >= limit:
                    return out
    return out


#: git options for commands the REPL runs on its own in a repository that may not be trusted:
#: no fsmonitor hook, no pager (a repository's config must not get to run programs)


def list_workspace_files(root, limit=FILE_SEARCH_MAX_FILES):
    """Files under `root` relative to it: `git ls-files` in a repository, else a walk."""
    import subprocess

    try:
        proc = subprocess.run(
            git_argv(root) + ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=str(root), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, timeout=30,
        )
        if proc.returncode == 0:
            seen = set()
            out = []
            for raw in proc.stdout.split(b"\0"):
                if raw and raw not in seen:
                    seen.add(raw)
                    out.append(os.fsdecode(raw))
                    if len(out) >= limit:
                        break
            return out
    except (OSError, subprocess.SubprocessError):
        pass
    return walk_workspace_files(root, limit)


class FileSearch(object):
    """Fuzzy file-name search over the workspace for `@` (smart case, space-separated atoms).

    The file list is loaded once in a background thread.  A query that extends the previous
    one narrows the previous matches instead of rescanning; a newer query makes an older one
    still running give up early.  Results are ranked: a match inside the file name beats one
    spread over directories, a prefix beats an infix, shorter paths win ties.
    """

    def __init__(self, root):
        self.root = Path(root)
        self._index = ([], [], [])  # (paths, lower-cased paths, lower-cased base names), swapped whole
        self._refreshing = False
        self._ready = threading.Event()
        self._thread = None
        self._generation = 0
        self._last = (None, None, None)  # (query key, matching indices, the path list they index)
        self._lock = threading.Lock()
        self.last_query, self.last_total = None, 0  # the last finished search and its match count

    def start(self):
        """Begin listing the workspace in the background (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._load, name="codex-file-index", daemon=True)
            self._thread.start()
        return self

    def refresh(self):
        """List the workspace again in the background (after a turn: it may have made files);
        searches use the old list until the new one is ready."""
        if not self._ready.is_set() or self._refreshing:
            return self.start()
        self._refreshing = True
        threading.Thread(target=self._load, name="codex-file-index", daemon=True).start()
        return self

    def _load(self):
        try:
            paths = list_workspace_files(self.root)
        except Exception as exc:  # a broken index must not take the REPL down
            log("warn", "file search: cannot list %s: %s", self.root, exc)
            paths = []
        lower = [p.lower() for p in paths]
        base = [p[p.rfind("/") + 1:] for p in lower]
        with self._lock:
            self._index = (paths, lower, base)  # a search running on the old list finishes on it
        self._refreshing = False
        self._ready.set()

    @property
    def _paths(self):
        return self._index[0]

    @property
    def _lower(self):
        return self._index[1]

    @property
    def _base(self):
        return self._index[2]

    def wait(self, timeout=None):
        """Block until the file list is loaded; return whether it is."""
        self.start()
        return self._ready.wait(timeout)

    @property
    def ready(self):
        """Whether the file list is loaded."""
        return self._ready.is_set()

    @property
    def file_count(self):
        """Number of files indexed (0 until loaded)."""
        return len(self._paths)

    def search(self, query, limit=FILE_SEARCH_LIMIT):
        """The best `limit` matches as [(path, [matched char indices])]; [] if superseded."""
        with self._lock:
            self._generation += 1
            generation = self._generation
        if not self.wait(30):
            return []
        stale = lambda: generation != self._generation
        paths, lower, base = self._index
        atoms = query.split()
        if not atoms:
            self.last_query, self.last_total = query, len(paths)
            order = sorted(range(len(paths)), key=lambda i: (paths[i].count("/"), len(paths[i]), paths[i]))
            return [(paths[i], []) for i in order[:limit]]
        keyed = [(a, a != a.lower()) for a in atoms]
        key = tuple(keyed)
        prev_key, prev, prev_paths = self._last
        if prev_paths is not paths:
            prev_key = None  # matches of an older listing
        # Narrowing: the same atoms, the last ones extended, or more atoms added.
        narrows = prev_key is not None and (
            (len(prev_key) == len(key) and all(p[1] == k[1] and k[0].startswith(p[0]) for p, k in zip(prev_key, key)))
            or (len(prev_key) < len(key) and prev_key == key[: len(prev_key)])
        )
        candidates = prev if narrows else range(len(paths))
        for atom, sensitive in keyed:
            pat = re.compile(".*?".join(re.escape(c) for c in atom), re.S)
            hay = paths if sensitive else lower
            search = pat.search
            candidates = [i for i in candidates if search(hay[i])]
            if stale():
                return []
        self._last = (key, candidates, paths)
        self.last_query, self.last_total = query, len(candidates)

        fuzzy = [(a, sensitive, re.compile(".*?".join(re.escape(c) for c in a)).search) for a, sensitive in keyed]

        def score(i):
            total = 0
            for a, sensitive, in_order in fuzzy:
                name = base[i] if not sensitive else paths[i][paths[i].rfind("/") + 1:]
                pos = name.find(a)
                if pos == 0:
                    total += 800 if len(a) < len(name) else 1000
                elif pos > 0:
                    total += 650 if name[pos - 1] in "._- " else 600
                elif a in (paths[i] if sensitive else lower[i]):
                    total += 400
                elif in_order(name):
                    total += 200
            return (-total, len(paths[i]), paths[i])

        import heapq

        best = heapq.nsmallest(limit, candidates, key=score)
        return [(paths[i], self._match_indices(paths[i], atoms)) for i in best]

    @staticmethod
    def _match_indices(path, atoms):
        """Sorted character indices of `path` the query matched (for highlighting)."""
        found = set()
        low = path.lower()
        start_name = path.rfind("/") + 1
        for atom in atoms:
            sensitive = atom != atom.lower()
            hay = path if sensitive else low
            a = atom if sensitive else atom.lower()
            pos = hay.find(a, start_name)
            if pos < 0:
                pos = hay.find(a)
            if pos >= 0:
                found.update(range(pos, pos + len(a)))
                continue
            j = 0
            for c in a:
                j = hay.find(c, j)
                if j < 0:
                    break
                found.add(j)
                j += 1
        return sorted(found)


###############################################################################
# §18b Front end: REPL rendering (streamed markdown, cells, status line)
###############################################################################


#: styles of the answer renderer as SGR parameters (compact, terminal-native markdown)
MD_STYLES = {"bold": "1", "italic": "3", "code": "36", "link": "4", "heading": "1", "dim": "2",
             "quote": "2", "table_head": "1"}
_MD_BULLETS = (u"\u2022", u"\u25e6", u"\u25aa")  #: list bullets by nesting level
_MD_ITEM_RE = re.compile(r"( *)([-*+]|\d{1,9}[.)])( +|$)")
_MD_RULE_RE = re.compile(r" {0,3}([-*_])(?: *\1){2,} *$")
_MD_FENCE_RE = re.compile(r" {0,3}(`{3,}|~{3,})")
_MD_HEADING_RE = re.compile(r" {0,3}(#{1,6})(?: +|$)")
_MD_DELIM_CELL_RE = re.compile(r" *:?-+:? *$")
_MD_HOLD_MAX = 400  #: an unclosed `code`, [link] or citation longer than this is taken literally


def _cell_len(text):
    """Terminal columns `text` takes (wide characters count 2)."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len  # startup budget: only for non-ASCII answer text

    return cell_len(text)


def _md_ready(text):
    """How much of `text` is final: up to its last space outside an unfinished `code` span,
    [link](url) or citation (so a streamed word is rendered once, complete)."""
    i, n, last = 0, len(text), 0
    while i < n:
        c = text[i]
        end = -1
        if c == " ":
            last = i + 1
        elif c == "`":
            run = len(text) - len(text[i:].lstrip("`"))
            end = text.find("`" * run, i + run)
            end = end + run if end >= 0 else -1
        elif c == u"\u3010":
            end = text.find(u"\u3011", i)
            end = end + 1 if end >= 0 else -1
        elif c == "[":
            close = text.find("]", i)
            if close >= 0 and close + 1 < n:
                if text[close + 1] != "(":
                    i += 1
                    continue
                end = text.find(")", close)
                end = end + 1 if end >= 0 else -1
        else:
            i += 1
            continue
        if c == " ":
            i += 1
        elif end >= 0:
            i = end
        elif n - i > _MD_HOLD_MAX:
            i += 1  # never closed: literal
        else:
            return last
    return last


_MD_INLINE_RE = re.compile(
    u"(?P<cite>\u3010F:[^\u2020\u3011]+\u2020L\\d+(?:-L(?:\\d+|\\?))?\u3011)"
    u"|(?P<code>`+)"
    r"|(?P<link>\[(?P<label>[^\]]*)\]\((?P<url>[^)\s]*)\))"
    r"|(?P<emph>\*\*|__|\*|_)"
)


class _MdInline(object):
    """Inline markdown -> styled runs [(text, styles, url)], carrying **bold** / *italic* across calls."""

    def __init__(self, cfg_opener, cwd, links, styled=True):
        self.bold = self.italic = False
        self.opener, self.cwd, self.links = cfg_opener, cwd, links
        self.styled = styled  # False: `code` keeps its backticks (nothing else sets it off)

    def runs(self, text):
        out = []
        pos = 0

        def plain(s):
            if s:
                out.append((s, self._styles(), None))

        for m in _MD_INLINE_RE.finditer(text):
            if m.start() < pos:
                continue
            plain(text[pos:m.start()])
            pos = m.end()
            if m.group("cite"):
                label, url = self._citation(m)
                out.append((label, self._styles() + ("link",) if url else self._styles(), url))
            elif m.group("code"):
                run = m.group("code")
                end = text.find(run, m.end())
                if end < 0:
                    plain(run)
                    continue
                body = text[m.end():end]
                body = body.strip(" ") or body
                out.append((body if self.styled else "`%s`" % body, self._styles() + ("code",), None))
                pos = end + len(run)
            elif m.group("link"):
                label, url = m.group("label"), m.group("url")
                if self.links and url:
                    out.append((label, self._styles() + ("link",), url))
                elif url and url != label:
                    plain(label)
                    out.append((" (%s)" % url, self._styles() + ("dim",), None))
                else:
                    plain(label)
            else:
                mark = m.group("emph")
                before = text[m.start() - 1] if m.start() else " "
                after = text[m.end()] if m.end() < len(text) else " "
                strong = len(mark) == 2
                is_open = self.bold if strong else self.italic
                word = lambda ch: ch.isalnum()
                if is_open and not before.isspace() and not (mark[0] == "_" and word(after)):
                    self._toggle(strong)
                elif not is_open and not after.isspace() and not (mark[0] == "_" and word(before)):
                    self._toggle(strong)
                else:
                    plain(mark)
        plain(text[pos:])
        return out

    def _toggle(self, strong):
        if strong:
            self.bold = not self.bold
        else:
            self.italic = not self.italic

    def _styles(self):
        return (("bold",) if self.bold else ()) + (("italic",) if self.italic else ())

    def _citation(self, m):
        """(label, link or None) for 【F:path†L1-L2】 (see citation_link)."""
        inner = CITATION_RE.match(m.group("cite"))
        found = citation_link(inner, self.opener, self.cwd, self.links) if inner is not None else None
        return found if found is not None else (m.group("cite"), None)


class _MdLine(object):
    """One source line being word-wrapped: finished terminal lines go out as they fill."""

    def __init__(self, stream, prefix, hang, style=()):
        self.s = stream
        self.prefix, self.hang, self.style = prefix, hang, style
        self.words = []  # [(rendered word, columns)] of the terminal line being filled
        self.cols = _cell_len(prefix)
        self.started = False  # a terminal line of it has gone out

    def add(self, runs):
        """Add complete words (styled runs, spaces between words)."""
        word, cols = [], 0
        for text, styles, url in runs:
            parts = text.split(" ")
            for k, part in enumerate(parts):
                if k:
                    self._word(word, cols)
                    word, cols = [], 0
                if part:
                    word.append((part, self.style + tuple(styles), url))
                    cols += _cell_len(part)
        self._word(word, cols)

    def _word(self, pieces, cols):
        if not pieces:
            return
        width = self.s.width
        room = width - self.cols - (1 if self.words else 0)
        if cols > room and self.words:
            self.flush()
        while cols > width - self.cols and not self.words and len(pieces) == 1 and cols > 1:
            text, styles, url = pieces[0]  # a word longer than the line (a URL): hard break
            cut = max(1, width - self.cols)
            while _cell_len(text[:cut]) > width - self.cols and cut > 1:
                cut -= 1
            self.words.append(([(text[:cut], styles, url)], cut))
            pieces, cols = [(text[cut:], styles, url)], _cell_len(text[cut:])
            self.flush()
        self.words.append((pieces, cols))
        self.cols += cols + (1 if len(self.words) > 1 else 0)

    def line(self):
        """The terminal line filled so far, painted (a style spans the spaces inside it)."""
        lead = self.hang if self.started else self.prefix
        merged = []
        for pieces, _cols in self.words:
            if merged:
                prev, nxt = merged[-1], pieces[0]
                same = (prev[1], prev[2]) == (nxt[1], nxt[2])
                merged.append((" ", prev[1] if same else self.style, prev[2] if same else None))
            merged.extend(pieces)
        out, run = [], None
        for text, styles, url in merged:
            if run is not None and (run[1], run[2]) == (styles, url):
                run[0] += text
            else:
                if run is not None:
                    out.append(self.s.paint(run[0], run[1], run[2]))
                run = [text, styles, url]
        if run is not None:
            out.append(self.s.paint(run[0], run[1], run[2]))
        return lead + "".join(out)

    def flush(self):
        """Send the terminal line filled so far."""
        self.s.commit([self.line()])
        self.started = True
        self.words = []
        self.cols = _cell_len(self.hang)

    def finish(self):
        if self.words or not self.started:
            self.flush()


class MarkdownStream(object):
    """Renders a streamed markdown message as compact terminal lines, as the text arrives.

    Every character is parsed once: a paragraph, list item, quote or heading is word-wrapped
    and each terminal line is sent (`sink.commit`) as soon as it is full; the unfinished one is
    shown live (`sink.live`).  Code lines go out as each line ends.  Only a table is rendered
    twice: its rows show as they arrive and are aligned when it ends (`sink.rewrite`, which
    may refuse: then the rows are held back until the table ends).  Headings are bold and
    left-aligned, at most one blank line separates blocks, list items are tight.
    """

    def __init__(self, sink, width=80, styled=True, links=False, file_opener="none", cwd="/", base=()):
        self.sink = sink
        self.width = max(20, width - 1)  # never the last column: no terminal autowrap
        self.styled = styled
        self.colors = styled  # False with NO_COLOR: bold and italic stay, colours go
        self.base = tuple(base)
        self.inline = _MdInline(file_opener, cwd, links, styled)
        self.links = links
        self._buf = ""  # the unfinished source line
        self._fed = 0  # how much of it went into self._cur
        self._cur = None  # _MdLine of the unfinished source line, once its kind is known
        self._kind = None  # kind of the unfinished source line
        self._last = None  # kind of the last block line rendered
        self._blank = False  # a blank source line since then
        self._fence = None  # the opening fence inside a code block
        self._lexer = None
        self._lists = []  # indentation of the open list levels
        self._hang = ""  # continuation indent of the last list item
        self._table = []  # source rows of the table being read
        self._table_shown = 0  # of them, rows committed provisionally
        self.lines = 0  # terminal lines committed

    # -- output --

    def paint(self, text, styles=(), url=None):
        """`text` with SGR styles (and an OSC 8 link) when styled."""
        styles = self.base + tuple(styles)
        url = url and re.sub(r"[^\x21-\x7e]", "", url)  # nothing that could end the OSC 8 sequence early
        if url and self.links:
            text = "\x1b]8;;%s\x1b\\%s\x1b]8;;\x1b\\" % (url, text)
        if not self.styled or not styles or not text:
            return text
        codes = ";".join(MD_STYLES[s] for s in styles if s in MD_STYLES and (self.colors or len(MD_STYLES[s]) == 1))
        return "\x1b[%sm%s\x1b[0m" % (codes, text) if codes else text

    def commit(self, lines):
        self.lines += len(lines)
        self.sink.commit(lines)

    def _separate(self, kind):
        """A blank line before a new block, when one belongs there."""
        last, blank = self._last, self._blank
        self._blank = False
        self._last = kind
        if last is None:
            return
        if kind == "item" and last == "item" or kind == "table" and last == "table" and not blank:
            return
        if kind in ("para", "quote") and last == kind and not blank:
            return
        if kind == "para" and last == "item" and not blank:
            return
        if last == "heading" and kind != "heading":
            return
        if blank or kind in ("heading", "code", "table", "rule") or last in ("code", "table", "rule"):
            self.commit([""])

    # -- input --

    def push(self, delta):
        """Add streamed text; render what it completes; show the rest live."""
        while delta:
            nl = delta.find("\n")
            if nl < 0:
                self._buf += delta
                break
            self._buf += delta[:nl]
            delta = delta[nl + 1:]
            self._end_line()
        self._partial()

    def finish(self):
        """The message is complete (or was interrupted): render everything that arrived."""
        if self._buf:
            self._end_line()
        self._end_table()
        self._fence = None
        self.sink.live(None)

    def _partial(self):
        """Feed the complete words of the unfinished line; show the rest live."""
        buf = self._buf
        if self._kind is None:
            self._kind = self._classify(buf, False)
            if self._kind is not None:
                self._start(self._kind, buf)
        if self._cur is not None:
            ready = self._fed + _md_ready(buf[self._fed:])
            if ready > self._fed:
                self._cur.add(self.inline.runs(buf[self._fed:ready]))
                self._fed = ready
            if self.sink.can_live:
                rest = buf[self._fed:]
                probe = _MdInline(self.inline.opener, self.inline.cwd, False, self.styled)
                probe.bold, probe.italic = self.inline.bold, self.inline.italic
                tail = "".join(self.paint(t, self._cur.style + tuple(s)) for t, s, _u in probe.runs(rest))
                line = self._cur.line()
                self.sink.live(line + (" " if self._cur.words and rest else "") + tail)
        elif self.sink.can_live:  # a line whose kind is not known yet, or a code line: as it is
            self.sink.live((self.paint(buf, ("dim",)) if self._fence is None else buf) if buf else None)

    def _classify(self, line, complete):
        """The kind of a source line, or None while its start is still ambiguous."""
        if self._fence is not None:
            if not complete:
                return None
            stripped = line.strip()
            if stripped.startswith(self._fence) and not stripped.strip(self._fence[0]):
                return "fence-close"
            return "code"
        stripped = line.lstrip(" ")
        if not stripped:
            return "blank" if complete else None
        if self._table and stripped.startswith("|"):
            return "table"
        if complete:
            if _MD_FENCE_RE.match(line):
                return "fence-open"
            if _MD_RULE_RE.match(line):
                return "rule"
        elif stripped[0] in "`~-*_" and len(stripped.rstrip(stripped[0])) == 0:
            return None  # could become a fence or a rule
        elif stripped.startswith(("```", "~~~")):
            return None
        first = stripped[0]
        if first == "#":
            m = _MD_HEADING_RE.match(line)
            if m and (complete or m.group(0).endswith(" ")):
                return "heading"
            if not complete and not stripped.strip("#"):
                return None
            return "para"
        if first == ">":
            return "quote"
        if first == "|":
            return "table"
        if first in "-*+" or first.isdigit():
            m = _MD_ITEM_RE.match(line)
            if m and (m.group(3) or complete):
                return "item"
            if not complete and (len(stripped) < 2 or (first.isdigit() and re.match(r"\d{1,9}[.)]?$", stripped))):
                return None
        if len(line) - len(stripped) >= 2 and self._last == "item" and self._hang:
            return "cont"
        return "para"

    def _start(self, kind, line):
        """Begin rendering a source line of a known kind (the part fed later goes to self._cur)."""
        if kind not in ("table",):
            self._end_table()
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        if kind == "heading":
            self._lists = []
            self._separate("heading")
            m = _MD_HEADING_RE.match(line)
            prefix = "" if self.styled else m.group(1) + " "
            self._cur = _MdLine(self, prefix, prefix, ("heading",))
            self._fed = m.end()
        elif kind == "item":
            m = _MD_ITEM_RE.match(line)
            while self._lists and self._lists[-1][0] > indent:
                self._lists.pop()
            if self._lists and self._lists[-1][0] == indent:
                self._lists.pop()
            level = len(self._lists)
            lead = self._lists[-1][1] if self._lists else ""
            self._separate("item")
            marker = m.group(2)
            bullet = _MD_BULLETS[min(level, 2)] if marker in "-*+" else marker
            prefix = lead + self.paint(bullet, ("dim",) if marker in "-*+" else ()) + " "
            self._hang = lead + " " * (_cell_len(bullet) + 1)
            self._lists.append((indent, self._hang))
            self._cur = _MdLine(self, prefix, self._hang)
            self._fed = m.end()
        elif kind == "cont":
            self._separate("item")
            self._cur = _MdLine(self, self._hang, self._hang)
            self._fed = indent
        elif kind == "quote":
            self._lists = []
            self._separate("quote")
            bar = self.paint(u"\u2502", ("dim",)) + " "
            self._cur = _MdLine(self, bar, bar, ("quote", "italic") if self.styled else ())
            self._fed = indent + 1 + (1 if stripped[1:2] == " " else 0)
        elif kind == "para":
            if self._last == "item" and not self._blank:
                self._cur = _MdLine(self, self._hang, self._hang)  # a lazy continuation of the item
                self._separate("item")
            else:
                self._lists = []
                self._separate("para")
                self._cur = _MdLine(self, "", "")
            self._fed = indent
        else:
            self._cur = None
            self._fed = 0

    def _end_line(self):
        """A source line is complete."""
        line, kind = self._buf, self._kind
        self._buf, self._kind = "", None
        if kind is None or kind in ("table",):
            kind = self._classify(line, True)
            if self._cur is None and kind not in ("table",):
                self._start(kind, line)
        if self._cur is not None:
            self._cur.add(self.inline.runs(line[self._fed:]))
            self._cur.finish()
            self._cur, self._fed = None, 0
            self.inline.bold = self.inline.italic = False
            self.sink.live(None)
            return
        self._fed = 0
        self.sink.live(None)
        if kind == "blank":
            self._end_table()
            if self._last is not None:
                self._blank = True
        elif kind == "fence-open":
            self._lists = []
            self._separate("code")
            m = _MD_FENCE_RE.match(line)
            self._fence = m.group(1)
            info = line.strip()[len(self._fence):].strip()
            self._lexer = (info.split() or ["text"])[0]
            self.commit([self.paint(line.strip(), ("dim",))])
        elif kind == "fence-close":
            self.commit([self.paint(line.strip(), ("dim",))])
            self._fence = None
        elif kind == "code":
            self.commit([self.sink.code_line(line, self._lexer) if self.styled else line])
        elif kind == "rule":
            self._lists = []
            self._separate("rule")
            self.commit([self.paint(u"\u2500" * min(self.width, 40), ("dim",))])
        elif kind == "table":
            if not self._table:
                self._lists = []
                self._separate("table")
            self._table.append(line)
            if self.sink.can_rewrite:
                raw = line.strip()
                self.commit([raw if len(raw) < self.width else raw[: self.width - 1] + u"\u2026"])
                self._table_shown += 1

    def _end_table(self):
        """A table ended: align it (replacing its provisional rows where the terminal can)."""
        rows, shown = self._table, self._table_shown
        self._table, self._table_shown = [], 0
        if not rows:
            return
        lines = self._render_table(rows)
        if shown and len(lines) == shown and self.sink.rewrite(shown, lines):
            return
        if shown:
            lines = lines[shown:] if len(lines) > shown else []
        if lines:
            self.commit(lines)

    def _render_table(self, rows):
        def cells(row):
            row = row.strip()
            if row.startswith("|"):
                row = row[1:]
            if row.endswith("|") and not row.endswith("\\|"):
                row = row[:-1]
            return [c.strip() for c in re.split(r"(?<!\\)\|", row)]

        parsed = [cells(r) for r in rows]
        delim = len(parsed) > 1 and all(_MD_DELIM_CELL_RE.match(c) for c in parsed[1] if c) and parsed[1]
        aligns = []
        if delim:
            for c in parsed[1]:
                aligns.append("right" if c.endswith(":") and not c.startswith(":") else "center" if c.startswith(":") and c.endswith(":") else "left")
        ncols = max(len(p) for p in parsed)
        rendered = []  # per row: [(painted, columns)]
        for i, p in enumerate(parsed):
            if delim and i == 1:
                rendered.append(None)
                continue
            out = []
            for c in p + [""] * (ncols - len(p)):
                inline = _MdInline(self.inline.opener, self.inline.cwd, self.links, self.styled)
                runs = inline.runs(c.replace("\\|", "|"))
                style = ("table_head",) if delim and i == 0 else ()
                out.append(("".join(self.paint(t, style + s, u) for t, s, u in runs), sum(_cell_len(t) for t, _s, _u in runs)))
            rendered.append(out)
        widths = [max([r[k][1] for r in rendered if r is not None] + [1]) for k in range(ncols)]
        lines = []
        for i, r in enumerate(rendered):
            if r is None:
                lines.append(self.paint(u"\u2500\u253c\u2500".join(u"\u2500" * w for w in widths), ("dim",)))
                continue
            cols = []
            for k, (text, n) in enumerate(r):
                pad = widths[k] - n
                align = aligns[k] if k < len(aligns) else "left"
                if align == "right":
                    cols.append(" " * pad + text)
                elif align == "center":
                    cols.append(" " * (pad // 2) + text + " " * (pad - pad // 2))
                else:
                    cols.append(text + " " * pad)
            lines.append((" " + self.paint(u"\u2502", ("dim",)) + " ").join(cols).rstrip())
        return lines


class ReplRenderer(object):
    """Prints the transcript with rich, each cell once, plus one redrawn status line."""

    def __init__(self, cfg, out=None, environ=None):
        self.cfg = cfg
        self.out = out or sys.stdout
        self.environ = os.environ if environ is None else environ
        self.caps = _terminal_caps(self.out, self.environ)
        self.lock = threading.RLock()
        self._console = None
        self._status = None  # [label, started] while a turn runs
        self._ticker = None
        self._ticking = threading.Event()
        self._live = None  # the unfinished line of a streamed answer
        self._dynamic_rows = 0  # rows the live line and the status line take now
        self._queued = []  # rows under the status line: queued messages, text being typed

    # -- output plumbing --

    def console(self):
        """The rich Console (created on first use)."""
        if self._console is None:
            from rich.console import Console  # startup budget: rich loads on first output

            styled = self.caps["tty"] and not self.caps["dumb"]
            self._console = Console(
                file=self.out,
                force_terminal=styled,
                color_system="auto" if styled else None,
                no_color=bool(self.environ.get("NO_COLOR")),
                width=None if self.caps["tty"] else self.caps["width"],
                highlight=False,
                markup=False,
                emoji=False,
                soft_wrap=False,
            )
        return self._console

    def write(self, text):
        """Write raw text above the live line and the status line (they are redrawn below it)."""
        with self.lock:
            self._clear_dynamic()
            self.out.write(text)
            self._draw_dynamic()
            self.out.flush()

    def _clear_dynamic(self):
        """Erase the live line and the status line; the cursor ends where they began."""
        rows, self._dynamic_rows = self._dynamic_rows, 0
        if rows:
            self.out.write("\r\x1b[2K" + "\x1b[A\x1b[2K" * (rows - 1))

    def _draw_dynamic(self):
        """Draw the live (unfinished) answer line, then the status line, below the transcript."""
        rows = []
        if self._live is not None:
            rows.append(self._clip(self._live))
        status = self._status_text()
        if status is not None:
            rows.append(status)
        if rows:
            text = "\n".join(rows)
            self.out.write(text)
            self._dynamic_rows = text.count("\n") + 1

    def _columns(self):
        try:
            return os.get_terminal_size(self.out.fileno()).columns
        except (OSError, AttributeError, ValueError):
            return self.caps["width"]

    def _clip(self, line):
        """`line` as it is if it fits the terminal width, else its plain text cut with an ellipsis
        (never half an escape sequence)."""
        width = self._columns() - 1
        plain = re.sub(r"\x1b\[[0-9;]*m|\x1b\]8;;[^\x1b]*\x1b\\", "", line)  # SGR and OSC 8 links out
        if len(line) <= width or _cell_len(plain) <= width:
            return line
        return plain[: max(0, width - 1)] + u"\u2026"

    # -- the streamed answer (MarkdownStream's sink) --

    @property
    def can_live(self):
        """Whether an unfinished line can be shown and redrawn (a terminal, not TERM=dumb)."""
        return self.caps["tty"] and not self.caps["dumb"]

    can_rewrite = can_live

    def commit(self, lines):
        """Finished lines of a streamed message."""
        self.write("".join(line + "\n" for line in lines))

    def live(self, text):
        """Show (or, with None, remove) the unfinished line of a streamed message."""
        if not self.can_live or text == self._live:
            return
        with self.lock:
            self._clear_dynamic()
            self._live = text
            self._draw_dynamic()
            self.out.flush()

    def rewrite(self, count, lines):
        """Replace the last `count` lines written (still on screen) by `lines`; False if it cannot."""
        if not self.can_rewrite or count != len(lines):
            return False
        try:
            rows = os.get_terminal_size(self.out.fileno()).lines
        except (OSError, AttributeError, ValueError):
            return False
        with self.lock:
            self._clear_dynamic()
            up = min(count, max(0, rows - 3))  # rows scrolled out of the screen stay as they are
            if up:
                self.out.write("\x1b[%dA\r\x1b[J" % up + "".join(line + "\n" for line in lines[count - up:]))
            self._draw_dynamic()
            self.out.flush()
        return True

    def code_line(self, line, lexer):
        """One line of code in an answer, syntax-highlighted."""
        if not self.caps["color"]:
            return line
        from rich.syntax import Syntax  # startup budget: pygments loads with the first code line

        console = self.console()
        try:
            text = Syntax(line, lexer or "text", theme="ansi_dark", background_color="default").highlight(line)
        except Exception:  # an unknown lexer name: the line as it is
            return line
        text.rstrip()
        with console.capture() as cap:
            console.print(text, end="", soft_wrap=True)
        return cap.get()

    def markdown_stream(self, base=()):
        """A MarkdownStream that renders into this terminal."""
        styled = self.caps["tty"] and not self.caps["dumb"]
        stream = MarkdownStream(self, width=self._columns(), styled=styled, links=self.caps["hyperlinks"],
                                file_opener=self.cfg.file_opener, cwd=self.cfg.cwd, base=base)
        stream.colors = self.caps["color"]
        return stream

    def print(self, *renderables, **kw):
        """Render with rich and write the result once."""
        console = self.console()
        with self.lock:
            with console.capture() as cap:
                console.print(*renderables, **kw)
            self.write(_TRAILING_PAD_RE.sub(lambda m: m.group(0).replace(" ", "").replace("\t", ""), cap.get()))

    def text(self, *parts):
        """A one-line cell from (text, style) pieces."""
        from rich.text import Text

        self.print(Text.assemble(*parts))

    # -- the live status line --

    def start_status(self, label):
        """Show `label` with a spinner and elapsed time until stop_status()."""
        with self.lock:
            self._clear_dynamic()
            self._status = [label, time.monotonic()]
            self._draw_dynamic()
            self.out.flush()
        if self.caps["tty"] and not self.caps["dumb"] and self._ticker is None:
            self._ticking.set()
            self._ticker = threading.Thread(target=self._tick, name="codex-status", daemon=True)
            self._ticker.start()

    def set_status(self, label):
        """Change the status label (keeps the elapsed time)."""
        with self.lock:
            if self._status is not None:
                self._status[0] = label

    def set_queued(self, messages, typing):
        """Messages queued while a turn runs, and what is being typed, shown under the status."""
        with self.lock:
            rows = [u"\u21b3 queued: %s" % m.replace("\n", u" \u23ce ") for m in messages]
            if typing:
                rows.append(u"\u21b3 typing: %s\u258f (Enter queues it)" % typing.replace("\n", u" \u23ce "))
            if rows != self._queued:
                self._queued = rows
                self._clear_dynamic()
                self._draw_dynamic()
                self.out.flush()

    def stop_status(self):
        """Remove the status line (and what it showed as queued)."""
        self._ticking.clear()
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.join(1.0)
        with self.lock:
            self._clear_dynamic()
            self._status, self._queued, self._live = None, [], None
            self.out.flush()

    def _tick(self):
        while self._ticking.is_set():
            time.sleep(0.1)
            with self.lock:
                if self._status is not None:
                    self._clear_dynamic()
                    self._draw_dynamic()
                    self.out.flush()

    def _status_text(self):
        """The status row(s) as drawn, or None (no turn, or not a terminal)."""
        if self._status is None or not self.caps["tty"] or self.caps["dumb"]:
            return None
        label, started = self._status
        elapsed = time.monotonic() - started
        frame = STATUS_FRAMES[int(elapsed * 10) % len(STATUS_FRAMES)]
        line = u"%s %s (%s \u00b7 Esc to interrupt)" % (frame, label, format_elapsed(elapsed, spaced=True))
        width = self._columns()
        line = line.replace("\n", " ")
        if len(line) > width - 1:
            line = line[: max(0, width - 2)] + u"\u2026"
        if self.caps["color"]:
            line = "\x1b[1m" + line[:1] + "\x1b[0m\x1b[2m" + line[1:] + "\x1b[0m"
        rows = [line]
        for row in self._queued:
            row = row if len(row) < width - 1 else row[: max(0, width - 2)] + u"\u2026"
            rows.append("\x1b[36m%s\x1b[0m" % row if self.caps["color"] else row)
        return "\n".join(rows)

    # -- cells --

    def header(self, ctx, session_id=None):
        """The banner at start for a TurnContext: version, model, provider, approval, sandbox, workdir.

        Written with plain escape codes rather than rich, so the first prompt does not wait
        for rich to import (startup budget).
        """
        styled = self.caps["tty"] and not self.caps["dumb"]
        bold, dim, reset = ("\x1b[1m", "\x1b[2m", "\x1b[0m") if styled else ("", "", "")
        effort = dict(config_summary(ctx)).get("reasoning effort")  # as the exec header and /status say
        rows = [
            ("model", ctx.model + (" (reasoning %s)" % effort if effort else "")),
            ("provider", ctx.config.provider.id),
            ("approval", ctx.approval_policy),
            ("sandbox", ctx.sandbox_policy.mode),
            ("workdir", str(ctx.cwd)),
        ]
        if session_id:
            rows.append(("session", session_id))
        lines = ["%s>_ codex%s%s v%s%s" % (bold, reset, dim, __version__, reset)]
        lines += ["%s  %-10s%s%s" % (dim, name + ":", reset, value) for name, value in rows]
        lines.append(u"%s  / for commands \u00b7 @ for files \u00b7 Ctrl-J newline \u00b7 Ctrl-D quit%s" % (dim, reset))
        self.write("\n".join(lines) + "\n\n")

    def user(self, text):
        """A user message not typed in the composer (the PROMPT argument)."""
        from rich.text import Text

        self.print(Text.assemble((u"\u203a ", "bold cyan"), (text, "")))

    def start_answer(self):
        """A new assistant message begins: a blank line, then a MarkdownStream to push it into."""
        self.write("\n")
        return self.markdown_stream()

    def answer(self, markdown_text):
        """A whole (not streamed) assistant message."""
        stream = self.start_answer()
        stream.push(markdown_text)
        stream.finish()

    def start_reasoning(self):
        """A reasoning summary begins: a dim "thinking" line, then a dimmed MarkdownStream."""
        styled = self.caps["tty"] and not self.caps["dumb"]
        self.write("\n" + ("\x1b[2;3;1mthinking\x1b[0m\n" if styled else "thinking\n"))
        return self.markdown_stream(base=("dim", "italic"))

    def reasoning(self, text):
        """A whole reasoning summary, dimmed."""
        stream = self.start_reasoning()
        stream.push(text.strip())
        stream.finish()

    def exec_cell(self, command, exit_code, seconds, output, cwd=None, note=None):
        """A finished command: status mark, the command, duration, and an output preview.

        `note` says how it ended when that was not by itself ("interrupted", "timed out
        after 10 s", "failed in the sandbox"); the mark is then a cross.
        """
        from rich.text import Text

        ok = exit_code == 0 and not note
        cell = Text.assemble(
            ("\n\u2713 " if ok else "\n\u2717 ", "bold green" if ok else "bold red"),
            (_display_command(command), "bold"),
            (" \u00b7 %s" % format_elapsed(seconds, spaced=True), "dim"),
            (" \u00b7 %s" % note if note else "" if ok or exit_code is None else " \u00b7 exit %s" % exit_code, "red"),
        )
        for i, line in enumerate(_preview_lines(output)):
            cell.append("\n  %s " % (u"\u2514" if i == 0 else " "), style="dim")
            cell.append(Text.from_ansi(line, style="dim") if "\x1b" in line else Text(line, style="dim"))
        self.print(cell)

    def mcp_cell(self, invocation, seconds, result):
        """A finished MCP tool call and the text of its result."""
        from rich.text import Text

        invocation = invocation or {}
        args = invocation.get("arguments")
        call = "%s.%s(%s)" % (
            invocation.get("server", "?"), invocation.get("tool", "?"),
            "" if args in (None, {}) else json.dumps(args, ensure_ascii=False)[:120],
        )
        ok, body = True, ""
        if isinstance(result, dict) and "Err" in result:
            ok, body = False, str(result["Err"])
        else:
            res = result.get("Ok", result) if isinstance(result, dict) else result
            if isinstance(res, dict):
                ok = not res.get("isError", res.get("is_error", False))
                shown = format_mcp_result_for_display(res, max_lines=10 ** 6)  # images as [image: 640x480 png]
                body = "\n".join(shown) if shown else json.dumps(res, ensure_ascii=False)[:400]
            elif res is not None:
                body = str(res)
        cell = Text.assemble(
            ("\n\u2713 " if ok else "\n\u2717 ", "bold green" if ok else "bold red"),
            ("tool ", "dim"), (call, "bold"), (" \u00b7 %s" % format_elapsed(seconds, spaced=True), "dim"),
        )
        for i, line in enumerate(_preview_lines(body)):
            cell.append("\n  %s %s" % (u"\u2514" if i == 0 else " ", line), style="dim")
        self.print(cell)

    def patch_cell(self, changes, title):
        """A patch: per file a summary line (+N -M) and its diff, coloured."""
        from rich.text import Text

        cell = Text.assemble(("\n" + title, "bold magenta"))
        for path in sorted(changes or {}):
            kind, content, diff, move = _normalize_change(changes[path])
            shown = _relative_to(path, self.cfg.cwd)
            if kind == "add":
                lines = ["+" + l for l in content.splitlines()]
                label = "added"
            elif kind == "delete":
                lines = ["-" + l for l in content.splitlines()]
                label = "deleted"
            else:
                lines = [l for l in diff.splitlines() if not l.startswith(("---", "+++"))]
                label = "modified" + (" \u2192 %s" % _relative_to(move, self.cfg.cwd) if move else "")
            added, removed = _diff_counts(lines)
            cell.append_text(Text.assemble(
                ("\n  %s " % shown, "bold"), ("(%s " % label, "dim"), ("+%d" % added, "green"), (" ", "dim"),
                ("-%d" % removed, "red"), (")", "dim"),
            ))
            for line in lines:
                style = "green" if line.startswith("+") else "red" if line.startswith("-") else "cyan" if line.startswith("@@") else "dim"
                cell.append("\n    " + line, style=style)
        self.print(cell)

    def diff_text(self, diff):
        """A unified diff (git diff output), coloured; the files' own escape sequences and
        controls shown, not sent (commands wrote them: OSC 52 would set the clipboard)."""
        from rich.text import Text

        cell = Text()
        for line in terminal_safe(diff).splitlines():
            if line.startswith(("+++", "---", "diff ", "index ", "new file", "deleted file")):
                style = "bold"
            elif line.startswith("@@"):
                style = "cyan"
            elif line.startswith("+"):
                style = "green"
            elif line.startswith("-"):
                style = "red"
            else:
                style = ""
            cell.append(line + "\n", style=style)
        self.print(cell, end="")

    def plan(self, explanation, steps):
        """A plan update: a checklist."""
        from rich.text import Text

        cell = Text.assemble(("\nplan", "bold"))
        if explanation:
            cell.append("  " + explanation, style="dim")
        marks = {"completed": (u"\u2714", "green"), "in_progress": (u"\u25cf", "yellow"), "pending": (u"\u25a1", "dim")}
        for step in steps or []:
            mark, style = marks.get(step.get("status"), (u"\u25a1", "dim"))
            cell.append("\n  %s %s" % (mark, step.get("step", "")), style=style)
        self.print(cell)

    def desktop_notification(self, kind, text):
        """An OSC 9 notification (terminal permitting) when `[tui] notifications` asks for `kind`.

        `notifications = true` means every kind; a list names the kinds wanted
        ("agent-turn-complete", "approval-requested").
        """
        wanted = (self.cfg.tui or {}).get("notifications", False)
        if not (wanted is True or (isinstance(wanted, list) and kind in wanted)):
            return
        if not self.caps["tty"] or self.caps["dumb"]:
            return
        clean = re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()[:200]
        self.write("\x1b]9;%s\x07" % clean)

    def note(self, message):
        """A dim informational line."""
        from rich.text import Text

        self.print(Text(message, style="dim"))

    def error(self, message):
        """An error line."""
        from rich.text import Text

        self.print(Text.assemble(("\u25a0 ", "bold red"), (message, "red")))

    def tokens(self, usage, total):
        """Token usage of the finished turn and the session so far."""
        from rich.text import Text

        if not usage.get("total_tokens") and not usage.get("input_tokens"):
            return
        cached = usage.get("cached_input_tokens") or 0
        line = "tokens: %s in%s \u00b7 %s out \u00b7 %s total (session %s)" % (
            _thousands(usage.get("input_tokens", 0)),
            " (%s cached)" % _thousands(cached) if cached else "",
            _thousands(usage.get("output_tokens", 0)),
            _thousands(usage.get("total_tokens", 0)),
            _thousands(total.get("total_tokens", 0)),
        )
        self.print(Text(line, style="dim"))

    def approval(self, kind, command=None, cwd=None, reason=None, grant_root=None):
        """The approval question (the answer is one keypress; see Repl._ask_approval)."""
        from rich.text import Text

        bar = (u"\u258c ", "bold yellow")
        title = {"exec": "Allow command?", "continue": "Let the model go on with this turn?"}.get(kind, "Apply these changes?")
        cell = Text.assemble(("\n",), bar, (title, "bold"))
        if reason:
            cell.append_text(Text.assemble(("\n",), bar, (reason, "italic")))
        if cwd:
            cell.append_text(Text.assemble(("\n",), bar, ("in ", "dim"), (str(cwd), "")))
        if command is not None:
            cell.append_text(Text.assemble(("\n",), bar, ("$ ", "dim"), (_display_command(command), "bold")))
        if grant_root:
            cell.append_text(Text.assemble(("\n",), bar, ("grants write access to %s for this session" % grant_root, "yellow")))
        keys = Text.assemble(("\n",), bar)
        for key, _decision, label in APPROVAL_CHOICES:
            if kind != "exec" and key == "a":
                continue
            keys.append_text(Text.assemble(("[%s] " % ("Esc" if key == "esc" else key), "bold cyan"), (label + "   ", "")))
        cell.append_text(keys)
        self.print(cell)


def _thousands(n):
    """12,345."""
    try:
        return "{:,}".format(int(n))
    except (TypeError, ValueError):
        return str(n)


###############################################################################
# §18c Front end: the REPL composer (history, keys, completion)
###############################################################################


class ComposerHistory(object):
    """Up/Down in the composer: this session's prompts, then older ones from history.jsonl.

    Step 0 is the newest prompt.  Steps past this session's prompts read the file through
    the snapshot taken at start (HistorySnapshot), one entry per keypress, newest first.
    """

    def __init__(self, snapshot=None):
        self.snapshot = snapshot
        self.local = []
        self.cursor = None  # steps back from the newest while browsing, else None
        self.last_text = None  # the text navigation last put in the composer

    def record(self, text):
        """Remember a submitted prompt (consecutive duplicates once) and stop browsing."""
        if text and (not self.local or self.local[-1] != text):
            self.local.append(text)
        self.reset()

    def reset(self):
        """Stop browsing."""
        self.cursor = None
        self.last_text = None

    def navigating(self, text, cursor_position):
        """Whether Up/Down should browse: empty composer, or the text navigation put there."""
        return text == "" or (cursor_position == 0 and text == self.last_text)

    def _at(self, step):
        if step < len(self.local):
            return self.local[-1 - step]
        if self.snapshot is None:
            return None
        entry = self.snapshot.entry_from_end(step - len(self.local))
        return None if entry is None else entry["text"]

    def older(self):
        """The next older prompt, or None when there is none (the composer stays as it is)."""
        step = 0 if self.cursor is None else self.cursor + 1
        text = self._at(step)
        if text is None:
            return None
        self.cursor, self.last_text = step, text
        return text

    def search(self, query, start=0, budget=HISTORY_SEARCH_SECONDS):
        """(step, text) of the newest prompt at or before `start` steps back containing `query`
        (case-insensitive); (None, None) if there is none; ("more", step) when the time budget
        ran out first (Ctrl-R again goes on from there)."""
        needle = query.lower()
        for step in range(start, len(self.local)):
            text = self.local[-1 - step]
            if needle in text.lower():
                return step, text
        if self.snapshot is None:
            return None, None
        offset = len(self.local)
        k, found = self.snapshot.search_back(needle, max(0, start - offset), time.monotonic() + budget)
        if k is None:
            return None, None
        if k == "more":
            return "more", found + offset
        return k + offset, found["text"]

    def newer(self):
        """The next newer prompt; "" past the newest (browsing stops); None if not browsing."""
        if self.cursor is None:
            return None
        if self.cursor == 0:
            self.reset()
            return ""
        self.cursor -= 1
        self.last_text = self._at(self.cursor)
        return self.last_text


class _TerminalKeys(object):
    """Single keypresses while the composer is not reading: turns, approvals, pickers.

    The terminal is put in non-canonical, no-echo mode with signals off, so Ctrl-C arrives
    as a key (it interrupts the turn rather than killing codex) and Esc needs no Enter.
    Keys come out of get() as names: "esc", "enter", "ctrl-c", "ctrl-d", "up", "down",
    "backspace", or the character typed.
    """

    _SEQUENCES = {b"\x1b[A": "up", b"\x1b[B": "down", b"\x1bOA": "up", b"\x1bOB": "down"}
    _CONTROL = {b"\x03": "ctrl-c", b"\x04": "ctrl-d", b"\r": "enter", b"\n": "enter", b"\x7f": "backspace", b"\x08": "backspace"}

    def __init__(self, fd, paste_mode=True):
        import queue  # only the interactive session needs it

        self.fd = fd
        self.paste_mode = paste_mode  # turn bracketed paste on (not under TERM=dumb)
        self.keys = queue.Queue()
        self._stop = threading.Event()
        self._thread = None
        self._saved = None

    def __enter__(self):
        import termios

        self._saved = termios.tcgetattr(self.fd)
        mode = termios.tcgetattr(self.fd)
        mode[0] &= ~(termios.IXON | termios.ICRNL)
        mode[3] &= ~(termios.ICANON | termios.ECHO | termios.ISIG | termios.IEXTEN)
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSANOW, mode)
        if self.paste_mode:
            self._bracketed(True)  # a paste arrives as one unit, its newlines are not Enter
        self._thread = threading.Thread(target=self._read, name="codex-keys", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        import termios

        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
        if self.paste_mode:
            self._bracketed(False)
        termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
        return False

    @staticmethod
    def _bracketed(on):
        """Turn the terminal's bracketed paste mode on or off."""
        try:
            if sys.stdout.isatty():
                sys.stdout.write("\x1b[?2004h" if on else "\x1b[?2004l")
                sys.stdout.flush()
        except (OSError, ValueError):
            pass

    def get(self, timeout=None):
        """The next key name, or None after `timeout` seconds."""
        import queue

        try:
            return self.keys.get(timeout=timeout)
        except queue.Empty:
            return None

    def _read(self):
        import select

        pending = b""
        while not self._stop.is_set():
            try:
                ready = select.select([self.fd], [], [], 0.04)[0]
            except (OSError, ValueError):
                return
            if not ready:
                if pending.startswith(b"\x1b"):  # a lone Esc: nothing followed it
                    self.keys.put("esc")
                    pending = pending[1:]
                    pending = self._parse(pending)
                continue
            try:
                data = os.read(self.fd, 1024)
            except OSError:
                return
            if not data:
                return
            pending = self._parse(pending + data)

    def _parse(self, buf):
        """Queue the keys in `buf`; return an incomplete tail to wait on."""
        i = 0
        while i < len(buf):
            byte = buf[i:i + 1]
            if buf.startswith(b"\x1b[200~", i):  # a bracketed paste: one ("paste", text) key
                end = buf.find(b"\x1b[201~", i + 6)
                if end < 0:
                    return buf[i:]
                text = buf[i + 6:end].decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
                self.keys.put(("paste", text))
                i = end + 6
                continue
            if byte == b"\x1b":
                if i + 1 >= len(buf):
                    return buf[i:]
                nxt = buf[i + 1:i + 2]
                if nxt in (b"[", b"O"):
                    j = i + 2
                    while j < len(buf) and not 0x40 <= buf[j] <= 0x7E:
                        j += 1
                    if j >= len(buf):
                        return buf[i:]
                    self.keys.put(self._SEQUENCES.get(buf[i:j + 1], "sequence"))
                    i = j + 1
                elif nxt == b"\x1b":
                    self.keys.put("esc")
                    i += 1
                else:
                    self.keys.put("alt")
                    i += 2
                continue
            if byte in self._CONTROL:
                self.keys.put(self._CONTROL[byte])
                i += 1
                continue
            lead = buf[i]
            size = 1 if lead < 0x80 else 2 if lead >> 5 == 6 else 3 if lead >> 4 == 14 else 4 if lead >> 3 == 30 else 1
            if i + size > len(buf):
                return buf[i:]
            self.keys.put(buf[i:i + size].decode("utf-8", "replace"))
            i += size
        return b""


class Composer(object):
    """The prompt-toolkit composer: multi-line input, `/` and `@` completion, history, keys."""

    def __init__(self, repl):
        self.repl = repl
        self.history = repl.history
        self.hint = None
        self._primed = False
        self._ctrl_c = False
        self._session = None
        self._search = None  # Ctrl-R: {"query", "step", "text", "saved", "more"} while searching
        self.pastes = {}  # placeholder -> the pasted text it stands for

    def _toolbar(self):
        if self._search is not None:
            s = self._search
            found = ("searching older entries\u2026 Ctrl-R goes on" if s["more"] else
                     "no match" if s["text"] is None and s["query"] else "")
            return " reverse search: %s%s \u00b7 Ctrl-R older \u00b7 Enter takes it \u00b7 Esc cancels" % (
                s["query"] or "(type to search history)", "  (%s)" % found if found else "")
        if self.hint:
            return " " + self.hint
        buf = self._session.default_buffer if self._session is not None else None
        token = re.search(r"(?:^|\s)@(\S*)$", buf.document.text_before_cursor) if buf is not None else None
        if token is not None:
            files = self.repl.files
            if not files.ready:
                return " @ indexing files\u2026"
            if files.last_query != token.group(1):
                return " @ searching %s files\u2026" % _thousands(files.file_count)
            if not files.last_total:
                return " @ no matches among %s files \u00b7 Esc closes" % _thousands(files.file_count)
            return " @ %s match%s \u00b7 \u2191\u2193 choose \u00b7 Tab/Enter insert \u00b7 Esc closes" % (
                _thousands(files.last_total), "" if files.last_total == 1 else "es")
        if buf is not None and any(p in buf.text for p in self.pastes):
            return " Ctrl-O expands the pasted text \u00b7 \u23ce sends all of it"
        return " \u23ce send \u00b7 Ctrl-J newline \u00b7 / commands \u00b7 @ files \u00b7 Ctrl-R history \u00b7 Esc Esc edit \u00b7 Ctrl-D quit"

    def expand_pastes(self, text):
        """`text` with each paste placeholder replaced by what was pasted (what is sent)."""
        for placeholder, pasted in self.pastes.items():
            if placeholder in text:
                text = text.replace(placeholder, pasted, 1)
        return text

    def _placeholder(self, pasted):
        lines = len(pasted.splitlines())
        label = "[pasted %s lines]" % _thousands(lines) if lines > 1 else "[pasted %s chars]" % _thousands(len(pasted))
        n, placeholder = 1, label
        while placeholder in self.pastes:
            n += 1
            placeholder = label[:-1] + " #%d]" % n
        self.pastes[placeholder] = pasted
        return placeholder

    def _build(self):
        # startup budget: prompt-toolkit loads when the first prompt is shown
        from prompt_toolkit import PromptSession
        from prompt_toolkit.completion import Completer, Completion, ThreadedCompleter
        from prompt_toolkit.document import Document
        from prompt_toolkit.key_binding import KeyBindings
        from prompt_toolkit.output.color_depth import ColorDepth
        from prompt_toolkit.styles import Style

        repl, composer = self.repl, self

        class _ComposerCompleter(Completer):
            """`/` at the start lists commands; `@token` lists files matching the token."""

            def get_completions(self, document, complete_event):
                before = document.text_before_cursor
                if before.startswith("/") and not any(c.isspace() for c in before):
                    word = before[1:].lower()
                    for name, description in repl.slash_entries():
                        if name.startswith(word):
                            yield Completion("/" + name, start_position=-len(before), display="/" + name,
                                             display_meta=description)
                    return
                m = re.search(r"(?:^|\s)@(\S*)$", before)
                if m is None:
                    return
                query = m.group(1)
                for path, indices in repl.files.search(query):
                    marked = set(indices)
                    display = [("class:match" if i in marked else "", ch) for i, ch in enumerate(path)]
                    yield Completion(path + " ", start_position=-(len(query) + 1), display=display)

        kb = KeyBindings()

        def accept_completion(buf):
            state = buf.complete_state
            if state is None or not state.completions:
                return None
            completion = state.current_completion or state.completions[0]
            buf.apply_completion(completion)
            return completion

        @kb.add("enter")
        def _enter(event):
            buf = event.current_buffer
            done = accept_completion(buf)
            if done is not None and not (done.text.startswith("/") and buf.text == done.text):
                return  # an @path went in; keep editing
            if buf.text.strip():
                buf.validate_and_handle()

        @kb.add("tab")
        def _tab(event):
            buf = event.current_buffer
            if accept_completion(buf) is None:
                buf.start_completion(select_first=False)

        @kb.add("c-j")
        @kb.add("escape", "enter")
        def _newline(event):
            event.current_buffer.insert_text("\n")

        @kb.add("c-c")
        def _ctrl_c(event):
            buf = event.current_buffer
            if buf.text:
                buf.reset()
                composer.history.reset()
            elif composer._ctrl_c:
                event.app.exit(result=None)
            else:
                composer._ctrl_c = True
                composer.hint = "Ctrl-C again to quit (or Ctrl-D)"

        @kb.add("c-d")
        def _ctrl_d(event):
            buf = event.current_buffer
            if buf.text:
                buf.delete(1)
            else:
                event.app.exit(result=None)

        @kb.add("escape")
        def _escape(event):
            buf = event.current_buffer
            if buf.complete_state is not None:
                buf.cancel_completion()
            elif buf.text:
                composer._primed = False
            elif composer._primed:
                composer._primed = False
                event.app.exit(result=_BACKTRACK)
            elif repl.user_messages:
                composer._primed = True
                composer.hint = "Esc again to edit a previous message"

        @kb.add("up")
        def _up(event):
            buf = event.current_buffer
            if buf.complete_state is not None:
                buf.complete_previous()
            elif composer.history.navigating(buf.text, buf.cursor_position):
                text = composer.history.older()
                if text is not None:
                    buf.document = Document(text, 0)
            else:
                buf.cursor_up(count=event.arg)

        @kb.add("down")
        def _down(event):
            buf = event.current_buffer
            if buf.complete_state is not None:
                buf.complete_next()
            elif composer.history.cursor is not None and composer.history.navigating(buf.text, buf.cursor_position):
                text = composer.history.newer()
                if text is not None:
                    buf.document = Document(text, 0)
            else:
                buf.cursor_down(count=event.arg)

        from prompt_toolkit.filters import Condition
        from prompt_toolkit.keys import Keys

        @kb.add(Keys.BracketedPaste)
        def _paste(event):
            data = event.data.replace("\r\n", "\n").replace("\r", "\n")
            if len(data) > PASTE_COLLAPSE_CHARS or data.count("\n") >= PASTE_COLLAPSE_LINES:
                data = composer._placeholder(data)  # kept whole, shown collapsed
            event.current_buffer.insert_text(data)

        has_paste = Condition(lambda: any(p in composer._session.default_buffer.text for p in composer.pastes))

        @kb.add("c-o", filter=has_paste)
        def _expand(event):
            buf = event.current_buffer
            text = composer.expand_pastes(buf.text)
            composer.pastes.clear()
            buf.document = Document(text, len(text))

        # Ctrl-R: reverse search over this session's prompts, then history.jsonl.  Added last,
        # so that while searching these bindings win over the ones above.
        searching = Condition(lambda: composer._search is not None)

        def show(buf, start):
            s = composer._search
            step, text = composer.history.search(s["query"], start)
            s["more"] = step == "more"
            if s["more"]:
                s["resume"] = text
                return
            if step is not None:
                s["step"], s["text"] = step, text
                pos = text.lower().find(s["query"].lower())
                buf.document = Document(text, max(0, pos))
            else:
                s["text"] = None

        @kb.add("c-r")
        def _search(event):
            buf = event.current_buffer
            s = composer._search
            if s is None:
                buf.cancel_completion()
                composer._search = {"query": "", "step": -1, "text": None, "saved": buf.text, "more": False}
                return
            if s["more"]:
                show(buf, s.get("resume", 0))
            elif s["query"]:
                show(buf, s["step"] + 1)

        @kb.add(Keys.Any, filter=searching)
        def _search_type(event):
            ch = event.data
            if len(ch) == 1 and ch.isprintable():
                composer._search["query"] += ch
                show(event.current_buffer, max(0, composer._search["step"]))

        @kb.add("backspace", filter=searching)
        def _search_back(event):
            composer._search["query"] = composer._search["query"][:-1]
            composer._search["step"] = -1
            show(event.current_buffer, 0)

        def end_search(event, keep):
            s, composer._search = composer._search, None
            buf = event.current_buffer
            text = buf.text if keep and s["text"] is not None else s["saved"]
            buf.document = Document(text, len(text))
            buf.cancel_completion()

        @kb.add("enter", filter=searching)
        @kb.add("tab", filter=searching)
        @kb.add("right", filter=searching)
        def _search_take(event):
            end_search(event, True)

        @kb.add("escape", filter=searching)
        @kb.add("c-g", filter=searching)
        @kb.add("c-c", filter=searching)
        def _search_cancel(event):
            end_search(event, False)

        no_color = bool(os.environ.get("NO_COLOR")) or not repl.renderer.caps["color"]
        style = Style.from_dict({
            "prompt": "bold ansicyan", "match": "bold ansiyellow", "bottom-toolbar": "noreverse ansibrightblack",
            "completion-menu.completion.current": "reverse",
        })
        mouse = not repl.cfg.tui.get("disable_mouse_capture", True)
        session = PromptSession(
            message=[("class:prompt", u"\u203a ")],
            multiline=True,
            key_bindings=kb,
            completer=ThreadedCompleter(_ComposerCompleter()),
            complete_while_typing=True,
            reserve_space_for_menu=FILE_SEARCH_LIMIT,
            mouse_support=mouse,
            bottom_toolbar=self._toolbar,
            prompt_continuation=lambda width, line_number, wrap_count: "  ",
            style=style,
            include_default_pygments_style=False,
            color_depth=ColorDepth.DEPTH_1_BIT if no_color else None,
            enable_history_search=False,
        )
        session.app.ttimeoutlen = 0.05  # a lone Esc byte is Esc after 50 ms
        session.app.timeoutlen = 0.4  # Esc then Enter within 0.4 s is Alt-Enter

        def on_change(_buf):
            if composer.hint and not composer._primed:
                composer.hint = None
            composer._primed = False
            composer._ctrl_c = False

        session.default_buffer.on_text_changed += on_change
        self._session = session

    def read(self, default="", complete=False, when_shown=None):
        """The next message typed; None to quit; _BACKTRACK for Esc Esc.

        `when_shown` runs once, right after the composer is first drawn (the REPL starts its
        background work there, so it does not delay the first prompt).
        """
        if self._session is None:
            self._build()
        if len(default) > PASTE_COLLAPSE_CHARS or default.count("\n") >= PASTE_COLLAPSE_LINES:
            default = self._placeholder(default)  # pasted while a turn ran: collapsed here too
        self._primed, self._ctrl_c, self.hint = False, False, None
        self.history.reset()
        if when_shown is not None:
            app = self._session.app

            def shown(_app):
                app.after_render -= shown
                when_shown()

            app.after_render += shown
        pre_run = (lambda: self._session.default_buffer.start_completion(select_first=False)) if complete else None
        self._search = None
        try:
            text = self._session.prompt(default=default, pre_run=pre_run)
        except EOFError:
            return None
        except KeyboardInterrupt:
            return ""
        if isinstance(text, str) and self.pastes:
            text = self.expand_pastes(text)  # what is sent is always the whole paste
        self.pastes.clear()
        return text


###############################################################################
# §18d Front end: the REPL session loop, approvals, slash commands
###############################################################################


def _warm_up_rendering():
    """Import what rendering the first answer needs while the user is still typing."""
    import importlib

    for name in ("rich.console", "rich.markdown", "rich.syntax"):  # startup budget: off the first prompt's path
        try:
            importlib.import_module(name)
        except ImportError:
            return


def _git_diff(cwd):
    """(in_repo, text): `git diff` of tracked files plus untracked files as new-file diffs."""
    import subprocess

    def git(*args):
        return subprocess.run(git_argv(cwd) + list(args), cwd=str(cwd), stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, timeout=60)

    try:
        if git("rev-parse", "--is-inside-work-tree").returncode != 0:
            return False, ""
        parts = [git("diff", "--no-color", "--no-ext-diff", "--no-textconv").stdout.decode("utf-8", "replace")]
        untracked = git("ls-files", "--others", "--exclude-standard", "-z").stdout.split(b"\0")
        for raw in untracked:
            if raw:
                proc = git("diff", "--no-color", "--no-ext-diff", "--no-textconv", "--no-index", "--",
                           os.devnull, os.fsdecode(raw))
                parts.append(proc.stdout.decode("utf-8", "replace"))
    except (OSError, subprocess.SubprocessError):
        return False, ""
    return True, "".join(p if p.endswith("\n") or not p else p + "\n" for p in parts)


def _usage_of(msg):
    """The per-request usage in a token_count event (Aug flat form or Sept `info` form)."""
    if isinstance(msg.get("info"), dict):
        return msg["info"].get("last_token_usage") or {}
    if msg.get("info") is None and "info" in msg:
        return {}
    return msg


class Repl(object):
    """The interactive session: reads the composer, drives a Session, renders its events."""

    #: events that leave a streaming answer or reasoning open (they print nothing)
    STREAM_NEUTRAL = ("token_count", "exec_command_output_delta", "task_started", "agent_reasoning_raw_content_delta")

    def __init__(self, cfg, renderer=None, stdin=None):
        self.cfg = cfg
        self.ctx = TurnContext.from_config(cfg)  # what /model and /approvals change (and tell the session)
        self.renderer = renderer or ReplRenderer(cfg)
        self.stdin = stdin or sys.stdin
        try:
            self.interactive = self.stdin.isatty()
        except (AttributeError, ValueError):
            self.interactive = False
        persistence = (cfg.history or {}).get("persistence", "save-all")
        self.snapshot = HistorySnapshot(cfg.codex_home, persistence)
        self.history = ComposerHistory(self.snapshot)
        self.files = FileSearch(cfg.cwd)
        self.composer = Composer(self)
        self.session = None
        self.session_id = None
        self._session_error = None
        self._session_thread = None
        self._pending_history = []
        self.user_messages = []  # this conversation's user messages (for backtrack)
        self.total_usage = {}
        self.turn_usage = {}
        self._keys = None
        self._stream = None  # MarkdownStream of the answer being streamed
        self._reviewing = False  # a /review turn is running: its JSON answer is not streamed
        self._last_answer = None  # the last agent message of the last turn (task_complete)
        self._rstream = None  # MarkdownStream of the reasoning summary being streamed
        self._reasoning_streamed = False
        self._execs = {}
        self._mcp = {}
        self._mcp_lock = threading.Lock()
        self._mcp_unshown = []  # MCP start-up failures taken from the manager, not yet printed
        self._reading = False  # the composer is reading (guarded by _mcp_lock)
        self._turn_error = None
        self.failed_turns = 0  # turns that ended in an error (a piped REPL then exits 1)
        self._turn_id = None  # submission id of the running turn
        self._resume_path = None  # the rollout /resume continues
        self.typeahead = ""  # typed while a turn ran, not yet sent: goes into the composer
        self.queued = []  # messages typed and entered while a turn ran: sent one by one after it

    # -- session lifecycle --

    def _start_session(self):
        """Create the Session in the background so the first prompt shows at once."""
        self._session_error = None

        def create():
            try:
                session = (Session(self.cfg, resume_path=self._resume_path) if self._resume_path else Session(self.cfg)).start()
                session.ask_on_loop_limit = True  # a tool-call limit asks whether to go on (§16)
                wire = self.ctx.to_wire()
                if wire != TurnContext.from_config(self.cfg).to_wire():  # /model or /approvals before this session
                    session.submit(dict({"type": "override_turn_context"}, **wire))
                self.session = session
                if self.interactive:
                    self._watch_mcp_startup(session)
            except BaseException as exc:  # reported on first use, in the main thread
                self._session_error = exc

        self.session = None
        self.session_id = None
        self._session_thread = threading.Thread(target=create, name="codex-session-start", daemon=True)
        self._session_thread.start()

    def _composer_app(self):
        """The composer's prompt-toolkit Application while it is reading, else None."""
        prompt = getattr(self.composer, "_session", None)
        app = getattr(prompt, "app", None)
        if app is None or not getattr(app, "is_running", False) or getattr(app, "loop", None) is None:
            return None
        return app

    def _watch_mcp_startup(self, session, poll=0.1, limit=3600.0):
        """While MCP servers start in the background, show each one that fails as soon as it
        fails, above the composer, which stays usable (start-up failures show before the first
        prompt is sent, not after it).  Only while the composer is reading: during a turn,
        _wait_for_mcp and the turn report them."""
        manager = getattr(session, "mcp", None)
        if manager is None or not (manager.starting() or manager.failures()):
            return

        def in_loop():
            from prompt_toolkit.application import run_in_terminal

            run_in_terminal(self._show_unshown_mcp_failures)

        def watch():
            began = time.monotonic()
            while self.session is session and time.monotonic() - began < limit:
                settled = not manager.starting()
                with self._mcp_lock:  # the main thread clears _reading under it when the composer returns
                    app = self._composer_app() if self._reading else None
                    if app is not None:
                        messages = manager.new_failures()
                        self._mcp_unshown.extend(messages)
                if app is not None:
                    if messages:
                        try:  # printed above the composer; left for the main thread if it just closed
                            app.loop.call_soon_threadsafe(lambda: app.context.copy().run(in_loop))
                        except (RuntimeError, AttributeError):
                            pass
                    if settled:
                        return
                time.sleep(poll)

        threading.Thread(target=watch, name="codex-mcp-watch", daemon=True).start()

    def _show_unshown_mcp_failures(self):
        with self._mcp_lock:
            messages, self._mcp_unshown = self._mcp_unshown, []
        for message in messages:
            self.renderer.error(message)

    def _ensure_session(self):
        """Wait for the Session; raise what creating it raised."""
        if self._session_thread is not None:
            self._session_thread.join()
            self._session_thread = None
        if self._session_error is not None:
            exc, self._session_error = self._session_error, None
            raise exc
        if self.session is None:
            self._start_session()
            return self._ensure_session()
        if self.session_id is None:
            self.session_id = getattr(self.session, "session_id", None) or getattr(self.session, "conversation_id", None)
        return self.session

    def _close_session(self):
        if self._session_thread is not None:
            self._session_thread.join(5)
            self._session_thread = None
        session, self.session = self.session, None
        if session is not None:
            try:
                session.shutdown()
            except Exception as exc:  # leaving anyway
                log("debug", "session shutdown: %s", exc)

    # -- history.jsonl --

    def _append_history(self, text):
        self._pending_history.append(text)
        self._flush_history()

    def _flush_history(self, force=False):
        if self.session_id is None and self.session is not None:
            self.session_id = getattr(self.session, "session_id", None)
        if not self._pending_history or (self.session_id is None and not force):
            return
        import uuid

        sid = self.session_id or str(uuid.uuid4())
        hist = self.cfg.history or {}
        pending, self._pending_history = self._pending_history, []
        for text in pending:
            try:
                append_history(self.cfg.codex_home, sid, text, hist.get("persistence", "save-all"), hist.get("max_bytes"))
            except OSError as exc:
                log("warn", "history: %s", exc)
                self.renderer.note("history not saved: %s" % (exc.strerror or exc))

    # -- the main loop --

    def run(self, prompt=None, images=None):
        """Show the header, run the initial prompt if any, then read and run until quit."""
        self.renderer.header(self.ctx)
        if self.cfg.experimental_resume:  # `codex resume`: Session continues it
            self.show_resumed(self.cfg.experimental_resume)
        if prompt or images or not self.interactive:
            self._start_background()
        if prompt or images:
            if prompt:
                self.renderer.user(prompt)
            self.submit_user(prompt or "", images)
        try:  # SIGTERM/SIGHUP arrive as SystemExit (§22): the running command dies with us
            default, complete = "", False
            while True:
                if self.queued and not (default or complete):  # typed (with Enter) while a turn ran
                    text = self.queued.pop(0)
                    self.renderer.user(text)
                else:
                    text = self.read_input(default or self.typeahead, complete)
                    self.typeahead, default, complete = "", "", False
                if text is None:
                    break
                if text is _BACKTRACK:
                    default = self.backtrack() or ""
                    continue
                if not text.strip():
                    continue
                if text.startswith("/"):
                    action = self.slash(text.strip())
                    if action == "quit":
                        break
                    if action == "mention":
                        default, complete = "@", True
                    if action != "not-a-command":
                        continue
                self.submit_user(text)
        finally:
            self.close()
        # Fed from a pipe, a failed turn is a failure of the run (as in exec); on a terminal
        # the user saw it and quit normally.
        return 1 if self.failed_turns and not self.interactive else 0

    def close(self):
        """Flush history and shut the session down."""
        self._flush_history(force=True)
        self._close_session()

    def _start_background(self):
        """Start the session and the file index (once), and load the renderer's modules."""
        if self.session is None and self._session_thread is None:
            self._start_session()
        self.files.start()
        threading.Thread(target=_warm_up_rendering, name="codex-warm-up", daemon=True).start()

    def read_input(self, default="", complete=False):
        """The next message: the composer on a terminal, else one line of stdin."""
        if self.interactive:
            first = self.session is None and self._session_thread is None
            with self._mcp_lock:
                self._reading = True
            try:
                return self.composer.read(default, complete, self._start_background if first else None)
            finally:
                with self._mcp_lock:
                    self._reading = False
        line = self.stdin.readline()
        if not line:
            return None
        return line.rstrip("\n")

    def submit_user(self, text, images=None):
        """Send a user message and run the turn."""
        items = [{"type": "text", "text": text}] if text else []
        items += [{"type": "local_image", "path": str(Path(p).expanduser().resolve())} for p in images or []]
        if text:
            self.history.record(text)
            self._append_history(text)
            self.user_messages.append(text)
        self.run_turn({"type": "user_input", "items": items})

    def _key_context(self):
        if self.interactive:
            return _TerminalKeys(self.stdin.fileno(), paste_mode=self.renderer.can_live)
        import contextlib

        return contextlib.nullcontext(None)

    def _wait_for_mcp(self, session):
        """Before a user turn: wait for MCP servers still starting (each bounded by its
        startup_timeout_sec), showing which; Esc or Ctrl-C goes on without them (their tools
        join the session when they are ready).  Failures are shown before the turn."""
        self._show_unshown_mcp_failures()
        manager = getattr(session, "mcp", None)
        if manager is None or not manager.starting():
            for message in manager.new_failures() if manager is not None else ():
                self.renderer.error(message)
            return
        stop = threading.Event()
        waiter = threading.Thread(target=session.wait_for_mcp, kwargs={"cancel": stop}, name="codex-mcp-wait", daemon=True)
        waiter.start()
        shown = None
        with self._key_context() as keys:
            self.renderer.start_status("Waiting for MCP servers")
            try:
                while waiter.is_alive():
                    starting = manager.starting()
                    if starting != shown:
                        shown = starting
                        self.renderer.set_status("Waiting for MCP server%s to start: %s (Esc: go on without)"
                                                 % ("s" if len(starting) > 1 else "", ", ".join(starting)))
                    try:
                        key = keys.get(0.05) if keys is not None else None
                    except KeyboardInterrupt:
                        key = "esc"
                    if keys is None:
                        waiter.join(0.05)
                    if isinstance(key, tuple) and key[0] == "paste":
                        self.typeahead += key[1]
                    elif isinstance(key, str) and len(key) == 1 and key.isprintable():
                        self.typeahead += key  # typing on goes to the composer after the turn
                    elif key == "enter" and self.typeahead.strip():
                        self.queued.append(self.typeahead.strip())
                        self.typeahead = ""
                    if key in ("esc", "ctrl-c"):
                        stop.set()
                        waiter.join(1.0)
                        left = manager.starting()
                        if left:
                            self.renderer.note("going on without %s (%s tools join when ready)" % (
                                ", ".join(left), "its" if len(left) == 1 else "their"))
                        break
            finally:
                self.renderer.stop_status()
        for message in manager.new_failures():  # if the waiter was cut short
            self.renderer.error(message)

    def run_turn(self, op):
        """Submit `op` and render events until the turn ends (Esc / Ctrl-C interrupt it)."""
        try:
            session = self._ensure_session()
            if op.get("type") in ("user_input", "user_turn"):
                self._wait_for_mcp(session)
            self._turn_id = session.submit(op)
        except CodexError as exc:
            self.renderer.error(str(exc))
            self.failed_turns += 1
            return
        self.turn_usage, self._turn_error = {}, None
        self._stream = self._rstream = None
        interrupted_at = None

        def tick():
            nonlocal interrupted_at
            if self._turn_error is not None and time.monotonic() - self._turn_error > 1.0:
                return True  # an error with no task_complete after it
            if interrupted_at is not None and time.monotonic() - interrupted_at > 5.0:
                self.renderer.note("the turn did not stop after the interrupt; giving up on it")
                return True
            while keys is not None:
                key = keys.get(0)
                if key is None:
                    break
                if key in ("esc", "ctrl-c") and interrupted_at is None:
                    session.interrupt()
                    interrupted_at = time.monotonic()
                    self.renderer.set_status("Interrupting")
                elif len(key) == 1 and key.isprintable():
                    self.typeahead += key
                elif key == "backspace":
                    self.typeahead = self.typeahead[:-1]
                elif isinstance(key, tuple) and key[0] == "paste":
                    self.typeahead += key[1]  # whole, newlines kept: not messages
                elif key == "enter" and self.typeahead.strip():
                    self.queued.append(self.typeahead.strip())  # sent when the turn ends
                    self.typeahead = ""
                self.renderer.set_queued(self.queued, self.typeahead)
            return False

        with self._key_context() as keys:
            self._keys = keys
            self.renderer.start_status("Working")
            try:
                while True:
                    try:
                        pump_events(session, self.handle_event, tick, poll=0.05)
                        break
                    except KeyboardInterrupt:
                        if interrupted_at is not None:
                            raise
                        session.interrupt()
                        interrupted_at = time.monotonic()
            finally:
                self._keys = None
                self._close_streams()
                self.renderer.stop_status()
        while keys is not None:  # what was typed as the turn ended goes to the composer too
            key = keys.get(0)
            if key is None:
                break
            if isinstance(key, tuple) and key[0] == "paste":
                self.typeahead += key[1]
            elif len(key) == 1 and key.isprintable():
                self.typeahead += key
            elif key == "enter" and self.typeahead.strip():
                self.queued.append(self.typeahead.strip())
                self.typeahead = ""
        if self._turn_error is not None:
            self.failed_turns += 1
        self._flush_history()
        self.files.refresh()  # the turn may have created files: `@` finds them next
        for key, value in self.turn_usage.items():
            if isinstance(value, (int, float)):
                self.total_usage[key] = self.total_usage.get(key, 0) + value
        self.renderer.tokens(self.turn_usage, self.total_usage)

    # -- events --

    def handle_event(self, event):
        """Render one event; return True when it ends the turn."""
        msg = terminal_safe(event.get("msg") or {})  # model, command and MCP text is untrusted
        kind = msg.get("type", "")
        if kind not in self.STREAM_NEUTRAL:  # anything else goes below what has streamed so far
            keep = "answer" if kind.startswith("agent_message") else "reasoning" if kind.startswith("agent_reasoning") else None
            self._close_streams(keep)
            if keep != "reasoning":
                self._reasoning_streamed = False
        handler = getattr(self, "_on_" + kind, None)
        if handler is not None:
            handler(event, msg)
        else:
            log("debug", "repl: unhandled event %s", kind)
        # Session-level events (id "") such as a startup error do not end the running turn.
        return kind in TURN_END_EVENTS and (kind == "shutdown_complete" or event.get("id") in (None, self._turn_id))

    def _on_session_configured(self, event, msg):
        self.session_id = msg.get("session_id") or self.session_id
        self._flush_history()

    def _close_streams(self, keep=None):
        """Finish the streamed answer and reasoning (all that arrived stays, above what follows)."""
        if keep != "answer" and self._stream is not None:
            stream, self._stream = self._stream, None
            stream.finish()
        if keep != "reasoning" and self._rstream is not None:
            stream, self._rstream = self._rstream, None
            stream.finish()

    def _on_agent_message_delta(self, event, msg):
        if self._reviewing:
            return  # a review's answer is JSON: shown as findings when the turn ends
        if self._stream is None:
            self._stream = self.renderer.start_answer()
        self._stream.push(msg.get("delta", ""))

    def _on_agent_message(self, event, msg):
        if self._reviewing:
            return
        if self._stream is not None:
            self._close_streams()
            return
        self.renderer.answer(msg.get("message", ""))

    def _on_agent_reasoning_delta(self, event, msg):
        # As upstream: the status line takes the latest **bold heading** of the reasoning summary.
        self._reasoning_tail = (getattr(self, "_reasoning_tail", "") + msg.get("delta", ""))[-400:]
        headings = re.findall(r"\*\*(.+?)\*\*", self._reasoning_tail)
        if headings:
            self.renderer.set_status(headings[-1])
        if self.cfg.hide_agent_reasoning:
            return
        if self._rstream is None:
            self._rstream = self.renderer.start_reasoning()
            self._reasoning_streamed = True
        self._rstream.push(msg.get("delta", ""))

    def _on_agent_reasoning_section_break(self, event, msg):
        if self._rstream is not None:
            self._rstream.push("\n\n")

    def _on_agent_reasoning(self, event, msg):
        self._reasoning_tail = ""
        text = msg.get("text", "")
        heading = re.search(r"\*\*(.+?)\*\*", text)
        if heading:
            self.renderer.set_status(heading.group(1))
        if getattr(self, "_reasoning_streamed", False):
            return  # shown as it streamed
        if not self.cfg.hide_agent_reasoning:
            self.renderer.reasoning(text)

    def _on_agent_reasoning_raw_content(self, event, msg):
        if self.cfg.show_raw_agent_reasoning:
            self.renderer.reasoning(msg.get("text", ""))

    def _on_exec_command_begin(self, event, msg):
        # call_id -> [command, started, output so far (bounded: head and tail kept)]
        self._execs[msg.get("call_id")] = [msg.get("command"), time.monotonic(), ""]
        self.renderer.set_status("Running " + _display_command(msg.get("command")))

    def _on_exec_command_output_delta(self, event, msg):
        entry = self._execs.get(msg.get("call_id"))
        chunk = msg.get("chunk")
        if entry is None or not chunk:
            return
        if isinstance(chunk, str):  # base64 (Sept 2025 and later), else a list of byte values
            import base64
            import binascii

            try:
                chunk = base64.b64decode(chunk)
            except (ValueError, binascii.Error):
                return
        elif isinstance(chunk, list):
            chunk = bytes(b & 0xFF for b in chunk if isinstance(b, int))
        text = terminal_safe(chunk.decode("utf-8", "replace"))
        entry[2] += text
        if len(entry[2]) > EXEC_KEEP_CHARS:
            head = entry[2][: EXEC_KEEP_CHARS // 2]
            entry[2] = head[: head.rfind("\n") + 1] + entry[2][-EXEC_KEEP_CHARS // 2:].split("\n", 1)[-1]
        lines = [l for l in text.splitlines() if l.strip()]
        if lines:
            tail = _reveal_hidden_chars(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", lines[-1]).strip())
            self.renderer.set_status("Running %s \u2014 %s" % (_display_command(entry[0]), tail))

    def _on_exec_command_end(self, event, msg):
        command, started, _partial = self._execs.pop(msg.get("call_id"), (msg.get("command"), time.monotonic(), ""))
        seconds = _seconds(msg.get("duration")) if msg.get("duration") is not None else time.monotonic() - started
        code = msg.get("exit_code", 0)
        output = msg.get("aggregated_output")
        if output is None:
            output = msg.get("stdout", "") if code == 0 else (msg.get("stderr") or msg.get("stdout", ""))
        timed_out = re.search(r"command timed out after (\d+) milliseconds", str(msg.get("formatted_output") or ""))
        note = "timed out after %s" % _format_seconds(int(timed_out.group(1)) / 1000.0) if timed_out else None
        self.renderer.exec_cell(command, code, seconds, output, note=note)
        self.renderer.set_status("Working")

    def _show_unfinished_commands(self, note):
        """Cells for commands that never ended (interrupted): their output so far and `note`."""
        for call_id in list(self._execs):
            command, started, partial = self._execs.pop(call_id)
            self.renderer.exec_cell(command, None, time.monotonic() - started, partial, note=note)

    def _on_mcp_tool_call_begin(self, event, msg):
        inv = msg.get("invocation") or {}
        self._mcp[msg.get("call_id")] = time.monotonic()
        self.renderer.set_status("Calling %s.%s" % (inv.get("server", "?"), inv.get("tool", "?")))

    def _on_mcp_tool_call_end(self, event, msg):
        started = self._mcp.pop(msg.get("call_id"), time.monotonic())
        seconds = _seconds(msg.get("duration")) if msg.get("duration") is not None else time.monotonic() - started
        self.renderer.mcp_cell(msg.get("invocation"), seconds, msg.get("result"))
        self.renderer.set_status("Working")

    def _on_exec_approval_request(self, event, msg):
        entry = self._execs.get(msg.get("call_id"))
        if entry is not None:  # it ran and failed (on-failure): show how before asking to retry
            command, started, partial = self._execs.pop(msg.get("call_id"))
            self.renderer.exec_cell(command, None, time.monotonic() - started, partial or "(no output)",
                                    note="failed in the sandbox")
        decision = self._ask_approval("exec", msg.get("command"), msg.get("cwd"), msg.get("reason"))
        self.session.submit({"type": "exec_approval", "id": event.get("id", ""), "decision": decision})

    def _on_loop_limit_request(self, event, msg):
        """A tool-call limit stopped the turn: ask whether to let the model go on."""
        decision = self._ask_approval("continue", None, None, msg.get("message"))
        self.session.submit({"type": "exec_approval", "id": event.get("id", ""), "decision": decision})

    def _on_apply_patch_approval_request(self, event, msg):
        self.renderer.patch_cell(msg.get("changes"), "proposed patch")
        decision = self._ask_approval("patch", None, None, msg.get("reason"), msg.get("grant_root"))
        self.session.submit({"type": "patch_approval", "id": event.get("id", ""), "decision": decision})

    def _on_patch_apply_begin(self, event, msg):
        if msg.get("auto_approved"):
            self.renderer.patch_cell(msg.get("changes"), "applying patch")
        self.renderer.set_status("Applying patch")

    def _on_patch_apply_end(self, event, msg):
        if msg.get("success", True):
            self.renderer.text(("\u2713 ", "bold green"), ("patch applied", ""))
        else:
            self.renderer.error("patch failed: %s" % (msg.get("stderr") or msg.get("stdout") or "").strip())
        self.renderer.set_status("Working")

    def _on_plan_update(self, event, msg):
        self.renderer.plan(msg.get("explanation"), msg.get("plan"))

    def _on_token_count(self, event, msg):
        for key, value in _usage_of(msg).items():
            if isinstance(value, (int, float)):
                self.turn_usage[key] = self.turn_usage.get(key, 0) + value

    def _on_background_event(self, event, msg):
        self.renderer.note(msg.get("message", ""))

    def _on_tool_call_begin(self, event, msg):  # a registered tool's own rendering (§09)
        self.renderer.set_status("Calling %s" % msg.get("tool"))

    def _on_tool_call_end(self, event, msg):
        text = tool_call_text(msg)
        if text:
            self.renderer.text(("\u2022 ", "bold"), (text, ""))
        self.renderer.set_status("Working")

    _on_stream_error = _on_background_event

    def _on_tool_call_blocked(self, event, msg):
        command = (msg.get("tool_input") or {}).get("command")
        self.renderer.note("%s%s: %s" % (msg.get("tool"), " `%s`" % command if command else "", msg.get("reason", "")))

    def _on_context_compacted(self, event, msg):
        self.renderer.note("context compacted (%s): ~%s -> ~%s tokens" % (
            msg.get("reason"), "{:,}".format(msg.get("tokens_before") or 0), "{:,}".format(msg.get("tokens_after") or 0)))

    def _on_error(self, event, msg):
        self.renderer.error(msg.get("message", "error"))
        if event.get("id") in (None, self._turn_id):
            self._turn_error = time.monotonic()

    def _on_task_complete(self, event, msg):
        if event.get("id") in (None, self._turn_id):
            self._last_answer = msg.get("last_agent_message")
            last = msg.get("last_agent_message") or "Agent turn complete"
            self.renderer.desktop_notification("agent-turn-complete", last)

    def _on_turn_aborted(self, event, msg):
        self._show_unfinished_commands("interrupted")
        reason = msg.get("reason", "interrupted")
        self.renderer.error("%s \u2014 tell the model what to do differently" % reason if reason == "interrupted" else reason)

    # -- approvals and pickers --

    def _read_key(self, allowed):
        """One keypress among `allowed` (a terminal), or the first letter of a stdin line."""
        while True:
            if self._keys is not None:
                key = self._keys.get(None)
                key = key.lower() if isinstance(key, str) and len(key) == 1 else key
            else:
                line = self.stdin.readline()
                if not line:
                    return "esc"
                key = line.strip().lower()[:1] or "enter"
            if key in allowed:
                return key
            if key in ("ctrl-c", "ctrl-d"):
                return "esc"

    def _ask_approval(self, kind, command, cwd, reason, grant_root=None):
        """Show the question, take one key, print the decision; return the ReviewDecision."""
        self.renderer.approval(kind, command, cwd, reason, grant_root)
        self.renderer.desktop_notification(
            "approval-requested",
            "Codex wants to run %s" % _display_command(command) if kind == "exec" else
            "Codex asks whether to go on" if kind == "continue" else "Codex wants to edit files")
        self.renderer.set_status("Waiting for your approval")
        allowed = [k for k, _d, _l in APPROVAL_CHOICES if kind == "exec" or k != "a"]
        if self._keys is None and self.interactive:
            with self._key_context() as keys:
                self._keys = keys
                key = self._read_key(allowed)
                self._keys = None
        else:
            key = self._read_key(allowed)
        decision = dict((k, d) for k, d, _l in APPROVAL_CHOICES)[key]
        what = ("run %s" % _display_command(command).split("\n")[0][:80] if kind == "exec"
                else "go on" if kind == "continue" else "apply the patch")
        lines = {
            "approved": (u"\u2714 ", "You approved codex to %s this time" % what, "green"),
            "approved_for_session": (u"\u2714 ", "You approved codex to %s every time this session" % what, "green"),
            "denied": (u"\u2717 ", "You did not approve codex to %s" % what, "red"),
            "abort": (u"\u2717 ", "You canceled the request to %s" % what, "red"),
        }
        mark, text, style = lines[decision]
        self.renderer.text((mark, "bold " + style), (text, ""))
        self.renderer.set_status("Working")
        return decision

    def _pick(self, title, options):
        """A numbered single-keypress picker; the chosen index or None."""
        from rich.text import Text

        cell = Text(title, style="bold")
        for i, label in enumerate(options):
            cell.append("\n  [%d] " % (i + 1), style="bold cyan")
            cell.append(label)
        cell.append("\n  [Esc] cancel", style="dim")
        self.renderer.print(cell)
        allowed = [str(i + 1) for i in range(len(options))] + ["esc"]
        with self._key_context() as keys:
            self._keys = keys
            try:
                key = self._read_key(allowed)
            finally:
                self._keys = None
        return None if key == "esc" else int(key) - 1

    # -- backtrack --

    def backtrack(self):
        """Esc Esc: choose an earlier message; fork the conversation before it; return its text."""
        messages = self.user_messages
        if not messages:
            return None
        index = self._choose_message(messages)
        if index is None:
            return None
        drop = len(messages) - index
        try:
            fork = getattr(self._ensure_session(), "fork", None)
        except CodexError as exc:
            self.renderer.error(str(exc))
            return messages[index]
        if fork is None:
            self.renderer.error("this session cannot be forked (Session.fork is missing)")
            return messages[index]
        try:
            new = fork(drop)
        except CodexError as exc:
            self.renderer.error(str(exc))
            return messages[index]
        old, self.session, self.session_id = self.session, new, None
        try:
            old.shutdown()
        except Exception as exc:  # the fork lives on
            log("debug", "shutting down the forked-from session: %s", exc)
        self.user_messages = messages[:index]
        self.renderer.note(u"\u21b6 forked before message %d of %d; edit it and press Enter" % (index + 1, len(messages)))
        return messages[index]

    def _choose_message(self, messages):
        """A live list of the user messages: Esc/Up older, Down newer, Enter picks, q cancels."""
        return self._choose(u"Edit a previous message (Esc/\u2191 older, \u2193 newer, Enter fork, q cancel)",
                            messages, len(messages) - 1, esc_moves=True)

    def _choose(self, title, labels, index, esc_moves=False):
        """A live, scrolling list: Up/Down (k/j) move, Enter picks, Esc or q cancels (with
        `esc_moves`, Esc moves up, as in the backtrack picker).  The index picked, or None."""
        shown = 0
        out = self.renderer.out
        caps = self.renderer.caps
        width = max(20, caps["width"] - 4)
        rows = min(len(labels), 8)

        def draw():
            top = min(max(0, index - rows // 2), len(labels) - rows)
            top = max(0, top)
            lines = [title]
            for i in range(top, top + rows):
                text = labels[i].replace("\n", u" \u23ce ")
                text = text if len(text) <= width else text[: width - 1] + u"\u2026"
                mark = u"\u203a" if i == index else " "
                line = u"%s %d. %s" % (mark, i + 1, text)
                if i == index and caps["color"]:
                    line = "\x1b[7m" + line + "\x1b[0m"
                lines.append(line)
            if len(labels) > rows:
                lines.append(u"  (%d of %d)" % (index + 1, len(labels)))
            return lines

        with self._key_context() as keys:
            self._keys = keys
            try:
                while True:
                    lines = draw()
                    with self.renderer.lock:
                        if shown:
                            out.write("\x1b[%dA\r\x1b[J" % shown)
                        out.write("\n".join(lines) + "\n")
                        out.flush()
                    shown = len(lines)
                    key = self._read_key(["esc", "up", "down", "enter", "q", "k", "j"])
                    if key in ("up", "k") or (key == "esc" and esc_moves):
                        index = max(0, index - 1)
                    elif key in ("down", "j"):
                        index = min(len(labels) - 1, index + 1)
                    elif key == "enter":
                        return index
                    else:
                        return None
            finally:
                self._keys = None
                with self.renderer.lock:
                    out.write("\x1b[%dA\r\x1b[J" % shown if shown else "")
                    out.flush()

    # -- slash commands --

    def slash_entries(self):
        """(name, description) of every slash command: the built-ins, then the prompt files."""
        entries = list(SLASH_COMMANDS)
        builtins = dict(SLASH_COMMANDS)
        for name, prompt in sorted(load_custom_prompts(prompt_dirs(self.cfg)).items()):
            about = " ".join(x for x in (prompt.description or "prompt from %s" % prompt.path.name,
                                         prompt.argument_hint) if x)
            if name not in builtins:
                entries.append((name, about))
            entries.append((PROMPT_COMMAND_PREFIX + name, about))
        return entries

    def slash(self, text):
        """Run a slash command; returns "quit", "mention", "not-a-command" or None."""
        word, _, arg = text[1:].partition(" ")
        name = SLASH_ALIASES.get(word.lower(), word.lower())
        handler = getattr(self, "_slash_" + name, None)
        if handler is None or name not in dict(SLASH_COMMANDS) or word.startswith(PROMPT_COMMAND_PREFIX):
            found = find_prompt_command(text, load_custom_prompts(prompt_dirs(self.cfg)),
                                        builtins=set(dict(SLASH_COMMANDS)) | set(SLASH_ALIASES))
            if found is None:
                return "not-a-command"
            try:
                expanded = expand_custom_prompt(*found)
            except UsageError as exc:
                self.renderer.note(str(exc))
                return None
            self.renderer.user(text)
            self.user_messages.append(expanded)
            self.run_turn({"type": "user_input", "items": [{"type": "text", "text": expanded}]})
            return None
        return handler(arg.strip())

    def _slash_quit(self, arg):
        return "quit"

    def _slash_mention(self, arg):
        return "mention"

    def _slash_new(self, arg):
        previous = self.session_id
        self._close_session()
        self.user_messages, self.total_usage = [], {}
        self._resume_path = None
        if self.cfg.experimental_resume:  # a new session, not the one `codex resume` continued
            self.cfg = self.cfg.replace(experimental_resume=None)
        self._start_session()
        self.renderer.note(u"\u2500\u2500 new chat \u2500\u2500 started a new session with the same settings; token count reset"
                           + (u"; the previous session (%s) is saved: /resume returns to it" % previous if previous else ""))

    def _slash_resume(self, arg):
        sessions = [s for s in list_sessions(self.cfg.codex_home, limit=RESUME_PICKER_LIMIT * 2)
                    if s["id"] != self.session_id and s["first_prompt"]][:RESUME_PICKER_LIMIT]  # not empty ones
        if not sessions:
            self.renderer.note("/resume: no earlier sessions under %s" % (Path(self.cfg.codex_home) / ROLLOUT_SUBDIR))
            return
        labels = []
        for s in sessions:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s["time"])) if s["time"] else "?"
            where = _relative_to(s["cwd"], self.cfg.cwd) if s["cwd"] else "?"
            where = "." if where == str(self.cfg.cwd) or where == "." else where.replace(os.path.expanduser("~"), "~", 1)
            prompt = (s["first_prompt"] or "(no prompt)").replace("\n", " ")
            labels.append("%s  %s  %s" % (when, where, prompt))
        index = self._choose(u"Resume a session (\u2191\u2193 choose, Enter resume, Esc cancel): time, directory, first prompt",
                             labels, 0)
        if index is None:
            return
        self.resume(sessions[index]["path"])

    def resume(self, path):
        """Continue the recorded session at `path`: show its last exchanges, go on from there."""
        self._close_session()
        self._resume_path = str(path)
        if self.cfg.experimental_resume:
            self.cfg = self.cfg.replace(experimental_resume=None)
        self._start_session()
        self.show_resumed(path)

    def show_resumed(self, path):
        """"resumed session …", the last exchanges and the token count so far, from the rollout."""
        try:
            meta, _items, events = load_rollout(path)
        except CodexError as exc:
            self.renderer.error(str(exc))
            return
        exchanges, total = [], {}
        for ev in events:
            kind = ev.get("type")
            if kind == "user_message" and str(ev.get("message", "")).strip():
                exchanges.append([ev["message"], []])
            elif kind == "agent_message" and exchanges:
                exchanges[-1][1].append(ev.get("message", ""))
            elif kind == "token_count":
                info = ev.get("info")
                if isinstance(info, dict) and isinstance(info.get("total_token_usage"), dict):
                    total = dict(info["total_token_usage"])
                else:
                    for key, value in _usage_of(ev).items():
                        if isinstance(value, (int, float)):
                            total[key] = total.get(key, 0) + value
        self.user_messages = [text for text, _answers in exchanges]
        self.total_usage = {k: v for k, v in total.items() if isinstance(v, (int, float))}
        self.session_id = meta.get("id") or self.session_id
        when = meta.get("timestamp", "")[:16].replace("T", " ")
        self.renderer.note(u"resumed session %s (started %s UTC in %s; %d earlier message%s)" % (
            meta.get("id", "?"), when or "?", meta.get("cwd") or "?", len(exchanges), "" if len(exchanges) == 1 else "s"))
        shown = exchanges[-RESUME_SHOW_EXCHANGES:]
        if len(exchanges) > len(shown):
            self.renderer.note(u"\u2026 %d earlier exchange%s not shown" % (len(exchanges) - len(shown), "" if len(exchanges) - len(shown) == 1 else "s"))
        for text, answers in shown:
            self.renderer.user(text)
            for answer in answers:
                self.renderer.answer(answer)
        if self.total_usage.get("total_tokens"):
            self.renderer.note("tokens so far: %s total" % _thousands(self.total_usage["total_tokens"]))

    def _slash_init(self, arg):
        if (Path(self.cfg.cwd) / "AGENTS.md").exists():
            self.renderer.note("AGENTS.md already exists here. Skipping /init to avoid overwriting it.")
            return
        self.renderer.user("/init")
        self.user_messages.append(INIT_PROMPT)
        self.run_turn({"type": "user_input", "items": [{"type": "text", "text": INIT_PROMPT}]})

    def _slash_compact(self, arg):
        self.run_turn({"type": "compact"})

    def _slash_diff(self, arg):
        in_repo, diff = _git_diff(self.cfg.cwd)
        if not in_repo:
            self.renderer.note("/diff: not inside a git repository")
        elif not diff.strip():
            self.renderer.note("/diff: no changes detected")
        else:
            self.renderer.diff_text(diff)

    def _slash_status(self, arg):
        from rich.text import Text

        ctx = self.ctx
        cfg = ctx.config

        def src(key):
            where = ctx.sources.get(key)
            return "" if where in (None, "default") else "  (%s)" % where

        summary = dict(config_summary(ctx))  # the exec header's values (one source for both)
        effort = summary.get("reasoning effort")
        policy = ctx.sandbox_policy
        sandbox = policy.mode + (" (network on)" if policy.has_network() and not policy.is_unrestricted() else "")
        rows = [
            ("workdir", str(ctx.cwd), ""),
            ("model", ctx.model, src("model")),
            ("reasoning", "effort %s / summaries %s" % (effort, summary.get("reasoning summaries")) if effort
             else "not used by this model or provider", src("model_reasoning_effort")),
            ("provider", "%s (%s, %s)" % (cfg.provider.id, cfg.provider.base_url, cfg.provider.wire_api), src("model_provider")),
            ("approval", ctx.approval_policy, src("approval_policy")),
            ("sandbox", sandbox, src("sandbox_mode")),
            ("history", "%s (%s)" % ((cfg.history or {}).get("persistence", "save-all"), history_path(cfg.codex_home)), src("history")),
            ("session", self.session_id or "(not started)", ""),
        ]
        agents = Path(cfg.cwd) / "AGENTS.md"
        if agents.exists():
            rows.append(("AGENTS.md", str(agents), ""))
        u = self.total_usage
        rows.append(("tokens", "%s in \u00b7 %s out \u00b7 %s total" % (
            _thousands(u.get("input_tokens", 0)), _thousands(u.get("output_tokens", 0)), _thousands(u.get("total_tokens", 0))), ""))
        cell = Text()  # the command itself is already on the screen, in the composer's line
        for i, (name, value, where) in enumerate(rows):
            cell.append(("\n" if i else "") + "  %-10s " % (name + ":"), style="dim")
            cell.append(str(value))
            cell.append(where, style="dim")
        self.renderer.print(cell)

    def _slash_mcp(self, arg):
        from rich.text import Text

        if not self.cfg.mcp_servers:
            self.renderer.note("/mcp: no MCP servers configured (add [mcp_servers.NAME] to %s)" % (Path(self.cfg.codex_home) / "config.toml"))
            return
        try:
            manager = getattr(self._ensure_session(), "mcp", None)
        except CodexError as exc:
            self.renderer.error(str(exc))
            return
        listing = manager.status() if manager is not None else [
            {"name": name, "status": "not started", "tools": [], "error": None} for name in sorted(self.cfg.mcp_servers)]
        styles = {"ready": "green", "failed": "red", "starting": "yellow", "disabled": "dim"}
        cell = Text()
        for i, server in enumerate(listing):
            state = server.get("status", "?")
            cell.append(("\n" if i else "") + "  %s " % server["name"], style="bold")
            cell.append(state, style=styles.get(state, ""))
            tools = server.get("tools") or []
            if tools:
                cell.append(" \u00b7 %d tool%s: %s" % (len(tools), "" if len(tools) == 1 else "s", ", ".join(tools)), style="dim")
            elif state == "ready":
                cell.append(" \u00b7 no tools", style="dim")
            if server.get("error"):
                cell.append("\n    %s" % str(server["error"]).strip().split("\n")[0], style="red")
        self.renderer.print(cell)

    def _override(self, **fields):
        """Send override_turn_context (if the session has started, else it starts with self.ctx)."""
        if self.session is None and self._session_thread is None:
            return
        try:
            self._ensure_session().submit(dict({"type": "override_turn_context"}, **fields))
        except CodexError as exc:
            self.renderer.error(str(exc))

    def _slash_model(self, arg):
        if arg:
            name, _, effort = arg.partition(" ")
            effort = effort.strip() or None
            if effort is not None and effort not in REASONING_EFFORTS:
                self.renderer.error("unknown reasoning effort %r; use one of: %s" % (effort, ", ".join(REASONING_EFFORTS)))
                return
        else:
            labels = ["%s%s%s" % (m, " " + e if e else "", "  (current)" if m == self.ctx.model and e == self.ctx.config.model_reasoning_effort else "")
                      for m, e in MODEL_PRESETS]
            choice = self._pick("/model  choose a model and reasoning effort", labels)
            if choice is None:
                return
            name, effort = MODEL_PRESETS[choice]
        self.ctx = self.ctx.with_overrides(model=name, effort=effort, source="/model")
        self._override(model=name, effort=effort)
        self.renderer.note("model: %s%s" % (name, " (reasoning %s)" % effort if effort else ""))

    def _slash_review(self, arg):
        """/review [--uncommitted | --base BRANCH | --commit SHA] [focus]: a read-only review turn
        whose findings stay in the conversation, so the next prompt can ask for a fix."""
        import shlex

        try:
            words = shlex.split(arg)
        except ValueError:
            words = arg.split()
        scope, focus = {}, []
        it = iter(words)
        for word in it:
            if word == "--uncommitted":
                scope["uncommitted"] = True
            elif word in ("--base", "--commit"):
                scope[word[2:]] = next(it, None)
                if not scope[word[2:]]:
                    self.renderer.error("/review %s needs a value" % word)
                    return
            else:
                focus.append(word)
        if not scope and not focus:
            scope = self._pick_review_scope()
            if scope is None:
                return
        try:
            request = prepare_review(self.ctx.cwd, focus=" ".join(focus) or None,
                                     context_window=self.ctx.family.context_window, **scope)
        except CodexError as exc:
            self.renderer.error("/review: %s" % exc)
            return
        self.renderer.note(request.summary(focus=" ".join(focus) or None))
        before = self.ctx
        try:  # read-only and never asking, whatever the session's policy; restored afterwards
            self.ctx = before.with_overrides(approval_policy="never", sandbox_policy={"mode": "read-only"}, source="/review")
        except CodexError:
            self.ctx = before.with_overrides(sandbox_policy={"mode": "read-only"}, source="/review")
        self._override(approval_policy=self.ctx.approval_policy, sandbox_policy=self.ctx.sandbox_policy.to_wire())
        self._reviewing, self._last_answer = True, None
        try:
            self.run_turn({"type": "user_input", "items": [{"type": "text", "text": request.prompt}]})
        finally:
            self._reviewing = False
            self.ctx = before
            self._override(approval_policy=before.approval_policy, sandbox_policy=before.sandbox_policy.to_wire())
        if self._last_answer is None:
            return  # interrupted or failed: run_turn said so
        from rich.text import Text

        review = parse_review(self._last_answer, request.scope.root)
        self.renderer.print(Text(render_review(review, request.scope, request.left_out).rstrip("\n")))
        if review["findings"]:
            self.renderer.note("ask for a fix in your next message, e.g. \"fix finding 1\" (the findings are in the conversation)")

    def _pick_review_scope(self):
        """The scope picker of /review: a dict of prepare_review arguments, or None (Esc)."""
        choice = self._pick("/review  what should be reviewed?", [
            "uncommitted changes (staged, unstaged, untracked)", "this branch against a base branch",
            "one commit", "the default: uncommitted changes if any, else this branch"])
        if choice is None:
            return None
        if choice == 0:
            return {"uncommitted": True}
        if choice == 3:
            return {}
        try:
            if choice == 1:
                current = _git_line(self.ctx.cwd, "rev-parse", "--abbrev-ref", "HEAD")
                names = [n for n in run_git(self.ctx.cwd, "for-each-ref", "--format=%(refname:short)", "refs/heads",
                                            "refs/remotes", "--sort=-committerdate", "--count=10").decode("utf-8", "replace").split()
                         if n != current and not n.endswith("/HEAD")][:9]
                if not names:
                    self.renderer.note("/review: no other branch to compare with; use /review --commit SHA, or commit on a branch first")
                    return None
                pick = self._pick("/review  against which branch?", names)
                return None if pick is None else {"base": names[pick]}
            lines = run_git(self.ctx.cwd, "log", "-9", "--format=%h %s").decode("utf-8", "replace").splitlines()
            pick = self._pick("/review  which commit?", [terminal_safe(l) for l in lines]) if lines else None
            return None if pick is None else {"commit": lines[pick].split()[0]}
        except CodexError as exc:
            self.renderer.error("/review: %s" % exc)
            return None

    def _slash_approvals(self, arg):
        labels = ["%s \u2014 %s%s" % (label, desc, "  (current)" if (ap, sm) == (self.ctx.approval_policy, self.ctx.sandbox_policy.mode) else "")
                  for _k, label, ap, sm, desc in APPROVALS_MENU]
        choice = self._pick("/approvals  choose what codex may do without asking", labels)
        if choice is None:
            return
        _k, label, approval, sandbox, _d = APPROVALS_MENU[choice]
        self.ctx = self.ctx.with_overrides(approval_policy=approval, sandbox_policy={"mode": sandbox}, source="/approvals")
        self._override(approval_policy=approval, sandbox_policy=self.ctx.sandbox_policy.to_wire())
        self.renderer.note("approvals: %s (approval %s, sandbox %s)" % (label, approval, sandbox))


def _hold_typeahead(fd=0):
    """Keep keys typed while codex starts; return (undo function, text typed so far).

    In the terminal's cooked mode an Enter typed before the composer is up arrives as `\n`
    (ICRNL), which the composer would read as Ctrl-J (newline): the typed prompt would sit
    there unsent.  So from the first moment: no CR->LF translation, no line buffering, no
    echo (the composer shows what was typed); signals stay on, so Ctrl-C still works.  What
    arrived before that (already translated) is read here and handed to the REPL as text, in
    which `\n` means Enter.
    """
    try:
        import select
        import termios  # only for a terminal

        if not os.isatty(fd):
            return (lambda: None), ""
        saved = termios.tcgetattr(fd)
        mode = termios.tcgetattr(fd)
        mode[0] &= ~termios.ICRNL
        mode[3] &= ~(termios.ICANON | termios.ECHO)
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(fd, termios.TCSANOW, mode)
        early = b""
        while len(early) < 65536 and select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            early += chunk
    except (ImportError, OSError, termios.error):
        return (lambda: None), ""

    def restore():
        try:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        except (OSError, termios.error):
            pass

    text = early.decode("utf-8", "replace").replace("\r", "\n")
    return restore, "".join(ch for ch in text if ch == "\n" or ch.isprintable())


def ask_project_trust(cfg, cfg_loader, fd=0, out=None):
    """The one-time question about an untrusted project that has a .codex/ directory: the
    answer is kept in the user's config.toml (projects."<root>".trust_level) and never asked
    again; on yes the config is loaded anew with the project's layer."""
    out = out or sys.stderr
    root = cfg.project_root
    if (root is None or cfg.trusted_project_root is not None or not (Path(root) / ".codex").is_dir()
            or project_trust(cfg.projects, root) is not None or not os.isatty(fd)):
        return cfg
    out.write("\n%s has its own codex settings in .codex/ (config, hooks, prompts).\n"
              "Trust this project and apply them in every session here? [y/N] " % terminal_safe(str(root)))
    out.flush()
    try:
        answer = os.read(fd, 1)
    except OSError:
        return cfg
    trusted = answer in (b"y", b"Y")
    out.write("%s\n" % ("yes" if trusted else "no"))
    edit_config_table(cfg.config_path, ["projects", str(root)], ['trust_level = "%s"' % ("trusted" if trusted else "untrusted")])
    return cfg_loader() if trusted else cfg


def _cmd_interactive(args, cfg_loader):
    """`codex [PROMPT]`: the interactive session."""
    restore_terminal, early = _hold_typeahead() if args.prompt != "-" else ((lambda: None), "")
    try:
        cfg = cfg_loader()
        if args.prompt != "-":
            cfg = ask_project_trust(cfg, cfg_loader)
        prompt = args.prompt
        if prompt == "-":
            prompt = sys.stdin.read()
        typeahead = early
        if "\n" in early:  # a whole line was typed (and Enter pressed) before the composer was up
            first, typeahead = early.split("\n", 1)
            if prompt is None and first.strip():
                prompt = first
        repl = Repl(cfg)
        repl.typeahead = typeahead.replace("\n", " ").lstrip()
        return repl.run(prompt=prompt, images=args.images)
    finally:
        restore_terminal()


###############################################################################
# §19 Front end: the MCP server
###############################################################################

# `codex mcp` (alias `codex mcp-server`, `codex mcp serve`)
# speaks MCP over stdio: JSON-RPC 2.0, one message per line (JsonRpcConnection, §14).
#
#   initialize       -> protocolVersion (the client's if we speak it, else our newest),
#                       capabilities {"tools": {"listChanged": true}}, serverInfo
#   tools/list       -> `codex` and `codex-reply` with upstream's schemas (MCP_SERVER_TOOLS)
#   tools/call       -> one whole session turn in its own thread; every session event goes
#                       out as a `codex/event` notification {"_meta": {"requestId"}, "id",
#                       "msg"}; approvals go to the client as `elicitation/create` requests;
#                       the result is the final agent message (+ structuredContent.sessionId)
#   notifications/cancelled {requestId} -> interrupt that turn; no response is sent
#   ping -> {};  resources/list, resources/templates/list, prompts/list -> empty lists;
#   anything else -> JSON-RPC error -32601 (upstream sent nothing at all, which leaves
#                       SDK clients waiting forever)
#
# Sessions come from session_factory(config), started (default: Session(config).start(), §16); they follow the
# contract at the top of §08.  Each `codex` call gets its own session; `codex-reply`
# continues one by its session id; calls run concurrently.

#: the `codex` tool's input schema as upstream publishes it (kebab-case, Aug 2025)
CODEX_TOOL_INPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "prompt": {"description": "The *initial user prompt* to start the Codex conversation.", "type": "string"},
        "model": {"description": "Optional override for the model name (e.g. \"o3\", \"o4-mini\").", "type": "string"},
        "profile": {"description": "Configuration profile from config.toml to specify default options.", "type": "string"},
        "cwd": {
            "description": "Working directory for the session. If relative, it is resolved against the server process's current working directory.",
            "type": "string",
        },
        "approval-policy": {
            "description": "Approval policy for shell commands generated by the model: `untrusted`, `on-failure`, `on-request`, `never`.",
            "enum": ["untrusted", "on-failure", "on-request", "never"],
            "type": "string",
        },
        "sandbox": {
            "description": "Sandbox mode: `read-only`, `workspace-write`, or `danger-full-access`.",
            "enum": ["read-only", "workspace-write", "danger-full-access"],
            "type": "string",
        },
        "config": {
            "description": "Individual config settings that will override what is in CODEX_HOME/config.toml.",
            "type": "object",
            "additionalProperties": True,
        },
        "base-instructions": {"description": "The set of instructions to use instead of the default ones.", "type": "string"},
        "include-plan-tool": {"description": "Whether to include the plan tool in the conversation.", "type": "boolean"},
    },
    "required": ["prompt"],
}

#: the `codex-reply` tool's input schema (camelCase, as upstream)
CODEX_REPLY_INPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "sessionId": {"description": "The *session id* for this conversation.", "type": "string"},
        "prompt": {"description": "The *next user prompt* to continue the Codex conversation.", "type": "string"},
    },
    "required": ["sessionId", "prompt"],
}

#: what tools/list answers
MCP_SERVER_TOOLS = [
    {
        "name": "codex",
        "title": "Codex",
        "description": "Run a Codex session. Accepts configuration parameters matching the Codex Config struct.",
        "inputSchema": CODEX_TOOL_INPUT_SCHEMA,
    },
    {
        "name": "codex-reply",
        "title": "Codex Reply",
        "description": "Continue a Codex session by providing the session id and prompt.",
        "inputSchema": CODEX_REPLY_INPUT_SCHEMA,
    },
]

#: approval-policy values of seed 004's schema (May 2025) -> today's values; upstream's
#: code treated `auto-edit` exactly like `on-failure`
LEGACY_APPROVAL_VALUES = {"unless-allow-listed": "untrusted", "auto-edit": "on-failure"}
#: `codex` tool fields: name -> JSON type ("string", "boolean", "object", "array")
_CODEX_TOOL_FIELDS = {
    "prompt": "string", "model": "string", "profile": "string", "cwd": "string",
    "approval-policy": "string", "sandbox": "string", "config": "object",
    "base-instructions": "string", "include-plan-tool": "boolean",
    # seed 004's (May 2025) fields, still accepted
    "sandbox-permissions": "array", "disable-response-storage": "boolean",
}
#: ElicitResult.action (the MCP spec's answer) -> review decision
_ELICIT_ACTIONS = {"accept": "approved", "decline": "denied", "cancel": "abort"}
_INTERRUPT_GRACE = 10.0  #: seconds a cancelled turn gets to report turn_aborted
_EOF_GRACE = 1.0  #: seconds running calls get to finish after the client closes stdin
#: list methods of capabilities we do not have, answered with an empty list
_EMPTY_LIST_METHODS = {"resources/list": "resources", "resources/templates/list": "resourceTemplates", "prompts/list": "prompts"}
MCP_SERVER_MAX_SESSIONS = 32  #: idle sessions kept for codex-reply; the least recently used is shut down


class ToolInputError(CodexError):
    """Arguments of a `codex`/`codex-reply` call that cannot be used."""


def _json_type_name(value):
    """The JSON type name of a decoded value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", dict: "object", list: "array", type(None): "null"}.get(type(value), type(value).__name__)


def _toml_string(text):
    """A TOML basic string: JSON's escapes, but no surrogate pairs and DEL escaped."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value):
    """A JSON value written as a TOML literal (for `config` entries, applied like -c)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join("%s = %s" % (_toml_string(str(k)), _toml_value(v)) for k, v in value.items() if v is not None) + "}"
    raise ToolInputError("Failed to parse configuration for Codex tool: unsupported value %r" % (value,))


def parse_codex_tool_arguments(arguments):
    """Validate `codex` tool arguments; return (ConfigOverrides fields, -c list, prompt)."""
    if not isinstance(arguments, dict) or not isinstance(arguments.get("prompt"), str):
        if isinstance(arguments, dict) and arguments.get("prompt") is not None:
            raise ToolInputError("Failed to parse configuration for Codex tool: `prompt` must be a string")
        raise ToolInputError("Missing arguments for codex tool-call; the `prompt` field is required.")
    for key, value in arguments.items():
        want = _CODEX_TOOL_FIELDS.get(key)
        if want is None or value is None:
            continue  # unknown fields are ignored, as upstream's serde did
        if _json_type_name(value) != want:
            raise ToolInputError(
                "Failed to parse configuration for Codex tool: `%s` must be a %s, not %s" % (key, want, _json_type_name(value))
            )
    fields = {}
    cli = []
    for key, field in (("model", "model"), ("profile", "profile"), ("cwd", "cwd"), ("base-instructions", "base_instructions")):
        if arguments.get(key) is not None:
            fields[field] = arguments[key]
    if arguments.get("include-plan-tool") is not None:
        fields["include_plan_tool"] = arguments["include-plan-tool"]
    policy = arguments.get("approval-policy")
    if policy is not None:
        policy = LEGACY_APPROVAL_VALUES.get(policy, policy)
        if policy not in APPROVAL_POLICIES:
            raise ToolInputError(
                "Failed to parse configuration for Codex tool: `approval-policy` %r is not one of %s"
                % (arguments["approval-policy"], ", ".join(APPROVAL_POLICIES + tuple(LEGACY_APPROVAL_VALUES)))
            )
        fields["approval_policy"] = policy
    sandbox = arguments.get("sandbox")
    if sandbox is not None:
        if sandbox not in SANDBOX_MODES:
            raise ToolInputError(
                "Failed to parse configuration for Codex tool: `sandbox` %r is not one of %s" % (sandbox, ", ".join(SANDBOX_MODES))
            )
        fields["sandbox_mode"] = sandbox
    perms = arguments.get("sandbox-permissions")
    if perms is not None:
        for entry in perms:
            if not isinstance(entry, str) or entry.split("=", 1)[0] not in LEGACY_SANDBOX_PERMISSIONS:
                raise ToolInputError(
                    "Failed to parse configuration for Codex tool: `sandbox-permissions` entry %r is not one of %s"
                    % (entry, ", ".join(LEGACY_SANDBOX_PERMISSIONS))
                )
        # the list means what it means in config.toml (SandboxPolicy.from_permissions): as a -c
        # layer it beats the file's sandbox_mode, and an explicit `sandbox` beats it
        cli.append("sandbox_permissions=" + _toml_value(perms))
    if arguments.get("disable-response-storage") is not None:
        cli.append("disable_response_storage=" + _toml_value(arguments["disable-response-storage"]))
    for key, value in sorted((arguments.get("config") or {}).items()):
        if value is None:
            continue
        if not key or any(not part for part in str(key).split(".")):
            raise ToolInputError("Failed to parse configuration for Codex tool: bad config key %r" % key)
        cli.append("%s=%s" % (key, _toml_value(value)))
    return fields, cli, arguments["prompt"]


def parse_elicitation_decision(result):
    """The review decision in an elicitation answer; anything unclear means denied.

    Accepts upstream's own shape {"decision": "approved" | ...} and the MCP spec's
    ElicitResult {"action": "accept" | "decline" | "cancel", "content": {...}}.
    """
    if not isinstance(result, dict):
        return "denied"
    decision = result.get("decision")
    if decision in REVIEW_DECISIONS:
        return decision
    action = result.get("action")
    if action == "accept":
        content = result.get("content")
        if isinstance(content, dict) and content.get("decision") in REVIEW_DECISIONS:
            return content["decision"]
    return _ELICIT_ACTIONS.get(action, "denied")


class _ToolCall(object):
    """Bookkeeping for one running tools/call."""

    def __init__(self, request_id, tool, progress_token=None):
        self.request_id = request_id
        self.tool = tool
        self.progress_token = progress_token
        self.progress = 0
        self.session = None
        self.session_id = None
        self.cancelled = threading.Event()
        self.done = threading.Event()
        self.thread = None


class McpServer(object):
    """codex as an MCP server: the `codex` and `codex-reply` tools over one connection."""

    def __init__(self, reader, writer, load_config=None, session_factory=None):
        self._load_config = load_config  # fn(fields: dict, cli: list) -> Config
        self._session_factory = session_factory
        self.conn = JsonRpcConnection(
            reader, writer, on_request=self._on_request, on_notification=self._on_notification,
            name="MCP client", answer_parse_errors=True,
        )
        self.initialized = False
        self.client_info = {}
        self.client_capabilities = {}
        self.protocol_version = None
        self._calls = {}  # request id -> _ToolCall (running)
        self._sessions = {}  # session id -> session
        self._busy = set()  # session ids with a turn running
        self._lock = threading.Lock()

    def serve(self):
        """Run until the client closes stdin; then stop every session."""
        self.conn.start()
        try:
            self.conn.closed.wait()
        except BaseException:  # Ctrl-C, SIGTERM/SIGHUP (SystemExit): stop every turn and its command first
            self.shutdown()
            raise
        # Calls about to answer (a config error, a finishing turn) get a moment; SDK
        # clients wait about 2 s for the process to exit before they SIGTERM it.
        deadline = time.monotonic() + _EOF_GRACE
        while self.running_calls() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.shutdown()
        return 0

    def shutdown(self):
        """Interrupt running calls and shut every session down (bounded)."""
        with self._lock:
            calls = list(self._calls.values())
            sessions = list(self._sessions.values()) + [c.session for c in calls if c.session is not None]
        for call in calls:
            call.cancelled.set()
        threads = []
        for session in {id(s): s for s in sessions}.values():
            t = threading.Thread(target=self._stop_session, args=(session,), daemon=True)
            t.start()
            threads.append(t)
        deadline = time.monotonic() + 5
        for t in threads + [c.thread for c in calls if c.thread is not None]:
            t.join(max(0.0, deadline - time.monotonic()))

    @staticmethod
    def _stop_session(session):
        try:
            session.interrupt()
        except Exception:
            pass
        try:
            session.shutdown()
        except Exception as exc:
            log("warn", "mcp server: session shutdown failed: %s", exc)

    # -- dispatch --------------------------------------------------------------------
    def _on_request(self, id, method, params):
        params = params if isinstance(params, dict) else {}
        if method == "initialize":
            return self._initialize(id, params)
        if method == "ping":
            return self.conn.respond(id, {})
        if method == "tools/list":
            return self.conn.respond(id, {"tools": MCP_SERVER_TOOLS})
        if method == "tools/call":
            return self._start_call(id, params)
        if method in _EMPTY_LIST_METHODS:  # clients that ask without checking capabilities
            return self.conn.respond(id, {_EMPTY_LIST_METHODS[method]: []})
        self.conn.respond_error(id, JSONRPC_METHOD_NOT_FOUND, "Method not found: %s" % method)

    def _on_notification(self, method, params):
        if method == "notifications/initialized":
            self.initialized = True
        elif method == "notifications/cancelled" and isinstance(params, dict):
            self.cancel(params.get("requestId"))

    def _initialize(self, id, params):
        if self.protocol_version is not None:
            return self.conn.respond_error(id, JSONRPC_INVALID_REQUEST, "initialize called more than once")
        wanted = params.get("protocolVersion")
        self.protocol_version = wanted if wanted in MCP_PROTOCOL_VERSIONS else MCP_PROTOCOL_VERSIONS[0]
        self.client_info = params.get("clientInfo") or {}
        self.client_capabilities = params.get("capabilities") or {}
        self.conn.respond(id, {
            "protocolVersion": self.protocol_version,
            "capabilities": {"tools": {"listChanged": True}},
            "serverInfo": {"name": "codex-mcp-server", "title": "Codex", "version": __version__},
        })

    def cancel(self, request_id):
        """Interrupt the turn started by tools/call `request_id` (no response follows)."""
        with self._lock:
            call = self._calls.get(request_id)
        if call is None:
            return False
        call.cancelled.set()
        if call.session is not None:
            try:
                call.session.interrupt()
            except Exception as exc:
                log("warn", "mcp server: interrupt failed: %s", exc)
        return True

    def running_calls(self):
        """Request ids of the tools/call requests still running."""
        with self._lock:
            return sorted(self._calls, key=str)

    # -- tools/call ------------------------------------------------------------------
    def _start_call(self, id, params):
        name = params.get("name")
        arguments = params.get("arguments")
        meta = params.get("_meta") if isinstance(params.get("_meta"), dict) else {}
        call = _ToolCall(id, name, meta.get("progressToken"))
        with self._lock:
            if id in self._calls:
                return self.conn.respond_error(id, JSONRPC_INVALID_REQUEST, "request id %r is already in use" % (id,))
            self._calls[id] = call
        target = {"codex": self._run_codex, "codex-reply": self._run_reply}.get(name)
        if target is None:
            return self._finish(call, _text_result("Unknown tool '%s'" % name, error=True))
        call.thread = threading.Thread(target=self._guarded, args=(target, call, arguments), name="mcp-call-%s" % id, daemon=True)
        call.thread.start()

    def _guarded(self, target, call, arguments):
        try:
            target(call, arguments if arguments is not None else {})
        except ToolInputError as exc:
            self._finish(call, _text_result(str(exc), error=True))
        except Exception as exc:  # never leave the client waiting
            log("error", "mcp server: call %r crashed: %s", call.request_id, exc)
            self._finish(call, _text_result("Codex runtime error: %s: %s" % (type(exc).__name__, exc), error=True))
        finally:
            if not call.done.is_set():
                self._finish(call, _text_result("Codex runtime error: the turn ended without a result", error=True))

    def _finish(self, call, result):
        """Answer the call (unless cancelled: the spec says no response then) and forget it."""
        if call.done.is_set():
            return
        call.done.set()
        with self._lock:
            self._calls.pop(call.request_id, None)
            if call.session_id is not None:
                self._busy.discard(call.session_id)
        if result is not None and not call.cancelled.is_set():
            self.conn.respond(call.request_id, result)

    def _run_codex(self, call, arguments):
        fields, cli, prompt = parse_codex_tool_arguments(arguments)
        try:
            cfg = self._load_config(fields, cli)
        except CodexError as exc:
            return self._finish(call, _text_result("Failed to load Codex configuration from overrides: %s" % exc, error=True))
        factory = self._session_factory or _default_session_factory
        try:
            session = factory(cfg)
        except Exception as exc:
            return self._finish(call, _text_result("Failed to start Codex session: %s" % exc, error=True))
        call.session = session
        if call.cancelled.is_set():
            self._stop_session(session)
            return self._finish(call, None)
        self._run_turn(call, session, prompt)

    def _run_reply(self, call, arguments):
        if not isinstance(arguments, dict):
            raise ToolInputError("Failed to parse codex-reply arguments: expected an object")
        sid = arguments.get("sessionId") or arguments.get("conversationId") or arguments.get("threadId")
        prompt = arguments.get("prompt")
        if not isinstance(sid, str) or not isinstance(prompt, str):
            raise ToolInputError("Missing arguments for codex-reply tool-call; the `sessionId` and `prompt` fields are required.")
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None and sid in self._busy:
                raise ToolInputError("Session %s is busy with another call; wait for it to finish" % sid)
            if session is not None:
                self._busy.add(sid)
                self._sessions[sid] = self._sessions.pop(sid)  # most recently used last
                call.session, call.session_id = session, sid
        if session is None:
            return self._finish(call, _text_result("Session not found for session_id: %s" % sid, error=True))
        self._run_turn(call, session, prompt)

    def _run_turn(self, call, session, prompt):
        """Submit the prompt, stream events until the turn ends, answer the call."""
        sub_id = session.submit({"type": "user_input", "items": [{"type": "text", "text": prompt}]})
        sub_id = None if sub_id is None else str(sub_id)
        last_message, error, interrupted_at = None, None, None

        def tick():
            nonlocal interrupted_at
            if call.cancelled.is_set() and interrupted_at is None:
                interrupted_at = time.monotonic()
            return interrupted_at is not None and time.monotonic() - interrupted_at > _INTERRUPT_GRACE

        def on_event(event):
            nonlocal last_message, error
            msg = event.get("msg") or {}
            kind = msg.get("type")
            self._forward(call, event)
            if sub_id is not None and event.get("id") not in (sub_id, "", None):
                return False  # a late event of an earlier (cancelled) turn of this session: not ours to act on
            if kind == "session_configured":
                self._register(call, session, str(msg.get("session_id")))
            elif kind == "exec_approval_request":
                self._elicit_async(call, session, event, self._exec_elicitation(call, event))
            elif kind == "apply_patch_approval_request":
                self._elicit_async(call, session, event, self._patch_elicitation(call, event))
            elif kind == "agent_message":
                last_message = msg.get("message")
            elif kind == "task_started":
                error = None  # errors before the turn (e.g. MCP startup) are not its result
            elif kind == "error":
                error = msg.get("message")
            elif kind in TURN_END_EVENTS:
                if kind == "task_complete":
                    text = msg.get("last_agent_message")
                    if text is None:
                        text = last_message
                    if text is None and error is not None:
                        self._finish(call, _text_result("Codex runtime error: %s" % error, error=True, session_id=call.session_id))
                    else:
                        self._finish(call, _text_result(text or "", session_id=call.session_id))
                elif kind == "turn_aborted":
                    reason = msg.get("reason", "interrupted")
                    self._finish(call, _text_result("Codex turn aborted: %s" % reason, error=True, session_id=call.session_id))
                else:
                    self._finish(call, _text_result("Codex runtime error: the session shut down", error=True))
                return True
            return False

        ended = pump_events(session, on_event, tick)
        if ended == "tick":
            self._finish(call, None)
        elif ended == "closed":
            self._finish(call, _text_result("Codex runtime error: the session shut down", error=True))

    def _register(self, call, session, sid):
        """Keep a new session for codex-reply; shut down the least recently used idle ones."""
        evicted = []
        with self._lock:
            if call.session_id is not None:
                return
            call.session_id = sid
            self._sessions[sid] = session
            self._busy.add(sid)
            idle = [k for k in self._sessions if k not in self._busy]
            while len(self._sessions) > MCP_SERVER_MAX_SESSIONS and idle:
                old = idle.pop(0)
                evicted.append(self._sessions.pop(old))
        for old_session in evicted:
            threading.Thread(target=self._stop_session, args=(old_session,), daemon=True).start()

    def _forward(self, call, event):
        """Send one session event as a codex/event notification (and progress, if asked)."""
        params = {"_meta": {"requestId": call.request_id}}
        params.update(event)
        try:
            self.conn.notify("codex/event", params)
            msg = event.get("msg") or {}
            if call.progress_token is not None and msg.get("type") in ("agent_message", "exec_command_begin", "task_started"):
                call.progress += 1
                text = msg.get("message") or " ".join(msg.get("command") or []) or msg.get("type")
                self.conn.notify("notifications/progress", {
                    "progressToken": call.progress_token, "progress": call.progress, "message": str(text)[:200]})
        except McpError:
            call.cancelled.set()

    # -- approvals -------------------------------------------------------------------
    def _exec_elicitation(self, call, event):
        import shlex  # startup budget: only the MCP server quotes commands

        msg = event.get("msg") or {}
        command = [str(a) for a in msg.get("command") or []]
        params = {
            "message": "Allow Codex to run `%s` in `%s`?" % (" ".join(shlex.quote(a) for a in command), msg.get("cwd")),
            "requestedSchema": {"type": "object", "properties": {}},
            "codex_elicitation": "exec-approval",
            "codex_mcp_tool_call_id": str(call.request_id),
            "codex_event_id": event.get("id"),
            "codex_call_id": msg.get("call_id"),
            "codex_command": command,
            "codex_cwd": str(msg.get("cwd")),
        }
        if msg.get("reason"):
            params["codex_reason"] = msg["reason"]
        return params

    def _patch_elicitation(self, call, event):
        msg = event.get("msg") or {}
        text = "Allow Codex to apply proposed code changes?"
        if msg.get("reason"):
            text = "%s\n%s" % (msg["reason"], text)
        params = {
            "message": text,
            "requestedSchema": {"type": "object", "properties": {}},
            "codex_elicitation": "patch-approval",
            "codex_mcp_tool_call_id": str(call.request_id),
            "codex_event_id": event.get("id"),
            "codex_call_id": msg.get("call_id"),
            "codex_reason": msg.get("reason"),
            "codex_changes": msg.get("changes") or {},
        }
        if msg.get("grant_root") is not None:
            params["codex_grant_root"] = str(msg["grant_root"])
        return params

    def _elicit_async(self, call, session, event, params):
        """Ask the client in another thread (events keep streaming), then submit the answer."""
        kind = "exec_approval" if params["codex_elicitation"] == "exec-approval" else "patch_approval"

        def ask():
            try:
                result = self.conn.request("elicitation/create", params, cancel=call.cancelled)
                decision = parse_elicitation_decision(result)
            except McpError as exc:
                log("warn", "mcp server: elicitation failed (%s); treating as denied", exc)
                decision = "denied"
            if call.cancelled.is_set() or call.done.is_set():
                return
            try:
                session.submit({"type": kind, "id": event.get("id"), "call_id": (event.get("msg") or {}).get("call_id"), "decision": decision})
            except Exception as exc:
                log("warn", "mcp server: submitting the approval failed: %s", exc)

        threading.Thread(target=ask, name="mcp-elicit-%s" % call.request_id, daemon=True).start()


def _text_result(text, error=False, session_id=None):
    """A CallToolResult with one text block (isError only when set, as upstream)."""
    result = {"content": [{"type": "text", "text": text}]}
    if error:
        result["isError"] = True
    if session_id is not None:
        result["structuredContent"] = {"sessionId": session_id, "threadId": session_id, "content": text}
    return result


def _default_session_factory(cfg):
    """Session(cfg) from §16, started."""
    return Session(cfg).start()


def run_mcp_server(args, cfg_loader, session_factory=None):
    """`codex mcp`: serve MCP on stdin/stdout until stdin closes."""
    cfg_loader()  # a broken config.toml fails now, once, instead of on every call
    overrides = list(getattr(args, "config_overrides", None) or [])
    strict = bool(getattr(args, "strict_config", False))
    base = dict(
        model=args.model, approval_policy=APPROVAL_ALIASES.get(args.approval_policy, args.approval_policy),
        sandbox_mode=args.sandbox_mode, cwd=args.cd, profile=args.profile,
        dangerously_bypass=args.dangerously_bypass, oss=args.oss,
    )
    if getattr(args, "full_auto", False):
        base["sandbox_mode"] = base["sandbox_mode"] or "workspace-write"
        base["approval_policy"] = base["approval_policy"] or "on-failure"

    def load(fields, cli):
        merged = dict(base)
        merged.update({k: v for k, v in fields.items() if v is not None})
        return load_config(ConfigOverrides(**merged), overrides + list(cli), strict=strict)

    if sys.stdin.isatty():
        sys.stderr.write("codex mcp: serving MCP over stdin/stdout (JSON-RPC, one message per line); "
                         "run it from an MCP client, e.g. `npx @modelcontextprotocol/inspector codex mcp`. Ctrl-D stops.\n")
    # The protocol owns the real stdout; anything else that prints (a stray print, a
    # child process inheriting fd 1) goes to stderr instead of corrupting the stream.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    server = McpServer(sys.stdin.buffer, out, load_config=load, session_factory=session_factory)
    try:
        return server.serve()
    except KeyboardInterrupt:
        # serve() has stopped every session; but the reader thread is blocked in stdin's
        # buffer with its lock held, and a normal interpreter exit then aborts with "could not
        # acquire lock for <stdin>" (SIGABRT, exit 134).  Leave at once, as a Ctrl-C should.
        sys.stderr.write("codex: interrupted\n")
        sys.stderr.flush()
        os._exit(130)
    finally:
        try:
            out.close()
        except OSError:
            pass


###############################################################################
# §20 Front end: codex proto
###############################################################################

# `codex proto`: stdin carries submissions, one JSON object per
# line ({"id": "...", "op": {"type": ...}}); stdout carries events, one per line, the first
# being session_configured.  Bad lines are reported on stderr and skipped.  Stdin EOF stops
# reading only; the process ends after a `shutdown` op (shutdown_complete) or Ctrl-C.

PROTO_STDIN_TTY = "Protocol mode expects stdin to be a pipe, not a terminal"


def run_proto(cfg, stdin=None, stdout=None, stderr=None):
    """Bridge a Session to JSON lines on stdio until shutdown_complete; return the exit code."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    session = Session(cfg).start()
    write_lock = threading.Lock()
    stdin_closed = threading.Event()

    def reader():
        try:
            read_ops()
        finally:
            stdin_closed.set()

    def read_ops():
        for line in stdin:
            line = line.strip()
            if not line:
                continue
            try:
                sub = json.loads(line)
                if not isinstance(sub, dict) or not isinstance(sub.get("op"), dict):
                    raise ValueError("expected {\"id\": ..., \"op\": {\"type\": ...}}")
            except ValueError as exc:
                stderr.write("codex proto: invalid submission skipped (%s): %s\n" % (exc, line[:200]))
                stderr.flush()
                continue
            session.submit(sub)

    def tick():
        if stdin_closed.is_set() and not session.busy and not session.closed:
            # EOF on stdin: the running task was allowed to finish; now end as `shutdown` does
            session.shutdown()
        return False

    def on_event(event):
        with write_lock:
            stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
            stdout.flush()
        return event["msg"]["type"] == "shutdown_complete"

    threading.Thread(target=reader, name="proto-stdin", daemon=True).start()
    try:
        pump_events(session, on_event, tick, poll=0.5)
        return 0
    except KeyboardInterrupt:
        session.shutdown()
        return 130
    finally:
        session.shutdown()  # SIGTERM/SIGHUP (SystemExit) too: kill the running command, flush the rollout


def _cmd_proto(args, cfg_loader):
    """`codex proto`: ops in on stdin, events out on stdout, one JSON object per line."""
    if _isatty(sys.stdin):
        raise UsageError(PROTO_STDIN_TTY)
    return run_proto(cfg_loader())


###############################################################################
# §21a Front end: codex proxy, the provider side
###############################################################################

# `codex proxy` is an HTTP/1.1 server that forwards every /v1/* request to the active
# provider, adding the provider's query params, headers and key.  Both sides are asyncio
# streams driven by h11 state machines (a server one per client connection, a client one
# per provider connection, kept alive in a small pool).  httpx is not used here: its
# connection pool costs ~0.6 ms per request and collapses under concurrency (measured in
# bench/bench_proxy.py), and a proxy must not add gzip, cookies or a User-Agent anyway.
# Bodies flow chunk by chunk in both directions: a chunk is read from one side only after
# the previous one was written to the other, so memory per request is a few socket buffers
# whatever the body size, and SSE events reach the client the moment the provider sends them.
#
# Safety: a proxy holding the user's key must not become an open relay.  It binds loopback
# unless --allow-remote (which then requires a client token), refuses Host headers that are
# not loopback names (DNS rebinding) and browser requests from other origins unless
# --allow-cors-any, and never logs headers, query strings or bodies.

PROXY_DEFAULT_BIND = "127.0.0.1:11435"  #: where `codex proxy` listens by default
PROXY_TOKEN_ENV = "CODEX_PROXY_TOKEN"  #: environment variable holding the client token
PROXY_TOKEN_HEADER = b"x-codex-proxy-token"  #: header a client may carry the token in
PROXY_MIN_TOKEN_LEN = 16  #: shortest client token accepted
#: hop-by-hop headers (RFC 9110 §7.6.1), never forwarded; so are the names Connection lists
PROXY_HOP_BY_HOP = frozenset(
    (b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
     b"trailer", b"transfer-encoding", b"upgrade", b"proxy-connection")
)
#: request headers dropped besides hop-by-hop ones: Host is rewritten to the provider's,
#: Expect is answered by the proxy itself, the token header is ours
_PROXY_DROP_REQUEST = frozenset((b"host", b"expect", PROXY_TOKEN_HEADER))
_PROXY_CORS_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS, HEAD"  #: preflight answer
_PROXY_CHUNK = 64 * 1024  #: bytes read from a socket at a time (the per-direction buffer)
_PROXY_MAX_HEAD = 64 * 1024  #: largest request line + headers accepted
_PROXY_IDLE_TIMEOUT = 120.0  #: seconds a kept-alive client connection may sit idle
_PROXY_BODY_TIMEOUT = 300.0  #: seconds a client may pause in the middle of a request
_PROXY_CONNECT_TIMEOUT = 30.0  #: seconds to connect to the provider
_PROXY_DRAIN_LIMIT = 1024 * 1024  #: body bytes read and dropped before an early error reply
_PROXY_UPSTREAM_IDLE = 50.0  #: seconds an idle provider connection is kept for reuse
_PROXY_POOL_SIZE = 64  #: idle provider connections kept
_PROXY_REPLAY_LIMIT = 64 * 1024  #: bodies up to this size are resent when a kept-alive connection was stale


class _ClientGone(Exception):
    """Drop the client connection now: the client left, or the provider broke mid-answer."""


def _parse_bind(spec):
    """Split `HOST:PORT`, `[V6]:PORT`, `:PORT` or `PORT` into (host, port)."""
    spec = (spec or PROXY_DEFAULT_BIND).strip()
    host, port = "127.0.0.1", spec
    if spec.startswith("["):
        end = spec.find("]")
        host, port = spec[1:end], spec[end + 1:].lstrip(":")
    elif ":" in spec:
        host, port = spec.rsplit(":", 1)
        host = host or "127.0.0.1"
    try:
        port = int(port)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise UsageError("--bind %s: expected HOST:PORT such as %s" % (spec, PROXY_DEFAULT_BIND))
    return host, port


def _is_loopback_host(host):
    """Whether a host name or address only reaches this machine."""
    import ipaddress

    host = host.strip().strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _host_of(authority):
    """The host part of a Host or Origin authority (`h:p`, `[v6]:p`, `scheme://h:p`)."""
    authority = authority.split("://", 1)[-1].split("/", 1)[0]
    if authority.startswith("["):
        return authority[1:authority.find("]")]
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def _reason(status):
    """The standard reason phrase for a status code ("" when unknown)."""
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _json_error(message, kind, status):
    """An OpenAI-shaped error body."""
    return {"error": {"message": message, "type": kind, "param": None, "code": status}}


class _ProxyCredentials(object):
    """The key injected when a client sends no Authorization: env_key, else auth.json."""

    def __init__(self, provider, home, environ=None):
        self.provider = provider
        self.home = home
        self.environ = os.environ if environ is None else environ
        self._auth_stamp = None
        self._auth_headers = []

    def _from_auth_json(self):
        path = auth_path(self.home) if self.home is not None else None
        try:
            st = path.stat() if path is not None else None
        except OSError:
            st = None
        stamp = None if st is None else (st.st_mtime_ns, st.st_size)
        if stamp != self._auth_stamp:  # re-read only when auth.json changed
            auth = read_auth(self.home) if stamp is not None else None  # AuthError: again next time
            tokens = (auth or {}).get("tokens") or {}
            found = []
            if auth and auth.get("OPENAI_API_KEY"):
                found = [(b"authorization", ("Bearer " + str(auth["OPENAI_API_KEY"])).encode())]
            elif isinstance(tokens, dict) and tokens.get("access_token"):
                found = [(b"authorization", ("Bearer " + str(tokens["access_token"])).encode())]
                if tokens.get("account_id"):
                    found.append((b"chatgpt-account-id", str(tokens["account_id"]).encode()))
            self._auth_stamp, self._auth_headers = stamp, found
        return self._auth_headers

    def headers(self):
        """Header pairs carrying the provider's credentials; [] when there are none."""
        if self.provider.env_key:
            value = self.environ.get(self.provider.env_key, "").strip()
            if value:
                return [(b"authorization", ("Bearer " + value).encode())]
        return self._from_auth_json()

    def describe(self):
        """Where the injected key comes from, for the startup banner (never the key)."""
        if self.provider.env_key and self.environ.get(self.provider.env_key, "").strip():
            return "$%s" % self.provider.env_key
        if self._from_auth_json():
            return str(auth_path(self.home))
        return None


def _write_parts(writer, parts):
    """Queue h11's output on a stream, with flow control (unlike writelines)."""
    # Not writelines(): in Python 3.12.1 and 3.13.0 (at least) the selector transport's
    # writelines() skips flow control, so drain() never waits and a slow reader makes
    # memory grow without bound (found by the download test under 3.13).
    writer.write(parts[0] if len(parts) == 1 else b"".join(parts))


async def _read_within(reader, timeout):
    """reader.read(_PROXY_CHUNK), raising asyncio.TimeoutError after `timeout` seconds."""
    import asyncio  # startup budget

    within = getattr(asyncio, "timeout", None)  # Python 3.11+: no extra task per read
    if within is not None:
        async with within(timeout):
            return await reader.read(_PROXY_CHUNK)
    return await asyncio.wait_for(reader.read(_PROXY_CHUNK), timeout)


class _UpstreamError(Exception):
    """The provider could not be reached, or broke the protocol before answering."""

    def __init__(self, message, timeout=False):
        Exception.__init__(self, message)
        self.timeout = timeout


class _UpstreamConnection(object):
    """One HTTP/1.1 connection to the provider: asyncio streams and an h11 client."""

    def __init__(self, reader, writer):
        import h11  # startup budget

        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_PROXY_MAX_HEAD)
        self.idle_since = time.monotonic()
        self.reused = False

    async def send(self, event):
        """Send one h11 event, waiting while the provider is slow to read."""
        import asyncio  # startup budget

        parts = self.h11.send_with_data_passthrough(event)
        if parts:
            _write_parts(self.writer, parts)
            if self.writer.transport.get_write_buffer_size() > _PROXY_CHUNK:
                await asyncio.wait_for(self.writer.drain(), _PROXY_BODY_TIMEOUT)
            else:
                await self.writer.drain()

    async def next_event(self, timeout):
        """The next h11 event from the provider (asyncio.TimeoutError after `timeout` s idle)."""
        import h11  # startup budget

        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.h11.receive_data(await _read_within(self.reader, timeout))

    def usable(self):
        """Whether a kept-alive connection still looks open and fresh."""
        return (not self.writer.transport.is_closing() and not self.reader.at_eof()
                and time.monotonic() - self.idle_since < _PROXY_UPSTREAM_IDLE)

    def close(self):
        self.writer.close()


class _UpstreamPool(object):
    """Kept-alive connections to the provider's origin (direct, or via $HTTP(S)_PROXY)."""

    def __init__(self, base_url, environ=None):
        from urllib.parse import urlsplit

        parts = urlsplit(base_url)
        self.base_url = base_url
        self.https = parts.scheme.lower() == "https"
        self.host = parts.hostname or ""
        try:
            self.port = parts.port or (443 if self.https else 80)
        except ValueError:
            raise ConfigError("provider base_url %s has a bad port; fix it in config.toml" % base_url)
        shown = "[%s]" % self.host if ":" in self.host else self.host
        default_port = self.port == (443 if self.https else 80)
        self.authority = shown if default_port else "%s:%d" % (shown, self.port)
        self.host_header = self.authority.encode("idna") if not shown.isascii() else self.authority.encode()
        self.path = parts.path.rstrip("/")
        self.proxy = self._proxy_for(os.environ if environ is None else environ)
        self._ssl = None
        self._idle = []

    def _proxy_for(self, environ):
        """(host, port, Proxy-Authorization or None) of the HTTP proxy to use, or None."""
        import base64
        from urllib.parse import unquote, urlsplit
        from urllib.request import proxy_bypass_environment

        if _is_loopback_host(self.host):
            return None
        proxies = {}
        for name, value in environ.items():  # the same variables urllib and httpx read
            low = name.lower()
            if value and low.endswith("_proxy") and (name == low or low not in environ):
                proxies[low[:-6]] = value
        if proxy_bypass_environment(self.host, proxies):
            return None
        url = proxies.get("https" if self.https else "http") or proxies.get("all")
        if not url:
            return None
        p = urlsplit(url if "://" in url else "http://" + url)
        if p.scheme.lower() != "http" or not p.hostname:
            raise ConfigError(
                "codex proxy reaches providers through http:// proxies only; %s_PROXY is %s"
                % ("HTTPS" if self.https else "HTTP", "%s://%s" % (p.scheme, p.netloc.rpartition("@")[2]))
            )
        auth = None
        if p.username:
            pair = "%s:%s" % (unquote(p.username), unquote(p.password or ""))
            auth = "Basic " + base64.b64encode(pair.encode()).decode()
        return (p.hostname, p.port or 80, auth)

    def describe(self):
        """The provider URL, and the proxy it is reached through (no credentials)."""
        if self.proxy is None:
            return self.base_url
        return "%s (via HTTP proxy %s:%d)" % (self.base_url, self.proxy[0], self.proxy[1])

    def request_target(self, path):
        """What goes on the request line: the path, or an absolute URL for an HTTP proxy."""
        if self.proxy is not None and not self.https:
            return ("http://%s%s" % (self.authority, path)).encode()
        return path.encode()

    def _ssl_context(self):
        import ssl  # startup budget

        if self._ssl is None:
            ctx = ssl.create_default_context()  # also honours SSL_CERT_FILE / SSL_CERT_DIR
            if not (os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR")):
                try:  # some Pythons (python.org's macOS builds) ship without CA roots
                    import certifi

                    ctx.load_verify_locations(certifi.where())
                except (ImportError, OSError, ValueError):
                    pass
            ctx.set_alpn_protocols(["http/1.1"])
            self._ssl = ctx
        return self._ssl

    def _tunnel(self):
        """Open a CONNECT tunnel through the HTTP proxy (blocking; run in a thread)."""
        import socket

        phost, pport, auth = self.proxy
        sock = socket.create_connection((phost, pport), timeout=_PROXY_CONNECT_TIMEOUT)
        try:
            authority = "%s:%d" % ("[%s]" % self.host if ":" in self.host else self.host, self.port)
            head = "CONNECT %s HTTP/1.1\r\nHost: %s\r\n" % (authority, authority)
            if auth:
                head += "Proxy-Authorization: %s\r\n" % auth
            sock.sendall((head + "\r\n").encode())
            answer = b""
            while b"\r\n\r\n" not in answer:
                more = sock.recv(4096)
                if not more or len(answer) > _PROXY_MAX_HEAD:
                    raise OSError("HTTP proxy %s:%d closed the connection during CONNECT" % (phost, pport))
                answer += more
            status = answer.split(b"\r\n", 1)[0].decode("latin-1")
            if len(status.split()) < 2 or not status.split()[1].startswith("2"):
                raise OSError("HTTP proxy %s:%d refused CONNECT %s: %s" % (phost, pport, authority, status))
            sock.settimeout(None)
            return sock
        except BaseException:
            sock.close()
            raise

    async def _connect(self):
        import asyncio  # startup budget

        ssl_ctx = self._ssl_context() if self.https else None
        hostname = self.host if self.https else None
        try:
            if self.proxy is not None and self.https:
                sock = await asyncio.get_running_loop().run_in_executor(None, self._tunnel)
                opening = asyncio.open_connection(sock=sock, ssl=ssl_ctx, server_hostname=hostname,
                                                  limit=2 * _PROXY_CHUNK)
            elif self.proxy is not None:
                opening = asyncio.open_connection(self.proxy[0], self.proxy[1], limit=2 * _PROXY_CHUNK)
            else:
                opening = asyncio.open_connection(self.host, self.port, ssl=ssl_ctx, server_hostname=hostname,
                                                  limit=2 * _PROXY_CHUNK)
            reader, writer = await asyncio.wait_for(opening, _PROXY_CONNECT_TIMEOUT)
        except asyncio.TimeoutError:
            raise _UpstreamError("no connection within %ds" % _PROXY_CONNECT_TIMEOUT, timeout=True)
        except OSError as exc:
            raise _UpstreamError(str(exc) or type(exc).__name__)
        return _UpstreamConnection(reader, writer)

    async def acquire(self):
        """A connection to the provider: the freshest idle one, else a new one."""
        while self._idle:
            conn = self._idle.pop()
            if conn.usable():
                conn.reused = True
                return conn
            conn.close()
        return await self._connect()

    def release(self, conn):
        """Keep a connection whose exchange completed cleanly; close any other."""
        import h11  # startup budget

        if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE and not conn.writer.transport.is_closing():
            conn.h11.start_next_cycle()
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
            if len(self._idle) > _PROXY_POOL_SIZE:
                self._idle.pop(0).close()
        else:
            conn.close()

    def close(self):
        while self._idle:
            self._idle.pop().close()


###############################################################################
# §21b Front end: codex proxy, the server
###############################################################################


class _RequestBody(object):
    """The client's body on its way to the provider; small ones can be sent twice."""

    def __init__(self, chunks):
        self._chunks = chunks
        self.kept = []
        self.kept_size = 0
        self.replayable = True
        self.done = False

    async def send_to(self, up, answered):
        """Send what was kept (a retry), then the rest as it comes, until `answered` is done."""
        import h11  # startup budget

        for chunk in self.kept:
            await up.send(h11.Data(data=chunk))
        while not self.done and not answered.done():
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self.done = True
                break
            if self.replayable:
                if self.kept_size + len(chunk) <= _PROXY_REPLAY_LIMIT:
                    self.kept.append(chunk)
                    self.kept_size += len(chunk)
                else:
                    self.replayable, self.kept = False, []
            await up.send(h11.Data(data=chunk))


class _Exchange(object):
    """One request on one client connection, and what the log line reports about it."""

    def __init__(self, conn, reader, writer, request, peer):
        self.conn, self.reader, self.writer, self.peer = conn, reader, writer, peer
        self.raw_method = bytes(request.method)
        self.method = self.raw_method.decode("ascii", "replace")
        self.target = request.target.decode("latin-1")
        self.path = self.target.split("?", 1)[0]
        self.headers = [(bytes(k).lower(), bytes(v)) for k, v in request.headers]
        self.started = time.monotonic()
        self.status = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.note = ""

    def header(self, name):
        """The first value of request header `name` (bytes, lower-case) as str, or None."""
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None


class ProxyServer(object):
    """The `codex proxy` server: routes, auth, CORS, and streaming to the provider."""

    def __init__(self, provider, home, allow_cors_any=False, token=None, loopback_only=True, environ=None):
        self.provider = provider
        self.base = (provider.base_url or "https://api.openai.com/v1").rstrip("/")
        if not re.match(r"(?i)https?://[^/]", self.base):
            raise ConfigError(
                "model_providers.%s.base_url = %r is not an http(s) URL; fix it in config.toml"
                % (provider.id, provider.base_url)
            )
        self.credentials = _ProxyCredentials(provider, home, environ)
        self._pool = _UpstreamPool(self.base, environ)
        self.allow_cors_any = allow_cors_any
        self.token = token.encode() if token else None
        self.loopback_only = loopback_only
        self.environ = os.environ if environ is None else environ
        self.idle_read_timeout = max(1.0, (provider.stream_idle_timeout_ms or 300000) / 1000.0)
        self.port = None
        self._tasks = set()

    # -- upstream ---------------------------------------------------------------------

    def upstream_target(self, target):
        """The provider's path and query for an incoming `/v1/...?...` (query_params applied)."""
        from urllib.parse import parse_qsl, urlencode

        path, _, query = target.partition("?")
        url = (self._pool.path + path[len("/v1"):]) or "/"
        if self.provider.query_params:
            ours = {str(k): str(v) for k, v in self.provider.query_params.items()}
            theirs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in ours]
            query = urlencode(theirs + sorted(ours.items()))
        return url + ("?" + query if query else "")

    def _upstream_headers(self, ex, client_auth, framing):
        """Request headers for the provider: the client's, minus hop-by-hop, plus ours."""
        named = set()
        for key, value in ex.headers:
            if key == b"connection":
                named.update(t.strip().lower() for t in value.split(b","))
        drop = PROXY_HOP_BY_HOP | _PROXY_DROP_REQUEST | named
        out = [(k, v) for k, v in ex.headers if k not in drop and not (k == b"authorization" and not client_auth)]
        extra = [(str(k).lower().encode(), str(v).encode()) for k, v in self.provider.http_headers.items()]
        for header, var in self.provider.env_http_headers.items():
            value = self.environ.get(str(var), "").strip()
            if value:
                extra.append((str(header).lower().encode(), value.encode()))
        if not client_auth:
            extra.extend(self.credentials.headers())
        replaced = set(k for k, _ in extra)
        return [(b"host", self._pool.host_header)] + [(k, v) for k, v in out if k not in replaced] + extra + framing

    def _response_headers(self, raw):
        """Provider response headers for the client: hop-by-hop stripped, CORS added."""
        named = set()
        for key, value in raw:
            if key.lower() == b"connection":
                named.update(t.strip().lower() for t in value.split(b","))
        out = []
        for key, value in raw:
            low = key.lower()
            if low in PROXY_HOP_BY_HOP or low in named:
                continue
            if self.allow_cors_any and low.startswith(b"access-control-"):
                continue
            out.append((low, value))
        return out + self._cors_headers()

    def _cors_headers(self):
        if not self.allow_cors_any:
            return []
        return [(b"access-control-allow-origin", b"*"), (b"access-control-expose-headers", b"*")]

    # -- the client side ----------------------------------------------------------------

    async def _next_event(self, conn, reader, timeout):
        """The next h11 event, reading from the socket as needed; None on EOF or timeout."""
        import asyncio  # startup budget: the proxy is the only asyncio user here
        import h11  # startup budget

        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await _read_within(reader, timeout)
            except (asyncio.TimeoutError, ConnectionError, OSError):
                return None
            conn.receive_data(data)
            if not data and conn.their_state is not h11.DONE:
                return None if conn.their_state is h11.IDLE else h11.ConnectionClosed()

    async def _write(self, ex, event):
        """Send one h11 event to the client, waiting until the socket accepted it."""
        await self._flush(ex, ex.conn.send_with_data_passthrough(event))

    async def _flush(self, ex, parts):
        """Write bytes h11 produced for the client; wait while the client is slow to read."""
        if parts:
            _write_parts(ex.writer, parts)
            try:
                await ex.writer.drain()
            except (ConnectionError, OSError):
                raise _ClientGone()

    async def _request_body(self, ex, done):
        """Yield the client's body chunk by chunk (sending 100 Continue when asked)."""
        import h11  # startup budget

        if ex.conn.they_are_waiting_for_100_continue:
            await self._write(ex, h11.InformationalResponse(status_code=100, headers=[]))
        while True:
            try:
                event = await self._next_event(ex.conn, ex.reader, _PROXY_BODY_TIMEOUT)
            except h11.RemoteProtocolError:
                event = None
            if isinstance(event, h11.Data):
                ex.bytes_in += len(event.data)
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                done.set()  # only now may the hang-up watcher read from the socket
                return
            else:
                raise _ClientGone()

    async def _discard_body(self, ex):
        """Read and drop a request body we will not forward; False if it was too big."""
        import h11  # startup budget

        if ex.conn.their_state is not h11.SEND_BODY:
            return ex.conn.their_state is h11.DONE
        if ex.conn.they_are_waiting_for_100_continue:
            return False
        seen = 0
        while seen <= _PROXY_DRAIN_LIMIT:
            event = await self._next_event(ex.conn, ex.reader, _PROXY_BODY_TIMEOUT)
            if isinstance(event, h11.Data):
                seen += len(event.data)
                ex.bytes_in += len(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return True
            else:
                return False
        return False

    async def _reply(self, ex, status, payload, extra=()):
        """Answer the request ourselves with a small JSON body (or none, for 204)."""
        import h11  # startup budget

        drained = await self._discard_body(ex)
        body = b"" if payload is None else (json.dumps(payload) + "\n").encode()
        headers = [(b"content-type", b"application/json")] if payload is not None else []
        headers += [(b"content-length", str(len(body)).encode())] + list(extra) + self._cors_headers()
        if not drained:
            headers.append((b"connection", b"close"))
        ex.status = status
        await self._write(ex, h11.Response(status_code=status, headers=headers, reason=_reason(status).encode()))
        if body and ex.method != "HEAD":
            await self._write(ex, h11.Data(data=body))
            ex.bytes_out += len(body)
        await self._write(ex, h11.EndOfMessage())

    async def _watch_client(self, ex, body_done):
        """Return once the client hangs up after its request (data pipelined is kept)."""
        import asyncio  # startup budget

        await body_done.wait()
        try:
            data = await ex.reader.read(_PROXY_CHUNK)
        except (ConnectionError, OSError):
            data = b""
        if data:
            ex.conn.receive_data(data)  # a pipelined request: h11 keeps it for later
            await asyncio.Event().wait()
        return "gone"

    # -- routing ------------------------------------------------------------------------

    def _check_access(self, ex):
        """None if the request may proceed, else (status, message, kind)."""
        host = ex.header(b"host") or ""
        if self.loopback_only and not _is_loopback_host(_host_of(host) or "?"):
            return (403, "Host %r is not a loopback name; codex proxy only answers requests "
                    "addressed to localhost (DNS rebinding protection)" % host[:100], "forbidden")
        origin = ex.header(b"origin")
        if origin is not None and not self.allow_cors_any and origin.split("://", 1)[-1].rstrip("/") != host:
            return (403, "cross-origin browser request from %s refused; start codex proxy with "
                    "--allow-cors-any to allow browser apps" % origin[:100], "forbidden")
        return None

    def _client_token_ok(self, ex):
        """Whether the request carries the client token; strips it from Authorization."""
        import hmac

        if self.token is None:
            return True
        given = ex.header(PROXY_TOKEN_HEADER)
        if given is not None and hmac.compare_digest(given.encode("latin-1"), self.token):
            ex.own_auth = True  # with the token header, a client's Authorization is its own key
            return True
        auth = ex.header(b"authorization") or ""
        if auth[:7].lower() == "bearer " and hmac.compare_digest(auth[7:].strip().encode("latin-1"), self.token):
            ex.headers = [(k, v) for k, v in ex.headers if k != b"authorization"]
            return True
        return False

    async def _handle(self, ex):
        """Route one request; return when the response has been sent (or abandoned)."""
        from urllib.parse import unquote

        denied = self._check_access(ex)
        if denied:
            return await self._reply(ex, denied[0], _json_error(denied[1], denied[2], denied[0]))
        if ex.path == "/health":
            if ex.method not in ("GET", "HEAD"):
                return await self._reply(ex, 405, _json_error("use GET /health", "method_not_allowed", 405),
                                         [(b"allow", b"GET, HEAD")])
            return await self._reply(ex, 200, {"status": "ok"})
        if not (ex.path == "/v1" or ex.path.startswith("/v1/")):
            return await self._reply(ex, 404, _json_error(
                "no route for %s %s; codex proxy serves /v1/* and /health" % (ex.method, ex.path[:200]),
                "not_found", 404))
        if any(seg in (".", "..") for seg in unquote(ex.path).split("/")):
            return await self._reply(ex, 400, _json_error("dot segments are not allowed in the path", "invalid_request_error", 400))
        if self.allow_cors_any and ex.method == "OPTIONS" and ex.header(b"access-control-request-method"):
            asked = ex.header(b"access-control-request-headers") or "*"
            return await self._reply(ex, 204, None, [
                (b"access-control-allow-methods", _PROXY_CORS_METHODS.encode()),
                (b"access-control-allow-headers", asked.encode("latin-1")),
                (b"access-control-max-age", b"86400"),
            ])
        if not self._client_token_ok(ex):
            return await self._reply(ex, 401, _json_error(
                "missing or wrong codex proxy token; send it as `Authorization: Bearer TOKEN` "
                "or in the X-Codex-Proxy-Token header", "invalid_proxy_token", 401),
                [(b"www-authenticate", b'Bearer realm="codex proxy"')])
        return await self._forward(ex)

    async def _forward(self, ex):
        """Send the request to the provider and stream the answer back."""
        import asyncio  # startup budget
        import h11  # startup budget

        body_done = asyncio.Event()
        length = ex.header(b"content-length")
        chunked = b"chunked" in b",".join(v.lower() for k, v in ex.headers if k == b"transfer-encoding")
        framing = []
        if chunked or (length is not None and length.strip() not in ("", "0")):
            body = _RequestBody(self._request_body(ex, body_done))
            if length is None:  # the client's chunking was hop-by-hop; chunk anew
                framing = [(b"transfer-encoding", b"chunked")]
        else:
            event = await self._next_event(ex.conn, ex.reader, _PROXY_BODY_TIMEOUT)
            if not isinstance(event, h11.EndOfMessage):
                raise _ClientGone()
            body_done.set()
            body = None
            if length is None and ex.method in ("POST", "PUT", "PATCH"):
                framing = [(b"content-length", b"0")]
        try:
            # The proxy's key wins over a client's placeholder (SDKs insist on an api_key, so the
            # README's `api_key="unused"` used to reach the provider); a client's Authorization
            # is forwarded when the proxy has no key, or when it came with the token header.
            client_auth = ex.header(b"authorization") is not None and (
                getattr(ex, "own_auth", False) or not self.credentials.headers())
            headers = self._upstream_headers(ex, client_auth, framing)
        except CodexError as exc:  # e.g. auth.json was rewritten with bad JSON
            return await self._reply(ex, 500, _json_error(str(exc), "proxy_error", 500))
        exchange = asyncio.ensure_future(self._exchange(ex, headers, body))
        watcher = asyncio.ensure_future(self._watch_client(ex, body_done))
        try:
            done, _ = await asyncio.wait((exchange, watcher), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the server is shutting down
            exchange.cancel()
            watcher.cancel()
            raise
        watcher.cancel()
        await asyncio.wait((watcher,))  # it must stop reading before the next request is read
        if exchange in done:
            return exchange.result()
        exchange.cancel()  # the client hung up: stop talking to the provider
        try:
            await exchange
        except (asyncio.CancelledError, Exception):
            pass
        raise _ClientGone()

    async def _exchange(self, ex, headers, body):
        """The provider half: send the request, relay the answer event by event."""
        import asyncio  # startup budget
        import h11  # startup budget

        request = h11.Request(method=ex.raw_method, target=self._pool.request_target(self.upstream_target(ex.target)),
                              headers=headers)
        for attempt in (1, 2):
            try:
                up = await self._pool.acquire()
            except _UpstreamError as exc:
                return await self._upstream_failed(ex, exc)
            try:
                await up.send(request)
                if body is not None:
                    await self._send_body(up, body)
                else:
                    await up.send(h11.EndOfMessage())
                while True:
                    response = await up.next_event(self.idle_read_timeout)
                    if not isinstance(response, h11.InformationalResponse):
                        break
                if not isinstance(response, h11.Response):
                    raise _UpstreamError("the connection closed before an answer")
                break
            except (_UpstreamError, OSError, h11.ProtocolError, asyncio.TimeoutError) as exc:
                up.close()
                stale = up.reused and not isinstance(exc, asyncio.TimeoutError)
                if attempt == 1 and stale and (body is None or body.replayable):
                    continue  # the provider had closed that kept-alive connection: once more
                return await self._upstream_failed(ex, exc)
            except BaseException:
                up.close()
                raise
        clean = False
        try:
            ex.status = response.status_code
            reason = bytes(response.reason) or _reason(response.status_code).encode()
            headers = self._response_headers(response.headers)
            if body is not None and not body.done:  # answered early: the rest of the body is unread
                headers.append((b"connection", b"close"))
                ex.note = "answered before the request body ended"
            # Whatever the provider's last read brought is written in one go (head and body
            # together for small answers); then wait for more.  Nothing waits for a batch
            # to fill, so SSE events still leave as they come.
            batch = ex.conn.send_with_data_passthrough(h11.Response(
                status_code=response.status_code, reason=reason, headers=headers))
            while True:
                try:
                    event = up.h11.next_event()
                    if event is h11.NEED_DATA:
                        await self._flush(ex, batch)
                        batch = []
                        up.h11.receive_data(await _read_within(up.reader, self.idle_read_timeout))
                        continue
                except (OSError, h11.ProtocolError, asyncio.TimeoutError) as exc:
                    event = exc
                if isinstance(event, h11.Data):
                    batch.extend(ex.conn.send_with_data_passthrough(event))
                    ex.bytes_out += len(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    batch.extend(ex.conn.send_with_data_passthrough(event))
                    await self._flush(ex, batch)
                    break
                else:  # headers are gone already: a cut connection tells the client
                    ex.note = "upstream broke: %s" % type(event).__name__
                    raise _ClientGone()
            clean = True
        finally:
            if clean:
                self._pool.release(up)
            else:
                up.close()

    async def _send_body(self, up, body):
        """Stream the client's body to the provider while listening for an early answer."""
        # A provider may answer (413, 401, ...) and hang up before reading the whole body.
        # A read is kept pending meanwhile so its answer is taken in as it arrives: after
        # the write error that follows, the stream would only report the reset.
        import asyncio  # startup budget
        import h11  # startup budget

        answered = asyncio.ensure_future(up.reader.read(_PROXY_CHUNK))
        try:
            try:
                await body.send_to(up, answered)
                if body.done:
                    await up.send(h11.EndOfMessage())
            except OSError:
                await asyncio.wait((answered,), timeout=2.0)
                if not answered.done() or answered.cancelled() or answered.exception() is not None:
                    raise
            data = await asyncio.wait_for(answered, self.idle_read_timeout)
        except BaseException:
            answered.cancel()
            raise
        up.h11.receive_data(data)

    async def _upstream_failed(self, ex, exc):
        """Answer 502 (or 504 for a timeout) naming the provider that failed."""
        import asyncio  # startup budget

        what = str(exc) or type(exc).__name__
        ex.note = redact(what)[:200]
        if isinstance(exc, asyncio.TimeoutError) or getattr(exc, "timeout", False):
            return await self._reply(ex, 504, _json_error(
                "upstream %s did not answer in time (%s)" % (self.base, redact(what)), "upstream_timeout", 504))
        return await self._reply(ex, 502, _json_error(
            "upstream %s is unreachable: %s" % (self.base, redact(what)), "upstream_unreachable", 502))

    # -- connections and the server ------------------------------------------------------

    async def _on_client(self, reader, writer):
        """Serve one client connection: requests in order, kept alive between them."""
        import asyncio  # startup budget
        import h11  # startup budget

        task = asyncio.current_task()
        self._tasks.add(task)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_PROXY_MAX_HEAD)
        peer = (writer.get_extra_info("peername") or ("?",))[0]
        try:
            while True:
                try:
                    event = await self._next_event(conn, reader, _PROXY_IDLE_TIMEOUT)
                except h11.RemoteProtocolError as exc:
                    if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                        status = getattr(exc, "error_status_hint", 400)
                        body = json.dumps(_json_error("bad request: %s" % exc, "invalid_request_error", status)).encode()
                        writer.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                                     b"connection: close\r\n\r\n%s" % (status, _reason(status).encode(), len(body), body))
                    break
                if not isinstance(event, h11.Request):
                    break
                ex = _Exchange(conn, reader, writer, event, peer)
                try:
                    await self._handle(ex)
                except _ClientGone:
                    ex.status = ex.status or 499
                    ex.note = ex.note or "client closed"
                    break
                except h11.RemoteProtocolError as exc:
                    ex.status, ex.note = ex.status or 400, "bad request: %s" % exc
                    break
                finally:
                    self._log(ex)
                if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                    conn.start_next_cycle()
                else:
                    if conn.their_state is h11.SEND_BODY and conn.our_state in (h11.DONE, h11.MUST_CLOSE):
                        await self._linger(reader)
                    break
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # one broken connection must not stop the server
            sys.stderr.write("codex proxy: internal error on a connection from %s: %s\n" % (peer, redact(exc)))
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _linger(self, reader):
        """Read and drop what the client still sends (2 s at most) after an early answer."""
        # Closing a socket with unread input sends a reset, which can destroy the answer
        # before the client has read it.
        import asyncio  # startup budget

        deadline = time.monotonic() + 2.0
        try:
            while time.monotonic() < deadline:
                if not await _read_within(reader, max(0.01, deadline - time.monotonic())):
                    break
        except (asyncio.TimeoutError, OSError):
            pass

    def _log(self, ex):
        """One line per request: peer, method, path, status, bytes, duration (no secrets)."""
        line = '%s %s "%s %s" %s in=%d out=%d %.3fs%s' % (
            _now_iso(), ex.peer, ex.method, redact(ex.path[:300]), ex.status or "-",
            ex.bytes_in, ex.bytes_out, time.monotonic() - ex.started, (" (%s)" % ex.note) if ex.note else "",
        )
        try:
            sys.stderr.write("codex proxy: %s\n" % line)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        log("info", "proxy: %s", line)

    async def serve(self, host, port, stop=None):
        """Listen on host:port and serve until `stop` (an asyncio.Event) is set."""
        import asyncio  # startup budget

        try:
            try:
                server = await asyncio.start_server(self._on_client, host, port, limit=2 * _PROXY_CHUNK,
                                                    reuse_address=True)
            except OSError as exc:
                raise UsageError("cannot listen on %s:%d: %s; pick another address with --bind"
                                 % (host, port, exc.strerror or exc))
            self.port = server.sockets[0].getsockname()[1]
            shown = "[%s]" % host if ":" in host else host
            source = self.credentials.describe()
            sys.stderr.write(
                "codex proxy listening on http://%s:%d (health: /health, proxying: /v1/* -> %s)\n"
                "codex proxy: provider `%s`; %s\n"
                "Press Ctrl+C to stop the proxy.\n" % (
                    shown, self.port, self._pool.describe(), self.provider.id,
                    ("key from %s is added to requests without Authorization" % source) if source else
                    "no key configured: requests are forwarded with the client's own Authorization only",
                )
            )
            sys.stderr.flush()
            stop = stop or asyncio.Event()
            loop = asyncio.get_running_loop()
            import signal

            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, stop.set)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass
            async with server:
                await stop.wait()
                server.close()
                for task in list(self._tasks):
                    task.cancel()
                if self._tasks:
                    await asyncio.wait(list(self._tasks), timeout=5)
        finally:
            self._pool.close()


def _cmd_proxy(args, cfg_loader):
    """`codex proxy`: an OpenAI-compatible passthrough to the configured provider."""
    import asyncio  # startup budget

    host, port = _parse_bind(args.bind)
    loopback = _is_loopback_host(host)
    token = (args.token or os.environ.get(PROXY_TOKEN_ENV, "")).strip() or None
    if not loopback and not args.allow_remote:
        raise UsageError(
            "--bind %s is not a loopback address: other machines could spend your API key through it. "
            "Pass --allow-remote and a client token (--token or %s) to do this on purpose" % (args.bind, PROXY_TOKEN_ENV)
        )
    if not loopback and token is None:
        raise UsageError(
            "--allow-remote needs a client token: pass --token TOKEN or set %s (at least %d characters)"
            % (PROXY_TOKEN_ENV, PROXY_MIN_TOKEN_LEN)
        )
    if token is not None and len(token) < PROXY_MIN_TOKEN_LEN:
        raise UsageError("the proxy token must be at least %d characters long" % PROXY_MIN_TOKEN_LEN)
    cfg = cfg_loader()
    server = ProxyServer(cfg.provider, cfg.codex_home, allow_cors_any=args.allow_cors_any, token=token,
                         loopback_only=loopback)
    try:
        asyncio.run(server.serve(host, port))
    except KeyboardInterrupt:
        pass
    sys.stderr.write("codex proxy stopped\n")
    return 0


###############################################################################
# §22 CLI: parser, completions, main
###############################################################################

#: subcommand name -> (handler name, one-line help); aliases in SUBCOMMAND_ALIASES
SUBCOMMANDS = {
    "exec": ("_cmd_exec", "Run codex non-interactively"),
    "resume": ("_cmd_resume", "Continue a recorded session"),
    "review": ("_cmd_review", "Review a change (uncommitted, a branch or a commit) and list its findings"),
    "login": ("_cmd_login", "Store an API key in $CODEX_HOME/auth.json"),
    "logout": ("_cmd_logout", "Remove stored credentials"),
    "mcp": ("_cmd_mcp", "Run codex as an MCP server, or list/call configured MCP servers"),
    "mcp-server": ("_cmd_mcp", "Run codex as an MCP server over stdio"),
    "proto": ("_cmd_proto", "Speak the op/event protocol as JSON lines on stdio"),
    "proxy": ("_cmd_proxy", "Run an OpenAI-compatible passthrough to the configured provider"),
    "completion": ("_cmd_completion", "Print a shell completion script"),
    "debug": ("_cmd_debug", "Run a command under the sandbox (landlock or seatbelt)"),
    "sandbox": ("_cmd_sandbox_check", "Run a command sandboxed (-- CMD), or check the sandbox here (--check)"),
    "doctor": ("_cmd_sandbox_check", "Check what the sandbox can use on this machine"),
    "config": ("_cmd_config", "Show the effective configuration and which layer set each value"),
}
SUBCOMMAND_ALIASES = {"exec": ["e"], "proto": ["p"]}  #: short names upstream accepts
#: upstream subcommands codex does not have -> what to do instead; as a first word they are
#: usage errors (exit 2), never a prompt (`codex -- help` sends the word as a prompt)
UPSTREAM_SUBCOMMANDS = {
    "help": "use `codex --help` (or `codex COMMAND --help`)",
    "apply": "codex applies patches itself; use `git apply` for a diff",
    "a": "codex applies patches itself; use `git apply` for a diff",
    "cloud": "Codex Cloud tasks are not supported by codex",
    "cloud-tasks": "Codex Cloud tasks are not supported by codex",
    "fork": "use `codex resume ID` to continue a session",
    "app": "there is no desktop app in codex",
    "app-server": "use `codex proto` (ops and events as JSON lines on stdio)",
    "execpolicy": "exec policies are not supported by codex",
    "features": "codex has no feature flags; see `codex --help`",
    "responses-api-proxy": "use `codex proxy`",
    "stdio-to-uds": "not supported by codex",
    "generate-ts": "not supported by codex",
}
COMPLETION_SHELLS = ("bash", "zsh", "fish")  #: shells `codex completion` supports
COLOR_CHOICES = ("always", "never", "auto")  #: --color values
HELP_MAX_COLUMNS = 100  #: --help wraps at the terminal width, but no wider than this


def _add_config_options(parser, top):
    """The options every session-running command shares (upstream's flattened TUI flags).

    On subcommands the defaults are SUPPRESSed so a value given before the subcommand
    is not reset by the subparser; -c lists are kept apart and joined in main().
    """
    import argparse

    sup = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "-c", "--config", metavar="key=value", action="append",
        dest="config_overrides" if top else "sub_config_overrides", default=[] if top else argparse.SUPPRESS,
        help="override a config value (dotted key, TOML value; falls back to a literal string); repeatable",
    )
    parser.add_argument("-m", "--model", help="model the agent should use", **sup)
    parser.add_argument("-p", "--profile", help="configuration profile from config.toml", **sup)
    a = parser.add_argument(
        "-s", "--sandbox", dest="sandbox_mode", choices=SANDBOX_MODES,
        help="sandbox policy for model-generated commands", **sup
    )
    a = parser.add_argument(
        "-a", "--ask-for-approval", dest="approval_policy",
        choices=APPROVAL_POLICIES + tuple(APPROVAL_ALIASES),
        help="when to ask before running a command", **sup
    )
    a = parser.add_argument(
        "-C", "--cd", dest="cd", metavar="DIR", help="use DIR as the working root", **sup
    )
    a.complete = "dir"
    a = parser.add_argument(
        "-i", "--image", dest="images", metavar="FILE", action="append",
        help="attach image(s) to the first message (repeatable, or comma-separated)", **sup
    )
    a.complete = "file"
    parser.add_argument("--oss", action="store_true", help="use the local open-source provider (Ollama)", **sup)
    parser.add_argument(
        "--full-auto", action="store_true",
        help="low-friction sandboxed automatic execution (-a on-failure, -s workspace-write; "
             "in exec, which asks nothing: -s workspace-write, approval never unless -a)", **sup
    )
    parser.add_argument(
        "--dangerously-bypass-approvals-and-sandbox", "--yolo", dest="dangerously_bypass", action="store_true",
        help="skip all approvals and run commands without a sandbox (EXTREMELY DANGEROUS)", **sup
    )
    parser.add_argument(
        "--skip-git-repo-check", action="store_true",
        help="allow running outside a git repository", **sup
    )
    parser.add_argument(
        "--strict-config", action="store_true", help="treat unknown config keys as errors", **sup
    )
    parser.add_argument(
        "--trust", action="store_true",
        help="trust this project for this run: apply its .codex/config.toml, hooks and prompts", **sup
    )


def _add_exec_output_options(p, json_help):
    """The output options `codex exec` and `codex review` share."""
    p.add_argument("--json", action="store_true", help=json_help)
    p.add_argument("--color", choices=COLOR_CHOICES, default="auto", help="when to colour the output")
    a = p.add_argument("-o", "--output-last-message", metavar="FILE", help="write the last agent message to FILE")
    a.complete = "file"
    a = p.add_argument("--output-schema", metavar="FILE",
                       help="JSON schema the final message must follow (checked; exit %d when it does not)" % EXEC_SCHEMA_EXIT)
    a.complete = "file"
    p.add_argument("--ephemeral", action="store_true", help="do not record the session (no rollout file)")


def _add_review_options(parser, in_exec=False):
    """The scope and gate options of `codex review` (and of `codex exec review`)."""
    import argparse

    hide = (lambda text: argparse.SUPPRESS) if in_exec else (lambda text: text)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--uncommitted", action="store_true", help=hide("review staged, unstaged and untracked changes"))
    group.add_argument("--base", metavar="BRANCH", help=hide("review what the branch changed since its merge base with BRANCH"))
    group.add_argument("--commit", metavar="SHA", help=hide("review the changes one commit introduced"))
    parser.add_argument("--title", help=hide("a title for the review (shown in its header)"))
    parser.add_argument("--fail-on", metavar="P0|P1|P2|P3", type=str.upper, choices=REVIEW_PRIORITIES,
                        help=hide("exit %d when a finding at or above this priority exists" % REVIEW_FINDINGS_EXIT))


def build_parser():
    """Build the argparse tree for `codex` (also the source of the completion scripts)."""
    import argparse  # startup budget: --version answers before this import

    class _Parser(argparse.ArgumentParser):
        """argparse with a one-line error (no usage block) naming the (sub)command's --help."""

        def error(self, message):
            self.exit(2, "%s: error: %s (see `%s --help`)\n" % (self.prog, message, self.prog))

    class _Formatter(argparse.HelpFormatter):
        """Wrap help at the terminal's width, at most HELP_MAX_COLUMNS (as clap does upstream)."""

        def __init__(self, prog, **kw):
            import shutil

            kw.setdefault("width", min(shutil.get_terminal_size().columns, HELP_MAX_COLUMNS) - 2)
            argparse.HelpFormatter.__init__(self, prog, **kw)

    parser = _Parser(
        prog="codex",
        formatter_class=_Formatter,
        description="codex: a terminal coding agent. Without a subcommand it opens the interactive session.",
        epilog="Environment: CODEX_HOME (default ~/.codex), CODEX_LOG/RUST_LOG=info|debug|trace, "
        "CODEX_DEBUG=1 (tracebacks), OPENAI_API_KEY, OPENAI_BASE_URL, NO_COLOR.",
    )
    parser.add_argument("--version", "-V", action="version", version="codex %s" % __version__)
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks for errors")
    _add_config_options(parser, top=True)
    # The interactive PROMPT is not an argparse positional: next to subcommands argparse
    # would take `exec` for the prompt.  _parse_args() peels it off first.
    parser.usage = "codex [OPTIONS] [PROMPT]\n       codex [OPTIONS] COMMAND [ARGS]"
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", prog="codex")

    def sub(name, **kw):
        handler, help_text = SUBCOMMANDS[name]
        kw.setdefault("formatter_class", _Formatter)
        p = subs.add_parser(name, help=help_text, description=help_text, aliases=SUBCOMMAND_ALIASES.get(name, []), **kw)
        p.set_defaults(handler=handler, command=name)
        return p

    p = sub("exec")
    _add_config_options(p, top=False)
    p.add_argument("prompt", nargs="?", help="the task; `-` or none reads it from stdin; `resume` continues a session")
    p.add_argument("resume_args", nargs="*", help=argparse.SUPPRESS)
    _add_exec_output_options(p, "print events as JSON lines")
    p.add_argument("--ignore-user-config", action="store_true", help="do not read $CODEX_HOME/config.toml")
    a = p.add_argument("--add-dir", metavar="DIR", action="append", dest="add_dirs",
                       help="another writable root for commands (repeatable; with -s workspace-write)")
    a.complete = "dir"
    # --last/--all belong to `exec resume` only: hidden here (and from completion), listed in the epilog
    p.add_argument("--last", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--all", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--include-plan-tool", action="store_true", default=None, help="offer the plan tool to the model")
    _add_review_options(p, in_exec=True)
    p.epilog = ("`codex exec resume [ID | --last [--all]] [PROMPT]` continues a session (--last: the most "
                "recent here; --all: in any directory); `codex exec review --help` lists the review options.")

    p = sub("review")
    _add_config_options(p, top=False)
    _add_review_options(p)
    p.add_argument("review_prompt", nargs="*", metavar="PROMPT", help="what the review should focus on (any scope)")
    _add_exec_output_options(p, "print events and the review as JSON lines")

    p = sub("resume")
    _add_config_options(p, top=False)
    p.add_argument("session_id", nargs="?", help="session id to resume")
    p.add_argument("resume_prompt", nargs="?", help="prompt to send after resuming")
    p.add_argument("--last", action="store_true", help="resume the most recent session")
    p.add_argument("--all", action="store_true", help="list (or pick --last from) sessions of every directory")

    p = sub("login")
    p.add_argument("login_action", nargs="?", choices=("status",), help="`status` shows the stored login")
    p.add_argument("--api-key", metavar="KEY", help="the API key to store (`-` reads it from stdin)")
    p.add_argument("--with-api-key", action="store_true", help="read the API key from stdin")

    sub("logout")

    p = sub("config")
    _add_config_options(p, top=False)
    p.add_argument("config_action", nargs="?", choices=("show",), default="show", help="`show` (the default)")
    p.add_argument("--json", action="store_true", help="print JSON")

    for name in ("mcp", "mcp-server"):
        p = sub(name)
        _add_config_options(p, top=False)
        if name == "mcp":
            msub = p.add_subparsers(dest="mcp_command", metavar="MCP_COMMAND", prog="codex mcp")
            msub.add_parser("serve", help="run codex as an MCP server over stdio (the default)")
            ml = msub.add_parser("list", help="list configured MCP servers, their status and tool counts")
            ml.add_argument("--json", action="store_true", help="print JSON")
            _add_config_options(ml, top=False)  # the README: global options also after the subcommand
            mc = msub.add_parser("call", help="call one tool of a configured MCP server")
            mc.add_argument("server", help="server name from [mcp_servers]")
            mc.add_argument("tool", help="tool name")
            mc.add_argument("arguments", nargs="?", default="{}", help="tool arguments as a JSON object")
            mc.add_argument("--json", action="store_true", help="print the raw CallToolResult as JSON")
            _add_config_options(mc, top=False)
            ma = msub.add_parser("add", help="add an MCP server to config.toml: NAME -- COMMAND [ARGS...], or NAME --url URL")
            ma.add_argument("name", help="server name (letters, digits, `_`, `-`)")
            ma.add_argument("--env", action="append", metavar="KEY=VALUE", help="environment for a stdio server; repeatable")
            ma.add_argument("--url", help="the endpoint of a streamable HTTP server")
            ma.add_argument("--bearer-token-env-var", metavar="VAR", help="environment variable holding the HTTP server's token")
            ma.add_argument("command_argv", nargs="*", metavar="-- COMMAND [ARGS...]",
                            help="the program that runs a stdio server, after `--`")
            mg = msub.add_parser("get", help="show one configured MCP server")
            mg.add_argument("name", help="server name from [mcp_servers]")
            mg.add_argument("--json", action="store_true", help="print JSON")
            mr = msub.add_parser("remove", help="remove an MCP server from config.toml")
            mr.add_argument("name", help="server name from [mcp_servers]")

    p = sub("proto")
    _add_config_options(p, top=False)

    p = sub("proxy")
    p.add_argument("-c", "--config", metavar="key=value", action="append", dest="sub_config_overrides",
                   default=argparse.SUPPRESS, help="override a config value; repeatable")
    p.add_argument("-p", "--profile", default=argparse.SUPPRESS, help="configuration profile")
    p.add_argument("--bind", default="127.0.0.1:11435", metavar="ADDR", help="address to listen on (default 127.0.0.1:11435)")
    p.add_argument("--allow-cors-any", action="store_true", help="answer CORS preflights and allow any origin")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --bind (requires a client token)")
    p.add_argument("--token", help="client token required from callers (or CODEX_PROXY_TOKEN)")

    p = sub("completion")
    p.add_argument("shell", nargs="?", choices=COMPLETION_SHELLS, default="bash", help="shell (default bash)")

    p = sub("debug")
    dsub = p.add_subparsers(dest="debug_command", metavar="SANDBOX", prog="codex debug")
    dsub.required = True
    for name in ("landlock", "seatbelt"):
        d = dsub.add_parser(name, help="run a command under %s" % ("Landlock+seccomp" if name == "landlock" else "Seatbelt"))
        d.add_argument("--full-auto", action="store_true", help="use the workspace-write policy")
        d.add_argument("-s", "--sandbox", dest="sandbox_mode", choices=SANDBOX_MODES, help="sandbox policy")
        d.add_argument("-c", "--config", metavar="key=value", action="append", dest="sub_config_overrides",
                       default=argparse.SUPPRESS, help="override a config value; repeatable")
        d.add_argument("cmd", nargs=argparse.REMAINDER, help="the command to run (after --)")

    p = sub("sandbox")
    p.add_argument("--check", action="store_true", help="probe Landlock, seccomp, namespaces and report")
    _add_config_options(p, top=False)
    p.add_argument("cmd", nargs=argparse.REMAINDER,
                   help="`-- CMD...`: run CMD sandboxed (as `codex debug landlock|seatbelt`, upstream's newer name)")
    _add_config_options(sub("doctor"), top=False)
    return parser


def _edit_distance(a, b):
    """Optimal string alignment distance (a transposition counts as one edit)."""
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def _check_not_a_command(word):
    """A UsageError for a first word that names an upstream subcommand or is a typo of ours.

    Upstream (and we, before) sent `codex help` or `codex exce` to the model as a prompt and
    billed a turn for it.  Only one-word prompts are checked; `codex -- WORD` is a prompt."""
    if not word or any(c.isspace() for c in word) or word.startswith("-"):
        return
    lowered = word.lower()
    if lowered in UPSTREAM_SUBCOMMANDS:
        raise UsageError("`codex %s` is not a codex command: %s; to send %r as a prompt use `codex -- %s`"
                         % (word, UPSTREAM_SUBCOMMANDS[lowered], word, word))
    if len(word) < 4:
        return
    limit = 2 if len(word) >= 7 else 1
    ours = sorted(SUBCOMMANDS)
    best = min(ours, key=lambda name: (_edit_distance(lowered, name), name))
    if _edit_distance(lowered, best) <= limit:
        raise UsageError("unknown command `%s`; did you mean `codex %s`? (to send %r as a prompt use `codex -- %s`)"
                         % (word, best, word, word))


def _split_prompt(parser, argv):
    """Find the interactive PROMPT (the first positional that is not a subcommand)."""
    takes_value = set()
    for action in parser._actions:
        if action.option_strings and action.nargs != 0:
            takes_value.update(action.option_strings)
    commands = set(SUBCOMMANDS) | {a for names in SUBCOMMAND_ALIASES.values() for a in names}
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            rest = argv[i + 1:]
            return argv[:i], (rest[0] if rest else None), rest[1:]
        if token.startswith("-") and token != "-":
            if token in takes_value:
                i += 1
            i += 1
            continue
        if token in commands:
            return argv, None, []
        _check_not_a_command(token)
        return argv[:i] + argv[i + 1:], token, []
    return argv, None, []


def _split_mcp_add_command(argv):
    """(argv before `--`, the server command after it) for `codex mcp add`; else (argv, None).

    argparse cannot take options after a positional and then `-- COMMAND ARGS` with options
    of their own, so the command is split off before parsing.
    """
    if "--" not in argv:
        return argv, None
    cut = argv.index("--")
    words = [a for a in argv[:cut] if not a.startswith("-")]
    first = next((i for i, w in enumerate(words) if w in SUBCOMMANDS), None)  # the subcommand
    if first is not None and words[first:first + 2] == ["mcp", "add"]:
        return argv[:cut], argv[cut + 1:]
    return argv, None


def _exec_review_help(parser, argv):
    """`codex exec review --help` prints the review options (argparse alone would show exec's,
    where `review` is only a word of the prompt)."""
    import argparse

    words = [w for w in argv if not w.startswith("-")]
    if not ({"-h", "--help"} & set(argv)) or "review" not in words[1:] or \
            words[words.index("review", 1) - 1] not in ("exec", "e"):
        return
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            review = action.choices["review"]
            review.prog = "codex exec review"
            review.print_help()
            raise SystemExit(0)


def _parse_args(argv):
    """Parse argv; return the namespace with -c lists joined (top-level first)."""
    parser = build_parser()
    _exec_review_help(parser, argv)
    argv, command_tail = _split_mcp_add_command(argv)
    argv, prompt, extra = _split_prompt(parser, argv)
    if extra:
        parser.error("unexpected arguments after the prompt: %s" % " ".join(extra))
    args, unknown = parser.parse_known_args(argv)
    if command_tail is not None:  # `codex mcp add NAME [OPTIONS] -- COMMAND ARGS...`
        args.command_argv = list(getattr(args, "command_argv", None) or []) + command_tail
    # `codex exec resume --last PROMPT`: argparse stops filling resume_args at the flag.
    if unknown and getattr(args, "prompt", None) in ("resume", "review") and not any(u.startswith("-") for u in unknown):
        args.resume_args = list(getattr(args, "resume_args", None) or []) + unknown
    elif unknown:
        parser.error("unrecognized arguments: %s" % " ".join(unknown))
    if prompt is not None:
        if args.command is not None:
            parser.error("a prompt cannot come before a subcommand")
        args.prompt = prompt
    elif not hasattr(args, "prompt"):
        args.prompt = None
    args.config_overrides = list(getattr(args, "config_overrides", [])) + list(getattr(args, "sub_config_overrides", []))
    for override in args.config_overrides:
        parse_config_override(override)  # reject `-c novalue` up front, whatever the command
    if getattr(args, "images", None):
        args.images = [p for item in args.images for p in item.split(",") if p]
    for name in ("model", "profile", "sandbox_mode", "approval_policy", "cd", "images"):
        if not hasattr(args, name):
            setattr(args, name, None)
    for name in ("oss", "full_auto", "dangerously_bypass", "skip_git_repo_check", "strict_config", "trust"):
        if not hasattr(args, name):
            setattr(args, name, False)
    if args.dangerously_bypass and (args.full_auto or args.approval_policy):
        raise UsageError("--dangerously-bypass-approvals-and-sandbox cannot be combined with --full-auto or -a")
    return args


def _oss_provider_configured(cli_overrides):
    """Whether -c or config.toml sets the oss/ollama provider's base_url (then --oss does not probe)."""
    if any(str(o).split("=", 1)[0].strip() in ("model_providers.oss.base_url", "model_providers.ollama.base_url")
           for o in cli_overrides or ()):
        return True
    try:
        tree, _path = read_config_file(codex_home())
    except CodexError:
        return False
    providers = tree.get("model_providers") if isinstance(tree.get("model_providers"), dict) else {}
    return any(isinstance(providers.get(p), dict) and providers[p].get("base_url") for p in ("oss", "ollama"))


def config_loader_for(args, **extra):
    """Return a function that loads the Config for these parsed arguments (and extras)."""

    def load(**more):
        sandbox_mode = args.sandbox_mode
        approval = args.approval_policy
        if args.full_auto:
            sandbox_mode = sandbox_mode or "workspace-write"
            approval = approval or "on-failure"
        fields = dict(
            model=args.model,
            approval_policy=APPROVAL_ALIASES.get(approval, approval),
            sandbox_mode=sandbox_mode,
            cwd=args.cd,
            profile=args.profile,
            dangerously_bypass=args.dangerously_bypass,
            oss=args.oss,
            trust=args.trust,
        )
        fields.update(extra)
        fields.update(more)
        environ = None
        if fields.get("oss") and not _oss_provider_configured(args.config_overrides):
            environ, fields["model"] = oss_environment(os.environ, fields.get("model"))
        overrides = ConfigOverrides(**fields)
        cfg = load_config(overrides, args.config_overrides, strict=args.strict_config, environ=environ)
        for warning in cfg.warnings:
            sys.stderr.write("codex: warning: %s\n" % warning)
        return cfg

    return load


def _cmd_mcp(args, cfg_loader):
    """`codex mcp` (server over stdio), `codex mcp list|call|add|get|remove`."""
    sub = getattr(args, "mcp_command", None)
    if args.command == "mcp-server" or sub in (None, "serve"):
        return run_mcp_server(args, cfg_loader)
    if sub in ("add", "get", "remove"):  # the file as it is, not the resolved config
        return {"add": _mcp_add, "get": _mcp_get, "remove": _mcp_remove}[sub](args)
    cfg = cfg_loader()
    if sub == "list":
        return _mcp_list(cfg, as_json=args.json)
    if sub == "call":
        return _mcp_call(cfg, args.server, args.tool, args.arguments, as_json=getattr(args, "json", False))
    raise UsageError("unknown `codex mcp` command %r; use serve, list, call, add, get or remove" % sub)


def _cmd_exec(args, cfg_loader):
    """`codex exec [PROMPT]`: run one task non-interactively."""
    resume_path = None
    prompt = args.prompt
    if prompt == "review":
        args.review_prompt = list(getattr(args, "resume_args", None) or [])
        return _cmd_review(args, cfg_loader)
    used = [flag for flag, name in (("--uncommitted", "uncommitted"), ("--base", "base"), ("--commit", "commit"),
                                    ("--title", "title"), ("--fail-on", "fail_on")) if getattr(args, name, None)]
    if used:
        raise UsageError("%s only applies to `codex exec review`" % used[0])
    if prompt == "resume":
        rest = list(getattr(args, "resume_args", None) or [])
        cfg = _exec_config(args, cfg_loader)
        if args.last:
            session_id = None
            prompt = rest[0] if rest else None
        else:
            if not rest:
                raise UsageError("`codex exec resume` needs a session id or --last")
            session_id = rest[0]
            prompt = rest[1] if len(rest) > 1 else None
        resume_path = find_rollout(cfg.codex_home, session_id, last=args.last,
                                   cwd=None if getattr(args, "all", False) else cfg.cwd)
        prompt = read_exec_prompt(prompt)
    else:
        if getattr(args, "resume_args", None):
            raise UsageError("unexpected arguments after the prompt: %s" % " ".join(args.resume_args))
        prompt = read_exec_prompt(prompt)
        cfg = _exec_config(args, cfg_loader)
    if getattr(args, "all", False) and args.prompt != "resume":
        raise UsageError("--all goes with `codex exec resume --last`")
    schema = load_output_schema(args.output_schema) if getattr(args, "output_schema", None) else None
    approver = _ExecApprover(cfg.approval_policy) if cfg.approval_policy != "never" else None
    return run_exec(cfg, prompt, images=args.images or (), as_json=args.json, color=args.color,
                    last_message_file=args.output_last_message, skip_git_repo_check=args.skip_git_repo_check,
                    resume_path=resume_path, output_schema=schema, ephemeral=getattr(args, "ephemeral", False),
                    approver=approver)


def _cmd_resume(args, cfg_loader):
    """`codex resume --last|ID [PROMPT]`: continue a recorded session in the interactive session."""
    cfg = cfg_loader()
    session_id, prompt = args.session_id, args.resume_prompt
    if args.last and session_id and prompt is None:
        session_id, prompt = None, session_id
    everywhere = getattr(args, "all", False)
    if not args.last and not session_id:
        path = pick_session(cfg, everywhere)
        if path is None:
            return 0
    else:
        path = find_rollout(cfg.codex_home, session_id, last=args.last, cwd=None if everywhere else cfg.cwd)

    def resume_loader(**more):
        # Session (§16) resumes whatever config.experimental_resume names, so the REPL
        # needs no resume logic of its own.
        return cfg_loader(**more).replace(experimental_resume=str(path))

    args.resume_path = path
    args.prompt = prompt
    return _cmd_interactive(args, resume_loader)


def _cmd_login(args, cfg_loader):
    """`codex login --api-key KEY | --with-api-key | status`."""
    home = codex_home()
    if args.login_action == "status":
        # As upstream: the key the provider would send from its env_key variable counts first.
        try:
            provider = cfg_loader().provider
        except CodexError:
            provider = None
        env_key = getattr(provider, "env_key", None)
        if env_key and os.environ.get(env_key, "").strip():
            print("Logged in using an API key - %s (from $%s)" % (_mask_key(os.environ[env_key].strip()), env_key))
            return 0
        auth = read_auth(home)
        key = (auth or {}).get("OPENAI_API_KEY")
        if key:
            print("Logged in using an API key - %s" % _mask_key(key))
            return 0
        if auth and auth.get("tokens"):
            print("Logged in using ChatGPT")
            return 0
        print("Not logged in")
        return 1
    key = args.api_key
    if args.with_api_key or key == "-":
        key = sys.stdin.readline()
    if key is None:
        raise UsageError(
            "browser sign-in is not supported; use `codex login --api-key KEY` or pipe the key to `codex login --with-api-key`"
        )
    key = key.strip()
    if not key:
        raise UsageError("the API key is empty; pass it with --api-key KEY or on stdin with --with-api-key")
    make_private_dirs(home)
    auth = read_auth(home) if auth_path(home).exists() else None
    data = dict(auth or {})
    data["OPENAI_API_KEY"] = key
    write_auth(home, data)
    print("Successfully logged in")
    return 0


def _cmd_logout(args, cfg_loader):
    """`codex logout`: delete auth.json."""
    path = auth_path(codex_home())
    try:
        path.unlink()
    except FileNotFoundError:
        print("Not logged in")
        return 0
    except OSError as exc:
        raise AuthError("Error logging out: cannot remove %s: %s" % (path, exc.strerror or exc))
    print("Successfully logged out")
    return 0


def _cmd_completion(args, cfg_loader):
    """`codex completion bash|zsh|fish`: print a completion script built from the parser."""
    sys.stdout.write(completion_script(args.shell, build_parser()))
    return 0


# -- completions ------------------------------------------------------------------
# The scripts are generated from build_parser()'s tree, so a flag added there is completed
# everywhere.  Each generator turns the same node list into its shell's own idiom: bash
# case tables and a word walker, zsh _arguments functions, fish `complete` lines with a
# walker.  Argument metadata used here: choices (enum values) and `action.complete`
# ("file" or "dir") for path flags.


def completion_script(shell, parser):
    """Return the completion script for `shell`, generated from the argparse tree."""
    generators = {"bash": _completion_bash, "zsh": _completion_zsh, "fish": _completion_fish}
    if shell not in generators:
        raise UsageError("no completions for shell %r; choose one of %s" % (shell, ", ".join(COMPLETION_SHELLS)))
    return generators[shell](_completion_nodes(parser))


def _completion_nodes(parser):
    """Flatten the argparse tree into completion data, one dict per (sub)command path.

    Each node: path (tuple of canonical names), subs [(name, aliases, help)], opts (a list
    of Option), words (choices of the first positional) and rest (takes a trailing command).
    Hidden (SUPPRESSed) arguments are left out.
    """
    import argparse
    import collections

    Option = collections.namedtuple("Option", "names value choices complete help repeat")

    nodes = []

    def walk(p, path):
        node = {"path": path, "subs": [], "opts": [], "words": [], "rest": False, "args": False}
        nodes.append(node)
        positionals = []
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                helps = {c.dest: c.help or "" for c in a._choices_actions}
                names = {}
                for name, sub in a.choices.items():  # aliases map to the same parser
                    names.setdefault(id(sub), (sub, []))[1].append(name)
                for sub, (first, *aliases) in names.values():
                    node["subs"].append((first, aliases, helps.get(first, "")))
                    walk(sub, path + (first,))
            elif a.help == argparse.SUPPRESS:
                continue
            elif a.option_strings:
                value = a.nargs != 0
                node["opts"].append(Option(a.option_strings, value, [str(c) for c in a.choices or ()] if value else [],
                                           getattr(a, "complete", None) if value else None, a.help or "",
                                           isinstance(a, argparse._AppendAction)))
            else:
                positionals.append(a)
        if positionals and positionals[0].choices:
            node["words"] = [str(c) for c in positionals[0].choices]
        node["rest"] = any(a.nargs == argparse.REMAINDER for a in positionals)
        node["args"] = bool(positionals)  # takes free words (a name, a prompt): not completed, but skipped

    walk(parser, ())
    return nodes


def _sh_quote(text):
    """Quote text for a POSIX shell, fish or zsh (single quotes)."""
    return "'" + text.replace("'", "'\\''") + "'"


def _completion_bash(nodes):
    """The bash script: per-path word lists in case tables, one walker function."""
    node_cases, step_cases, value_cases = [], [], {}
    for n in nodes:
        p = " ".join(n["path"])
        subs = [w for name, aliases, _ in n["subs"] for w in [name] + aliases]
        opts = [s for o in n["opts"] for s in o.names]
        vopts = [s for o in n["opts"] if o.value for s in o.names]
        node_cases.append("    %s) subs=%s opts=%s vopts=%s words=%s ;;" % (
            _sh_quote(p), _sh_quote(" ".join(subs)), _sh_quote(" ".join(opts)),
            _sh_quote(" ".join(vopts)), _sh_quote(" ".join(n["words"]))))
        for name, aliases, _ in n["subs"]:
            keys = "|".join(_sh_quote(p + "|" + w) for w in [name] + aliases)
            step_cases.append("    %s) next=%s ;;" % (keys, _sh_quote(" ".join(n["path"] + (name,)))))
        for o in n["opts"]:
            if o.choices:
                action = "COMPREPLY=($(compgen -W %s -- \"$3\"))" % _sh_quote(" ".join(o.choices))
            elif o.complete:
                action = "_codex_files -%s \"$3\"" % ("d" if o.complete == "dir" else "f")
            else:
                continue
            value_cases.setdefault(action, []).extend(_sh_quote(p + "|" + s) for s in o.names)
    values = ["    %s) %s ;;" % ("|".join(keys), action) for action, keys in value_cases.items()]
    return _BASH_TEMPLATE % ("\n".join(node_cases), "\n".join(step_cases), "\n".join(values))


_BASH_TEMPLATE = r"""# bash completion for codex (generated by `codex completion bash` from its parser)
# Install: codex completion bash > ~/.local/share/bash-completion/completions/codex

_codex_node() {  # $1: subcommand path -> subs, opts, vopts (options taking a value), words
    case "$1" in
%s
    esac
}

_codex_step() {  # $1: path, $2: word -> next (the path $2 leads to) or fail
    case "$1|$2" in
%s
    *) return 1 ;;
    esac
}

_codex_files() {  # $1: -f or -d, $2: the word to complete
    compopt -o filenames 2>/dev/null
    local IFS=$'\n'
    COMPREPLY=($(compgen "$1" -- "$2"))
}

_codex_value() {  # $1: path, $2: option, $3: word -> complete the option's value
    COMPREPLY=()
    case "$1|$2" in
%s
    esac
}

_codex() {
    local cur="${COMP_WORDS[COMP_CWORD]}" path='' next w i=1 npos=0 rest=''
    local subs opts vopts words
    _codex_node ''
    while [ "$i" -lt "$COMP_CWORD" ]; do
        w="${COMP_WORDS[i]}"
        i=$((i + 1))
        if [ -z "$rest" ] && [[ " $vopts " == *" $w "* ]]; then
            [ "${COMP_WORDS[i]}" = = ] && i=$((i + 1))
            if [ "$i" -ge "$COMP_CWORD" ]; then  # the word under the cursor is its value
                [ "$cur" = = ] && cur=''
                _codex_value "$path" "$w" "$cur"
                return 0
            fi
            i=$((i + 1))
        elif [ -z "$rest" ] && [ "$w" = -- ]; then
            rest=1
        elif [ -n "$rest" ] || [[ $w != -* ]]; then
            if [ "$npos" = 0 ] && [ -z "$rest" ] && _codex_step "$path" "$w"; then
                path=$next
                _codex_node "$path"
            else
                npos=$((npos + 1))
            fi
        fi
    done
    if [ -z "$rest" ] && [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif [ "$npos" = 0 ] && [ -z "$rest" ] && [ -n "$subs$words" ]; then
        COMPREPLY=($(compgen -W "$subs $words" -- "$cur"))
    else
        _codex_files -f "$cur"
    fi
    return 0
}

complete -o bashdefault -o default -F _codex codex
"""


def _zsh_spec(opt):
    """One option as _arguments specs (one spec per spelling, sharing an exclusion group)."""
    desc = "[%s]" % opt.help.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    group = "" if opt.repeat else "(%s)" % " ".join(opt.names)
    action = ""
    if opt.value:
        action = ":%s:" % opt.names[-1].lstrip("-")
        action += "(%s)" % " ".join(opt.choices) if opt.choices else (
            "_directories" if opt.complete == "dir" else "_files" if opt.complete == "file" else " ")
    return [_sh_quote("%s%s%s%s%s" % ("*" if opt.repeat else "", group, s,
                                      ("=" if s.startswith("--") else "+") if opt.value else "", desc + action))
            for s in opt.names]


def _completion_zsh(nodes):
    """The zsh script: one _arguments function per (sub)command, dispatching on $words[1]."""
    funcs = []
    for n in nodes:
        name = "_codex" + "".join("__" + w.replace("-", "_") for w in n["path"])
        specs = [s for o in n["opts"] for s in _zsh_spec(o)]
        body = ""
        if n["subs"]:
            specs += ["': :->cmds'", "'*:: :->args'"]
            cmds = " ".join(_sh_quote("%s:%s" % (w, h.replace(":", "\\:")))
                            for name_, aliases, h in n["subs"] for w in [name_] + aliases)
            cases = "\n".join("      (%s) %s ;;" % ("|".join([nm] + al), name + "__" + nm.replace("-", "_"))
                              for nm, al, _ in n["subs"])
            body = _ZSH_DISPATCH % (cmds, " ".join(("codex",) + n["path"]), "-".join(("codex",) + n["path"]), cases)
        elif n["rest"]:
            specs.append("'*::command:_normal'")
        elif n["words"]:
            specs.append("':%s:(%s)'" % ("value", " ".join(n["words"])))
        elif n["args"]:
            specs.append("'*: :'")  # so `codex mcp add NAME --b` still completes options after NAME
        # -A: options after the subcommand's name belong to the subcommand, not to this level
        funcs.append("%s() {\n  local curcontext=\"$curcontext\" state line ret=1\n  typeset -A opt_args\n"
                     "  _arguments -C -s -S%s \\\n    %s && ret=0\n%s  return ret\n}\n"
                     % (name, " -A '-*'" if n["subs"] else "", " \\\n    ".join(specs), body))
    return _ZSH_TEMPLATE % "\n".join(funcs)


_ZSH_DISPATCH = """  case $state in
    (cmds)
      local -a cmds
      cmds=(%s)
      _describe -t commands '%s command' cmds && ret=0 ;;
    (args)
      curcontext="${curcontext%%:*:*}:%s-$words[1]:"
      case $words[1] in
%s
      esac ;;
  esac
"""

_ZSH_TEMPLATE = """#compdef codex
# zsh completion for codex (generated by `codex completion zsh` from its parser)
# Install: codex completion zsh > "${fpath[1]}/_codex"   (or: source <(codex completion zsh))

%s
if [ "$funcstack[1]" = "_codex" ]; then
  _codex "$@"
else
  compdef _codex codex
fi
"""


def _completion_fish(nodes):
    """The fish script: a walker that finds the subcommand path, then `complete` lines."""
    steps, skips, lines = [], [], []
    for n in nodes:
        p = " ".join(n["path"])
        at = _sh_quote("__codex_at %s" % _sh_quote(p).replace("'", '"'))
        first = _sh_quote("__codex_at %s 0" % _sh_quote(p).replace("'", '"'))
        for name, aliases, h in n["subs"]:
            steps.append("            case %s\n                set path %s" % (
                " ".join(_sh_quote(p + "|" + w) for w in [name] + aliases), _sh_quote(" ".join(n["path"] + (name,)))))
            for w in [name] + aliases:
                lines.append("complete -c codex -n %s -a %s -d %s" % (first, w, _sh_quote(h)))
        vopts = [s for o in n["opts"] if o.value for s in o.names]
        if vopts:
            skips.append("            case %s\n                set skip 1" % " ".join(_sh_quote(p + "|" + s) for s in vopts))
        for o in n["opts"]:
            flags = " ".join(("-l %s" if s.startswith("--") else "-s %s") % s.lstrip("-") for s in o.names)
            if o.choices:
                flags += " -x -a %s" % _sh_quote(" ".join(o.choices))
            elif o.complete == "dir":
                flags += " -x -a '(__fish_complete_directories (commandline -ct))'"
            elif o.complete == "file":
                flags += " -r -F"
            elif o.value:
                flags += " -x"
            lines.append("complete -c codex -n %s %s -d %s" % (at, flags, _sh_quote(o.help)))
        if n["words"]:
            lines.append("complete -c codex -n %s -a %s" % (first, _sh_quote(" ".join(n["words"]))))
        if n["rest"]:
            lines.append("complete -c codex -n %s -F" % at)
    return _FISH_TEMPLATE % ("\n".join(steps), "\n".join(skips), "\n".join(lines))


_FISH_TEMPLATE = """# fish completion for codex (generated by `codex completion fish` from its parser)
# Install: codex completion fish > ~/.config/fish/completions/codex.fish

function __codex_state --description 'print the codex subcommand path and the count of positionals'
    set -l words (commandline -opc)
    set -e words[1]
    set -l path ''
    set -l skip 0
    set -l npos 0
    set -l rest 0
    for w in $words
        if test $skip = 1
            set skip 0
            continue
        end
        if test $rest = 1
            set npos (math $npos + 1)
            continue
        end
        set -l before $path
        switch "$path|$w"
%s
%s
            case '*|--'
                set rest 1
            case '*|-*'
            case '*'
                set npos (math $npos + 1)
        end
        if test "$before" != "$path" -a $npos != 0
            set path $before
            set npos (math $npos + 1)
        end
    end
    printf '%%s\\n' "$path" $npos
end

function __codex_at --description 'true when the command line is at subcommand path $argv[1] (and $argv[2] positionals)'
    set -l state (__codex_state)
    test "$state[1]" = "$argv[1]"; or return 1
    test (count $argv) -lt 2; or test "$state[2]" = "$argv[2]"
end

complete -c codex -f
%s
"""


def _is_debug(argv):
    """Whether tracebacks should be shown (CODEX_DEBUG=1, -v/--verbose)."""
    return os.environ.get("CODEX_DEBUG", "") not in ("", "0") or "-v" in argv or "--verbose" in argv


def _exit_now(code):
    """Flush stdio and exit without interpreter finalization (cleanup already ran while
    unwinding): there a daemon thread still blocked reading stdin (the MCP server's, proto's)
    makes CPython abort with SIGABRT (exit 134) instead of exiting with `code`."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


class _Terminated(SystemExit):
    """SIGTERM/SIGHUP arrived: unwind (front ends' `finally` clean up), then exit 128+signal."""


def _exit_on_termination_signals():
    """Make SIGTERM/SIGHUP raise SystemExit(128+signal) in the main thread, so front ends
    unwind through their `finally` (sessions shut down, running commands' groups killed)
    instead of dying under them; return a function restoring the old handlers."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def leave(signum, frame):
        raise _Terminated(128 + signum)

    old = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            old[sig] = signal.signal(sig, leave)

    def restore():
        for sig, handler in old.items():
            signal.signal(sig, handler)

    return restore


def main(argv=None):
    """Entry point: parse argv, dispatch to the subcommand, map errors to exit codes."""
    from_process = argv is None  # the real entry point (not a test calling main(ARGS))
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [_SANDBOX_HELPER_ARGV]:  # codex re-executed as the Python sandbox helper (§12b)
        return _sandbox_helper_main(argv[1:])
    if argv[:1] == [APPLY_PATCH_ARGV]:  # codex run as the apply_patch command, in the sandbox (§10, §13)
        return apply_patch_main(argv[1:])
    if argv in (["--version"], ["-V"]):  # the fast path: no argparse, no config
        sys.stdout.write("codex %s\n" % __version__)
        return 0
    debug = _is_debug(argv)
    try:
        args = _parse_args(argv)
        if getattr(args, "command", None) is None:
            args.handler = "_cmd_interactive"
        if os.environ.get("CODEX_LOG") or os.environ.get("RUST_LOG"):
            try:
                home = codex_home()
            except CodexError:
                home = None
            setup_logging(home, to_stderr=args.command == "exec")
        handler = globals()[args.handler]
        restore = _exit_on_termination_signals()
        try:
            code = handler(args, config_loader_for(args))
        except _Terminated as exc:
            _exit_now(exc.code)
        finally:
            restore()
        return 0 if code is None else int(code)
    except KeyboardInterrupt:
        sys.stderr.write("\ncodex: interrupted\n")
        if from_process:
            _exit_now(130)
        return 130
    except CodexError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        sys.stderr.write("codex: %s\n" % exc)
        for cls in type(exc).__mro__:
            if cls in EXIT_CODES:
                return EXIT_CODES[cls]
        return 1
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 141
    except OSError as exc:  # a file codex could not read or write: one line, never a traceback
        if debug:
            import traceback

            traceback.print_exc()
        if getattr(exc, "filename", None):
            hint = "%s: %s (check the path, its permissions and free space)" % (exc.filename, exc.strerror or exc)
        else:
            hint = "%s (CODEX_DEBUG=1 shows where)" % (exc.strerror or exc)
        try:
            sys.stderr.write("codex: %s\n" % hint)
        except (OSError, ValueError):
            pass
        return 1


if __name__ == "__main__":
    sys.exit(main())
