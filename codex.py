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


def _cmd_interactive(args, cfg_loader):
    """`codex [PROMPT]`: the interactive session."""
    _not_landed("the interactive session (the REPL)")


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
