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
#   assess_command_safety(argv, cfg, approved_for_session: set, escalated=False) -> "auto-approve" | "ask-user" | "reject"
#   assess_patch_safety(paths, cfg) -> "auto-approve" | "ask-user" | "reject"   (paths: absolute Paths
#       the patch writes, move destinations included)
#   execute_with_policy(argv, cwd, cfg, session_state, ask, on_output=None, cancel=None, timeout_ms=None,
#                       escalated=False, justification=None)
#       -> ExecOutcome(result=ExecResult | None, model_output=str, decision=str)
#       ask(kind="exec", argv=..., cwd=..., reason=...) -> "approved" | "approved_for_session" | "denied" | "abort"
#       runs the whole flow: safety check, approval, sandboxed run, on-failure retry question.
#       It is defined at the end of §13 because it runs commands (the sections above it stay pure).
#       session_state: an object with a set attribute `approved_commands` (or a dict with that key);
#       approved_for_session argv tuples go there.  decision is one of EXEC_DECISIONS.
#       escalated/justification: the shell tool's `with_escalated_permissions` / `justification`.
#   take_sandbox_notices() -> [str]   (§12) one-time warnings for the user (e.g. ".git cannot be made
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
#: find options that execute, delete or write files
UNSAFE_FIND_OPTIONS = frozenset(("-exec", "-execdir", "-ok", "-okdir", "-delete", "-fls", "-fprint", "-fprint0", "-fprintf"))
#: rg options that run programs or read compressed files through a decompressor
UNSAFE_RG_OPTIONS = ("--search-zip", "-z", "--pre", "--hostname-bin")
#: git subcommands that only read the repository
SAFE_GIT_SUBCOMMANDS = frozenset(("status", "log", "diff", "show", "branch", "blame", "ls-files", "rev-parse", "shortlog"))
#: subcommand options that write files or run programs (global options such as -c, -C,
#: --config-env, --exec-path, -p are rejected anyway: the subcommand must come right after git)
UNSAFE_GIT_OPTIONS = ("--output", "--ext-diff", "--textconv", "--exec", "--upload-pack", "--paginate")
#: flags that make `git branch` read-only (anything else may create/delete/rename branches)
SAFE_GIT_BRANCH_FLAGS = ("--list", "-l", "--show-current", "-a", "--all", "-r", "--remotes", "-v", "-vv",
                         "--verbose", "--no-color", "--color", "--contains", "--merged", "--no-merged", "--format")
#: shells whose `-c`/`-lc` script may be parsed into plain commands
SCRIPT_SHELLS = ("bash", "zsh", "sh")
#: the sed script forms allowed with `sed -n`: Np or M,Np
_SED_PRINT_RE = re.compile(r"^\d+(,\d+)?p$")
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
#: user answers to a question (ReviewDecision on the wire)
REVIEW_DECISIONS = ("approved", "approved_for_session", "denied", "abort")


def _git_is_safe(argv):
    """Read-only git: a safe subcommand right after `git`, no option that writes or runs."""
    if len(argv) < 2 or argv[1] not in SAFE_GIT_SUBCOMMANDS:
        return False
    for arg in argv[2:]:
        if arg.split("=", 1)[0] in UNSAFE_GIT_OPTIONS:
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
    if prog == "rg":
        for arg in argv[1:]:
            if arg in UNSAFE_RG_OPTIONS or arg.startswith("--pre=") or arg.startswith("--hostname-bin="):
                return False
        return True
    if prog == "git":
        return _git_is_safe(argv)
    if prog == "sed":
        return (len(argv) in (3, 4) and argv[1] == "-n" and bool(_SED_PRINT_RE.match(argv[2]))
                and (len(argv) == 3 or bool(argv[3])))
    if prog == "base64":
        return not any(a in ("-o", "--output") or a.startswith("--output=") for a in argv[1:])
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
    sandbox = SandboxPolicy.from_config(cfg)
    key = tuple(str(a) for a in argv)
    if approved_for_session and key in approved_for_session:
        return "auto-approve", False, "approved for this session"
    full = sandbox.is_unrestricted()
    available = full or sandbox_available(getattr(cfg, "codex_home", None))
    if is_known_safe_command(argv):
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


def assess_patch_safety(paths, cfg):
    """Decide an apply_patch touching `paths`: auto-approve inside writable roots, else ask/reject."""
    policy = cfg.approval_policy
    if policy == "untrusted":
        return "ask-user"
    sandbox = SandboxPolicy.from_config(cfg)
    if not paths:
        return "reject"
    home = getattr(cfg, "codex_home", None)
    if all(sandbox.is_path_writable(Path(p), cfg.cwd, home) for p in paths):
        return "auto-approve"
    if policy == "never":
        return "reject"
    return "ask-user"


###############################################################################
# §12 Sandbox: policies, the Linux helper, Seatbelt
###############################################################################

# Owner: the sandbox issue (#3).
#
# A SandboxPolicy says what a command may write and whether it may use the network.  On
# Linux a helper process applies it to itself and then execs the command, so the command's
# pid, exit code and signals are its own.  The helper is sandbox_helpers/codex-linux-sandbox.c
# (compiled statically, shipped inside the zipapp, extracted content-addressed at run time);
# where no compiled helper fits the machine, codex re-executes itself as the same helper
# written in Python (ctypes Landlock + pyseccomp).  Both speak one argv protocol:
#
#   codex-linux-sandbox --cwd DIR [--writable PATH]... [--read-only PATH]... [--ro-mounts] [--network] -- CMD [ARG]...
#   codex-linux-sandbox --probe          (key=value lines: landlock_abi, seccomp, userns, mount_setattr)
#
#   --writable PATH   full Landlock rights beneath PATH (the writable roots; /dev/null always)
#   --read-only PATH  bind-mount PATH read-only inside a new user+mount namespace (.git,
#                     $CODEX_HOME, .codex inside writable roots)
#   --ro-mounts       in that namespace every mount is read-only except the writable roots:
#                     closes chmod/chown/utime/xattr outside the roots (Landlock's gap)
#   --network         leave the network alone (no socket rules in seccomp or Landlock)
#   --cwd DIR         chdir here after the mounts (so a cwd inside .git sees the read-only mount)
#
# Order inside the helper: close fds > 2, PR_SET_NO_NEW_PRIVS, namespace + read-only mounts,
# seccomp, Landlock, chdir, execvp.  The helper's own failures print one line starting with
# "codex-linux-sandbox:" and exit with one of HELPER_EXIT_CODES; a command that cannot be
# executed gives 127 (not found) or 126, like a shell.
#
# On macOS the policy becomes a Seatbelt profile run by /usr/bin/sandbox-exec.

#: helper exit code -> meaning (only when stderr starts with "codex-linux-sandbox:")
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
SEATBELT_EXECUTABLE = "/usr/bin/sandbox-exec"  #: absolute on purpose: never a PATH lookup
SANDBOX_TYPE_NAMES = {"linux": "LinuxSeccomp", "linux-python": "LinuxSeccomp", "seatbelt": "MacosSeatbelt"}

#: Landlock access rights (linux/landlock.h; the system header may predate ABI 7)
LANDLOCK_FS = {
    "execute": 1 << 0, "write_file": 1 << 1, "read_file": 1 << 2, "read_dir": 1 << 3,
    "remove_dir": 1 << 4, "remove_file": 1 << 5, "make_char": 1 << 6, "make_dir": 1 << 7,
    "make_reg": 1 << 8, "make_sock": 1 << 9, "make_fifo": 1 << 10, "make_block": 1 << 11,
    "make_sym": 1 << 12, "refer": 1 << 13, "truncate": 1 << 14, "ioctl_dev": 1 << 15,
}
LANDLOCK_ABI_MAX = 7  #: the newest ABI whose rights we know
_LANDLOCK_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
_LANDLOCK_FILE_RIGHTS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 14) | (1 << 15)  #: rights a file (not dir) rule may hold
_LANDLOCK_READ = (1 << 0) | (1 << 2) | (1 << 3)  #: execute + read_file + read_dir
_LANDLOCK_NET_TCP = (1 << 0) | (1 << 1)  #: bind_tcp + connect_tcp (ABI 4)
_LANDLOCK_SCOPE_ABSTRACT_UNIX, _LANDLOCK_SCOPE_SIGNAL = 1, 2  #: ABI 6
_SYS_LANDLOCK = (444, 445, 446)  #: create_ruleset, add_rule, restrict_self (same on every arch)

#: syscalls a sandboxed command never gets (EPERM): debugging other processes, io_uring
#: (which performs socket/file operations seccomp cannot see) and mount changes (a root
#: command owns the user namespace the read-only binds live in)
SECCOMP_ALWAYS_DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "mount", "umount2", "mount_setattr", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "pivot_root",
)
#: syscalls denied for every socket family when the network is off (no docker.sock, no ssh-agent)
SECCOMP_NETWORK_DENIED = ("connect", "bind", "listen", "accept", "accept4")
_TIOCSTI, _TIOCLINUX = 0x5412, 0x541C  #: terminal ioctls that inject input into the parent's tty

#: directories not searched for nested repositories (large, and never repos themselves)
_NESTED_REPO_SKIP = frozenset(("node_modules", ".venv", "venv", "target", "__pycache__", ".tox", ".mypy_cache"))
_NESTED_REPO_BUDGET = 20000  #: directory entries examined per root when looking for nested .git
_NESTED_REPO_CACHE_SECONDS = 10.0  #: how long one search result is reused


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
        """The policy of a Config: sandbox_mode + [sandbox_workspace_write], or the legacy list."""
        legacy = getattr(cfg, "sandbox_permissions", None)
        sources = getattr(cfg, "sources", {}) or {}
        if legacy is not None and sources.get("sandbox_mode", "default") == "default":
            return cls.from_permissions(legacy, getattr(cfg, "codex_home", None))
        mode = cfg.sandbox_mode
        if mode != "workspace-write":
            return cls(mode)
        ww = getattr(cfg, "sandbox_workspace_write", {}) or {}
        base = Path(getattr(cfg, "cwd", None) or os.getcwd())
        roots = []
        for entry in ww.get("writable_roots") or []:
            p = Path(str(entry)).expanduser()
            roots.append(p if p.is_absolute() else base / p)
        return cls("workspace-write", roots, ww.get("network_access", False),
                   ww.get("exclude_tmpdir_env_var", False), ww.get("exclude_slash_tmp", False))

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

    def to_json(self):
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
        return json.dumps(out, sort_keys=False)

    @classmethod
    def from_json(cls, text):
        """Parse the wire form (unknown fields ignored, missing booleans false)."""
        data = json.loads(text) if isinstance(text, str) else dict(text)
        return cls(data.get("mode", "read-only"), data.get("writable_roots") or (), data.get("network_access", False),
                   data.get("exclude_tmpdir_env_var", False), data.get("exclude_slash_tmp", False))

    def is_unrestricted(self):
        """danger-full-access: no sandbox at all."""
        return self.mode == "danger-full-access"

    def has_network(self):
        """Whether commands may open network sockets."""
        return self.mode == "danger-full-access" or self.network_access

    def writable_roots_for(self, cwd, environ=None):
        """The writable roots, in order: configured roots, cwd, /tmp, $TMPDIR (absolute, deduplicated)."""
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
        out, seen = [], set()
        for root in roots:
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
        real = os.path.realpath(os.path.normpath(str(path)))
        roots = self.writable_roots_for(cwd)
        if not any(_is_within(real, str(r)) for r in roots):
            return False
        return not any(_is_within(real, str(p)) for p in protected_paths(roots, cwd, home))


def _is_within(path, root):
    """Whether `path` is `root` or below it (both absolute, normalised)."""
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root if root == "/" else root + "/")


_NESTED_CACHE = {}


def _find_nested_git(root):
    """`.git` entries below `root` (not at its top), within a budget; returns (paths, complete)."""
    now = time.monotonic()
    hit = _NESTED_CACHE.get(root)
    if hit and now - hit[0] < _NESTED_REPO_CACHE_SECONDS:
        return hit[1], hit[2]
    found, budget, complete = [], _NESTED_REPO_BUDGET, True
    stack = [(root, 0)]
    while stack:
        path, depth = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue
        for entry in entries:
            budget -= 1
            if budget < 0:
                complete = False
                stack = []
                break
            if entry.name == ".git":
                if path != root:
                    found.append(entry.path)
                continue
            if entry.name in _NESTED_REPO_SKIP or depth >= 12:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, depth + 1))
            except OSError:
                continue
    _NESTED_CACHE[root] = (now, found, complete)
    return found, complete


def _gitdir_targets(git_file):
    """For a `.git` file (worktree/submodule pointer): the gitdir it names, if readable."""
    try:
        with open(git_file, "r", encoding="utf-8", errors="replace") as fh:
            first = fh.readline().strip()
    except OSError:
        return []
    if not first.startswith("gitdir:"):
        return []
    target = first[len("gitdir:"):].strip()
    if not os.path.isabs(target):
        target = os.path.join(os.path.dirname(git_file), target)
    return [os.path.realpath(target)] if os.path.exists(target) else []


def protected_paths(roots, cwd, home=None, search_nested=True):
    """Paths inside writable roots that stay read-only: .git (dirs, files, gitdir targets,
    nested repos in the workspace), .codex, and $CODEX_HOME.  Only existing paths."""
    out = []
    notes = []
    cwd_real = os.path.realpath(str(cwd))
    temp_roots = {os.path.realpath("/tmp"), os.path.realpath(os.environ.get("TMPDIR") or "/tmp")}
    for root in roots:
        root = str(root)
        candidates = [os.path.join(root, ".git"), os.path.join(root, ".codex")]
        # the workspace and configured roots are searched for nested repositories; /tmp is not
        if search_nested and (root not in temp_roots or root == cwd_real) and root != "/":
            nested, complete = _find_nested_git(root)
            candidates.extend(nested)
            if not complete:
                notes.append("only the first %d entries of %s were searched for nested .git directories"
                             % (_NESTED_REPO_BUDGET, root))
        for cand in candidates:
            if os.path.lexists(cand):
                if os.path.isfile(cand):
                    out.extend(_gitdir_targets(cand))
                out.append(os.path.realpath(cand))
    if home is not None:
        out.append(os.path.realpath(str(home)))
    result, seen = [], set()
    for p in out:
        if p in seen or not os.path.exists(p):
            continue
        if any(_is_within(p, str(r)) for r in roots):
            seen.add(p)
            result.append(p)
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


def _install_helper(data, digest, home):
    """Write the helper once, content-addressed and 0700; return its path or None."""
    import hashlib  # startup budget: only when a command is sandboxed

    name = "%s-%s" % (HELPER_NAME, digest[:16])
    for d in _helper_install_dirs(home):
        target = d / name
        try:
            if target.exists():
                st = target.lstat()
                if (st.st_uid == os.getuid() and (st.st_mode & 0o7777) == 0o700
                        and hashlib.sha256(target.read_bytes()).hexdigest() == digest):
                    return target
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            st = d.lstat()
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                continue  # somebody else could swap the binary in a shared directory
            tmp = d / (".%s.%d.tmp" % (name, os.getpid()))
            fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o700)
            try:
                os.write(fd, data)
                os.fchmod(fd, 0o700)
            finally:
                os.close(fd)
            os.replace(str(tmp), str(target))
            return target
        except OSError:
            continue
    return None


def linux_helper_path(home=None):
    """The compiled helper for this machine, extracted and ready (None: use the Python helper).

    CODEX_SANDBOX_HELPER=python forces the Python helper; CODEX_SANDBOX_HELPER=/path uses
    that binary as is (for testing a build).
    """
    choice = os.environ.get("CODEX_SANDBOX_HELPER", "").strip()
    if choice == "python":
        return None
    if choice:
        return Path(choice)
    key = str(home)
    if key in _HELPER_CACHE:
        return _HELPER_CACHE[key]
    import hashlib  # startup budget: only when a command is sandboxed

    found = None
    for src in _helper_sources():
        try:
            data = src.read_bytes()
        except OSError:
            continue
        found = _install_helper(data, hashlib.sha256(data).hexdigest(), home)
        if found is None:
            _notice("cannot extract the sandbox helper to $CODEX_HOME/bin or a cache directory; "
                    "using the slower Python helper")
        break
    _HELPER_CACHE[key] = found
    return found


def _python_helper_argv():
    """argv prefix that runs codex.py itself as the helper (-E -s: no PYTHON* env, no user site).

    Imported rather than run as a script, so a cached .pyc spares compiling this file.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    boot = "import sys; sys.path.insert(0, %r); import codex; sys.exit(codex.main(sys.argv[1:]))" % here
    return [sys.executable, "-E", "-s", "-B", "-c", boot, _SANDBOX_HELPER_ARGV]


def helper_argv_prefix(home=None):
    """(argv prefix, kind) for the Linux helper: the compiled one, else the Python one."""
    path = linux_helper_path(home)
    if path is not None:
        return [str(path)], "linux"
    return _python_helper_argv(), "linux-python"


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
        info["helper_path"] = prefix[0] if kind == "linux" else os.path.abspath(__file__)
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


def sandbox_command(argv, policy, policy_cwd, command_cwd=None, home=None):
    """Wrap argv so it runs under `policy`; returns (argv, extra env, sandbox type or None).

    `policy_cwd` is the session's workspace (a writable root in workspace-write); the
    command's own cwd (a model-chosen workdir) never widens the policy (upstream #3874).
    """
    argv = [str(a) for a in argv]
    if policy.is_unrestricted():
        return argv, {}, None
    command_cwd = str(command_cwd or policy_cwd)
    roots = policy.writable_roots_for(policy_cwd)
    if _LINUX:
        prefix, kind = helper_argv_prefix(home)
        out = prefix + ["--cwd", command_cwd]
        for root in roots:
            out += ["--writable", str(root)]
        userns = probe_sandbox(home).get("userns") == "1"
        if roots:
            ro = protected_paths(roots, policy_cwd, home)
            if ro and not userns:
                _notice(".git and $CODEX_HOME inside writable roots cannot be made read-only here "
                        "(user namespaces are unavailable); they stay writable")
                ro = []
            for p in ro:
                out += ["--read-only", p]
        if userns and probe_sandbox(home).get("mount_setattr") == "1":
            out.append("--ro-mounts")
        if policy.has_network():
            out.append("--network")
        return out + ["--"] + argv, {}, kind
    if _DARWIN:
        return seatbelt_argv(argv, policy, policy_cwd, home), {"CODEX_SANDBOX": "seatbelt"}, "seatbelt"
    raise SandboxError("no sandbox exists for %s; use -s danger-full-access to run commands unsandboxed" % sys.platform)


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


# -- the Python helper (fallback when no compiled helper fits) ------------------------------
#
# Runs in a fresh single-threaded interpreter started by sandbox_command() as
# `python codex.py __codex_linux_sandbox__ ARGS`; main() hands it over before anything
# else.  Same protocol, order and exit codes as the C helper.


def _helper_fail(code, message):
    """Print the helper's one-line error and exit with its code."""
    try:
        os.write(2, ("%s %s\n" % (HELPER_ERROR_PREFIX, message)).encode("utf-8", "replace"))
    finally:
        os._exit(code)


def _parse_helper_args(args):
    """Parse the helper protocol; returns a dict (raises ValueError on bad usage)."""
    opts = {"cwd": None, "writable": [], "read_only": [], "network": False, "probe": False, "command": [],
            "ro_mounts": False}
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
        elif a in ("--cwd", "--writable", "--read-only"):
            if i + 1 >= len(args):
                raise ValueError("%s needs a value" % a)
            i += 1
            if a == "--cwd":
                opts["cwd"] = args[i]
            else:
                opts["writable" if a == "--writable" else "read_only"].append(args[i])
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


def _apply_landlock(libc, writable, network):
    """Build and enforce the Landlock ruleset: / read+execute, writable roots and /dev/null full."""
    import ctypes

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    abi, reason = _landlock_abi(libc)
    if abi < 1:
        _helper_fail(122, "Landlock is unavailable: %s" % reason)
    fs = _LANDLOCK_FS_BY_ABI.get(abi, (1 << 16) - 1)
    attr = RulesetAttr(fs, 0, 0)
    size = 8
    if abi >= 4:
        size = 16
        if not network:
            attr.net = _LANDLOCK_NET_TCP
    if abi >= 6:
        size = 24
        attr.scoped = _LANDLOCK_SCOPE_SIGNAL | (0 if network else _LANDLOCK_SCOPE_ABSTRACT_UNIX)
    fd = libc.syscall(ctypes.c_long(_SYS_LANDLOCK[0]), ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        _helper_fail(122, "landlock_create_ruleset failed: %s" % os.strerror(ctypes.get_errno()))

    def allow(path, access, required):
        try:
            pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError as exc:
            if required:
                _helper_fail(122, "cannot open %s for a Landlock rule: %s" % (path, exc.strerror))
            return  # a configured root that does not exist is skipped, as upstream
        try:
            import stat as stat_mod

            if not stat_mod.S_ISDIR(os.fstat(pfd).st_mode):
                access &= _LANDLOCK_FILE_RIGHTS
            rule = PathBeneath(access & fs, pfd)
            if libc.syscall(ctypes.c_long(_SYS_LANDLOCK[1]), ctypes.c_int(fd), ctypes.c_int(1),
                            ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                _helper_fail(122, "landlock_add_rule(%s) failed: %s" % (path, os.strerror(ctypes.get_errno())))
        finally:
            os.close(pfd)

    allow("/", _LANDLOCK_READ, True)
    allow("/dev/null", fs, True)
    for root in writable:
        allow(root, fs, False)
    if libc.syscall(ctypes.c_long(_SYS_LANDLOCK[2]), ctypes.c_int(fd), ctypes.c_uint32(0)) != 0:
        _helper_fail(122, "landlock_restrict_self failed: %s" % os.strerror(ctypes.get_errno()))
    os.close(fd)


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


def _apply_seccomp(network):
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
            try:
                flt.add_rule(deny, name)
            except (OSError, ValueError, RuntimeError):
                pass  # a syscall this libseccomp or arch does not know cannot be called either
        for req in (_TIOCSTI, _TIOCLINUX):
            flt.add_rule(deny, "ioctl", pyseccomp.Arg(1, pyseccomp.MASKED_EQ, 0xFFFFFFFF, req))
        if not network:
            for name in SECCOMP_NETWORK_DENIED:
                flt.add_rule(deny, name)
            for name in ("socket", "socketpair"):
                flt.add_rule(deny, name, pyseccomp.Arg(0, pyseccomp.NE, socket.AF_UNIX))
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


def _protect_read_only(libc, paths, ro_mounts=False, writable=()):
    """Enter a user+mount namespace; with ro_mounts make every mount read-only but the
    writable roots; bind-mount each of `paths` read-only onto itself."""
    import ctypes

    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(ctypes.c_int(0x10000000 | 0x00020000)) != 0:  # CLONE_NEWUSER | CLONE_NEWNS
        _helper_fail(125, "unshare(user+mount namespace) failed: %s" % os.strerror(ctypes.get_errno()))
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", "%d %d 1" % (uid, uid)), ("gid_map", "%d %d 1" % (gid, gid))):
            with open("/proc/self/" + name, "w") as fh:
                fh.write(text)
    except OSError as exc:
        _helper_fail(125, "writing /proc/self/%s failed: %s" % (name, exc.strerror))
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
    for path in paths:
        bpath = os.fsencode(path)
        if libc.mount(bpath, bpath, None, ctypes.c_ulong(_MS_BIND | _MS_REC), None) != 0:
            _helper_fail(125, "bind-mounting %s failed: %s" % (path, os.strerror(ctypes.get_errno())))
        flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY
        try:
            fflag = os.statvfs(path).f_flag
        except OSError:
            fflag = 0
        for st_bit, ms_bit in _LOCKED_MOUNT_FLAGS:
            if fflag & st_bit:
                flags |= ms_bit
        if libc.mount(None, bpath, None, ctypes.c_ulong(flags), None) != 0:
            _helper_fail(125, "remounting %s read-only failed: %s" % (path, os.strerror(ctypes.get_errno())))


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
    except ValueError as exc:
        _helper_fail(121, "%s (usage: %s --cwd DIR [--writable PATH]... [--read-only PATH]... "
                     "[--ro-mounts] [--network] -- CMD [ARG]...)" % (exc, HELPER_NAME))
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
    os.closerange(3, 1 << 16)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        _helper_fail(120, "prctl(PR_SET_NO_NEW_PRIVS) failed")
    libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG=SIGKILL: the command dies with codex
    if opts["read_only"] or opts["ro_mounts"]:
        _protect_read_only(libc, opts["read_only"], opts["ro_mounts"], opts["writable"])
    _apply_seccomp(opts["network"])
    _apply_landlock(libc, opts["writable"], opts["network"])
    if opts["cwd"]:
        try:
            os.chdir(opts["cwd"])
        except OSError as exc:
            _helper_fail(121, "cannot enter %s: %s" % (opts["cwd"], exc.strerror))
    cmd = opts["command"]
    try:
        os.execvp(cmd[0], cmd)
    except OSError as exc:
        code = 127 if exc.errno in (errno.ENOENT, errno.ENOTDIR) else 126
        _helper_fail(code, "cannot execute %s: %s" % (cmd[0], exc.strerror))
    return 127



###############################################################################
# §13 Exec: running a command
###############################################################################

# Owner: the sandbox issue (#3).  Contract:
#
#   build_command_env(cfg, environ=None) -> dict      (shell_environment_policy + CODEX_SANDBOX_* vars)
#   run_command(argv, cwd, cfg, env, timeout_ms=None, on_output=None, cancel=None, sandboxed=True)
#       -> ExecResult(exit_code, stdout, stderr, aggregated_output, duration, timed_out, sandbox_denied)
#       on_output(stream_name, bytes) is called as output arrives; cancel is a threading.Event
#       ExecResult also carries: sandbox_type (None | "linux" | "linux-python" | "seatbelt"),
#       sandbox_error (the helper's one-line reason when the sandbox itself failed), cancelled,
#       timeout_ms.  exit_code is 124 on timeout, 128+N when killed by signal N.
#   format_exec_output(result) -> str                 (the JSON envelope the model sees)
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
#: names dropped unless ignore_default_excludes = true
DEFAULT_ENV_EXCLUDES = ("*KEY*", "*SECRET*", "*TOKEN*")
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


def build_command_env(cfg, environ=None):
    """The whole environment a command gets, from [shell_environment_policy].

    Order as upstream: inherit (all|core|none), drop *KEY*/*SECRET*/*TOKEN* (and every
    provider's key variable) unless ignore_default_excludes, drop `exclude`, add `set`,
    keep only `include_only`.  Then CODEX_SANDBOX_NETWORK_DISABLED=1 when the policy has
    no network.
    """
    environ = os.environ if environ is None else environ
    pol = getattr(cfg, "shell_environment_policy", None) or {}
    inherit = pol.get("inherit", "all")
    if inherit == "all":
        env = dict(environ)
    elif inherit == "core":
        env = {k: v for k, v in environ.items() if k in CORE_ENV_VARS}
    else:
        env = {}
    if not pol.get("ignore_default_excludes", False):
        secret_vars = set()
        for provider in (getattr(cfg, "providers", None) or {}).values():
            if getattr(provider, "env_key", None):
                secret_vars.add(provider.env_key)
            for var in (getattr(provider, "env_http_headers", None) or {}).values():
                secret_vars.add(str(var))
        env = {k: v for k, v in env.items()
               if k not in secret_vars and not any(glob_match(p, k) for p in DEFAULT_ENV_EXCLUDES)}
    excludes = [str(p) for p in pol.get("exclude") or []]
    env = {k: v for k, v in env.items() if not any(glob_match(p, k) for p in excludes)}
    for k, v in (pol.get("set") or {}).items():
        env[str(k)] = str(v)
    include_only = [str(p) for p in pol.get("include_only") or []]
    if include_only:
        env = {k: v for k, v in env.items() if any(glob_match(p, k) for p in include_only)}
    if not SandboxPolicy.from_config(cfg).has_network():
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


def _classify_helper_failure(exit_code, stderr):
    """The helper's own setup failure as one line, or None when the command itself ran."""
    if exit_code in HELPER_EXIT_CODES:
        for line in stderr.splitlines():
            if line.startswith(HELPER_ERROR_PREFIX):
                return line[len(HELPER_ERROR_PREFIX):].strip()
    return None


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


def run_command(argv, cwd, cfg, env, timeout_ms=None, on_output=None, cancel=None, sandboxed=True):
    """Run argv (in the sandbox of cfg's policy when sandboxed) and capture its output."""
    import selectors  # startup budget: only when a command runs
    import subprocess

    argv = [str(a) for a in argv]
    if not argv:
        raise SandboxError("empty command: nothing to run")
    cwd = str(cwd or cfg.cwd)
    timeout_ms = DEFAULT_EXEC_TIMEOUT_MS if timeout_ms is None else int(timeout_ms)
    policy = SandboxPolicy.from_config(cfg)
    env = dict(env)
    sandbox_type = None
    full_argv = argv
    if sandboxed and not policy.is_unrestricted():
        full_argv, extra_env, sandbox_type = sandbox_command(argv, policy, cfg.cwd, cwd, getattr(cfg, "codex_home", None))
        env.update(extra_env)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(full_argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, close_fds=True)
    except OSError as exc:
        code = 127 if exc.errno in (errno.ENOENT, errno.ENOTDIR) else 126
        msg = "codex: cannot execute %s: %s\n" % (argv[0], exc.strerror or exc)
        if exc.errno in (errno.ENOENT, errno.ENOTDIR) and not os.path.isdir(cwd):
            msg = "codex: working directory %s does not exist\n" % cwd
        return ExecResult(code, "", msg, msg, time.monotonic() - start, sandbox_type=sandbox_type, timeout_ms=timeout_ms)
    bufs = {"stdout": _CappedBuffer(), "stderr": _CappedBuffer()}
    agg = _CappedBuffer()
    deltas = [0]
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
    sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
    deadline = start + timeout_ms / 1000.0
    timed_out = cancelled = False
    exited_at = None
    try:
        while sel.get_map():
            now = time.monotonic()
            if not timed_out and not cancelled:
                if now >= deadline:
                    timed_out = True
                    _kill_group(proc)
                elif cancel is not None and cancel.is_set():
                    cancelled = True
                    _kill_group(proc)
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None:
                if now - exited_at > _LEFTOVER_GRACE_SECONDS:
                    _kill_group(proc)  # background children still hold the pipes
                if now - exited_at > _LEFTOVER_GRACE_SECONDS + 1.0:
                    break  # a child that left the group (setsid) keeps them: stop reading
            wait = max(0.01, min(0.05, deadline - now))
            for key, _ in sel.select(wait):
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
        try:
            status = proc.wait(timeout=max(0.1, deadline - time.monotonic()) if not timed_out else 5)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            status = proc.wait()
    except BaseException:
        _kill_group(proc)  # KeyboardInterrupt and friends: never leave the group running
        proc.wait()
        raise
    finally:
        sel.close()
        proc.stdout.close()
        proc.stderr.close()
    _kill_group(proc)  # anything that outlived the command in its group
    duration = time.monotonic() - start
    exit_code = 128 - status if status < 0 else status
    if timed_out:
        exit_code = TIMEOUT_EXIT_CODE
    elif cancelled:
        exit_code = 130
    result = ExecResult(exit_code, bufs["stdout"].text(), bufs["stderr"].text(), agg.text(), duration,
                        timed_out, False, sandbox_type, None, cancelled, timeout_ms)
    if sandbox_type is not None:
        result.sandbox_error = _classify_helper_failure(exit_code, result.stderr)
        result.sandbox_denied = result.sandbox_error is not None or looks_like_sandbox_denial(
            result, policy, cfg.cwd, getattr(cfg, "codex_home", None), cwd)
    return result


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


def _sandbox_failure_text(result):
    """Upstream's model-facing text for a run the sandbox stopped."""
    kind = SANDBOX_TYPE_NAMES.get(result.sandbox_type, "LinuxSeccomp")
    if result.sandbox_error:
        err = "sandbox setup failed: %s" % result.sandbox_error
    else:
        err = "sandbox denied exec error, exit code: %d, stdout: %s, stderr: %s" % (
            result.exit_code, _truncate_for_model(result.stdout), _truncate_for_model(result.stderr))
    return "failed in sandbox %s with execution error: %s" % (kind, err)


def execute_with_policy(argv, cwd, cfg, session_state, ask, on_output=None, cancel=None, timeout_ms=None,
                        escalated=False, justification=None):
    """Decide, ask if needed, run (sandboxed unless approved otherwise), offer an unsandboxed retry.

    See the §11 contract; returns ExecOutcome(result, model_output, decision).
    """
    argv = [str(a) for a in argv]
    cwd = str(cwd or cfg.cwd)
    approved = _approved_set(session_state)
    decision, sandboxed, reason = _command_plan(argv, cfg, approved, escalated)
    if decision == "reject":
        return ExecOutcome(None, "exec command rejected: %s" % reason, "reject")
    if decision == "ask-user":
        answer = ask(kind="exec", argv=argv, cwd=cwd, reason=justification)
        if answer not in ("approved", "approved_for_session"):
            return ExecOutcome(None, "exec command rejected by user", "abort" if answer == "abort" else "denied")
        if answer == "approved_for_session":
            approved.add(tuple(argv))
        decision, sandboxed = answer, False  # the user approved running it as is, outside the sandbox
    env = build_command_env(cfg)
    result = run_command(argv, cwd, cfg, env, timeout_ms, on_output, cancel, sandboxed=sandboxed)
    if not (sandboxed and result.sandbox_denied):
        return ExecOutcome(result, format_exec_output(result), decision)
    if cfg.approval_policy not in ("on-failure", "untrusted"):
        return ExecOutcome(result, _sandbox_failure_text(result), "sandbox-failed")
    answer = ask(kind="exec", argv=argv, cwd=cwd, reason="command failed; retry without sandbox?")
    if answer not in ("approved", "approved_for_session"):
        return ExecOutcome(result, "exec command rejected by user", "abort" if answer == "abort" else "denied")
    if answer == "approved_for_session":
        approved.add(tuple(argv))  # only on an explicit "always" (upstream added it on any yes)
    retry = run_command(argv, cwd, cfg, env, timeout_ms, on_output, cancel, sandboxed=False)
    return ExecOutcome(retry, format_exec_output(retry), "retry-approved")


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
    policy = SandboxPolicy.from_config(cfg)
    if not policy.is_unrestricted() and not sandbox_available(cfg.codex_home):
        info = probe_sandbox(cfg.codex_home)
        raise SandboxError("the sandbox is not available here (%s); run `codex sandbox --check`"
                           % (info.get("reason") or info.get("helper_error") or "Landlock or seccomp missing"))
    env = build_command_env(cfg)
    full, extra_env, _kind = sandbox_command(cmd, policy, cfg.cwd, os.getcwd(), cfg.codex_home)
    env.update(extra_env)
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
            lines.append(("ok", "helper", "compiled helper %s (%s)" % (info.get("helper_path"), _machine_arch())))
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
            lines.append(("warn", "userns", "user namespaces unavailable: .git and $CODEX_HOME inside writable roots "
                          "stay writable; enable them (sysctl kernel.unprivileged_userns_clone=1, or "
                          "kernel.apparmor_restrict_unprivileged_userns=0)"))
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
        policy = SandboxPolicy.from_config(cfg)
        src = getattr(cfg, "sources", {}) or {}
        lines.append(("ok", "policy", "approval_policy=%s (%s), sandbox_mode=%s (%s), network=%s"
                      % (cfg.approval_policy, src.get("approval_policy", "default"), policy.mode,
                         src.get("sandbox_mode", "default"), "on" if policy.has_network() else "off")))
    return lines


def _cmd_sandbox_check(args, cfg_loader):
    """`codex sandbox --check` / `codex doctor`: probe what the sandbox can use here."""
    try:
        cfg = cfg_loader()
    except CodexError as exc:
        sys.stderr.write("codex: warning: %s\n" % exc)
        cfg = None
    home = cfg.codex_home if cfg is not None else None
    lines = sandbox_check_lines(home, cfg)
    for status, probe, text in lines:
        sys.stdout.write("%-4s %-12s %s\n" % (status, probe, text))
    return 1 if any(status == "fail" for status, _, _ in lines) else 0



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
    if argv[:1] == [_SANDBOX_HELPER_ARGV]:  # codex re-executed as the Python sandbox helper (§12)
        return _sandbox_helper_main(argv[1:])
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
