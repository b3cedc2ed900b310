"""Run a command as if this machine had no user namespaces: `python no_userns.py CMD [ARG]...`.

A seccomp filter makes unshare(2) and clone(2) with CLONE_NEWUSER fail with EPERM, as they do
where unprivileged user namespaces are disabled; then CMD is exec'd (the sandbox helper, to test
its paths without namespaces).  `python no_userns.py --no-ipc CMD...` refuses only namespace
sets with CLONE_NEWIPC (a container that forbids IPC namespaces).  Needs pyseccomp (the test
venv has it).
"""
import errno
import os
import sys

import pyseccomp

CLONE_NEWUSER = 0x10000000


CLONE_NEWIPC = 0x08000000


def main(argv):
    flt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    if argv[0] == "--no-ipc":
        flt.add_rule(pyseccomp.ERRNO(errno.EPERM), "unshare", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, CLONE_NEWIPC, CLONE_NEWIPC))
        flt.load()
        os.execvp(argv[1], argv[1:])
    flt.add_rule(pyseccomp.ERRNO(errno.EPERM), "unshare")
    flt.add_rule(pyseccomp.ERRNO(errno.EPERM), "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))
    flt.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    flt.load()  # sets no_new_privs
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
