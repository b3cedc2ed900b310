/*
 * codex-linux-sandbox: apply codex's sandbox policy to this process, then exec a command.
 *
 * codex spawns this helper for every sandboxed command; the helper restricts itself and
 * execvp()s the command, so the command keeps the helper's pid and its exit status and
 * signals are the command's own.  No dependencies beyond the kernel headers and libc;
 * built statically (build.py) for x86_64 and aarch64.
 *
 * Argv protocol (the Python helper in codex.py §12b speaks the same one):
 *
 *   codex-linux-sandbox --cwd DIR [--writable PATH]... [--read-only PATH]... [--hide FILE]...
 *                       [--hide-dir DIR]... [--private-dir DIR]... [--pin PATH]... [--ro-mounts]
 *                       [--max-procs N] [--network]
 *                       [--status-fd N] -- CMD [ARG]...
 *   codex-linux-sandbox --probe
 *
 *   --writable PATH   full Landlock rights beneath PATH (a writable root)
 *   --read-only PATH  bind-mount PATH read-only inside a new user+mount namespace
 *                     (.git, .codex and $CODEX_HOME inside writable roots)
 *   --hide FILE       in that namespace bind /dev/null (read-only) over FILE: the command reads
 *                     nothing there ($CODEX_HOME/auth.json holds the API key; with the network
 *                     on, unix sockets such as docker.sock)
 *   --hide-dir DIR    in that namespace an empty read-only tmpfs covers DIR (with the network
 *                     on: $XDG_RUNTIME_DIR with the D-Bus and systemd sockets, /tmp/.X11-unix...)
 *   --private-dir DIR in that namespace DIR shows what it held when the command started and
 *                     nothing later: a tmpfs covers it, each entry is bound back onto it (a clone
 *                     with its submounts; symlinks copied; a --hide file there becomes an empty
 *                     file, then /dev/null), and the tmpfs is made read-only.  A file bind
 *                     (--hide, --read-only) is detached when a process outside renames another
 *                     file over its name (`codex login` replacing auth.json); a name in DIR is
 *                     not: what replaces it, and temp files beside it, stay out of sight
 *                     ($CODEX_HOME).  Without a user namespace (Landlock alone) DIR's existing
 *                     entries get their rules one by one (add_rules_around), new ones none.
 *   --pin PATH        in that namespace mount PATH (a directory, file or symlink: never followed)
 *                     onto itself, so that it cannot be renamed, removed or replaced: every
 *                     component between a writable root and a protected path, so that a command
 *                     cannot move the read-only mount aside and plant a copy at the trusted name
 *   --ro-mounts       in that namespace make every mount read-only except the writable
 *                     roots: closes chmod/chown/utime/xattr outside the roots, which
 *                     Landlock does not cover (needs mount_setattr, Linux 5.12+)
 *   --max-procs N     RLIMIT_NPROC inside the command's own user namespace: at most N processes
 *                     and threads for the command and everything it starts (not enforced
 *                     without a user namespace: the limit would count all of the user's processes)
 *   --network         the command may use the network (no socket rules)
 *   --cwd DIR         chdir(DIR) after the mounts, just before exec
 *   --status-fd N     the helper's own failures are also written to fd N ("CODE message\n"),
 *                     which stays open through setup and is close-on-exec: the command never
 *                     holds it, so only the helper can say "the sandbox failed" there (a
 *                     command printing "codex-linux-sandbox: ..." and exiting 122 is just a
 *                     command that failed)
 *   --probe           print key=value lines (implementation, landlock_abi, seccomp, userns,
 *                     mount_setattr)
 *
 * Policy, applied in this order:
 *   1. close every fd above 2; PR_SET_PDEATHSIG(SIGKILL); PR_SET_NO_NEW_PRIVS.
 *   2. unshare(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWIPC) (where a container
 *      refuses the PID or IPC namespace: without it) -- required with --ro-mounts or --hide-dir;
 *      without it --read-only, --hide and --pin are held by Landlock alone (step 5) -- and map
 *      our uid/gid to themselves.  The IPC
 *      namespace hides the SysV IPC and POSIX message queues of outside
 *      processes; a private tmpfs on /dev/shm (writable, 64 MiB) does the same for POSIX
 *      shared memory and semaphores.  RLIMIT_NPROC = --max-procs then counts this user
 *      namespace's processes only (the kernel never applies it to uid 0: see step 6).
 *      With --ro-mounts set MOUNT_ATTR_RDONLY on every mount and
 *      bind each writable root onto itself read-write; pin each --pin path (open_tree +
 *      move_mount without following it; a self-bind before Linux 5.2); bind each --read-only path onto itself and
 *      remount it read-only (keeping the locked flags); make each --private-dir private (above);
 *      bind /dev/null over each --hide file;
 *      cover /dev/pts and /dev/input with an empty read-only tmpfs and /dev/console with
 *      /dev/null (best effort): the user's terminals and keyboards, whose keystrokes a command
 *      could otherwise read (ptys cannot be opened in the sandbox anyway: /dev/ptmx is not
 *      writable).
 *   3. every capability goes: the securebits lock uid 0 out of regaining any at exec
 *      (SECBIT_NOROOT...), the bounding and ambient sets are emptied, then the effective,
 *      permitted and inheritable sets.  A root user's command would otherwise keep them all
 *      inside its user namespace (open_by_handle_at through a writable mount reaches what a
 *      read-only bind covers).  A uid 0 whose bounding set cannot be emptied fails (120).
 *   4. seccomp (a BPF filter built here; denials return EPERM):
 *      - foreign architecture and x32 syscalls (x86_64): kill the process;
 *      - always: ptrace, process_vm_readv/writev, io_uring_*, the mount family
 *        (mount, umount2, mount_setattr, move_mount, open_tree, fs*, pivot_root), the kernel
 *        keyrings (add_key, request_key, keyctl: the session keyring is shared with the user's
 *        login session), file handles (open_by_handle_at, name_to_handle_at), new or other
 *        namespaces (unshare, setns, clone with a CLONE_NEW* flag; clone3 gets ENOSYS so libc
 *        falls back to clone, whose flags the filter can see), bpf, perf_event_open,
 *        userfaultfd, pidfd_getfd, process_madvise, the kernel's modules, kexec, reboot, swap,
 *        syslog, acct, quotactl, chroot, fanotify_init, iopl/ioperm, and the TIOCSTI/TIOCLINUX
 *        ioctls;
 *      - without a PID namespace: prlimit64 on another process (RLIMIT_CPU/FSIZE on codex kill
 *        it; inside the namespace no outside pid can be named at all);
 *      - without an IPC namespace (no user namespaces, or refused): the SysV IPC and POSIX
 *        message queue syscalls;
 *      - network off: socket/socketpair for every family but AF_UNIX, and AF_UNIX only as
 *        SOCK_STREAM or SOCK_SEQPACKET: no datagram socket exists (SOCK_DGRAM, or SOCK_RAW,
 *        which AF_UNIX turns into one), so no sendto/sendmsg/sendmmsg can name a pathname
 *        socket outside (/dev/log, sd_notify, daemons' control sockets); stream and seqpacket
 *        sockets ignore or refuse a destination address.  connect, bind, listen, accept,
 *        accept4 for every family; sendto with a destination address.  Plain send/recv on
 *        socketpairs stay allowed.
 *      - chmod, fchmod, fchmodat, fchmodat2 with S_ISUID or S_ISGID in the mode: no set-ID
 *        program is left in a writable root (a root user's command would hand every local
 *        user a root shell; writes by a process without CAP_FSETID clear those bits anyway).
 *   5. Landlock, highest ABI the kernel offers (rights known up to ABI 7): every
 *      file-system right handled; "/" read+execute; /dev/null, the private /dev/shm and each
 *      writable root all rights (network off: all but MAKE_SOCK, so that no socket is
 *      hard-linked out of a directory hidden with the network on).  Without the user namespace (nothing mounted) the rules leave
 *      out what the mounts would have covered (add_rules_around): no rule beneath a --hide file
 *      (not even read) nor a --read-only path (read only), and the directories on the way to
 *      them or to a --pin path get no rule of their own, only their entries do: nothing there
 *      can be created, renamed or removed, while the files already there stay as writable.  ABI >= 4 and network off: TCP bind/connect handled (denied).  ABI >= 6:
 *      signals and abstract unix sockets scoped (with the network on too: X11 and D-Bus
 *      listen there).
 *   6. chdir(--cwd), execvp(CMD).  With the PID namespace of step 2 the helper forks an init
 *      (pid 1) right after unshare, which for root sets the namespace's pid_max to --max-procs
 *      + 300 (Linux 6.14+: the process limit that holds for uid 0), applies steps 2-5 and
 *      then forks and execs CMD and reaps; when CMD exits, init exits and the
 *      kernel kills whatever CMD left behind (setsid daemons included), and so does a SIGKILL
 *      to the helper's process group (timeouts).  The helper waits and exits like CMD (same
 *      code, or the same signal); SIGTERM/SIGHUP/SIGUSR1/SIGUSR2 are passed on to CMD.
 *
 * Exit codes of the helper's own failures (stderr gets one line "codex-linux-sandbox: ...", and
 * the --status-fd "CODE ..."; codex trusts only the latter):
 *   120 setup (prctl), 121 usage, 122 Landlock unavailable/failed, 123 seccomp failed,
 *   125 namespace/read-only mounts failed; 127 command not found, 126 not executable.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_SETUP 120
#define EXIT_USAGE 121
#define EXIT_LANDLOCK 122
#define EXIT_SECCOMP 123
#define EXIT_MOUNTS 125

/* Syscalls newer than some libc headers; these numbers are shared by x86_64 and aarch64. */
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef SYS_landlock_add_rule
#define SYS_landlock_add_rule 445
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#ifndef SYS_io_uring_enter
#define SYS_io_uring_enter 426
#endif
#ifndef SYS_io_uring_register
#define SYS_io_uring_register 427
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_fspick
#define SYS_fspick 433
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#ifndef SYS_quotactl_fd
#define SYS_quotactl_fd 443
#endif
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef CLONE_NEWPID
#define CLONE_NEWPID 0x20000000
#endif
#ifndef CLONE_NEWIPC
#define CLONE_NEWIPC 0x08000000
#endif
#ifndef CLONE_NEWNET
#define CLONE_NEWNET 0x40000000
#endif
/* every CLONE_NEW* flag clone(2) takes (CLONE_NEWTIME only exists for clone3/unshare: in
 * clone's flags 0x80 is part of the exit signal) */
#define CLONE_NS_FLAGS 0x7E020000U
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
/* linux/securebits.h: NOROOT, NO_SETUID_FIXUP and NO_CAP_AMBIENT_RAISE set, KEEP_CAPS clear,
 * each of the four locked */
#define SECUREBITS_LOCKED_DOWN 0xEFU
#define SHM_TMPFS_OPTIONS "size=64m,nr_inodes=4096,mode=1777"

#if defined(__x86_64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "codex-linux-sandbox supports x86_64 and aarch64"
#endif

/* Landlock (linux/landlock.h of the build machine may predate ABI 7: defined here). */
#define LL_EXECUTE (1ULL << 0)
#define LL_WRITE_FILE (1ULL << 1)
#define LL_READ_FILE (1ULL << 2)
#define LL_READ_DIR (1ULL << 3)
#define LL_MAKE_SOCK (1ULL << 9)
#define LL_TRUNCATE (1ULL << 14)
#define LL_IOCTL_DEV (1ULL << 15)
#define LL_FILE_RIGHTS (LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV)
#define LL_READ (LL_EXECUTE | LL_READ_FILE | LL_READ_DIR)
#define LL_NET_TCP ((1ULL << 0) | (1ULL << 1))
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0)
#define LL_SCOPE_SIGNAL (1ULL << 1)
#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1

struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct ll_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

/* mount_setattr(2) (linux/mount.h may be missing on the build machine) */
struct mount_attr_v0 {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};
#define MOUNT_ATTR_RDONLY_BIT 0x00000001ULL
#define AT_RECURSIVE_FLAG 0x8000
#define OPEN_TREE_CLONE_FLAG 1
#define MOVE_MOUNT_F_EMPTY_PATH_FLAG 0x00000004

#define TIOCSTI_REQ 0x5412
#define TIOCLINUX_REQ 0x541C
#define MAX_PATHS 4096

static const char *writable[MAX_PATHS];
static const char *read_only[MAX_PATHS];
static const char *hidden[MAX_PATHS];
static const char *hidden_dirs[MAX_PATHS];
static const char *pins[MAX_PATHS];
static const char *private_dirs[MAX_PATHS];
static char private_split[MAX_PATHS][PATH_MAX]; /* "DIR/.": Landlock alone splits DIR into its entries */
static const char *private_split_ptr[MAX_PATHS];
static int n_private_dirs;
static int n_writable, n_read_only, n_hidden, n_hidden_dirs, n_pins, ro_mounts, pid_ns, ipc_ns, private_shm;
static int landlock_only; /* no user namespace: --read-only, --hide and --pin are held by Landlock alone */
static long max_procs;
static int status_fd = -1;

/* The helper's own failure, on the status fd (see --status-fd): "CODE message\n". */
static void report_status(int code, const char *line)
{
    char buf[1200];
    int n;
    if (status_fd < 0)
        return;
    n = snprintf(buf, sizeof buf, "%d %s\n", code, line);
    if (n > 0)
        (void)!write(status_fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void fail(int code, const char *what, int err)
{
    char line[1100];
    if (err)
        snprintf(line, sizeof line, "%s: %s", what, strerror(err));
    else
        snprintf(line, sizeof line, "%s", what);
    fprintf(stderr, "codex-linux-sandbox: %s\n", line);
    fflush(stderr);
    report_status(code, line);
    _exit(code);
}

static void fail_path(int code, const char *what, const char *path, int err)
{
    char line[1100];
    snprintf(line, sizeof line, "%s %s: %s", what, path, strerror(err));
    fprintf(stderr, "codex-linux-sandbox: %s\n", line);
    fflush(stderr);
    report_status(code, line);
    _exit(code);
}

/* -- Landlock ----------------------------------------------------------------------------- */

static long landlock_abi(void)
{
    return syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
}

static uint64_t fs_rights_for_abi(long abi)
{
    if (abi <= 1)
        return (1ULL << 13) - 1;
    if (abi == 2)
        return (1ULL << 14) - 1;
    if (abi <= 4)
        return (1ULL << 15) - 1;
    return (1ULL << 16) - 1; /* ABI 5..7: IOCTL_DEV is the last file-system right */
}

static const char *landlock_reason(int err)
{
    switch (err) {
    case ENOSYS:
        return "the kernel has no Landlock (built without CONFIG_SECURITY_LANDLOCK)";
    case EOPNOTSUPP:
        return "Landlock is disabled (add landlock to the lsm= boot parameter)";
    case EPERM:
        return "a container seccomp profile blocks the Landlock syscalls";
    default:
        return strerror(err);
    }
}

/* required: fail when `path` cannot be opened (else skip it: a configured root that does not
 * exist); required < 0: never follow a final symlink, and skip one (add_rules_around) */
static void add_rule(int ruleset, const char *path, uint64_t access, uint64_t handled, int required)
{
    struct ll_path_beneath_attr rule;
    struct stat st;
    int fd = open(path, O_PATH | O_CLOEXEC | (required < 0 ? O_NOFOLLOW : 0));
    if (fd < 0) {
        if (required > 0)
            fail_path(EXIT_LANDLOCK, "cannot open for a Landlock rule:", path, errno);
        return; /* a configured root that does not exist is skipped */
    }
    if (fstat(fd, &st) != 0)
        fail_path(EXIT_LANDLOCK, "cannot stat", path, errno);
    if (S_ISLNK(st.st_mode)) {
        close(fd);
        return;
    }
    if (!S_ISDIR(st.st_mode))
        access &= LL_FILE_RIGHTS;
    rule.allowed_access = access & handled;
    rule.parent_fd = fd;
    if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &rule, 0) != 0)
        fail_path(EXIT_LANDLOCK, "landlock_add_rule failed for", path, errno);
    close(fd);
}

/* Whether `path` is `dir` or lies below it (both absolute, normalised). */
static int path_within(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return path[0] == '/';
    return strncmp(path, dir, n) == 0 && (path[n] == 0 || path[n] == '/');
}

static int within_any(const char *path, const char **list, int n)
{
    int i;
    for (i = 0; i < n; i++)
        if (path_within(path, list[i]))
            return 1;
    return 0;
}

static int holds_any(const char *dir, const char **list, int n)
{
    int i;
    for (i = 0; i < n; i++)
        if (path_within(list[i], dir) && strcmp(list[i], dir) != 0)
            return 1;
    return 0;
}

/* Landlock without namespaces (rules are allow-lists, and a rule covers a whole hierarchy):
 * grant `access` beneath `path` except beneath the paths of `out` (lists of n_out[k] paths,
 * k < 2).  A directory holding such a path gets no rule itself; each of its entries gets one
 * (recursively), so the left-out path gets nothing.  The directories on the way hold no rights
 * of their own either: nothing in them can be created, renamed or removed (the pins come free),
 * while the files already there keep `access`.  Symlinks get no rule (their targets have
 * theirs).  A directory that cannot be listed gets nothing. */
static void add_rules_around(int ruleset, const char *path, uint64_t access, uint64_t handled,
                             const char **out[2], const int n_out[2], const char **split, int n_split, int depth)
{
    char child[PATH_MAX];
    struct dirent *e;
    DIR *d;
    int k;
    for (k = 0; k < 2; k++)
        if (within_any(path, out[k], n_out[k]))
            return;
    if (!holds_any(path, out[0], n_out[0]) && !holds_any(path, out[1], n_out[1]) && !holds_any(path, split, n_split)) {
        add_rule(ruleset, path, access, handled, depth > 0 ? -1 : 0);
        return;
    }
    if (depth > 256 || (d = opendir(path)) == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        int len;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        len = snprintf(child, sizeof child, "%s/%s", strcmp(path, "/") == 0 ? "" : path, e->d_name);
        if (len <= 0 || (size_t)len >= sizeof child || lstat(child, &st) != 0 || S_ISLNK(st.st_mode))
            continue;
        add_rules_around(ruleset, child, access, handled, out, n_out, split, n_split, depth + 1);
    }
    closedir(d);
}

static void apply_landlock(int network)
{
    struct ll_ruleset_attr attr;
    size_t size = 8;
    int ruleset, i;
    uint64_t root_rights;
    long abi = landlock_abi();
    if (abi < 1) {
        char msg[200];
        snprintf(msg, sizeof msg, "Landlock is unavailable: %s", landlock_reason(errno));
        fail(EXIT_LANDLOCK, msg, 0);
    }
    memset(&attr, 0, sizeof attr);
    attr.handled_access_fs = fs_rights_for_abi(abi);
    if (abi >= 4) {
        size = 16;
        if (!network)
            attr.handled_access_net = LL_NET_TCP;
    }
    if (abi >= 6) {
        size = 24;
        attr.scoped = LL_SCOPE_SIGNAL | LL_SCOPE_ABSTRACT_UNIX;
    }
    ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (ruleset < 0)
        fail(EXIT_LANDLOCK, "landlock_create_ruleset failed", errno);
    /* network off: no socket inode gets a new name in a writable root (bind() is denied anyway):
     * a hard link to a socket the user's tmux/D-Bus/X11 listens on would otherwise stay
     * reachable, outside the directories hidden with the network on, in a later session */
    root_rights = network ? attr.handled_access_fs : attr.handled_access_fs & ~LL_MAKE_SOCK;
    if (landlock_only) {
        /* reads: everything but the --hide files; writes: the roots but the --read-only and
         * --hide paths, and no entry on the way to them or to a --pin path may change */
        const char **hide_only[2] = {hidden, hidden};
        const int n_hide_only[2] = {n_hidden, 0};
        const char **protected_[2] = {read_only, hidden};
        const int n_protected[2] = {n_read_only, n_hidden};
        add_rules_around(ruleset, "/", LL_READ, attr.handled_access_fs, hide_only, n_hide_only, private_split_ptr,
                         n_private_dirs, 0);
        for (i = 0; i < n_writable; i++)
            add_rules_around(ruleset, writable[i], root_rights, attr.handled_access_fs, protected_,
                             n_protected, pins, n_pins, 0);
    } else {
        add_rule(ruleset, "/", LL_READ, attr.handled_access_fs, 1);
        for (i = 0; i < n_writable; i++)
            add_rule(ruleset, writable[i], root_rights, attr.handled_access_fs, 0);
    }
    add_rule(ruleset, "/dev/null", attr.handled_access_fs, attr.handled_access_fs, 1);
    if (private_shm)
        add_rule(ruleset, "/dev/shm", attr.handled_access_fs, attr.handled_access_fs, 1);
    if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0)
        fail(EXIT_LANDLOCK, "landlock_restrict_self failed", errno);
    close(ruleset);
}

/* -- seccomp ------------------------------------------------------------------------------ */

#define MAX_INSNS 320
static struct sock_filter prog_insns[MAX_INSNS];
static int n_insns;

static void emit(uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
    struct sock_filter insn;
    if (n_insns >= MAX_INSNS)
        fail(EXIT_SECCOMP, "seccomp filter too long", 0);
    insn.code = code;
    insn.jt = jt;
    insn.jf = jf;
    insn.k = k;
    prog_insns[n_insns++] = insn;
}

#define ARG_LO(n) ((uint32_t)offsetof(struct seccomp_data, args[n]))
#define ARG_HI(n) ((uint32_t)offsetof(struct seccomp_data, args[n]) + 4)
#define RET_DENY (SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))

static void deny_always(long nr)
{
    emit(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, (uint32_t)nr);
    emit(BPF_RET | BPF_K, 0, 0, RET_DENY);
}

/* Every block below starts with the syscall number in the accumulator and either returns or
 * falls through to the next block with the accumulator untouched. */
/* socket/socketpair: AF_UNIX only, and only as SOCK_STREAM or SOCK_SEQPACKET (flags such as
 * SOCK_CLOEXEC masked off).  No datagram socket means no send call can name a destination. */
static void allow_only_unix_stream(long nr)
{
    emit(BPF_JMP | BPF_JEQ | BPF_K, 0, 8, (uint32_t)nr);
    emit(BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(0));
    emit(BPF_JMP | BPF_JEQ | BPF_K, 0, 4, AF_UNIX);
    emit(BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(1));
    emit(BPF_ALU | BPF_AND | BPF_K, 0, 0, 0xf);
    emit(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, SOCK_STREAM);
    emit(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, SOCK_SEQPACKET);
    emit(BPF_RET | BPF_K, 0, 0, RET_DENY);
    emit(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
}

/* clone(flags, ...) with a CLONE_NEW* flag; clone3 hides its flags behind a pointer: ENOSYS
 * makes libc fall back to clone */
static void deny_clone_namespaces(void)
{
    emit(BPF_JMP | BPF_JEQ | BPF_K, 0, 4, (uint32_t)SYS_clone);
    emit(BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(0));
    emit(BPF_JMP | BPF_JSET | BPF_K, 0, 1, CLONE_NS_FLAGS);
    emit(BPF_RET | BPF_K, 0, 0, RET_DENY);
    emit(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
    emit(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, (uint32_t)SYS_clone3);
    emit(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));
}

static void deny_sendto_with_address(void)
{
    emit(BPF_JMP | BPF_JEQ | BPF_K, 0, 6, (uint32_t)SYS_sendto);
    emit(BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(4));
    emit(BPF_JMP | BPF_JEQ | BPF_K, 0, 3, 0);
    emit(BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_HI(4));
    emit(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0);
    emit(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
    emit(BPF_RET | BPF_K, 0, 0, RET_DENY);
}

static void deny_tty_injection(void)
{
    emit(BPF_JMP | BPF_JEQ | BPF_K, 0, 5, (uint32_t)SYS_ioctl);
    emit(BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(1));
    emit(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, TIOCSTI_REQ);
    emit(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, TIOCLINUX_REQ);
    emit(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
    emit(BPF_RET | BPF_K, 0, 0, RET_DENY);
}

/* chmod-family calls whose mode (argument `arg`) sets S_ISUID or S_ISGID: no set-ID program
 * is left behind in a writable root (keep in step with SECCOMP_CHMOD_MODE_ARG in codex.py) */
static void deny_setid_mode(long nr, int arg)
{
    emit(BPF_JMP | BPF_JEQ | BPF_K, 0, 4, (uint32_t)nr);
    emit(BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(arg));
    emit(BPF_JMP | BPF_JSET | BPF_K, 0, 1, 06000);
    emit(BPF_RET | BPF_K, 0, 0, RET_DENY);
    emit(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
}

/* prlimit64(pid != 0, ...): limits of another process */
static void deny_prlimit_of_others(void)
{
    emit(BPF_JMP | BPF_JEQ | BPF_K, 0, 6, (uint32_t)SYS_prlimit64);
    emit(BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(0));
    emit(BPF_JMP | BPF_JEQ | BPF_K, 0, 3, 0);
    emit(BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_HI(0));
    emit(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0);
    emit(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
    emit(BPF_RET | BPF_K, 0, 0, RET_DENY);
}

static void build_filter(int network)
{
    /* keep in step with SECCOMP_ALWAYS_DENIED in codex.py (a test compares the two) */
    static const long always[] = {
        SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev, SYS_io_uring_setup,
        SYS_io_uring_enter, SYS_io_uring_register, SYS_mount, SYS_umount2, SYS_mount_setattr,
        SYS_move_mount, SYS_open_tree, SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick,
        SYS_pivot_root, SYS_add_key, SYS_request_key, SYS_keyctl,
        SYS_open_by_handle_at, SYS_name_to_handle_at, SYS_unshare, SYS_setns, SYS_bpf,
        SYS_perf_event_open, SYS_userfaultfd, SYS_pidfd_getfd, SYS_process_madvise,
        SYS_init_module, SYS_finit_module, SYS_delete_module, SYS_kexec_load, SYS_kexec_file_load,
        SYS_reboot, SYS_swapon, SYS_swapoff, SYS_syslog, SYS_acct, SYS_quotactl, SYS_quotactl_fd,
        SYS_chroot, SYS_fanotify_init,
#if defined(__x86_64__)
        SYS_iopl, SYS_ioperm,
#endif
    };
    /* without an IPC namespace: the outside's SysV IPC objects and POSIX message queues */
    static const long ipc[] = {
        SYS_shmget, SYS_shmat, SYS_shmctl, SYS_semget, SYS_semop, SYS_semtimedop, SYS_semctl,
        SYS_msgget, SYS_msgsnd, SYS_msgrcv, SYS_msgctl, SYS_mq_open, SYS_mq_unlink,
        SYS_mq_timedsend, SYS_mq_timedreceive, SYS_mq_notify, SYS_mq_getsetattr,
    };
    static const long net[] = {SYS_connect, SYS_bind, SYS_listen, SYS_accept, SYS_accept4};
    size_t i;
    n_insns = 0;
    emit(BPF_LD | BPF_W | BPF_ABS, 0, 0, (uint32_t)offsetof(struct seccomp_data, arch));
    emit(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, NATIVE_AUDIT_ARCH);
    emit(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS);
    emit(BPF_LD | BPF_W | BPF_ABS, 0, 0, (uint32_t)offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
    /* x32 syscalls (__X32_SYSCALL_BIT) are a second ABI: killed like a foreign architecture
     * (libseccomp, used by the Python helper, does the same) */
    emit(BPF_JMP | BPF_JGE | BPF_K, 0, 1, 0x40000000U);
    emit(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS);
#endif
    for (i = 0; i < sizeof always / sizeof always[0]; i++)
        deny_always(always[i]);
    deny_clone_namespaces();
#if defined(SYS_chmod)
    deny_setid_mode(SYS_chmod, 1);
#endif
    deny_setid_mode(SYS_fchmod, 1);
    deny_setid_mode(SYS_fchmodat, 2);
    deny_setid_mode(SYS_fchmodat2, 2);
    if (!ipc_ns)
        for (i = 0; i < sizeof ipc / sizeof ipc[0]; i++)
            deny_always(ipc[i]);
    if (!network) {
        for (i = 0; i < sizeof net / sizeof net[0]; i++)
            deny_always(net[i]);
        allow_only_unix_stream(SYS_socket);
        allow_only_unix_stream(SYS_socketpair);
        deny_sendto_with_address();
    }
    if (!pid_ns)
        deny_prlimit_of_others();
    deny_tty_injection();
    emit(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
}

static int install_filter(void)
{
    struct sock_fprog prog;
    prog.len = (unsigned short)n_insns;
    prog.filter = prog_insns;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

/* -- read-only binds in a user+mount namespace ------------------------------------------- */

static int write_file(const char *path, const char *text)
{
    size_t len = strlen(text);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (write(fd, text, len) != (ssize_t)len) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return close(fd);
}

/* Bind src onto dst and make that mount read-only; a remount inside a user namespace must
 * keep the flags the outer mount locked (nosuid, nodev, noexec, atime). */
static void bind_read_only(const char *src, const char *dst)
{
    struct statvfs sv;
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY;
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) != 0)
        fail_path(EXIT_MOUNTS, "bind-mounting onto", dst, errno);
    if (statvfs(dst, &sv) == 0) {
        if (sv.f_flag & ST_NOSUID)
            flags |= MS_NOSUID;
        if (sv.f_flag & ST_NODEV)
            flags |= MS_NODEV;
        if (sv.f_flag & ST_NOEXEC)
            flags |= MS_NOEXEC;
        if (sv.f_flag & ST_NOATIME)
            flags |= MS_NOATIME;
        if (sv.f_flag & ST_NODIRATIME)
            flags |= MS_NODIRATIME;
        if (sv.f_flag & ST_RELATIME)
            flags |= MS_RELATIME;
    }
    if (mount(NULL, dst, NULL, flags, NULL) != 0)
        fail_path(EXIT_MOUNTS, "remounting read-only", dst, errno);
}

/* Mount `path` onto itself without following it (a symlink is pinned as the link): in this
 * namespace it is then a mount point, which rename(2), unlink(2) and rmdir(2) refuse (EBUSY). */
static void pin(const char *path)
{
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, path,
                          OPEN_TREE_CLONE_FLAG | O_CLOEXEC | AT_RECURSIVE_FLAG | AT_SYMLINK_NOFOLLOW);
    if (fd >= 0) {
        if (syscall(SYS_move_mount, fd, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH_FLAG) != 0)
            fail_path(EXIT_MOUNTS, "pinning", path, errno);
        close(fd);
        return;
    }
    if (errno == ENOENT)
        return; /* nothing at that name any more: nothing to pin */
    if (errno != ENOSYS)
        fail_path(EXIT_MOUNTS, "pinning (open_tree)", path, errno);
    /* before Linux 5.2: a self-bind (a final symlink is followed, its target pinned instead) */
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) != 0)
        fail_path(EXIT_MOUNTS, "pinning", path, errno);
}

static int is_hidden(const char *path)
{
    int i;
    for (i = 0; i < n_hidden; i++)
        if (strcmp(hidden[i], path) == 0)
            return 1;
    return 0;
}

/* --private-dir (see the top): a read-only tmpfs over `dir` holding what it holds now.  Before
 * Linux 5.2 (no open_tree) it is left as it is: the --hide binds still cover the files. */
static void private_dir(const char *dir)
{
    struct entry {
        char name[NAME_MAX + 1];
        int fd; /* a clone of the entry (-1: a --hide file or a symlink) */
        int is_dir;
        char *link; /* a symlink's target */
    } *ents = NULL;
    size_t n = 0, cap = 0, k;
    char path[PATH_MAX];
    char opts[64];
    struct dirent *e;
    struct stat st;
    DIR *d;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || (d = opendir(dir)) == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        struct stat est;
        int len;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        len = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (len <= 0 || (size_t)len >= sizeof path || lstat(path, &est) != 0)
            continue;
        if (n == cap) {
            struct entry *more = realloc(ents, (cap = cap ? cap * 2 : 32) * sizeof *ents);
            if (more == NULL)
                fail(EXIT_MOUNTS, "out of memory listing a --private-dir", ENOMEM);
            ents = more;
        }
        memset(&ents[n], 0, sizeof ents[n]);
        snprintf(ents[n].name, sizeof ents[n].name, "%s", e->d_name);
        ents[n].fd = -1;
        ents[n].is_dir = S_ISDIR(est.st_mode);
        if (S_ISLNK(est.st_mode)) {
            char target[PATH_MAX];
            ssize_t r = readlink(path, target, sizeof target - 1);
            if (r < 0)
                continue;
            target[r] = 0;
            ents[n].link = strdup(target);
        } else if (!is_hidden(path)) {
            ents[n].fd = (int)syscall(SYS_open_tree, AT_FDCWD, path,
                                      OPEN_TREE_CLONE_FLAG | O_CLOEXEC | AT_RECURSIVE_FLAG | AT_SYMLINK_NOFOLLOW);
            if (ents[n].fd < 0) {
                if (errno == ENOENT)
                    continue; /* gone meanwhile */
                if (errno == ENOSYS) {
                    closedir(d);
                    for (k = 0; k < n; k++)
                        if (ents[k].fd >= 0)
                            close(ents[k].fd);
                    free(ents);
                    return;
                }
                fail_path(EXIT_MOUNTS, "cloning (open_tree)", path, errno);
            }
        }
        n++;
    }
    closedir(d);
    snprintf(opts, sizeof opts, "size=64k,mode=%o", (unsigned)(st.st_mode & 07777));
    if (mount("codex-private", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
        fail_path(EXIT_MOUNTS, "covering (--private-dir)", dir, errno);
    for (k = 0; k < n; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, ents[k].name);
        if (ents[k].link != NULL) {
            if (symlink(ents[k].link, path) != 0)
                fail_path(EXIT_MOUNTS, "copying a symlink into", path, errno);
            free(ents[k].link);
            continue;
        }
        if (ents[k].is_dir ? mkdir(path, 0700) != 0 : mknod(path, S_IFREG | 0600, 0) != 0)
            fail_path(EXIT_MOUNTS, "making a mount point", path, errno);
        if (ents[k].fd >= 0) {
            if (syscall(SYS_move_mount, ents[k].fd, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH_FLAG) != 0)
                fail_path(EXIT_MOUNTS, "binding back", path, errno);
            close(ents[k].fd);
        }
    }
    free(ents);
    if (mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
        fail_path(EXIT_MOUNTS, "remounting read-only", dir, errno);
}

static int cover_dir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return 0; /* nothing to cover */
    return mount("codex-hidden", dir, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=755");
}

static void hide_terminals(void)
{
    struct stat st;
    (void)cover_dir("/dev/pts");
    (void)cover_dir("/dev/input");
    if (stat("/dev/console", &st) == 0 && S_ISCHR(st.st_mode) &&
        mount("/dev/null", "/dev/console", NULL, MS_BIND, NULL) == 0)
        (void)mount(NULL, "/dev/console", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL);
}

/* Enter new user, mount, IPC (and PID) namespaces; 0 when the kernel refuses (no
 * unprivileged user namespaces), errno set.  No network namespace: creating one costs
 * milliseconds, and seccomp already keeps every socket but AF_UNIX stream ones. */
static int enter_namespaces(void)
{
    char map[64];
    uid_t uid = getuid();
    gid_t gid = getgid();
    /* the PID namespace lets the command's leftovers die with it (see fork_pid_namespace_init);
     * where a container refuses the PID or IPC namespace, the next best set */
    static const int tries[] = {
        CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWPID, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID,
        CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC, CLONE_NEWUSER | CLONE_NEWNS,
    };
    size_t i;
    int err = 0;
    for (i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        if (unshare(tries[i]) == 0)
            break;
        if (i == 0)
            err = errno;
    }
    if (i == sizeof tries / sizeof tries[0]) {
        errno = err;
        return 0;
    }
    pid_ns = (tries[i] & CLONE_NEWPID) != 0;
    ipc_ns = (tries[i] & CLONE_NEWIPC) != 0;
    if (write_file("/proc/self/setgroups", "deny") != 0)
        fail(EXIT_MOUNTS, "writing /proc/self/setgroups failed", errno);
    snprintf(map, sizeof map, "%u %u 1", (unsigned)uid, (unsigned)uid);
    if (write_file("/proc/self/uid_map", map) != 0)
        fail(EXIT_MOUNTS, "writing /proc/self/uid_map failed", errno);
    snprintf(map, sizeof map, "%u %u 1", (unsigned)gid, (unsigned)gid);
    if (write_file("/proc/self/gid_map", map) != 0)
        fail(EXIT_MOUNTS, "writing /proc/self/gid_map failed", errno);
    /* RLIMIT_NPROC counts the processes of this uid in this user namespace: this command's */
    if (max_procs > 0) {
        struct rlimit lim;
        lim.rlim_cur = lim.rlim_max = (rlim_t)max_procs;
        if (setrlimit(RLIMIT_NPROC, &lim) != 0)
            fail(EXIT_SETUP, "setrlimit(RLIMIT_NPROC) failed", errno);
    }
    return 1;
}

/* A private tmpfs on /dev/shm: POSIX shared memory and semaphores work, and those of outside
 * processes are out of sight (best effort: no /dev/shm, no private one). */
static void private_dev_shm(void)
{
    struct stat st;
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
        mount("codex-shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, SHM_TMPFS_OPTIONS) == 0)
        private_shm = 1;
}

static void protect_read_only(void)
{
    int i;
    /* keep our mounts from propagating back (best effort: some overlay setups refuse) */
    (void)mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL);
    if (ro_mounts) {
        struct mount_attr_v0 attr;
        memset(&attr, 0, sizeof attr);
        attr.attr_set = MOUNT_ATTR_RDONLY_BIT;
        if (syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE_FLAG, &attr, sizeof attr) != 0)
            fail(EXIT_MOUNTS, "making the mounts read-only (mount_setattr) failed", errno);
        for (i = 0; i < n_writable; i++) {
            struct stat st;
            if (stat(writable[i], &st) != 0)
                continue; /* a configured root that does not exist is skipped */
            if (mount(writable[i], writable[i], NULL, MS_BIND | MS_REC, NULL) != 0)
                fail_path(EXIT_MOUNTS, "bind-mounting", writable[i], errno);
            memset(&attr, 0, sizeof attr);
            attr.attr_clr = MOUNT_ATTR_RDONLY_BIT;
            if (syscall(SYS_mount_setattr, AT_FDCWD, writable[i], AT_RECURSIVE_FLAG, &attr, sizeof attr) != 0 &&
                syscall(SYS_mount_setattr, AT_FDCWD, writable[i], 0, &attr, sizeof attr) != 0)
                fail_path(EXIT_MOUNTS, "making writable", writable[i], errno);
        }
    }
    for (i = 0; i < n_pins; i++)
        pin(pins[i]);
    for (i = 0; i < n_read_only; i++)
        bind_read_only(read_only[i], read_only[i]);
    for (i = 0; i < n_private_dirs; i++)
        private_dir(private_dirs[i]);
    for (i = 0; i < n_hidden; i++)
        bind_read_only("/dev/null", hidden[i]);
    for (i = 0; i < n_hidden_dirs; i++)
        if (cover_dir(hidden_dirs[i]) != 0)
            fail_path(EXIT_MOUNTS, "covering", hidden_dirs[i], errno);
    hide_terminals();
    private_dev_shm();
}

/* -- capabilities ------------------------------------------------------------------------- */

/* Drop every capability for good (see step 3 at the top). */
static void drop_capabilities(void)
{
    struct __user_cap_header_struct hdr;
    struct __user_cap_data_struct data[2];
    int cap, bounded = 0;
    /* needs CAP_SETPCAP: we have it in our user namespace, or as root; an ordinary user
     * without a namespace has nothing to lock down (no_new_privs stops setuid and file caps) */
    (void)prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED_DOWN, 0, 0, 0);
    for (cap = 0; cap < 64; cap++) /* past the kernel's last capability: EINVAL */
        (void)prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        fail(EXIT_SETUP, "clearing the ambient capabilities failed", errno);
    memset(&hdr, 0, sizeof hdr);
    memset(data, 0, sizeof data);
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    if (syscall(SYS_capset, &hdr, data) != 0)
        fail(EXIT_SETUP, "dropping the capabilities (capset) failed", errno);
    for (cap = 0; cap < 64; cap++)
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
            bounded = 1;
    if (bounded && (geteuid() == 0 || getuid() == 0))
        fail(EXIT_SETUP, "cannot empty the capability bounding set of a root user's command", 0);
}

/* -- PID namespace: the command's leftovers die with it ---------------------------------- */

static volatile pid_t forward_to;

static void forward_signal(int sig)
{
    if (forward_to > 0)
        kill(forward_to, sig);
}

static void ignore_signal(int sig)
{
    (void)sig; /* SIGINT/SIGQUIT from a terminal reach the whole process group already */
}

/* Handlers (not SIG_IGN) so that execve resets them for the command. */
static void set_relay_handlers(void)
{
    static const int forwarded[] = {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};
    struct sigaction sa;
    size_t i;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = forward_signal;
    for (i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaction(forwarded[i], &sa, NULL);
    sa.sa_handler = ignore_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
}

static void exec_command(char **cmd)
{
    int err;
    execvp(cmd[0], cmd);
    err = errno;
    fprintf(stderr, "codex-linux-sandbox: cannot execute %s: %s\n", cmd[0], strerror(err));
    fflush(stderr);
    _exit((err == ENOENT || err == ENOTDIR) ? 127 : 126);
}

/* pid 1 of the new namespace: run the command as pid 2, reap every orphan, report the
 * command's wait status on report_fd, exit (the kernel then kills the rest). */
static void pid_namespace_init(char **cmd, int report_fd)
{
    int status = 0;
    pid_t child, pid;
    child = fork();
    if (child < 0)
        fail(EXIT_SETUP, "fork failed", errno);
    if (child == 0)
        exec_command(cmd);
    forward_to = child;
    for (;;) {
        pid = waitpid(-1, &status, 0);
        if (pid == child)
            break;
        if (pid < 0 && errno != EINTR) {
            status = SIGKILL; /* cannot happen: the command is our child */
            break;
        }
    }
    if (write(report_fd, &status, sizeof status) != (ssize_t)sizeof status)
        _exit(EXIT_SETUP);
    _exit(0);
}

/* pid_max of the new PID namespace (Linux 6.14+; only a process inside can set it): the
 * command's process limit for root, whom RLIMIT_NPROC never stops (other users have that
 * one already).  Pids above 300 are reused first: max_procs + 300 leaves room for max_procs. */
static void limit_pid_max(void)
{
    char text[32];
    if (max_procs <= 0 || getuid() != 0)
        return;
    snprintf(text, sizeof text, "%ld", max_procs + 300);
    (void)write_file("/proc/sys/kernel/pid_max", text); /* older kernels: RLIMIT_NPROC alone */
}

/* Fork pid 1 of the new PID namespace right away: it applies the rest of the policy (mounts,
 * capabilities, seccomp, Landlock) and runs the command (pid_namespace_init).  Returns in
 * pid 1 only, with the fd its report goes to; this process waits and exits like the command
 * (or like pid 1, when the policy failed there). */
static int fork_pid_namespace_init(void)
{
    int fds[2], status = 0, init_status = 0;
    ssize_t got;
    pid_t init;
    struct rlimit no_core;
    if (pipe2(fds, O_CLOEXEC) != 0)
        fail(EXIT_SETUP, "pipe2 failed", errno);
    set_relay_handlers();
    init = fork();
    if (init < 0)
        fail(EXIT_SETUP, "fork into the PID namespace failed", errno);
    if (init == 0) {
        close(fds[0]);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
            fail(EXIT_SETUP, "prctl(PR_SET_PDEATHSIG) failed", errno);
        limit_pid_max();
        return fds[1];
    }
    forward_to = init;
    close(fds[1]);
    while (waitpid(init, &init_status, 0) < 0 && errno == EINTR)
        ;
    do
        got = read(fds[0], &status, sizeof status);
    while (got < 0 && errno == EINTR);
    if (got != (ssize_t)sizeof status) {
        if (WIFEXITED(init_status))
            _exit(WEXITSTATUS(init_status)); /* the policy failed in pid 1: its exit code */
        status = SIGKILL; /* init was killed, and the command with it */
    }
    if (WIFEXITED(status))
        _exit(WEXITSTATUS(status));
    /* die of the command's signal, without a core file of our own */
    no_core.rlim_cur = no_core.rlim_max = 0;
    (void)setrlimit(RLIMIT_CORE, &no_core);
    signal(WTERMSIG(status), SIG_DFL);
    {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, WTERMSIG(status));
        sigprocmask(SIG_UNBLOCK, &set, NULL);
    }
    kill(getpid(), WTERMSIG(status));
    _exit(128 + WTERMSIG(status));
}

/* -- probe -------------------------------------------------------------------------------- */

static int child_succeeds(int what)
{
    int status;
    pid_t pid = fork();
    if (pid < 0)
        return 0;
    if (pid == 0) {
        if (what == 0) {
            struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
            struct sock_fprog prog;
            prog.len = 1;
            prog.filter = &allow;
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
                _exit(1);
            _exit(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0 ? 0 : 1);
        }
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
            _exit(1);
        if (what == 2) {
            struct mount_attr_v0 attr;
            memset(&attr, 0, sizeof attr);
            attr.attr_set = MOUNT_ATTR_RDONLY_BIT;
            (void)mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL);
            _exit(syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE_FLAG, &attr, sizeof attr) == 0 ? 0 : 1);
        }
        _exit(0);
    }
    if (waitpid(pid, &status, 0) != pid)
        return 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int probe(void)
{
    long abi = landlock_abi();
    int err = errno;
    printf("implementation=c\n");
    printf("landlock_abi=%ld\n", abi < 0 ? 0L : abi);
    printf("seccomp=%d\n", child_succeeds(0));
    printf("userns=%d\n", child_succeeds(1));
    printf("mount_setattr=%d\n", child_succeeds(2));
    if (abi < 0)
        printf("reason=%s\n", landlock_reason(err));
    return 0;
}

/* -- main --------------------------------------------------------------------------------- */

/* Close every fd above 2 but the status fd, which becomes close-on-exec. */
static void close_inherited_fds(void)
{
    long max = sysconf(_SC_OPEN_MAX), fd;
    if (max < 0 || max > 1048576)
        max = 1048576;
    if (status_fd >= 0 && fcntl(status_fd, F_SETFD, FD_CLOEXEC) != 0)
        status_fd = -1; /* not open: nothing to report on */
    if (status_fd < 0) {
        if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
            return;
    } else if ((status_fd == 3 || syscall(SYS_close_range, 3U, (unsigned)status_fd - 1U, 0U) == 0) &&
               syscall(SYS_close_range, (unsigned)status_fd + 1U, ~0U, 0U) == 0) {
        return;
    }
    for (fd = 3; fd < max; fd++)
        if (fd != status_fd)
            close((int)fd);
}

static void usage(const char *why)
{
    fprintf(stderr, "codex-linux-sandbox: %s (usage: codex-linux-sandbox --cwd DIR [--writable PATH]... "
                    "[--read-only PATH]... [--hide FILE]... [--hide-dir DIR]... [--private-dir DIR]... [--pin PATH]... "
                    "[--ro-mounts] [--max-procs N] [--status-fd N] [--network] -- CMD [ARG]...)\n", why);
    report_status(EXIT_USAGE, why);
    _exit(EXIT_USAGE);
}

int main(int argc, char **argv)
{
    const char *cwd = NULL;
    int network = 0, i, cmd = -1, report_fd = -1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            cmd = i + 1;
            break;
        } else if (strcmp(a, "--probe") == 0) {
            return probe();
        } else if (strcmp(a, "--network") == 0) {
            network = 1;
        } else if (strcmp(a, "--ro-mounts") == 0) {
            ro_mounts = 1;
        } else if (strcmp(a, "--status-fd") == 0) {
            char *end = NULL;
            if (i + 1 >= argc)
                usage("an option needs a value");
            status_fd = (int)strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end != 0 || status_fd < 3)
                usage("--status-fd needs a file descriptor above 2");
        } else if (strcmp(a, "--max-procs") == 0) {
            char *end = NULL;
            if (i + 1 >= argc)
                usage("an option needs a value");
            max_procs = strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end != 0 || max_procs < 1)
                usage("--max-procs needs a positive number");
        } else if (strcmp(a, "--cwd") == 0 || strcmp(a, "--writable") == 0 || strcmp(a, "--read-only") == 0 ||
                   strcmp(a, "--hide") == 0 || strcmp(a, "--hide-dir") == 0 || strcmp(a, "--pin") == 0 ||
                   strcmp(a, "--private-dir") == 0) {
            if (i + 1 >= argc)
                usage("an option needs a value");
            if (strcmp(a, "--cwd") == 0) {
                cwd = argv[++i];
            } else if (strcmp(a, "--writable") == 0) {
                if (n_writable >= MAX_PATHS)
                    usage("too many --writable paths");
                writable[n_writable++] = argv[++i];
            } else if (strcmp(a, "--hide") == 0) {
                if (n_hidden >= MAX_PATHS)
                    usage("too many --hide paths");
                hidden[n_hidden++] = argv[++i];
            } else if (strcmp(a, "--pin") == 0) {
                if (n_pins >= MAX_PATHS)
                    usage("too many --pin paths");
                pins[n_pins++] = argv[++i];
            } else if (strcmp(a, "--private-dir") == 0) {
                int len;
                if (n_private_dirs >= MAX_PATHS)
                    usage("too many --private-dir paths");
                private_dirs[n_private_dirs] = argv[++i];
                len = snprintf(private_split[n_private_dirs], PATH_MAX, "%s/.", argv[i]);
                if (len <= 0 || len >= PATH_MAX)
                    usage("--private-dir path too long");
                private_split_ptr[n_private_dirs] = private_split[n_private_dirs];
                n_private_dirs++;
            } else if (strcmp(a, "--hide-dir") == 0) {
                if (n_hidden_dirs >= MAX_PATHS)
                    usage("too many --hide-dir paths");
                hidden_dirs[n_hidden_dirs++] = argv[++i];
            } else {
                if (n_read_only >= MAX_PATHS)
                    usage("too many --read-only paths");
                read_only[n_read_only++] = argv[++i];
            }
        } else {
            usage("unknown argument");
        }
    }
    if (cmd < 0 || cmd >= argc)
        usage("no command given");

    close_inherited_fds();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        fail(EXIT_SETUP, "prctl(PR_SET_PDEATHSIG) failed", errno);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        fail(EXIT_SETUP, "prctl(PR_SET_NO_NEW_PRIVS) failed", errno);
    if (enter_namespaces()) {
        if (pid_ns)
            report_fd = fork_pid_namespace_init();
        protect_read_only();
    } else if (n_hidden_dirs > 0 || ro_mounts) {
        fail(EXIT_MOUNTS, "unshare(user+mount namespace) failed", errno);
    } else {
        landlock_only = 1; /* --read-only, --hide, --pin: Landlock leaves them out (apply_landlock) */
    }
    drop_capabilities();
    build_filter(network);
    if (install_filter() != 0)
        fail(EXIT_SECCOMP, "installing the seccomp filter failed", errno);
    apply_landlock(network);
    if (cwd != NULL && chdir(cwd) != 0)
        fail_path(EXIT_USAGE, "cannot enter", cwd, errno);
    if (pid_ns)
        pid_namespace_init(&argv[cmd], report_fd);
    exec_command(&argv[cmd]);
    return 127;
}
