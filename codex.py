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

# Owner: the MCP issue (#6).  The contract the agent loop (§15) and the front ends use:
#
#   mgr = McpConnectionManager(cfg)      # cfg.mcp_servers: name -> {command, args, env, ...}
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
#   mcp_tool_to_openai(qualified_name, tool) -> a Responses `function` tool definition
#
# JSON-RPC 2.0 framing (newline-delimited, one object per line) is JsonRpcConnection, also
# used by the MCP server front end (§19).

#: protocol versions we speak, newest first; we offer the first and accept any of them
MCP_PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
MCP_TOOL_DELIMITER = "__"  #: SERVER__TOOL (upstream since July 2025)
MCP_MAX_TOOL_NAME = 64  #: longer qualified names are shortened with a SHA-1 suffix
MCP_STARTUP_TIMEOUT_MAX = 300.0  #: hard upper bound on startup_timeout_sec (seconds)
MCP_MAX_TOOL_PAGES = 1000  #: tools/list pages followed before giving up on a server
MCP_STDERR_TAIL_LINES = 40  #: stderr lines kept in memory per server
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


def _jsonable(value):
    """A copy of value that json.dumps accepts: str keys, lists for tuples/sets, str otherwise."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class JsonRpcConnection(object):
    """Newline-delimited JSON-RPC 2.0 over a pair of binary streams (MCP's stdio transport).

    A reader thread routes responses to waiting request() calls by id, and hands incoming
    requests and notifications to the callbacks, in the reader thread: a callback that
    needs to wait (for instance on a request of its own) must hand off to another thread.
    """

    def __init__(self, reader, writer, on_request=None, on_notification=None, name="peer", answer_parse_errors=False):
        self.name = name
        self._reader = reader
        self._writer = writer
        self._on_request = on_request  # fn(id, method, params)
        self._on_notification = on_notification  # fn(method, params)
        self._answer_parse_errors = answer_parse_errors
        self._pending = {}  # request id -> [threading.Event, response dict or None]
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._next_id = 1
        self.closed = threading.Event()
        self.close_reason = None
        self._thread = None

    def start(self):
        """Start the reader thread; returns self."""
        self._thread = threading.Thread(target=self._read_loop, name="jsonrpc-%s" % self.name, daemon=True)
        self._thread.start()
        return self

    # -- reading -----------------------------------------------------------------
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

    def _close(self, reason):
        with self._lock:
            if self.close_reason is None:
                self.close_reason = reason
            pending, self._pending = self._pending, {}
        self.closed.set()
        for slot in pending.values():
            slot[0].set()

    # -- writing -----------------------------------------------------------------
    def send(self, msg):
        """Write one message as one line; raise McpError if the peer is gone."""
        try:
            text = json.dumps(msg, separators=(",", ":"), ensure_ascii=False, default=str)
        except (TypeError, ValueError):  # e.g. Path keys in an event's `changes`
            text = json.dumps(_jsonable(msg), separators=(",", ":"), ensure_ascii=False)
        data = (text + "\n").encode("utf-8")
        with self._write_lock:
            try:
                self._writer.write(data)
                self._writer.flush()
            except (OSError, ValueError) as exc:
                self._close("cannot write to %s (%s)" % (self.name, exc))
                raise McpError("cannot write to %s: %s" % (self.name, exc))

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
        slot = [event, None]
        with self._lock:
            if self.closed.is_set():
                raise McpError("%s: %s before `%s` was sent" % (self.name, self.close_reason or "connection closed", method))
            req_id = self._next_id
            self._next_id += 1
            self._pending[req_id] = slot
        msg = {"jsonrpc": "2.0", "id": req_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
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
        """Mark the connection closed and wake every waiter (the streams are the caller's)."""
        self._close("connection closed by codex")


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


def mcp_tool_to_openai(qualified_name, tool):
    """A Responses API `function` tool for one MCP tool (strict off, schema as given)."""
    return {
        "type": "function",
        "name": qualified_name,
        "description": tool.get("description") or "",
        "strict": False,
        "parameters": sanitize_input_schema(tool.get("inputSchema")),
    }


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


def format_mcp_result_for_display(result, max_lines=5):
    """Lines for the UIs: up to max_lines of each text block, stand-ins for the rest."""
    lines = []
    if not isinstance(result, dict):
        return [str(result)]
    for block in result.get("content") or []:
        if not isinstance(block, dict):
            continue
        text = block.get("text", "") if block.get("type") == "text" else _mcp_block_summary(block)
        block_lines = str(text).splitlines() or [""]
        lines.extend(block_lines[:max_lines])
        if len(block_lines) > max_lines:
            lines.append("... (%d more lines)" % (len(block_lines) - max_lines))
    if not lines and result.get("structuredContent") is not None:
        lines.append(json.dumps(result["structuredContent"], ensure_ascii=False)[:400])
    return lines


def _mcp_server_env(configured, environ=None):
    """The whitelisted parent variables that are set, then the configured `env` over them."""
    environ = os.environ if environ is None else environ
    env = {k: environ[k] for k in MCP_ENV_WHITELIST if k in environ}
    for key, value in (configured or {}).items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        env[str(key)] = str(value)
    return env


class McpClient(object):
    """One configured MCP server: its process, its connection and its tools."""

    def __init__(self, name, spec, log_dir=None, client_version=None):
        self.name = name
        self.spec = dict(spec)
        self.state = "starting"  # starting | ready | failed | disabled | stopped
        self.error = None
        self.tools = []  # tool dicts, in the server's order
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
            self._spawn()
            self._initialize(deadline)
            self.tools = self.list_tools(deadline=deadline)
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

    def _spawn(self):
        import shutil  # startup budget: only when an MCP server is configured
        import subprocess

        env = _mcp_server_env(self.spec.get("env"))
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
                if os.path.basename(str(self.spec.get("command"))) in _MCP_SLOW_LAUNCHERS:
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
        self.conn.notify("notifications/initialized")

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
            self.tools = self.list_tools(timeout=self.tool_timeout())
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
        timeout = self.tool_timeout() if timeout is None else timeout
        params = {"name": tool, "arguments": arguments if arguments is not None else {}}
        try:
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
        servers = getattr(cfg, "mcp_servers", None) or {}
        if only is not None:
            servers = {k: v for k, v in servers.items() if k in only}
        self._servers = servers
        home = getattr(cfg, "codex_home", None)
        self._log_dir = Path(home) / "log" if home is not None else None
        self._clients = {}
        self._reported = set()
        self._lock = threading.Lock()
        self._started = False

    def start(self, include_disabled=False):
        """Start every enabled server in its own thread; wait only for `required` ones."""
        if self._started:
            return self
        self._started = True
        if self._servers and self._log_dir is not None:
            try:
                self._log_dir.mkdir(parents=True, exist_ok=True)
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
            if client.spec.get("required"):
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
        """The failures not returned by an earlier call (report each server once)."""
        out = []
        with self._lock:
            for name, c in sorted(self._clients.items()):
                if c.state == "failed" and c.done.is_set() and name not in self._reported:
                    self._reported.add(name)
                    out.append("MCP client for `%s` failed to start: %s" % (name, c.error))
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
                "command": spec.get("command"),
                "args": list(spec.get("args") or []),
                "enabled": bool(spec.get("enabled", True)),
                "required": bool(spec.get("required", False)),
                "tools": [t["name"] for t in c.tools] if c is not None and state == "ready" else [],
                "protocolVersion": c.protocol_version if c is not None else None,
                "serverInfo": c.server_info if c is not None else {},
                "startupSeconds": None if c is None or c.startup_seconds is None else round(c.startup_seconds, 3),
                "error": c.error if c is not None else None,
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


def _cmd_mcp(args, cfg_loader):
    """`codex mcp` (server over stdio), `codex mcp list`, `codex mcp call SERVER TOOL [JSON]`."""
    sub = getattr(args, "mcp_command", None)
    if args.command == "mcp-server" or sub in (None, "serve"):
        return run_mcp_server(args, cfg_loader)
    cfg = cfg_loader()
    if sub == "list":
        return _mcp_list(cfg, as_json=args.json)
    if sub == "call":
        return _mcp_call(cfg, args.server, args.tool, args.arguments, as_json=getattr(args, "json", False))
    raise UsageError("unknown `codex mcp` command %r; use serve, list or call" % sub)


def _mcp_list(cfg, as_json=False):
    """Start every configured server, wait for them, print status and tool counts."""
    mgr = McpConnectionManager(cfg)
    try:
        mgr.start()
        mgr.wait_ready(MCP_STARTUP_TIMEOUT_MAX + 5)
        rows = mgr.status()
    finally:
        mgr.shutdown()
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    if not rows:
        print("No MCP servers configured. Add a [mcp_servers.NAME] table with `command` to %s" % cfg.config_path)
        return 0
    width = max(4, max(len(r["name"]) for r in rows))
    print("%-*s  %-8s  %5s  %s" % (width, "NAME", "STATUS", "TOOLS", "COMMAND"))
    for r in rows:
        count = str(len(r["tools"])) if r["status"] == "ready" else "-"
        command = " ".join([r["command"] or ""] + r["args"])
        print("%-*s  %-8s  %5s  %s" % (width, r["name"], r["status"], count, command))
    for r in rows:
        if r["error"]:
            print("%s: %s" % (r["name"], r["error"]))
    return 0


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

# Owner: the MCP issue (#6).  `codex mcp` (alias `codex mcp-server`, `codex mcp serve`)
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
#   ping -> {};  anything else -> JSON-RPC error -32601 (upstream sent nothing at all,
#                       which leaves SDK clients waiting forever)
#
# Sessions come from session_factory(config) (default: Session, §15) and follow the
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
_REVIEW_DECISIONS = ("approved", "approved_for_session", "denied", "abort")  #: ReviewDecision values (as §08)
#: event types that end a turn
_TURN_END_EVENTS = ("task_complete", "turn_aborted", "shutdown_complete")
_INTERRUPT_GRACE = 10.0  #: seconds a cancelled turn gets to report turn_aborted
_EOF_GRACE = 1.0  #: seconds running calls get to finish after the client closes stdin
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


def _toml_value(value):
    """A JSON value written as a TOML literal (for `config` entries, applied like -c)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join("%s = %s" % (json.dumps(str(k)), _toml_value(v)) for k, v in value.items() if v is not None) + "}"
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
        cli.append("sandbox_permissions=" + _toml_value(perms))
        if sandbox is None:  # the permissions list maps onto today's modes
            names = [p.split("=", 1)[0] for p in perms]
            if "disk-full-write-access" in names:
                fields["sandbox_mode"] = "danger-full-access"
            elif any(n.startswith("disk-write") for n in names):
                fields["sandbox_mode"] = "workspace-write"
                roots = [p.split("=", 1)[1] for p in perms if p.startswith("disk-write-folder=")]
                if roots:
                    cli.append("sandbox_workspace_write.writable_roots=" + _toml_value(roots))
                if "network-full-access" in names:
                    cli.append("sandbox_workspace_write.network_access=true")
            else:
                fields["sandbox_mode"] = "read-only"
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
    if decision in _REVIEW_DECISIONS:
        return decision
    action = result.get("action")
    if action == "accept":
        content = result.get("content")
        if isinstance(content, dict) and content.get("decision") in _REVIEW_DECISIONS:
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
        self.conn.closed.wait()
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
        session.submit({"type": "user_input", "items": [{"type": "text", "text": prompt}]})
        last_message, error, interrupted_at = None, None, None
        while True:
            if call.cancelled.is_set() and interrupted_at is None:
                interrupted_at = time.monotonic()
            if interrupted_at is not None and time.monotonic() - interrupted_at > _INTERRUPT_GRACE:
                return self._finish(call, None)
            event = session.next_event(timeout=0.25)
            if event is None:
                continue
            msg = event.get("msg") or {}
            kind = msg.get("type")
            self._forward(call, event)
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
            elif kind in _TURN_END_EVENTS:
                if kind == "task_complete":
                    text = msg.get("last_agent_message")
                    if text is None:
                        text = last_message
                    if text is None and error is not None:
                        return self._finish(call, _text_result("Codex runtime error: %s" % error, error=True, session_id=call.session_id))
                    return self._finish(call, _text_result(text or "", session_id=call.session_id))
                if kind == "turn_aborted":
                    reason = msg.get("reason", "interrupted")
                    return self._finish(call, _text_result("Codex turn aborted: %s" % reason, error=True, session_id=call.session_id))
                return self._finish(call, _text_result("Codex runtime error: the session shut down", error=True))

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
    """Session(cfg) from §15, or a clear error while the agent is not built."""
    session_cls = globals().get("Session")
    if session_cls is None:
        _not_landed("the agent session (Session)")
    return session_cls(cfg)


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

    # The protocol owns the real stdout; anything else that prints (a stray print, a
    # child process inheriting fd 1) goes to stderr instead of corrupting the stream.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    server = McpServer(sys.stdin.buffer, out, load_config=load, session_factory=session_factory)
    try:
        return server.serve()
    finally:
        try:
            out.close()
        except OSError:
            pass


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
            mc.add_argument("--json", action="store_true", help="print the raw CallToolResult as JSON")

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
