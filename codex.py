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

    CLI (§22) -> config (§04) -> session / agent loop (§15) -> provider (§07) <-> model
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
    §12 Sandbox: policies, the Linux helper, Seatbelt
    §13 Exec: running a command
    §14 MCP client
    §15 Agent: instructions and the turn loop
    §16 History and rollouts
    §17 Front end: codex exec
    §18 Front end: the interactive REPL
    §19 Front end: the MCP server
    §20 Front end: codex proto
    §21 Front end: codex proxy
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
            log_dir.mkdir(parents=True, exist_ok=True)
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


def write_private_file(path, data, mode=0o600):
    """Atomically write `data` (str or bytes) to `path`, readable by the owner only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".%s.tmp.%d" % (path.name, os.getpid()))
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
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
    """Open `path` for appending, creating it 0600; return a binary file object."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return os.fdopen(fd, "ab")


def glob_match(pattern, name):
    """Case-insensitive glob match (`*`, `?`, `[...]`) used by env policies."""
    return fnmatch.fnmatchcase(name.upper(), pattern.upper())


def _now_iso():
    """UTC timestamp like 2025-07-01T12:34:56.789Z."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


###############################################################################
# §03 Errors and exit codes
###############################################################################


class CodexError(Exception):
    """Base of every error codex reports to the user as one line."""

    exit_code = 1


class UsageError(CodexError):
    """Bad command-line usage."""

    exit_code = 2


class ConfigError(CodexError):
    """Bad config.toml, -c override, profile or provider."""

    exit_code = 2


class AuthError(CodexError):
    """Missing or unusable credentials."""

    exit_code = 1


class ProviderError(CodexError):
    """The model provider failed or answered something we cannot use."""

    exit_code = 1


class SandboxError(CodexError):
    """The sandbox cannot be set up or refused to run a command."""

    exit_code = 1


class PatchError(CodexError):
    """An apply_patch input that does not parse or does not apply."""

    exit_code = 1


class McpError(CodexError):
    """An MCP server failed, timed out, or broke the protocol."""

    exit_code = 1


class NotLandedError(CodexError):
    """A subcommand whose capability is not built yet."""

    exit_code = 2


class TurnFailed(CodexError):
    """A turn ended in an error (exec exits 1)."""

    exit_code = 1


#: CodexError subclass -> the process exit code main() uses; documented in the README
EXIT_CODES = {
    UsageError: 2,
    ConfigError: 2,
    NotLandedError: 2,
    AuthError: 1,
    ProviderError: 1,
    SandboxError: 1,
    PatchError: 1,
    McpError: 1,
    TurnFailed: 1,
    CodexError: 1,
}


def _not_landed(capability):
    """Raise the error for a subcommand whose capability has not landed yet."""
    raise NotLandedError("%s is not built yet in this version of codex" % capability)


###############################################################################
# §04 Config: config.toml, -c overrides, profiles, providers
###############################################################################

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
    "tools": ("table", {}, None),
    "disable_paste_burst": ("bool", False, None),
    "include_plan_tool": ("bool", True, None),
    # accepted from very early builds, ignored once per-provider settings landed
    "request_max_retries": ("int", None, None),
    "stream_max_retries": ("int", None, None),
    "stream_idle_timeout_ms": ("int", None, None),
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
    "command": ("str", None),
    "args": ("list", []),
    "env": ("table", {}),
    "startup_timeout_sec": ("number", 10),
    "startup_timeout_ms": ("int", None),
    "tool_timeout_sec": ("number", 60),
    "enabled": ("bool", True),
    "required": ("bool", False),
    "cwd": ("str", None),
}

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
}

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
        for header, var in self.env_http_headers.items():
            value = environ.get(str(var), "").strip()
            if value:
                out[str(header)] = value
        key = self.require_api_key(home, environ)
        if key:
            out["Authorization"] = "Bearer " + key
        return out


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


class Config(object):
    """The resolved configuration of one session (see load_config)."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __repr__(self):
        return "Config(model=%r, provider=%r, approval=%r, sandbox=%r, cwd=%r)" % (
            self.model,
            self.model_provider,
            self.approval_policy,
            self.sandbox_mode,
            str(self.cwd),
        )

    @property
    def network_access(self):
        """Whether commands may use the network under this config's sandbox."""
        if self.sandbox_mode == "danger-full-access":
            return True
        if self.sandbox_mode == "workspace-write":
            return bool(self.sandbox_workspace_write.get("network_access"))
        return False


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


def _check_table(where, prefix, table, spec, warnings):
    """Type-check a nested table against spec {key: (kind, default)}; fill defaults."""
    out = {}
    for key, value in table.items():
        if key not in spec:
            warnings.append("%s: unknown key `%s.%s` (ignored)" % (where, prefix, key))
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


def read_config_file(home):
    """Read and parse $CODEX_HOME/config.toml; a missing file is an empty table."""
    path = Path(home) / "config.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, path
    except UnicodeDecodeError as exc:
        raise ConfigError("%s: not valid UTF-8 (%s); save it as UTF-8" % (path, exc.reason))
    except OSError as exc:
        raise ConfigError("%s: cannot read (%s)" % (path, exc.strerror or exc))
    return parse_toml(text, str(path)), path


def load_config(overrides=None, cli_overrides=(), strict=False, home=None, environ=None, cwd=None):
    """Resolve the session config: flags > -c > profile > config.toml > defaults.

    Returns a Config; raises ConfigError with a one-line message on bad input.  Warnings
    (unknown keys and the like) are collected in `config.warnings`.
    """
    environ = os.environ if environ is None else environ
    overrides = overrides or ConfigOverrides()
    home = Path(home) if home is not None else codex_home(environ)
    toml_tree, path = read_config_file(home)
    where = str(path)
    warnings = []

    cli_tree = {}
    for arg in cli_overrides:
        parts, value = parse_config_override(arg)
        _set_dotted(cli_tree, parts, value)

    # The profile is chosen by the flag, else -c profile=..., else the file's `profile`.
    profiles = _deep_merge(toml_tree.get("profiles", {}) or {}, cli_tree.get("profiles", {}) or {})
    if not isinstance(profiles, dict):
        raise ConfigError("%s: `profiles` must be a table of tables" % where)
    profile_name = overrides.profile or cli_tree.get("profile") or toml_tree.get("profile")
    profile = {}
    if profile_name is not None:
        if not isinstance(profile_name, str):
            raise ConfigError("%s: `profile` must be a string" % where)
        if profile_name not in profiles:
            defined = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(
                "config profile `%s` not found in %s; defined profiles: %s" % (profile_name, where, defined)
            )
        profile = profiles[profile_name]
        if not isinstance(profile, dict):
            raise ConfigError("%s: `profiles.%s` must be a table" % (where, profile_name))
        for key in profile:
            if key not in PROFILE_KEYS:
                warnings.append("%s: unknown key `profiles.%s.%s` (ignored)" % (where, profile_name, key))
        profile = {k: v for k, v in profile.items() if k in PROFILE_KEYS}

    # Layer the sources and remember where each top-level value came from.
    sources = {}
    merged = {}
    for label, layer in (
        ("config.toml", toml_tree),
        ("profile %s" % profile_name, profile),
        ("-c", cli_tree),
    ):
        for key, value in layer.items():
            if key == "profiles" and label != "config.toml":
                continue
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = _deep_merge(merged[key], value)
            else:
                merged[key] = value
            sources[key] = label
    merged["profiles"] = profiles
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
            merged[key] = value
            sources[key] = "flag"

    # Validate top-level keys.
    values = {}
    for key, value in merged.items():
        spec = CONFIG_KEYS.get(key)
        if spec is None:
            warnings.append("%s: unknown key `%s` (ignored)" % (where if sources.get(key) != "-c" else "-c", key))
            continue
        kind, _default, allowed = spec
        src = where if sources.get(key) in (None, "config.toml") or str(sources.get(key)).startswith("profile") else "-c %s" % key if sources.get(key) == "-c" else "--flag"
        _check_type(src, key, value, kind)
        if key == "approval_policy":
            value = _normalize_approval(value, src)
        elif allowed is not None:
            _check_enum(src, key, value, allowed)
        values[key] = value
    for key, (_kind, default, _allowed) in CONFIG_KEYS.items():
        if key not in values:
            values[key] = dict(default) if isinstance(default, dict) else default
            sources.setdefault(key, "default")
    if strict and warnings:
        raise ConfigError(warnings[0].replace("(ignored)", "(--strict-config: remove it or fix its spelling)"))

    for key in ("request_max_retries", "stream_max_retries", "stream_idle_timeout_ms"):
        if values.get(key) is not None:
            warnings.append(
                "%s: top-level `%s` is ignored; set it on the provider ([model_providers.NAME])" % (where, key)
            )

    values["sandbox_workspace_write"] = _check_table(
        where, "sandbox_workspace_write", values["sandbox_workspace_write"], SANDBOX_WORKSPACE_WRITE_KEYS, warnings
    )
    values["shell_environment_policy"] = _check_table(
        where, "shell_environment_policy", values["shell_environment_policy"], SHELL_ENV_POLICY_KEYS, warnings
    )
    _check_enum(where, "shell_environment_policy.inherit", values["shell_environment_policy"]["inherit"], ENV_INHERIT)
    values["history"] = _check_table(where, "history", values["history"], HISTORY_KEYS, warnings)
    _check_enum(where, "history.persistence", values["history"]["persistence"], HISTORY_PERSISTENCE)
    values["tui"] = _check_table(where, "tui", values["tui"], TUI_KEYS, warnings)
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

    mcp_servers = {}
    for name, table in values["mcp_servers"].items():
        if not isinstance(table, dict):
            raise ConfigError("%s: `mcp_servers.%s` must be a table" % (where, name))
        server = _check_table(where, "mcp_servers.%s" % name, table, MCP_SERVER_KEYS, warnings)
        if not server.get("command"):
            raise ConfigError("%s: `mcp_servers.%s.command` is required (the program to start)" % (where, name))
        if server.get("startup_timeout_ms") is not None:
            server["startup_timeout_sec"] = server["startup_timeout_ms"] / 1000.0
        mcp_servers[name] = server
    values["mcp_servers"] = mcp_servers

    # Providers: built-ins first; a user entry with a built-in's name updates its fields.
    providers = builtin_providers(environ)
    for pid, table in values["model_providers"].items():
        if not isinstance(table, dict):
            raise ConfigError("%s: `model_providers.%s` must be a table" % (where, pid))
        checked = {}
        for key, value in table.items():
            if key not in PROVIDER_KEYS:
                warnings.append("%s: unknown key `model_providers.%s.%s` (ignored)" % (where, pid, key))
                continue
            _check_type(where, "model_providers.%s.%s" % (pid, key), value, PROVIDER_KEYS[key][0])
            checked[key] = value
        if "wire_api" in checked:
            _check_enum(where, "model_providers.%s.wire_api" % pid, checked["wire_api"], WIRE_APIS)
        if pid in providers:
            base = {k: getattr(providers[pid], k) for k in PROVIDER_KEYS}
            base.update(checked)
            checked = base
        elif not checked.get("base_url"):
            raise ConfigError("%s: `model_providers.%s.base_url` is required" % (where, pid))
        providers[pid] = ProviderInfo(pid, **checked)
    provider_id = values["model_provider"]
    if provider_id not in providers:
        raise ConfigError(
            "model provider `%s` not found; known providers: %s (define it under [model_providers.%s] in %s)"
            % (provider_id, ", ".join(sorted(providers)), provider_id, where)
        )
    if values["model"] is None:
        values["model"] = DEFAULT_OSS_MODEL if provider_id in ("oss", "ollama") and overrides.oss else DEFAULT_MODEL

    cwd = Path(overrides.cwd if overrides.cwd is not None else (cwd or os.getcwd()))
    if not cwd.is_absolute():
        cwd = Path(os.getcwd()) / cwd
    if not cwd.is_dir():
        raise ConfigError("working directory %s does not exist (check -C/--cd)" % cwd)
    cwd = cwd.resolve()

    instructions_file = values["experimental_instructions_file"]
    base_instructions = overrides.base_instructions
    if instructions_file and base_instructions is None:
        ipath = Path(instructions_file).expanduser()
        if not ipath.is_absolute():
            ipath = cwd / ipath
        try:
            base_instructions = ipath.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError("cannot read experimental_instructions_file %s: %s" % (ipath, exc.strerror or exc))
        if not base_instructions.strip():
            raise ConfigError("experimental_instructions_file %s is empty" % ipath)

    include_plan_tool = values["include_plan_tool"] if overrides.include_plan_tool is None else overrides.include_plan_tool
    values.pop("profile", None)
    values.pop("include_plan_tool", None)
    return Config(
        codex_home=home,
        config_path=path,
        cwd=cwd,
        profile=profile_name,
        provider=providers[provider_id],
        providers=providers,
        base_instructions=base_instructions,
        include_plan_tool=include_plan_tool,
        dangerously_bypass=bool(overrides.dangerously_bypass),
        sources=sources,
        warnings=warnings,
        **values
    )


###############################################################################
# §05 Auth: auth.json, login, logout
###############################################################################


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


def write_auth(home, data):
    """Write auth.json pretty-printed, mode 0600."""
    write_private_file(auth_path(home), json.dumps(data, indent=2) + "\n")


def _mask_key(key):
    """sk-abcdefgh***vwxyz, or *** for short keys (as upstream's `login status`)."""
    return "***" if len(key) <= 13 else "%s***%s" % (key[:8], key[-5:])


###############################################################################
# §06 HTTP and SSE
###############################################################################

# Owner: the agent issue (#4).


###############################################################################
# §07 Providers: Responses and Chat Completions
###############################################################################

# Owner: the agent issue (#4).


###############################################################################
# §08 Protocol: ops and events
###############################################################################

# Owner: the agent issue (#4).  The contract every front end codes against:
#
#   session = Session(config, approval_handler=None)   # §15; starts no thread until used
#   session.submit({"type": "user_input", "items": [{"type": "text", "text": "..."}]}) -> submission id
#   session.next_event(timeout=None) -> {"id": submission_id, "msg": {"type": "...", ...}} or None
#   session.interrupt(); session.shutdown()
#
# Op and event type names and fields follow ../shared/reference/core-agent.md §9.


###############################################################################
# §09 Tools: definitions and the shell tool
###############################################################################

# Owner: the agent issue (#4).


###############################################################################
# §10 apply_patch: grammar, matching, applying
###############################################################################

# Owner: the agent issue (#4).


###############################################################################
# §11 Safety: known-safe commands and approval decisions
###############################################################################

# Owner: the sandbox issue (#3).  Contract used by the agent (§15) and front ends:
#
#   is_known_safe_command(argv) -> bool
#   assess_command_safety(argv, cfg, approved_for_session: set) -> "auto-approve" | "ask-user" | "reject"
#   assess_patch_safety(paths, cfg) -> "auto-approve" | "ask-user" | "reject"   (paths: absolute Paths
#       the patch writes, move destinations included)
#   execute_with_policy(argv, cwd, cfg, session_state, ask, on_output=None, cancel=None, timeout_ms=None)
#       -> ExecOutcome(result=ExecResult | None, model_output=str, decision=str)
#       ask(kind="exec", argv=..., cwd=..., reason=...) -> "approved" | "approved_for_session" | "denied" | "abort"
#       runs the whole flow: safety check, approval, sandboxed run, on-failure retry question.


###############################################################################
# §12 Sandbox: policies, the Linux helper, Seatbelt
###############################################################################

# Owner: the sandbox issue (#3).


def _cmd_debug(args, cfg_loader):
    """`codex debug landlock|seatbelt [--full-auto] [-s MODE] -- CMD...`."""
    _not_landed("`codex debug %s` (the sandbox)" % args.debug_command)


def _cmd_sandbox_check(args, cfg_loader):
    """`codex sandbox --check` / `codex doctor`: probe what the sandbox can use here."""
    _not_landed("`codex sandbox --check` (the sandbox)")


###############################################################################
# §13 Exec: running a command
###############################################################################

# Owner: the sandbox issue (#3).  Contract:
#
#   build_command_env(cfg, environ=None) -> dict      (shell_environment_policy + CODEX_SANDBOX_* vars)
#   run_command(argv, cwd, cfg, env, timeout_ms=None, on_output=None, cancel=None, sandboxed=True)
#       -> ExecResult(exit_code, stdout, stderr, aggregated_output, duration, timed_out, sandbox_denied)
#       on_output(stream_name, bytes) is called as output arrives; cancel is a threading.Event
#   format_exec_output(result) -> str                 (the JSON envelope the model sees)


###############################################################################
# §14 MCP client
###############################################################################

# Owner: the MCP issue (#6).


def _cmd_mcp(args, cfg_loader):
    """`codex mcp` (server over stdio), `codex mcp list`, `codex mcp call SERVER TOOL [JSON]`."""
    _not_landed("`codex mcp` (MCP client and server)")


###############################################################################
# §15 Agent: instructions and the turn loop
###############################################################################

# Owner: the agent issue (#4).


###############################################################################
# §16 History and rollouts
###############################################################################

# Owner: history.jsonl belongs to the REPL issue (#5); rollouts to the agent issue (#4).

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
    return (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def append_history(home, session_id, text, persistence="save-all", max_bytes=None, ts=None):
    """Append one prompt to history.jsonl under an exclusive lock; return True if written.

    Raises OSError when the file cannot be written or the lock is not obtained after the
    bounded retries; callers in front ends log it and carry on (history never breaks a session).
    """
    if persistence == "none" or not text:
        return False
    path = history_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
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

    def lookup(self, offset):
        """The record at absolute line `offset` (0 = oldest) of the snapshot, or None."""
        count = self.entry_count
        if offset < 0 or offset >= count:
            return None
        return self.entry_from_end(count - 1 - offset)


###############################################################################
# §17 Front end: codex exec
###############################################################################

# Owner: the agent issue (#4).


def _cmd_exec(args, cfg_loader):
    """`codex exec [PROMPT]`: run one task non-interactively."""
    _not_landed("`codex exec` (the agent)")


def _cmd_resume(args, cfg_loader):
    """`codex resume --last|ID`: continue a recorded session."""
    _not_landed("`codex resume` (session rollouts)")


###############################################################################
# §18 Front end: the interactive REPL
###############################################################################

# Owner: the REPL issue (#5).
#
# The interactive session renders inline and append-only: a finished cell (an answer block, a
# command with its output, a diff, a decision) is printed once into the terminal's normal
# scrollback and never redrawn.  Only the composer (prompt-toolkit, no alternate screen, no
# mouse capture unless `tui.disable_mouse_capture = false`) and, while a turn runs, one live
# status line are redrawn, so native scrollback, selection and tmux/zellij copy modes keep
# working (upstream #1247, #2836, #10331).  Data flow:
#
#     Composer (keys, `/` and `@` completion, history) -> op -> Session (§15)
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
#: /approvals presets: (key, label, approval_policy, sandbox_mode, description)
APPROVAL_PRESETS = (
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
FILE_SEARCH_MAX_FILES = 1000000  #: stop listing a workspace beyond this many files
EXEC_PREVIEW_HEAD, EXEC_PREVIEW_TAIL = 4, 2  #: command output lines shown before/after "…"
STATUS_FRAMES = u"\u280b\u2819\u2839\u2838\u283c\u2834\u2826\u2827\u2807\u280f"  #: spinner
_BACKTRACK = object()  #: what the composer returns when Esc Esc asks for the backtrack picker
#: spaces rich pads lines with (kept out of the scrollback so copied text has none)
_TRAILING_PAD_RE = re.compile(r"[ \t]+(?=(?:\x1b\[[0-9;]*m)*$)", re.M)


# -- terminal and text helpers --------------------------------------------------------------


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
        width = os.get_terminal_size(stream.fileno()).columns if tty else 80
    except (OSError, AttributeError, ValueError):
        width = 80
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


def rewrite_citations(text, file_opener, cwd, links=True):
    """Turn 【F:path†L5-L9】 into `[path:5](scheme://file/ABS:5) ` (or `path:5 ` without links).

    As upstream: nothing changes for file_opener "none"; the end line is dropped; relative
    paths are joined to the session cwd and lexically cleaned; one space follows.
    """
    scheme = FILE_OPENER_SCHEMES.get(file_opener)
    if scheme is None or u"\u3010F:" not in text:
        return text
    import posixpath
    from urllib.parse import quote

    def repl(m):
        path, start = m.group(1), m.group(2)
        label = "%s:%s" % (path, start)
        if not links:
            return label + " "
        raw = path.replace("\\", "/")
        full = posixpath.normpath(raw if raw.startswith("/") else posixpath.join(str(cwd).replace("\\", "/"), raw))
        if full.startswith("//"):
            full = "/" + full.lstrip("/")
        return "[%s](%s://file%s:%s) " % (label.replace("]", "\\]"), scheme, quote(full, safe="/:._-~+@,="), start)

    return CITATION_RE.sub(repl, text)


def _display_command(command):
    """A command argv as the user reads it: the script of `bash -lc SCRIPT`, else shell-quoted."""
    import shlex

    if isinstance(command, str):
        return command
    command = [str(c) for c in command or []]
    if len(command) == 3 and os.path.basename(command[0]) in ("bash", "sh", "zsh") and command[1] in ("-lc", "-c"):
        return command[2]
    return " ".join(shlex.quote(c) for c in command)


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


def _format_elapsed(seconds):
    """1.2s, 45s, 3m 05s."""
    if seconds < 10:
        return "%.1fs" % seconds
    if seconds < 60:
        return "%ds" % seconds
    return "%dm %02ds" % (seconds // 60, seconds % 60)


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


def list_workspace_files(root, limit=FILE_SEARCH_MAX_FILES):
    """Files under `root` relative to it: `git ls-files` in a repository, else a walk."""
    import subprocess

    try:
        proc = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=str(root), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30,
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
        self._paths = []
        self._lower = []
        self._base = []
        self._ready = threading.Event()
        self._thread = None
        self._generation = 0
        self._last = (None, None)  # (query key, matching indices)
        self._lock = threading.Lock()

    def start(self):
        """Begin listing the workspace in the background (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._load, name="codex-file-index", daemon=True)
            self._thread.start()
        return self

    def _load(self):
        try:
            paths = list_workspace_files(self.root)
        except Exception as exc:  # a broken index must not take the REPL down
            log("warn", "file search: cannot list %s: %s", self.root, exc)
            paths = []
        lower = [p.lower() for p in paths]
        self._base = [p[p.rfind("/") + 1:] for p in lower]
        self._paths, self._lower = paths, lower
        self._ready.set()

    def wait(self, timeout=None):
        """Block until the file list is loaded; return whether it is."""
        self.start()
        return self._ready.wait(timeout)

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
        atoms = query.split()
        if not atoms:
            order = sorted(range(len(self._paths)), key=lambda i: (self._paths[i].count("/"), len(self._paths[i]), self._paths[i]))
            return [(self._paths[i], []) for i in order[:limit]]
        keyed = [(a, a != a.lower()) for a in atoms]
        key = tuple(keyed)
        prev_key, prev = self._last
        if prev_key and len(prev_key) == len(key) and all(
            p[1] == k[1] and k[0].startswith(p[0]) for p, k in zip(prev_key, key)
        ) or (prev_key and len(prev_key) < len(key) and prev_key == key[: len(prev_key)]):
            candidates = prev
        else:
            candidates = range(len(self._paths))
        for atom, sensitive in keyed:
            pat = re.compile(".*?".join(re.escape(c) for c in atom), re.S)
            hay = self._paths if sensitive else self._lower
            search = pat.search
            candidates = [i for i in candidates if search(hay[i])]
            if stale():
                return []
        self._last = (key, candidates)

        paths, lower, base = self._paths, self._lower, self._base

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


# -- rendering ------------------------------------------------------------------------------


class MarkdownStream(object):
    """Streams an answer: each finished markdown block is rendered once, the rest waits.

    A block ends at a blank line outside a code fence, at a closing fence, or after a heading.
    Every character is scanned once and every block rendered once, so the cost stays linear in
    the message length (re-rendering the whole message on each delta would be quadratic).
    """

    _FENCE_RE = re.compile(r" {0,3}(`{3,}|~{3,})")
    _HEADING_RE = re.compile(r" {0,3}#{1,6}(\s|$)")

    def __init__(self, emit_block):
        self._emit = emit_block  # called with the markdown text of each finished block
        self._parts = []  # pieces of the current, unterminated line
        self._block = []  # finished lines of the current block
        self._fence = None  # the opening fence while inside a code block
        self.blocks = 0

    def push(self, delta):
        """Add streamed text; render whatever blocks it completes."""
        start = 0
        while delta:
            nl = delta.find("\n", start)
            if nl < 0:
                if start < len(delta):
                    self._parts.append(delta[start:])
                return
            self._parts.append(delta[start:nl])
            line = "".join(self._parts)
            self._parts = []
            self._line(line)
            start = nl + 1

    def _line(self, line):
        stripped = line.strip()
        if self._fence is not None:
            self._block.append(line)
            if stripped.startswith(self._fence) and not stripped.strip(self._fence[0]):
                self._fence = None
                self._flush()
            return
        fence = self._FENCE_RE.match(line)
        if fence:
            self._flush()
            self._fence = fence.group(1)
            self._block.append(line)
        elif not stripped:
            self._flush()
        elif self._HEADING_RE.match(line):
            self._flush()
            self._block.append(line)
            self._flush()
        else:
            self._block.append(line)

    def _flush(self):
        if self._block:
            text = "\n".join(self._block)
            self._block = []
            self.blocks += 1
            self._emit(text)

    def finish(self):
        """The message is complete: render what is left (an unclosed fence included)."""
        if self._parts:
            line = "".join(self._parts)
            self._parts = []
            self._line(line)
        self._fence = None
        self._flush()


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
        self._status_drawn = False
        self._ticker = None
        self._ticking = threading.Event()
        self._answer_blocks = 0

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
        """Write raw text above the status line."""
        with self.lock:
            if self._status_drawn:
                self.out.write("\r\x1b[2K")
                self._status_drawn = False
            self.out.write(text)
            self._draw_status()
            self.out.flush()

    def print(self, *renderables, **kw):
        """Render with rich and write the result once."""
        console = self.console()
        with self.lock:
            with console.capture() as cap:
                console.print(*renderables, **kw)
            self.write(_TRAILING_PAD_RE.sub("", cap.get()))

    def text(self, *parts):
        """A one-line cell from (text, style) pieces."""
        from rich.text import Text

        self.print(Text.assemble(*parts))

    # -- the live status line --

    def start_status(self, label):
        """Show `label` with a spinner and elapsed time until stop_status()."""
        with self.lock:
            self._status = [label, time.monotonic()]
            self._draw_status()
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

    def stop_status(self):
        """Remove the status line."""
        self._ticking.clear()
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.join(1.0)
        with self.lock:
            self._status = None
            if self._status_drawn:
                self.out.write("\r\x1b[2K")
                self._status_drawn = False
            self.out.flush()

    def _tick(self):
        while self._ticking.is_set():
            time.sleep(0.1)
            with self.lock:
                if self._status is not None:
                    self._draw_status()
                    self.out.flush()

    def _draw_status(self):
        if self._status is None or not self.caps["tty"] or self.caps["dumb"]:
            return
        label, started = self._status
        elapsed = time.monotonic() - started
        frame = STATUS_FRAMES[int(elapsed * 10) % len(STATUS_FRAMES)]
        line = u"%s %s (%s \u00b7 Esc to interrupt)" % (frame, label, _format_elapsed(elapsed))
        width = self.caps["width"]
        try:
            width = os.get_terminal_size(self.out.fileno()).columns
        except (OSError, AttributeError, ValueError):
            pass
        line = line.replace("\n", " ")
        if len(line) > width - 1:
            line = line[: max(0, width - 2)] + u"\u2026"
        if self.caps["color"]:
            line = "\x1b[1m" + line[:1] + "\x1b[0m\x1b[2m" + line[1:] + "\x1b[0m"
        self.out.write("\r\x1b[2K" + line)
        self._status_drawn = True

    # -- cells --

    def header(self, cfg, session_id=None):
        """The banner at start: version, model, provider, approval, sandbox, workdir."""
        from rich.text import Text

        rows = [
            ("model", cfg.model + (" (reasoning %s)" % cfg.model_reasoning_effort if getattr(cfg, "model_reasoning_effort", None) else "")),
            ("provider", cfg.provider.id),
            ("approval", cfg.approval_policy),
            ("sandbox", cfg.sandbox_mode),
            ("workdir", str(cfg.cwd)),
        ]
        if session_id:
            rows.append(("session", session_id))
        out = Text.assemble((">_ ", "bold"), ("codex", "bold"), (" v%s\n" % __version__, "dim"))
        for name, value in rows:
            out.append_text(Text.assemble(("  %-10s" % (name + ":"), "dim"), (str(value), "")))
            out.append("\n")
        out.append("  / for commands \u00b7 @ for files \u00b7 Ctrl-J newline \u00b7 Ctrl-D quit", style="dim")
        self.print(out)
        self.write("\n")

    def user(self, text):
        """A user message not typed in the composer (the PROMPT argument)."""
        from rich.text import Text

        self.print(Text.assemble((u"\u203a ", "bold cyan"), (text, "")))

    def answer_block(self, markdown_text):
        """One finished markdown block of the assistant's answer."""
        from rich.markdown import Markdown  # startup budget: markdown-it loads on first answer

        links = self.caps["hyperlinks"]
        opener = getattr(self.cfg, "file_opener", "none")
        if not markdown_text.lstrip().startswith(("```", "~~~")):
            markdown_text = rewrite_citations(markdown_text, opener, self.cfg.cwd, links=links)
        if self._answer_blocks:
            self.write("\n")
        self._answer_blocks += 1
        self.print(Markdown(markdown_text, hyperlinks=links, code_theme="ansi_dark", inline_code_theme="ansi_dark"))

    def start_answer(self):
        """A new assistant message begins (blocks are separated by blank lines within it)."""
        self._answer_blocks = 0
        self.write("\n")

    def reasoning(self, text):
        """A reasoning summary, dimmed."""
        from rich.text import Text

        body = rewrite_citations(text.strip(), getattr(self.cfg, "file_opener", "none"), self.cfg.cwd, links=False)
        self.write("\n")
        self.print(Text.assemble(("thinking\n", "dim italic bold"), (body, "dim italic")))

    def exec_cell(self, command, exit_code, seconds, output, cwd=None):
        """A finished command: status mark, the command, duration, and an output preview."""
        from rich.text import Text

        ok = exit_code == 0
        cell = Text.assemble(
            ("\n\u2713 " if ok else "\n\u2717 ", "bold green" if ok else "bold red"),
            (_display_command(command), "bold"),
            (" \u00b7 %s" % _format_elapsed(seconds), "dim"),
            ("" if ok else " \u00b7 exit %s" % exit_code, "red"),
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
                parts = [c.get("text", "") for c in res.get("content", []) if isinstance(c, dict) and c.get("type") == "text"]
                body = "\n".join(parts) if parts else json.dumps(res, ensure_ascii=False)[:400]
            elif res is not None:
                body = str(res)
        cell = Text.assemble(
            ("\n\u2713 " if ok else "\n\u2717 ", "bold green" if ok else "bold red"),
            ("tool ", "dim"), (call, "bold"), (" \u00b7 %s" % _format_elapsed(seconds), "dim"),
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
            if kind == "add":
                lines = ["+" + l for l in content.splitlines()]
                label = "added"
            elif kind == "delete":
                lines = ["-" + l for l in content.splitlines()]
                label = "deleted"
            else:
                lines = [l for l in diff.splitlines() if not l.startswith(("---", "+++"))]
                label = "modified" + (" \u2192 %s" % move if move else "")
            added, removed = _diff_counts(lines)
            cell.append_text(Text.assemble(
                ("\n  %s " % path, "bold"), ("(%s " % label, "dim"), ("+%d" % added, "green"), (" ", "dim"),
                ("-%d" % removed, "red"), (")", "dim"),
            ))
            for line in lines:
                style = "green" if line.startswith("+") else "red" if line.startswith("-") else "cyan" if line.startswith("@@") else "dim"
                cell.append("\n    " + line, style=style)
        self.print(cell)

    def diff_text(self, diff):
        """A unified diff (git diff output), coloured."""
        from rich.text import Text

        cell = Text()
        for line in diff.splitlines():
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
        cell = Text.assemble(("\n",), bar, ("Allow command?" if kind == "exec" else "Apply these changes?", "bold"))
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


# -- composer: history, keys, completion ----------------------------------------------------


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

    def __init__(self, fd):
        import queue  # only the interactive session needs it

        self.fd = fd
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
        self._thread = threading.Thread(target=self._read, name="codex-keys", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        import termios

        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
        termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
        return False

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

    def _toolbar(self):
        if self.hint:
            return " " + self.hint
        return " \u23ce send \u00b7 Ctrl-J newline \u00b7 / commands \u00b7 @ files \u00b7 Esc Esc edit previous \u00b7 Ctrl-D quit"

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
                    for name, description in SLASH_COMMANDS:
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
                    buf.document = Document(text, 0 if text else 0)
            else:
                buf.cursor_down(count=event.arg)

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

    def read(self, default="", complete=False):
        """The next message typed; None to quit; _BACKTRACK for Esc Esc."""
        if self._session is None:
            self._build()
        self._primed, self._ctrl_c, self.hint = False, False, None
        self.history.reset()
        pre_run = (lambda: self._session.default_buffer.start_completion(select_first=False)) if complete else None
        try:
            return self._session.prompt(default=default, pre_run=pre_run)
        except EOFError:
            return None
        except KeyboardInterrupt:
            return ""


# -- the session loop -----------------------------------------------------------------------


def _git_diff(cwd):
    """(in_repo, text): `git diff` of tracked files plus untracked files as new-file diffs."""
    import subprocess

    def git(*args):
        return subprocess.run(["git"] + list(args), cwd=str(cwd), stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, timeout=60)

    try:
        if git("rev-parse", "--is-inside-work-tree").returncode != 0:
            return False, ""
        parts = [git("diff", "--no-color").stdout.decode("utf-8", "replace")]
        untracked = git("ls-files", "--others", "--exclude-standard", "-z").stdout.split(b"\0")
        for raw in untracked:
            if raw:
                proc = git("diff", "--no-color", "--no-index", "--", os.devnull, os.fsdecode(raw))
                parts.append(proc.stdout.decode("utf-8", "replace"))
    except (OSError, subprocess.SubprocessError):
        return False, ""
    return True, "".join(p if p.endswith("\n") or not p else p + "\n" for p in parts)


def _sandbox_policy(mode, cfg):
    """The protocol's SandboxPolicy object for a sandbox_mode (core-agent.md §9.2)."""
    if mode != "workspace-write":
        return {"mode": mode}
    ww = getattr(cfg, "sandbox_workspace_write", {}) or {}
    policy = {"mode": mode}
    if ww.get("writable_roots"):
        policy["writable_roots"] = list(ww["writable_roots"])
    policy["network_access"] = bool(ww.get("network_access"))
    policy["exclude_tmpdir_env_var"] = bool(ww.get("exclude_tmpdir_env_var"))
    policy["exclude_slash_tmp"] = bool(ww.get("exclude_slash_tmp"))
    return policy


def _usage_of(msg):
    """The per-request usage in a token_count event (Aug flat form or Sept `info` form)."""
    if isinstance(msg.get("info"), dict):
        return msg["info"].get("last_token_usage") or {}
    if msg.get("info") is None and "info" in msg:
        return {}
    return msg


class Repl(object):
    """The interactive session: reads the composer, drives a Session, renders its events."""

    TURN_END = ("task_complete", "turn_aborted", "shutdown_complete")  #: events that end a turn

    def __init__(self, cfg, renderer=None, stdin=None):
        self.cfg = cfg
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
        self._stream = None
        self._execs = {}
        self._mcp = {}
        self._turn_error = None
        self.typeahead = ""

    # -- session lifecycle --

    def _start_session(self):
        """Create the Session in the background so the first prompt shows at once."""
        self._session_error = None

        def create():
            try:
                factory = globals().get("Session")
                if factory is None:
                    _not_landed("the agent session (Session, §15)")
                self.session = factory(self.cfg)
            except BaseException as exc:  # reported on first use, in the main thread
                self._session_error = exc

        self.session = None
        self.session_id = None
        self._session_thread = threading.Thread(target=create, name="codex-session-start", daemon=True)
        self._session_thread.start()

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
        self.renderer.header(self.cfg)
        self.files.start()
        self._start_session()
        if prompt or images:
            if prompt:
                self.renderer.user(prompt)
            self.submit_user(prompt or "", images)
        default, complete = "", False
        while True:
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
        self.close()
        return 0

    def close(self):
        """Flush history and shut the session down."""
        self._flush_history(force=True)
        self._close_session()

    def read_input(self, default="", complete=False):
        """The next message: the composer on a terminal, else one line of stdin."""
        if self.interactive:
            return self.composer.read(default, complete)
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
            return _TerminalKeys(self.stdin.fileno())
        import contextlib

        return contextlib.nullcontext(None)

    def run_turn(self, op):
        """Submit `op` and render events until the turn ends (Esc / Ctrl-C interrupt it)."""
        try:
            session = self._ensure_session()
            session.submit(op)
        except CodexError as exc:
            self.renderer.error(str(exc))
            return
        self.turn_usage, self._turn_error, self._stream = {}, None, None
        interrupted_at = None
        with self._key_context() as keys:
            self._keys = keys
            self.renderer.start_status("Working")
            try:
                while True:
                    try:
                        event = session.next_event(timeout=0.05)
                        if event is not None and self.handle_event(event):
                            break
                        if self._turn_error is not None and time.monotonic() - self._turn_error > 1.0:
                            break  # an error with no task_complete after it
                        if interrupted_at is not None and time.monotonic() - interrupted_at > 5.0:
                            self.renderer.note("the turn did not stop after the interrupt; giving up on it")
                            break
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
                    except KeyboardInterrupt:
                        if interrupted_at is not None:
                            raise
                        session.interrupt()
                        interrupted_at = time.monotonic()
            finally:
                self._keys = None
                self.renderer.stop_status()
                if self._stream is not None:
                    self._stream.finish()
                    self._stream = None
        self._flush_history()
        for key, value in self.turn_usage.items():
            if isinstance(value, (int, float)):
                self.total_usage[key] = self.total_usage.get(key, 0) + value
        self.renderer.tokens(self.turn_usage, self.total_usage)

    # -- events --

    def handle_event(self, event):
        """Render one event; return True when it ends the turn."""
        msg = event.get("msg") or {}
        kind = msg.get("type", "")
        handler = getattr(self, "_on_" + kind, None)
        if handler is not None:
            handler(event, msg)
        else:
            log("debug", "repl: unhandled event %s", kind)
        return kind in self.TURN_END

    def _on_session_configured(self, event, msg):
        self.session_id = msg.get("session_id") or self.session_id
        self._flush_history()

    def _on_agent_message_delta(self, event, msg):
        if self._stream is None:
            self.renderer.start_answer()
            self._stream = MarkdownStream(self.renderer.answer_block)
        self._stream.push(msg.get("delta", ""))

    def _on_agent_message(self, event, msg):
        if self._stream is not None:
            self._stream.finish()
            self._stream = None
            return
        self.renderer.start_answer()
        stream = MarkdownStream(self.renderer.answer_block)
        stream.push(msg.get("message", ""))
        stream.finish()

    def _on_agent_reasoning(self, event, msg):
        text = msg.get("text", "")
        heading = re.search(r"\*\*(.+?)\*\*", text)
        if heading:
            self.renderer.set_status(heading.group(1))
        if not getattr(self.cfg, "hide_agent_reasoning", False):
            self.renderer.reasoning(text)

    def _on_agent_reasoning_raw_content(self, event, msg):
        if getattr(self.cfg, "show_raw_agent_reasoning", False):
            self.renderer.reasoning(msg.get("text", ""))

    def _on_exec_command_begin(self, event, msg):
        self._execs[msg.get("call_id")] = (msg.get("command"), time.monotonic())
        self.renderer.set_status("Running " + _display_command(msg.get("command")))

    def _on_exec_command_end(self, event, msg):
        command, started = self._execs.pop(msg.get("call_id"), (msg.get("command"), time.monotonic()))
        seconds = _seconds(msg.get("duration")) if msg.get("duration") is not None else time.monotonic() - started
        code = msg.get("exit_code", 0)
        output = msg.get("aggregated_output")
        if output is None:
            output = msg.get("stdout", "") if code == 0 else (msg.get("stderr") or msg.get("stdout", ""))
        self.renderer.exec_cell(command, code, seconds, output)
        self.renderer.set_status("Working")

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
        decision = self._ask_approval("exec", msg.get("command"), msg.get("cwd"), msg.get("reason"))
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

    _on_stream_error = _on_background_event

    def _on_error(self, event, msg):
        if self._stream is not None:
            self._stream.finish()
            self._stream = None
        self.renderer.error(msg.get("message", "error"))
        self._turn_error = time.monotonic()

    def _on_turn_aborted(self, event, msg):
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
        what = "run %s" % _display_command(command).split("\n")[0][:80] if kind == "exec" else "apply the patch"
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
        fork = getattr(self.session, "fork", None) if self.session is not None else None
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
        index = len(messages) - 1
        shown = 0
        out = self.renderer.out
        caps = self.renderer.caps
        width = max(20, caps["width"] - 4)
        rows = min(len(messages), 8)

        def draw():
            top = min(max(0, index - rows // 2), len(messages) - rows)
            top = max(0, top)
            lines = [u"Edit a previous message (Esc/\u2191 older, \u2193 newer, Enter fork, q cancel)"]
            for i in range(top, top + rows):
                text = messages[i].replace("\n", u" \u23ce ")
                text = text if len(text) <= width else text[: width - 1] + u"\u2026"
                mark = u"\u203a" if i == index else " "
                line = u"%s %d. %s" % (mark, i + 1, text)
                if i == index and caps["color"]:
                    line = "\x1b[7m" + line + "\x1b[0m"
                lines.append(line)
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
                    if key in ("esc", "up", "k"):
                        index = max(0, index - 1) if key != "esc" or shown else index
                    elif key in ("down", "j"):
                        index = min(len(messages) - 1, index + 1)
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

    def slash(self, text):
        """Run a slash command; returns "quit", "mention", "not-a-command" or None."""
        word, _, arg = text[1:].partition(" ")
        name = SLASH_ALIASES.get(word.lower(), word.lower())
        handler = getattr(self, "_slash_" + name, None)
        if handler is None or name not in dict(SLASH_COMMANDS):
            return "not-a-command"
        return handler(arg.strip())

    def _slash_quit(self, arg):
        return "quit"

    def _slash_mention(self, arg):
        return "mention"

    def _slash_new(self, arg):
        self._close_session()
        self.user_messages, self.total_usage = [], {}
        self._start_session()
        self.renderer.note("\u2500\u2500 new chat \u2500\u2500")

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

        cfg = self.cfg
        sources = getattr(cfg, "sources", {}) or {}

        def src(key):
            where = sources.get(key)
            return "" if where in (None, "default") else "  (%s)" % where

        rows = [
            ("workdir", str(cfg.cwd), ""),
            ("model", cfg.model, src("model")),
            ("reasoning", "%s / summary %s" % (cfg.model_reasoning_effort or "default", cfg.model_reasoning_summary), src("model_reasoning_effort")),
            ("provider", "%s (%s, %s)" % (cfg.provider.id, cfg.provider.base_url, cfg.provider.wire_api), src("model_provider")),
            ("approval", cfg.approval_policy, src("approval_policy")),
            ("sandbox", cfg.sandbox_mode, src("sandbox_mode")),
            ("history", "%s (%s)" % ((cfg.history or {}).get("persistence", "save-all"), history_path(cfg.codex_home)), src("history")),
            ("session", self.session_id or "(not started)", ""),
        ]
        agents = Path(cfg.cwd) / "AGENTS.md"
        if agents.exists():
            rows.append(("AGENTS.md", str(agents), ""))
        u = self.total_usage
        rows.append(("tokens", "%s in \u00b7 %s out \u00b7 %s total" % (
            _thousands(u.get("input_tokens", 0)), _thousands(u.get("output_tokens", 0)), _thousands(u.get("total_tokens", 0))), ""))
        cell = Text("/status", style="bold")
        for name, value, where in rows:
            cell.append("\n  %-10s " % (name + ":"), style="dim")
            cell.append(str(value))
            cell.append(where, style="dim")
        self.renderer.print(cell)

    def _override(self, **fields):
        """Send override_turn_context (if the session has started, else it picks up cfg)."""
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
            labels = ["%s%s%s" % (m, " " + e if e else "", "  (current)" if m == self.cfg.model and e == self.cfg.model_reasoning_effort else "")
                      for m, e in MODEL_PRESETS]
            choice = self._pick("/model  choose a model and reasoning effort", labels)
            if choice is None:
                return
            name, effort = MODEL_PRESETS[choice]
        self.cfg.model = name
        self.cfg.model_reasoning_effort = effort
        self.cfg.sources["model"] = "/model"
        self._override(model=name, effort=effort)
        self.renderer.note("model: %s%s" % (name, " (reasoning %s)" % effort if effort else ""))

    def _slash_approvals(self, arg):
        labels = ["%s \u2014 %s%s" % (label, desc, "  (current)" if (ap, sm) == (self.cfg.approval_policy, self.cfg.sandbox_mode) else "")
                  for _k, label, ap, sm, desc in APPROVAL_PRESETS]
        choice = self._pick("/approvals  choose what codex may do without asking", labels)
        if choice is None:
            return
        _k, label, approval, sandbox, _d = APPROVAL_PRESETS[choice]
        self.cfg.approval_policy, self.cfg.sandbox_mode = approval, sandbox
        self.cfg.sources["approval_policy"] = self.cfg.sources["sandbox_mode"] = "/approvals"
        self._override(approval_policy=approval, sandbox_policy=_sandbox_policy(sandbox, self.cfg))
        self.renderer.note("approvals: %s (approval %s, sandbox %s)" % (label, approval, sandbox))


def _cmd_interactive(args, cfg_loader):
    """`codex [PROMPT]`: the interactive session."""
    cfg = cfg_loader()
    prompt = args.prompt
    if prompt == "-":
        prompt = sys.stdin.read()
    return Repl(cfg).run(prompt=prompt, images=args.images)


###############################################################################
# §19 Front end: the MCP server
###############################################################################

# Owner: the MCP issue (#6).


###############################################################################
# §20 Front end: codex proto
###############################################################################

# Owner: the agent issue (#4).


def _cmd_proto(args, cfg_loader):
    """`codex proto`: ops in on stdin, events out on stdout, one JSON object per line."""
    _not_landed("`codex proto` (the agent protocol)")


###############################################################################
# §21 Front end: codex proxy
###############################################################################

# Owner: the proxy issue (#7).


def _cmd_proxy(args, cfg_loader):
    """`codex proxy`: an OpenAI-compatible passthrough to the configured provider."""
    _not_landed("`codex proxy`")


###############################################################################
# §22 CLI: parser, completions, main
###############################################################################

#: subcommand name -> (handler name, one-line help); aliases in SUBCOMMAND_ALIASES
SUBCOMMANDS = {
    "exec": ("_cmd_exec", "Run codex non-interactively"),
    "resume": ("_cmd_resume", "Continue a recorded session"),
    "login": ("_cmd_login", "Store an API key in $CODEX_HOME/auth.json"),
    "logout": ("_cmd_logout", "Remove stored credentials"),
    "mcp": ("_cmd_mcp", "Run codex as an MCP server, or list/call configured MCP servers"),
    "mcp-server": ("_cmd_mcp", "Run codex as an MCP server over stdio"),
    "proto": ("_cmd_proto", "Speak the op/event protocol as JSON lines on stdio"),
    "proxy": ("_cmd_proxy", "Run an OpenAI-compatible passthrough to the configured provider"),
    "completion": ("_cmd_completion", "Print a shell completion script"),
    "debug": ("_cmd_debug", "Run a command under the sandbox (landlock or seatbelt)"),
    "sandbox": ("_cmd_sandbox_check", "Check what the sandbox can use on this machine"),
    "doctor": ("_cmd_sandbox_check", "Check what the sandbox can use on this machine"),
}
SUBCOMMAND_ALIASES = {"exec": ["e"], "proto": ["p"]}  #: short names upstream accepts
COMPLETION_SHELLS = ("bash", "zsh", "fish")  #: shells `codex completion` supports
COLOR_CHOICES = ("always", "never", "auto")  #: --color values


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
        help="low-friction sandboxed automatic execution (-a on-failure, -s workspace-write)", **sup
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


def build_parser():
    """Build the argparse tree for `codex` (also the source of the completion scripts)."""
    import argparse  # startup budget: --version answers before this import

    parser = argparse.ArgumentParser(
        prog="codex",
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
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")

    def sub(name, **kw):
        handler, help_text = SUBCOMMANDS[name]
        p = subs.add_parser(name, help=help_text, description=help_text, aliases=SUBCOMMAND_ALIASES.get(name, []), **kw)
        p.set_defaults(handler=handler, command=name)
        return p

    p = sub("exec")
    _add_config_options(p, top=False)
    p.add_argument("prompt", nargs="?", help="the task; `-` or none reads it from stdin; `resume` continues a session")
    p.add_argument("resume_args", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    p.add_argument("--color", choices=COLOR_CHOICES, default="auto", help="when to colour the output")
    a = p.add_argument("--output-last-message", metavar="FILE", help="write the last agent message to FILE")
    a.complete = "file"
    p.add_argument("--last", action="store_true", help="with `resume`: continue the most recent session")
    p.add_argument("--include-plan-tool", action="store_true", default=None, help="offer the plan tool to the model")

    p = sub("resume")
    _add_config_options(p, top=False)
    p.add_argument("session_id", nargs="?", help="session id to resume")
    p.add_argument("resume_prompt", nargs="?", help="prompt to send after resuming")
    p.add_argument("--last", action="store_true", help="resume the most recent session")

    p = sub("login")
    p.add_argument("login_action", nargs="?", choices=("status",), help="`status` shows the stored login")
    p.add_argument("--api-key", metavar="KEY", help="the API key to store (`-` reads it from stdin)")
    p.add_argument("--with-api-key", action="store_true", help="read the API key from stdin")

    sub("logout")

    for name in ("mcp", "mcp-server"):
        p = sub(name)
        _add_config_options(p, top=False)
        if name == "mcp":
            msub = p.add_subparsers(dest="mcp_command", metavar="MCP_COMMAND")
            msub.add_parser("serve", help="run codex as an MCP server over stdio (the default)")
            ml = msub.add_parser("list", help="list configured MCP servers, their status and tool counts")
            ml.add_argument("--json", action="store_true", help="print JSON")
            mc = msub.add_parser("call", help="call one tool of a configured MCP server")
            mc.add_argument("server", help="server name from [mcp_servers]")
            mc.add_argument("tool", help="tool name")
            mc.add_argument("arguments", nargs="?", default="{}", help="tool arguments as a JSON object")

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
    dsub = p.add_subparsers(dest="debug_command", metavar="SANDBOX")
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
    sub("doctor")
    return parser


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
        return argv[:i] + argv[i + 1:], token, []
    return argv, None, []


def _parse_args(argv):
    """Parse argv; return the namespace with -c lists joined (top-level first)."""
    parser = build_parser()
    argv, prompt, extra = _split_prompt(parser, argv)
    if extra:
        parser.error("unexpected arguments after the prompt: %s" % " ".join(extra))
    args = parser.parse_args(argv)
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
    for name in ("oss", "full_auto", "dangerously_bypass", "skip_git_repo_check", "strict_config"):
        if not hasattr(args, name):
            setattr(args, name, False)
    if args.dangerously_bypass and (args.full_auto or args.approval_policy):
        raise UsageError("--dangerously-bypass-approvals-and-sandbox cannot be combined with --full-auto or -a")
    return args


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
        )
        fields.update(extra)
        fields.update(more)
        overrides = ConfigOverrides(**fields)
        cfg = load_config(overrides, args.config_overrides, strict=args.strict_config)
        for warning in cfg.warnings:
            sys.stderr.write("codex: warning: %s\n" % warning)
        return cfg

    return load


def _cmd_login(args, cfg_loader):
    """`codex login --api-key KEY | --with-api-key | status`."""
    home = codex_home()
    if args.login_action == "status":
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
    home.mkdir(parents=True, exist_ok=True)
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


def completion_script(shell, parser):
    """Return the completion script for `shell`, generated from the argparse tree."""
    _not_landed("`codex completion`")


def _is_debug(argv):
    """Whether tracebacks should be shown (CODEX_DEBUG=1, -v/--verbose)."""
    return os.environ.get("CODEX_DEBUG", "") not in ("", "0") or "-v" in argv or "--verbose" in argv


def main(argv=None):
    """Entry point: parse argv, dispatch to the subcommand, map errors to exit codes."""
    argv = list(sys.argv[1:] if argv is None else argv)
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
        code = handler(args, config_loader_for(args))
        return 0 if code is None else int(code)
    except KeyboardInterrupt:
        sys.stderr.write("\ncodex: interrupted\n")
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


if __name__ == "__main__":
    sys.exit(main())
