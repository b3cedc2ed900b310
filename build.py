#!/usr/bin/env python3
"""Build and test codex.

    python3 build.py          build the sandbox helper(s) and pack dist/codex (a zipapp)
    python3 build.py test     set up .venv from requirements/test.lock, build dist/codex and run the
                              test suite (.venv and dist/codex are reused while their inputs are unchanged;
                              the fast tier: python3 build.py test -m "not slow")
                              (extra arguments go to pytest: python3 build.py test -k config)
    python3 build.py helpers  only compile the sandbox helper(s) into build/helpers/
    python3 build.py lock     regenerate requirements/*.lock from *.in (pip-compile, hash-pinned)
    python3 build.py build-if-changed
                              build unless dist/codex was built from the same inputs (as `test` does)

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
    wanted = [line for line in Path(lock).read_text().splitlines() if line.strip() and not line.startswith(("#", " "))]
    if not py.exists():
        say("creating %s" % path.relative_to(ROOT))
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(str(path))
        except Exception as exc:  # venv raises many kinds
            raise BuildError("cannot create a virtual environment at %s (%s). On Debian/Ubuntu: "
                             "apt-get install python3-venv" % (path, exc))
    if not wanted:  # nothing to install besides the venv's own pip
        stamp.write_text(want + "\n")
        return py
    say("installing %s from %s" % (what, lock.relative_to(ROOT)))
    run([str(py), "-m", "pip", "install", "-qq", "--disable-pip-version-check", "--require-hashes",
         "--only-binary=:all:", "-r", str(lock)],
        "installing %s" % what,
        "Is the package index reachable? Behind a proxy set HTTPS_PROXY; for a mirror set PIP_INDEX_URL.")
    stamp.write_text(want + "\n")
    return py


def install_runtime_deps():
    """The runtime lock (resolved for Python 3.9) installed into build/deps; reused while the
    lock files are unchanged (stamped with their hash)."""
    deps = BUILD / "deps"
    stamp = BUILD / "deps.sha256"
    want = hashlib.sha256((file_sha256(REQ / "runtime.lock") + file_sha256(REQ / "build.lock")).encode()).hexdigest()
    if deps.is_dir() and stamp.exists() and stamp.read_text().strip() == want:
        return deps
    if deps.exists():
        shutil.rmtree(deps)
    if stamp.exists():
        stamp.unlink()
    deps.mkdir(parents=True)
    py = ensure_venv(BUILD / "venv", REQ / "build.lock", "build tools")
    say("installing the runtime dependencies from requirements/runtime.lock")
    run([str(py), "-m", "pip", "install", "-qq", "--disable-pip-version-check", "--no-deps",
         "--require-hashes", "--only-binary=:all:", "--no-compile", "--python-version", "3.9",
         "--implementation", "py", "--target", str(deps), "-r", str(REQ / "runtime.lock")],
        "installing the runtime dependencies",
        "Is the package index reachable? Behind a proxy set HTTPS_PROXY; for a mirror set PIP_INDEX_URL.")
    # pip's bookkeeping differs between runs (INSTALLER, REQUESTED, absolute paths in RECORD)
    for dist_info in deps.glob("*.dist-info"):
        for name in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json"):
            p = dist_info / name
            if p.exists():
                p.unlink()
    for cache in deps.rglob("__pycache__"):
        shutil.rmtree(cache)
    bin_dir = deps / "bin"
    if bin_dir.exists():
        shutil.rmtree(bin_dir)
    stamp.write_text(want + "\n")
    return deps


def install_runtime_site(site):
    """A fresh copy of the runtime dependencies in `site` (codex.py and helpers go in next)."""
    deps = install_runtime_deps()
    if site.exists():
        shutil.rmtree(site)
    shutil.copytree(str(deps), str(site))


MAIN_PY = '''\
# -*- coding: utf-8 -*-
# codex zipapp entry (written by build.py). Parseable by old Pythons on purpose.
import sys

if sys.version_info < (3, 9):
    sys.stderr.write("codex needs Python 3.9 or newer; this is Python %d.%d. "
                     "Run it with a newer python3 (e.g. `python3.11 codex`).\\n" % sys.version_info[:2])
    sys.exit(1)


HELP_TEXTS = @HELP_TEXTS@
BUILD_ID = "@BUILD_ID@"  #: sha256 of the payload's manifest; names this build's unpacked directory
PAYLOAD = "payload.zip"  #: the archive member holding site-packages/ (one member: a short zip directory)
MANIFEST = "payload.sha256"  #: "<sha256> <path>" for every file of the payload


def _fast_path():
    """--version and --help answer from the archive without unpacking or importing anything."""
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


def _isolate():
    """Run on the interpreter's standard library and the bundled packages only.

    The host's site-packages, user site and PYTHONPATH leave sys.path, and the modules and
    import hooks they already loaded (a .pth file may import some) are forgotten, so no host
    package can shadow or slow a bundled one (httpcore imports trio, httpx click, if found).
    """
    import os
    std = os.path.dirname(getattr(os, "__file__", "") or "")
    if not std:
        return
    base = os.path.dirname(std)

    def is_std(path):
        if path.startswith(std + "/") or path == std:
            return "/site-packages" not in path and "/dist-packages" not in path
        return path.endswith(".zip") and os.path.dirname(path) == base  # lib/python3X.zip

    sys.path[:] = [p for p in sys.path if p and is_std(os.path.abspath(p))]
    foreign = set()
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None)
        if where and name != "__main__" and not is_std(where):
            foreign.add(name)
            del sys.modules[name]
    if foreign:
        owner = lambda hook: getattr(hook, "__module__", None) or type(hook).__module__  # noqa: E731
        sys.meta_path[:] = [f for f in sys.meta_path if owner(f) not in foreign]
        sys.path_hooks[:] = [h for h in sys.path_hooks if owner(h) not in foreign]
    sys.path_importer_cache.clear()


class _Refused(Exception):
    """The unpack location, or what is in it, cannot be trusted."""


def _private(path):
    """`path` made a private directory (created 0700 if missing); its real path.

    Trusted only if it is ours and not writable by others, and so is every directory above it
    (or that one is sticky, like /tmp): otherwise another user could rename it away and put
    other code in its place.
    """
    import os
    import stat
    os.makedirs(path, mode=0o700, exist_ok=True)
    real = os.path.realpath(path)
    uid = os.getuid()
    st = os.lstat(real)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o022:
        raise _Refused("%s is not a directory of yours that only you can write (chmod 700 it)" % real)
    parent = os.path.dirname(real)
    while True:
        st = os.lstat(parent)
        if st.st_uid not in (0, uid) or (st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX):
            raise _Refused("%s, above it, can be written by other users" % parent)
        if parent == os.path.dirname(parent):
            return real
        parent = os.path.dirname(parent)


def _root():
    """The directory to unpack into: $SHIV_ROOT, else ~/.shiv, else a private temp directory."""
    import os
    chosen = os.environ.get("SHIV_ROOT")
    if chosen:
        return _private(os.path.abspath(os.path.expanduser(chosen)))
    try:
        return _private(os.path.join(os.path.expanduser("~"), ".shiv"))
    except (OSError, _Refused):  # a read-only or shared $HOME
        tmp = os.environ.get("TMPDIR") or "/tmp"
        return _private(os.path.join(tmp, "codex-%d-shiv" % os.getuid()))


def _unpack(archive, root, target, digests, sha256):
    """Extract the payload next to `target` and rename it into place (atomically)."""
    import os
    import shutil
    import zipfile
    tmp = os.path.join(root, ".%s.%d.tmp" % (os.path.basename(target), os.getpid()))
    if os.path.lexists(tmp):
        shutil.rmtree(tmp)
    os.mkdir(tmp, 0o700)
    try:
        with zipfile.ZipFile(archive) as outer, outer.open(PAYLOAD) as member, zipfile.ZipFile(member) as payload:
            for info in payload.infolist():
                name = info.filename
                if name.endswith("/"):
                    continue
                data = payload.read(info)
                if digests.get(name) != sha256(data).hexdigest():
                    raise _Refused("%s in the archive does not match its manifest" % name)
                dest = os.path.join(tmp, name)
                os.makedirs(os.path.dirname(dest), mode=0o700, exist_ok=True)
                mode = 0o500 if (info.external_attr >> 16) & 0o100 else 0o400
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
        try:
            os.rename(tmp, target)
        except OSError:
            if not os.path.isdir(target):  # another codex unpacked the same build first: use that
                raise
    finally:
        if os.path.lexists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _sha256():
    """SHA-256 for checking every file read from the unpacked directory, the fastest found.

    OpenSSL's (with the CPU's SHA instructions: ~2 ms for the ~4 MB a start reads, against
    ~30 ms for CPython's own 3.11 code) imported alone: `hashlib` imports more than needed."""
    try:
        from _hashlib import openssl_sha256 as sha256
    except ImportError:  # a Python built without OpenSSL
        try:
            from _sha2 import sha256  # 3.12+
        except ImportError:
            try:
                from _sha256 import sha256
            except ImportError:
                from hashlib import sha256
    return sha256


def _install_finder(unpacked, digests, sha256):
    """Import bundled modules from `unpacked`/site-packages, each file checked against the
    archive's manifest as it is read (source and byte code).  The directory is not put on
    sys.path and its .pth files are not processed: a file the manifest does not list is
    never imported, and one that differs stops codex."""
    import importlib.machinery as machinery
    import os
    site = os.path.join(unpacked, "site-packages")
    prefix = site + "/"

    def verified(path):
        rel = "site-packages/" + path[len(prefix):] if path.startswith(prefix) else None
        want = digests.get(rel)
        if want is None:
            raise OSError("not part of this codex build: %s" % path)  # as if absent
        with open(path, "rb") as fh:
            data = fh.read()
        if sha256(data).hexdigest() != want:
            raise SystemExit("codex: %s differs from what this codex unpacked there (was it changed?); "
                             "remove %s and run codex again" % (path, unpacked))
        return data

    class Loader(machinery.SourceFileLoader):
        def get_data(self, path):
            return verified(path)

        def set_data(self, path, data, *args, **kwargs):
            pass  # byte code is shipped for the interpreters found at build time; never written here

    class Finder(object):
        @staticmethod
        def find_spec(name, path=None, target=None):
            mod = name.replace(".", "/")
            if "site-packages/%s/__init__.py" % mod in digests:
                origin, locations = prefix + mod + "/__init__.py", [prefix + mod]
            elif "site-packages/%s.py" % mod in digests:
                origin, locations = prefix + mod + ".py", None
            else:
                return None
            spec = machinery.ModuleSpec(name, Loader(name, origin), origin=origin,
                                        is_package=locations is not None)
            spec.submodule_search_locations = locations
            spec.has_location = True
            return spec

        @staticmethod
        def invalidate_caches():
            pass

        @staticmethod
        def find_distributions(context=None):
            """importlib.metadata's view of the bundled packages (prompt_toolkit asks for its version)."""
            import importlib.metadata as metadata

            class Distribution(metadata.PathDistribution):
                def read_text(self, filename):
                    try:
                        return verified(str(self._path / filename)).decode("utf-8")
                    except OSError:
                        return None

            name = getattr(context, "name", None)
            wanted = metadata.DistributionFinder.Context(name=name, path=[site])
            return [Distribution(d._path) for d in metadata.MetadataPathFinder.find_distributions(wanted)]

    sys.meta_path.insert(0, Finder)
    for name in digests:  # data files (CA bundle, sandbox helpers) are read by path: check them now
        if not name.endswith((".py", ".pyc", ".pyi", "py.typed")) and ".dist-info/" not in name:
            try:
                verified(os.path.join(unpacked, name))
            except OSError:
                raise SystemExit("codex: %s is missing from %s (was it changed?); remove that directory "
                                 "and run codex again" % (name, unpacked))


def _bootstrap():
    import os
    archive = os.path.realpath(getattr(__loader__, "archive", None) or sys.argv[0])
    text = __loader__.get_data(MANIFEST).decode("utf-8")
    digests = dict(line.split(" ", 1)[::-1] for line in text.splitlines())
    sha256 = _sha256()
    try:
        root = _root()
        unpacked = os.path.join(root, "codex_" + BUILD_ID[:40])
        if not os.path.isdir(unpacked):
            _unpack(archive, root, unpacked, digests, sha256)
        _private(unpacked)
    except (OSError, _Refused) as exc:
        sys.stderr.write("codex: cannot unpack itself into %s (%s); set SHIV_ROOT to a writable "
                         "directory, e.g. SHIV_ROOT=/tmp/codex-shiv\\n"
                         % (os.environ.get("SHIV_ROOT") or "~/.shiv", exc))
        sys.exit(1)
    globals()["CODEX_ZIPAPP"] = {"archive": archive, "root": root, "unpacked": unpacked}
    _install_finder(unpacked, digests, sha256)


def _run():
    _fast_path()
    _isolate()
    _bootstrap()
    import os
    if os.environ.get("SHIV_INTERPRETER") and len(sys.argv) > 1:
        # run a script with the bundled packages: `SHIV_INTERPRETER=1 codex script.py args`
        import runpy
        sys.argv = sys.argv[1:]
        runpy.run_path(sys.argv[0], init_globals={"CODEX_ZIPAPP": CODEX_ZIPAPP}, run_name="__main__")
        sys.exit(0)
    import codex
    sys.exit(codex.main(sys.argv[1:]))


if __name__ == "__main__":
    _run()
'''


def read_version():
    for line in (ROOT / "codex.py").read_text(encoding="utf-8").splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise BuildError("codex.py has no __version__ line")


PYC_SCRIPT = r"""
import os, py_compile, sys
root = sys.argv[1]
for dirpath, dirs, files in os.walk(root):
    dirs[:] = sorted(d for d in dirs if d != "__pycache__")
    for name in sorted(files):
        if name.endswith(".py"):
            src = os.path.join(dirpath, name)
            py_compile.compile(src, dfile=os.path.relpath(src, root), doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
print(sys.implementation.cache_tag)
"""


def find_pythons():
    """CPython 3.9+ interpreters to precompile byte code for: this one and python3.N on PATH.

    Byte code is version-specific; a version without it in the archive compiles the source in
    memory at every start (slower, same behaviour).  Returns {cache_tag: interpreter}.
    """
    found = {}
    for py in [sys.executable] + [shutil.which("python3.%d" % n) for n in range(MIN_PYTHON[1], 20)]:
        if not py:
            continue
        proc = subprocess.run([py, "-c", "import sys; print(sys.implementation.cache_tag, sys.version_info >= (3, 9))"],
                              capture_output=True, text=True)
        words = proc.stdout.split()
        if proc.returncode == 0 and len(words) == 2 and words[1] == "True" and words[0].startswith("cpython-"):
            found.setdefault(words[0], py)
    return dict(sorted(found.items()))


def compile_byte_code(site, pythons):
    """Hash-based (unchecked) .pyc files for every module, for each interpreter in `pythons`."""
    env = dict(os.environ, PYTHONHASHSEED="0")  # frozenset constants marshal in a fixed order
    env.pop("PYTHONPYCACHEPREFIX", None)
    for tag, py in pythons.items():
        run([py, "-I", "-W", "ignore", "-c", PYC_SCRIPT, str(site)], "compiling byte code with %s" % py, env=env,
            stdout=subprocess.DEVNULL)
    say("byte code for %s" % ", ".join(pythons))


def site_manifest(site):
    """(manifest text, sorted relative names): "<sha256> site-packages/<path>" per file."""
    names = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    lines = ["%s site-packages/%s" % (file_sha256(site / n), n) for n in names]
    return "\n".join(lines) + "\n", names


def _zip_info(name, date_time, mode):
    zi = zipfile.ZipInfo(name, date_time=date_time)
    zi.external_attr = (stat.S_IFREG | mode) << 16
    zi.create_system = 3
    return zi


#: what the kernel runs when dist/codex is executed: python3 on PATH with -S, so that no
#: site-packages directory is scanned and no .pth file of the host runs before codex's own
#: code (one imported certifi on every start, +40-100 ms, on the machine this was measured on).
#: `python3 dist/codex` still works, site and all (codex then drops what site added).
LAUNCHER = b"""#!/bin/sh
# codex: one file, a Python zipapp. Started as python3 -S: no host site-packages or .pth files.
exec python3 -S "$0" "$@"
"""


def pack(site, names, manifest, main_py, out, epoch):
    """dist/codex: the LAUNCHER lines, then a zip of __main__.py, the manifest and payload.zip.

    The payload (site-packages/) is one stored member, so the zip directory Python reads at
    every start has three entries instead of thousands.  Sorted entries and fixed timestamps
    make the bytes reproducible.
    """
    date_time = time.gmtime(epoch)[:6]
    payload = BUILD / "payload.zip"
    with zipfile.ZipFile(payload, "w") as dst:
        for name in names:
            path = site / name
            mode = 0o755 if os.access(str(path), os.X_OK) and not name.endswith((".py", ".pyc")) else 0o644
            dst.writestr(_zip_info("site-packages/" + name, date_time, mode), path.read_bytes(),
                         compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    tmp = out.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(LAUNCHER)
        with zipfile.ZipFile(fh, "w") as dst:
            dst.writestr(_zip_info("__main__.py", date_time, 0o644), main_py.encode("utf-8"),
                         compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
            dst.writestr(_zip_info("payload.sha256", date_time, 0o644), manifest.encode("utf-8"),
                         compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
            dst.writestr(_zip_info("payload.zip", date_time, 0o644), payload.read_bytes(),
                         compress_type=zipfile.ZIP_STORED)
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


def build_inputs(epoch, pythons):
    """A digest of everything dist/codex is made from: sources, locks, helper sources, the
    compilers and interpreters found, the timestamp."""
    h = hashlib.sha256()
    files = [ROOT / "build.py", ROOT / "codex.py", REQ / "runtime.lock", REQ / "build.lock"]
    files += sorted(HELPER_SRC.glob("*")) if HELPER_SRC.is_dir() else []
    for path in files:
        h.update(("%s %s\n" % (path.relative_to(ROOT), file_sha256(path))).encode())
    compilers = {arch: find_compiler(arch) for arch in HELPER_TARGETS}
    h.update(json.dumps([epoch, sorted(pythons.items()), sorted(compilers.items()), CFLAGS]).encode())
    return h.hexdigest()


def build(reuse=False):
    """Compile helpers, install the runtime dependencies, pack dist/codex.

    With `reuse`, an existing dist/codex built from the same inputs is kept as it is.
    """
    t0 = time.time()
    if sys.version_info < MIN_PYTHON:
        raise BuildError("build.py needs Python 3.9+")
    epoch = source_date_epoch()
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
    out = DIST / "codex"
    pythons = find_pythons()
    inputs = build_inputs(epoch, pythons)
    stamp = BUILD / "dist.stamp"
    if reuse and out.exists() and stamp.exists() and stamp.read_text().split() == [inputs, file_sha256(out)]:
        say("dist/codex is up to date (same sources, locks and tools); not rebuilt")
        return out
    helpers = build_helpers()
    site = BUILD / "site"
    install_runtime_site(site)
    shutil.copy2(ROOT / "codex.py", site / "codex.py")
    if helpers:
        pkg = site / HELPER_PKG
        pkg.mkdir()
        for h in helpers:
            shutil.copy2(h, pkg / h.name)
    compile_byte_code(site, pythons)
    manifest, names = site_manifest(site)
    build_id = hashlib.sha256(manifest.encode("utf-8")).hexdigest()
    help_texts, help_max = render_help(site)
    main_py = (MAIN_PY.replace("@VERSION@", read_version()).replace("@BUILD_ID@", build_id)
               .replace("@HELP_TEXTS@", repr(help_texts)).replace("@HELP_MAX@", str(help_max)))
    DIST.mkdir(exist_ok=True)
    pack(site, names, manifest, main_py, out, epoch)
    digest = file_sha256(out)
    (DIST / "codex.sha256").write_text("%s  codex\n" % digest)
    stamp.write_text("%s %s\n" % (inputs, digest))
    say("wrote dist/codex (%.1f MB, sha256 %s) in %.1fs" % (out.stat().st_size / 1e6, digest[:16], time.time() - t0))
    say("try it: ./dist/codex --help")
    return out


#: lock file -> the Python it is resolved for (runtime and build: the oldest supported)
LOCKS = {"runtime": "3.9", "build": "3.9", "test": None}


def lock():
    """Regenerate requirements/*.lock from *.in with pip-compile (hashes, no local paths).

    Index and find-links settings of this machine (pip.conf, PIP_* variables) are used to
    resolve but never written into the lock files.  runtime/build resolve with python3.9
    ($CODEX_LOCK_PYTHON39 or python3.9 on PATH), test with this python3.
    """
    for name, version in LOCKS.items():
        if version is None:
            py = sys.executable
        else:
            py = os.environ.get("CODEX_LOCK_PYTHON%s" % version.replace(".", "")) or shutil.which("python" + version)
            if not py:
                raise BuildError("no python%s to resolve requirements/%s.lock with; set CODEX_LOCK_PYTHON%s"
                                 % (version, name, version.replace(".", "")))
        tools = BUILD / ("lock-venv-%s" % (version or "test"))
        tool_py = tools / "bin" / "python"
        if not tool_py.exists():
            run([py, "-m", "venv", str(tools)], "creating %s" % tools)
            run([str(tool_py), "-m", "pip", "install", "-qq", "pip-tools"], "installing pip-tools")
        say("resolving requirements/%s.lock with %s" % (name, py))
        run([str(tool_py), "-m", "piptools", "compile", "-q", "--allow-unsafe", "--generate-hashes",
             "--strip-extras", "--no-emit-index-url", "--no-emit-find-links", "--no-emit-trusted-host",
             "--output-file=%s.lock" % name, "%s.in" % name], "pip-compile %s.in" % name, cwd=str(REQ))


def pytest_command(py, pytest_args):
    """pytest over tests/, unless the arguments name test files or directories themselves."""
    named = [a for a in pytest_args if not a.startswith("-") and os.path.exists(a.split("::")[0])]
    where = [] if named else [str(ROOT / "tests")]
    return [str(py), "-m", "pytest", "-p", "no:cacheprovider"] + where + list(pytest_args)


def test(pytest_args):
    """Set up .venv, build dist/codex, run pytest over tests/ (or over the test files and
    directories named among the arguments: `build.py test tests/test_x.py -k foo`)."""
    py = ensure_venv(TEST_VENV, REQ / "test.lock", "test dependencies")
    build(reuse=True)
    env = dict(os.environ)
    env["CODEX_DIST"] = str(DIST / "codex")
    env["CODEX_REPO_ROOT"] = str(ROOT)
    cmd = pytest_command(py, pytest_args)
    say("running: %s" % " ".join(cmd[1:]))
    return subprocess.call(cmd, cwd=ROOT, env=env)


def main(argv):
    try:
        if not argv or argv[0] == "build":
            build()
            return 0
        if argv[0] == "build-if-changed":
            build(reuse=True)
            return 0
        if argv[0] == "test":
            return test(argv[1:])
        if argv[0] == "lock":
            lock()
            return 0
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
