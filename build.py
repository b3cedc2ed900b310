#!/usr/bin/env python3
"""Build and test codex.

    python3 build.py          build the sandbox helper(s) and pack dist/codex (a shiv zipapp)
    python3 build.py test     set up .venv from requirements/test.lock and run the test suite
                              (extra arguments go to pytest: python3 build.py test -k config)
    python3 build.py helpers  only compile the sandbox helper(s) into build/helpers/

Everything is installed from the hash-pinned lock files in requirements/ into throwaway
environments under build/ (and .venv for tests); nothing is installed globally.  Two builds
of the same commit give a byte-identical dist/codex (SOURCE_DATE_EPOCH is taken from the
last commit, zip entries are sorted and timestamped with it).
"""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BUILD = ROOT / "build"
DIST = ROOT / "dist"
REQ = ROOT / "requirements"
HELPER_SRC = ROOT / "sandbox_helpers"
HELPER_PKG = "codex_sandbox_helpers"  # directory inside the zipapp's site-packages
TEST_VENV = ROOT / ".venv"
MIN_PYTHON = (3, 9)
#: target architecture -> C compilers to try, in order (first one found wins)
HELPER_TARGETS = {
    "x86_64": ["x86_64-linux-gnu-gcc", "gcc", "cc"],
    "aarch64": ["aarch64-linux-gnu-gcc"],
}
CFLAGS = ["-std=c99", "-O2", "-static", "-Wall", "-Wextra", "-Werror", "-fno-ident",
          "-ffile-prefix-map=%s=." % ROOT, "-s"]


class BuildError(Exception):
    """A build step failed; the message says which and what to do."""


def say(msg):
    print("build.py: " + msg, flush=True)


def run(cmd, what, hint="", **kw):
    """Run a command; on failure raise BuildError naming the step and a hint."""
    try:
        proc = subprocess.run(cmd, **kw)
    except FileNotFoundError:
        raise BuildError("%s: %s not found. %s" % (what, cmd[0], hint))
    if proc.returncode != 0:
        raise BuildError("%s failed (exit %d). %s" % (what, proc.returncode, hint))
    return proc


def source_date_epoch():
    """SOURCE_DATE_EPOCH from the environment, else the last commit's time, else 1980."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=ROOT, capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return max(int(out.stdout.strip()), 315532800)
    except OSError:
        pass
    return 315532800


def machine_arch():
    m = os.uname().machine
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


# -- the sandbox helpers ------------------------------------------------------------------


def find_compiler(arch):
    """The C compiler for `arch`: $CC_<arch> or $CC (native only), else the known names."""
    env = os.environ.get("CC_" + arch) or (os.environ.get("CC") if arch == machine_arch() else None)
    candidates = [env] if env else HELPER_TARGETS.get(arch, [])
    for cc in candidates:
        if cc and shutil.which(cc):
            # plain gcc/cc only builds for the machine it runs on
            if cc in ("gcc", "cc") and arch != machine_arch():
                continue
            return cc
    return None


def build_helpers():
    """Compile every sandbox_helpers/*.c for each architecture we have a compiler for."""
    sources = sorted(HELPER_SRC.glob("*.c")) if HELPER_SRC.is_dir() else []
    out_dir = BUILD / "helpers"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    if not sources:
        say("no sandbox helper sources in sandbox_helpers/ yet: the helper slot is empty")
        return []
    built = []
    for arch in HELPER_TARGETS:
        cc = find_compiler(arch)
        if cc is None:
            hint = ("install gcc and libc6-dev (Debian/Ubuntu: apt-get install gcc libc6-dev)"
                    if arch == machine_arch() else
                    "install a cross compiler (Debian/Ubuntu: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)")
            say("no C compiler for %s: its helper is left out (%s); codex falls back to the "
                "Python sandbox path on %s machines" % (arch, hint, arch))
            continue
        for src in sources:
            out = out_dir / ("%s-%s" % (src.stem, arch))
            run([cc] + CFLAGS + ["-o", str(out), str(src)], "compiling %s for %s with %s" % (src.name, arch, cc),
                "Static linking needs the C library's static archive (Debian: libc6-dev).")
            out.chmod(0o755)
            built.append(out)
            say("built %s (%d bytes)" % (out.relative_to(ROOT), out.stat().st_size))
    return built


# -- environments -----------------------------------------------------------------------


def file_sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def ensure_venv(path, lock, what):
    """Create (or reuse) a venv at `path` with `lock` installed (hash-checked)."""
    py = path / "bin" / "python"
    stamp = path / ".installed-lock.sha256"
    want = file_sha256(lock)
    if py.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return py
    if not py.exists():
        say("creating %s" % path.relative_to(ROOT))
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(str(path))
        except Exception as exc:  # venv raises many kinds
            raise BuildError("cannot create a virtual environment at %s (%s). On Debian/Ubuntu: "
                             "apt-get install python3-venv" % (path, exc))
    say("installing %s from %s" % (what, lock.relative_to(ROOT)))
    run([str(py), "-m", "pip", "install", "-qq", "--disable-pip-version-check", "--require-hashes",
         "--only-binary=:all:", "-r", str(lock)],
        "installing %s" % what,
        "Is the package index reachable? Behind a proxy set HTTPS_PROXY; for a mirror set PIP_INDEX_URL.")
    stamp.write_text(want + "\n")
    return py


def install_runtime_site(site):
    """Install the runtime lock (resolved for Python 3.9) into a plain directory."""
    if site.exists():
        shutil.rmtree(site)
    site.mkdir(parents=True)
    py = ensure_venv(BUILD / "venv", REQ / "build.lock", "build tools (shiv)")
    run([str(py), "-m", "pip", "install", "-qq", "--disable-pip-version-check", "--no-deps",
         "--require-hashes", "--only-binary=:all:", "--no-compile", "--python-version", "3.9",
         "--implementation", "py", "--target", str(site), "-r", str(REQ / "runtime.lock")],
        "installing the runtime dependencies",
        "Is the package index reachable? Behind a proxy set HTTPS_PROXY; for a mirror set PIP_INDEX_URL.")
    # pip's bookkeeping differs between runs (INSTALLER, REQUESTED, absolute paths in RECORD)
    for dist_info in site.glob("*.dist-info"):
        for name in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json"):
            p = dist_info / name
            if p.exists():
                p.unlink()
    for cache in site.rglob("__pycache__"):
        shutil.rmtree(cache)
    bin_dir = site / "bin"
    if bin_dir.exists():
        shutil.rmtree(bin_dir)
    return py


MAIN_PY = '''\
# -*- coding: utf-8 -*-
# codex zipapp entry (written by build.py). Parseable by old Pythons on purpose.
import sys

if sys.version_info < (3, 9):
    sys.stderr.write("codex needs Python 3.9 or newer; this is Python %d.%d. "
                     "Run it with a newer python3 (e.g. `python3.11 codex`).\\n" % sys.version_info[:2])
    sys.exit(1)


HELP_TEXTS = @HELP_TEXTS@


def _fast_path():
    """--version and --help answer from the archive without extracting anything."""
    argv = sys.argv[1:]
    if argv in (["--version"], ["-V"]):
        sys.stdout.write("codex @VERSION@\\n")
        sys.exit(0)
    if argv in (["--help"], ["-h"]):
        # the help text as codex.py renders it, for the two widths it wraps at most often
        # (80: pipes and classic terminals; 100: its cap, any wider terminal)
        import os
        try:
            columns = int(os.environ["COLUMNS"])
        except (KeyError, ValueError):
            columns = 0
        if columns <= 0:
            try:
                columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
            except (AttributeError, ValueError, OSError):
                columns = 0
        text = HELP_TEXTS.get(min(columns if columns > 0 else 80, @HELP_MAX@))
        if text is not None:
            sys.stdout.write(text)
            sys.exit(0)
    if argv in (["--help"], ["-h"]) or argv[:1] == ["completion"]:
        import os
        # once a run has unpacked this build, import codex from there (its byte code is
        # cached) instead of compiling codex.py out of the archive on every call
        site = os.path.join(os.path.expanduser(os.environ.get("SHIV_ROOT") or "~/.shiv"),
                            os.path.basename(os.path.realpath(sys.argv[0])) + "_@BUILD_ID@", "site-packages")
        if not os.path.isfile(os.path.join(site, "codex.py")):
            site = sys.path[0] + "/site-packages"
        sys.path.insert(0, site)
        import codex
        sys.exit(codex.main(argv))


def _shiv_root():
    """Pick a writable SHIV_ROOT when the user did not: ~/.shiv, else a private temp dir."""
    import os
    if os.environ.get("SHIV_ROOT"):
        return
    home = os.path.expanduser("~/.shiv")
    try:
        os.makedirs(home, exist_ok=True)
        if os.access(home, os.W_OK | os.X_OK):
            return
    except OSError:
        pass
    import tempfile
    alt = os.path.join(tempfile.gettempdir(), "codex-%d-shiv" % os.getuid())
    try:
        os.makedirs(alt, mode=0o700, exist_ok=True)
        os.environ["SHIV_ROOT"] = alt
    except OSError:
        pass


def _record_paths():
    """What codex.zipapp_paths() answers: the archive, the unpack root, this build's directory."""
    import os
    root = os.path.abspath(os.path.expanduser(os.environ.get("SHIV_ROOT") or "~/.shiv"))
    archive = os.path.realpath(sys.argv[0])
    globals()["CODEX_ZIPAPP"] = {"archive": archive, "root": root,
                                 "unpacked": os.path.join(root, os.path.basename(archive) + "_@BUILD_ID@")}


_fast_path()
_shiv_root()
_record_paths()
try:
    import _bootstrap
    _bootstrap.bootstrap()
except (OSError, RuntimeError) as exc:
    import os
    sys.stderr.write("codex: cannot unpack itself into %s (%s); set SHIV_ROOT to a writable "
                     "directory, e.g. SHIV_ROOT=/tmp/codex-shiv\\n"
                     % (os.environ.get("SHIV_ROOT") or "~/.shiv", exc))
    sys.exit(1)
'''


def read_version():
    for line in (ROOT / "codex.py").read_text(encoding="utf-8").splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise BuildError("codex.py has no __version__ line")


def repack(raw, out, epoch, main_py):
    """Rewrite shiv's zipapp: our __main__.py, sorted entries, fixed timestamps."""
    date_time = time.gmtime(epoch)[:6]
    with zipfile.ZipFile(raw) as src:
        infos = sorted(src.infolist(), key=lambda i: i.filename)
        tmp = out.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(b"#!/usr/bin/env python3\n")
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as dst:
                for info in infos:
                    data = main_py.encode("utf-8") if info.filename == "__main__.py" else src.read(info)
                    zi = zipfile.ZipInfo(info.filename, date_time=date_time)
                    zi.compress_type = zipfile.ZIP_DEFLATED
                    mode = (info.external_attr >> 16) & 0o777 or 0o644
                    zi.external_attr = (stat.S_IFREG | mode) << 16
                    zi.create_system = 3
                    dst.writestr(zi, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    os.chmod(tmp, 0o755)
    os.replace(tmp, out)


def render_help(site):
    """`codex --help` as codex.py prints it at 80 columns and at its width cap."""
    text = (site / "codex.py").read_text(encoding="utf-8")
    help_max = int(text.split("HELP_MAX_COLUMNS = ", 1)[1].split()[0])
    texts = {}
    for columns in (80, help_max):
        env = dict(os.environ, COLUMNS=str(columns))
        proc = subprocess.run([sys.executable, str(site / "codex.py"), "--help"], capture_output=True,
                              text=True, env=env, cwd=str(site))
        if proc.returncode != 0:
            raise BuildError("`codex.py --help` failed: %s" % proc.stderr.strip()[-300:])
        texts[columns] = proc.stdout
    return texts, help_max


def build():
    """Compile helpers, install the runtime dependencies, pack dist/codex."""
    t0 = time.time()
    if sys.version_info < MIN_PYTHON:
        raise BuildError("build.py needs Python 3.9+")
    epoch = source_date_epoch()
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
    helpers = build_helpers()
    site = BUILD / "site"
    py = install_runtime_site(site)
    shutil.copy2(ROOT / "codex.py", site / "codex.py")
    if helpers:
        pkg = site / HELPER_PKG
        pkg.mkdir()
        for h in helpers:
            shutil.copy2(h, pkg / h.name)
    DIST.mkdir(exist_ok=True)
    raw = BUILD / "codex.shiv"
    shiv = py.parent / "shiv"
    run([str(shiv), "--site-packages", str(site), "-e", "codex:main", "-o", str(raw),
         "-p", "/usr/bin/env python3", "--reproducible", "--compressed", "--compile-pyc"],
        "packing the zipapp with shiv")
    out = DIST / "codex"
    with zipfile.ZipFile(raw) as z:  # the build id names the directory shiv unpacks into
        build_id = json.loads(z.read("environment.json").decode("utf-8"))["build_id"]
    help_texts, help_max = render_help(site)
    main_py = (MAIN_PY.replace("@VERSION@", read_version()).replace("@BUILD_ID@", build_id)
               .replace("@HELP_TEXTS@", repr(help_texts)).replace("@HELP_MAX@", str(help_max)))
    repack(raw, out, epoch, main_py)
    digest = file_sha256(out)
    (DIST / "codex.sha256").write_text("%s  codex\n" % digest)
    say("wrote dist/codex (%.1f MB, sha256 %s) in %.1fs" % (out.stat().st_size / 1e6, digest[:16], time.time() - t0))
    say("try it: ./dist/codex --help")
    return out


def test(pytest_args):
    """Set up .venv, build dist/codex, run pytest over tests/."""
    py = ensure_venv(TEST_VENV, REQ / "test.lock", "test dependencies")
    build()
    env = dict(os.environ)
    env["CODEX_DIST"] = str(DIST / "codex")
    env["CODEX_REPO_ROOT"] = str(ROOT)
    cmd = [str(py), "-m", "pytest", "-p", "no:cacheprovider", str(ROOT / "tests")] + list(pytest_args)
    say("running: %s" % " ".join(cmd[1:]))
    return subprocess.call(cmd, cwd=ROOT, env=env)


def main(argv):
    try:
        if not argv or argv[0] == "build":
            build()
            return 0
        if argv[0] == "test":
            return test(argv[1:])
        if argv[0] == "helpers":
            build_helpers()
            return 0
        if argv[0] in ("-h", "--help", "help"):
            print(__doc__)
            return 0
        print("build.py: unknown command %r; see python3 build.py --help" % argv[0], file=sys.stderr)
        return 2
    except BuildError as exc:
        print("build.py: error: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
