"""The sandbox's first process: build a minimal root, then run the solution with no privileges.

Run by `sandbox.run_sandboxed` as `python -S -I sandbox_init.py CONFIG.json` inside fresh
mount, PID, network, IPC, UTS and cgroup namespaces (plus a user namespace when the
harness is not root). Standard library only: it must start fast and trust nothing but
its argument. It guarantees, before the solution's first instruction:

* **a root of its own**: a small read-only tmpfs holding only read-only binds of the
  system and Python directories it needs, the workspace (the only writable host path,
  at `/workspace`), a private `/tmp` and `/dev/shm`, a fresh `/proc` of its own PID
  namespace, and a `/dev` with the harmless character devices only. The host's other
  files (other trials, the run store, sockets under `/run` or `/tmp`, the user's home)
  are not in it, whatever the solution's permissions;
* **no privileges**: the solution runs through `setpriv` with every capability dropped,
  the bounding set empty, `no_new_privs` set and, when the harness is root, as a fresh
  unprivileged uid/gid (`config["uid"]`) that owns nothing on the host. So mounts cannot be
  undone (that needs CAP_SYS_ADMIN; a nested user namespace sees them locked), nothing
  outside the workspace's writable folders can be written, and this process, which
  keeps its privileges, cannot be traced or have its file descriptors opened
  (`/proc/1/fd`: it is non-dumpable, owned by another uid or holds capabilities the
  solution lacks);
* **a seccomp filter** (x86-64 and arm64) refusing: new namespaces (`unshare`, `setns`,
  `clone` with namespace flags; `clone3` reports ENOSYS so libc falls back to `clone`),
  mount calls, `ptrace` and `process_vm_*`, key rings, `bpf`, `perf_event_open`,
  `userfaultfd`, `io_uring_setup`, and sockets of any family but Unix, IP and netlink
  (AF_VSOCK is not namespaced: it would reach the VM's host). Unix-domain sockets stay
  allowed (torch's DataLoader workers pass tensors over them): no host socket file is
  inside the minimal root, and abstract sockets are private to the trial's network
  namespace;
* **an unforgeable result**: after the solution exits, this process writes
  "<exit code> <peak RSS KiB>" on the report pipe, which the solution never holds.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import struct
import subprocess
import sys

INSIDE_WORKSPACE = "/workspace"

# --- seccomp ---------------------------------------------------------------------------

_ARCHES = {  # machine -> (AUDIT_ARCH_*, syscall numbers)
    "x86_64": (0xC000003E, {
        "socket": 41, "clone": 56, "clone3": 435, "unshare": 272, "setns": 308, "ptrace": 101,
        "process_vm_readv": 310, "process_vm_writev": 311, "mount": 165, "umount2": 166, "pivot_root": 155,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "mount_setattr": 442,
        "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321, "perf_event_open": 298,
        "userfaultfd": 323, "io_uring_setup": 425,
    }),
    "aarch64": (0xC00000B7, {
        "socket": 198, "clone": 220, "clone3": 435, "unshare": 97, "setns": 268, "ptrace": 117,
        "process_vm_readv": 270, "process_vm_writev": 271, "mount": 40, "umount2": 39, "pivot_root": 41,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "mount_setattr": 442,
        "keyctl": 219, "add_key": 217, "request_key": 218, "bpf": 280, "perf_event_open": 241,
        "userfaultfd": 282, "io_uring_setup": 425,
    }),
}
_DENY_EPERM = ("unshare", "setns", "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2",
               "pivot_root", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "mount_setattr",
               "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup")
_CLONE_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080
# (NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME)
# Socket families a solution may create: Unix (its own, inside the trial), IP and netlink (confined by
# its network namespace). Everything else, notably AF_VSOCK (not namespaced: it reaches the VM host), fails.
_SOCKET_FAMILIES = (1, 2, 10, 16)  # AF_UNIX, AF_INET, AF_INET6, AF_NETLINK
_EPERM, _ENOSYS = 1, 38
_RET_ALLOW, _RET_ERRNO, _RET_KILL = 0x7FFF0000, 0x00050000, 0x80000000
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06


def seccomp_program(machine: str | None = None) -> bytes | None:
    """The classic-BPF seccomp program (packed `sock_filter`s) for `machine`, None if unsupported.

    Layout: check the architecture (any other: kill), refuse x32 syscall numbers, then
    one comparison per denied syscall; `clone` inspects its flags and `socket` its family.
    """
    arch = _ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, nr = arch
    errno_eperm, errno_enosys = _RET_ERRNO | _EPERM, _RET_ERRNO | _ENOSYS
    # Each entry: (code, jt_label, jf_label, k); labels resolve to relative jumps.
    body: list[tuple[int, str | None, str | None, int]] = [
        (_LD_W_ABS, None, None, 4),                      # A = arch
        (_JEQ_K, None, "kill", audit_arch),
        (_LD_W_ABS, None, None, 0),                      # A = syscall number
        (_JGE_K, "enosys", None, 0x40000000),            # x32 ABI on x86-64 (never used here)
        (_JEQ_K, "socket", None, nr["socket"]),
        (_JEQ_K, "clone", None, nr["clone"]),
        (_JEQ_K, "enosys", None, nr["clone3"]),
        *[(_JEQ_K, "eperm", None, nr[name]) for name in _DENY_EPERM],
        (_RET_K, None, None, _RET_ALLOW),
    ]
    labels = {"socket": [(_LD_W_ABS, None, None, 16),
                         *[(_JEQ_K, "allow", None, family) for family in _SOCKET_FAMILIES],
                         (_RET_K, None, None, errno_eperm)],
              "clone": [(_LD_W_ABS, None, None, 16), (_JSET_K, "eperm", "allow", _CLONE_NS_FLAGS)],
              "eperm": [(_RET_K, None, None, errno_eperm)], "enosys": [(_RET_K, None, None, errno_enosys)],
              "allow": [(_RET_K, None, None, _RET_ALLOW)], "kill": [(_RET_K, None, None, _RET_KILL)]}
    program, where = list(body), {}
    for label, block in labels.items():
        where[label] = len(program)
        program.extend(block)

    def jump(at: int, label: str | None) -> int:
        offset = 0 if label is None else where[label] - at - 1
        if not 0 <= offset <= 255:
            raise ValueError("seccomp program too long for a classic-BPF jump")
        return offset

    return b"".join(struct.pack("HBBI", code, jump(i, jt), jump(i, jf), k) for i, (code, jt, jf, k) in enumerate(program))


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, _PR_SET_DUMPABLE = 38, 22, 2, 4


def _seccomp_installer(program: bytes | None):
    """A `preexec_fn` that sets no_new_privs and loads `program` (prepared before the fork)."""
    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(program or b"")
    fprog = _SockFprog(len(program or b"") // 8, ctypes.cast(buffer, ctypes.c_void_p))

    def install() -> None:
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if program and libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")

    install.keep_alive = (buffer, fprog)  # type: ignore[attr-defined]
    return install


# --- the root --------------------------------------------------------------------------


_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18)
_MS_NOATIME, _MS_NODIRATIME, _MS_RELATIME = 1024, 2048, 1 << 21
_ST_TO_MS = {1: _MS_RDONLY, 2: _MS_NOSUID, 4: _MS_NODEV, 8: _MS_NOEXEC, 1024: _MS_NOATIME, 2048: _MS_NODIRATIME,
             4096: _MS_RELATIME}
_MNT_DETACH = 2
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2) directly (no process per mount: the sandbox starts in a fraction of the time); OSError on failure."""
    def arg(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    if _libc.mount(arg(source), arg(target), arg(fstype), ctypes.c_ulong(flags), arg(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} on {target} ({fstype or 'bind'}): {os.strerror(errno)}")


def _existing_flags(target: str) -> int:
    """The mount flags `target` already has (a remount must keep those a user namespace locked)."""
    f_flag = os.statvfs(target).f_flag
    return sum(ms for st, ms in _ST_TO_MS.items() if f_flag & st)


def _bind(source: str, target: str, *, writable: bool = False, device: bool = False) -> None:
    """Bind `source` at `target` (created), then remount it read-only unless `writable`."""
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    try:
        _mount(source, target, None, _MS_BIND)
    except OSError:
        # In a user namespace a directory with locked submounts (e.g. /sys) binds only whole;
        # the top is still remounted read-only below, and the submounts keep their own flags.
        _mount(source, target, None, _MS_BIND | _MS_REC)
    flags = _existing_flags(target) | _MS_REMOUNT | _MS_BIND | _MS_NOSUID | (0 if device else _MS_NODEV)
    flags = (flags & ~_MS_RDONLY) | (0 if writable else _MS_RDONLY)
    _mount(None, target, None, flags)


def build_root(cfg: dict) -> None:
    """Populate `cfg["root"]` (see module docs) and pivot into it. Runs with full privileges."""
    root = cfg["root"]
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    _mount("interpgym-root", root, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=16m,mode=755")
    # The private /tmp first: an installation that lives under the host's /tmp (a CI clone) is then
    # bound on top of it instead of being covered by it.
    os.makedirs(root + "/tmp")
    _mount("interpgym-tmp", root + "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, "size=64m,mode=1777")
    bound: list[str] = []
    for path in sorted(cfg["ro_paths"], key=len):
        if any(path == b or path.startswith(b.rstrip("/") + "/") for b in bound):
            continue  # already visible through a bound parent
        if os.path.islink(path):
            os.makedirs(root + os.path.dirname(path), exist_ok=True)
            os.symlink(os.readlink(path), root + path)
        elif os.path.exists(path):
            _bind(path, root + path)
            bound.append(path)
    _bind(cfg["workspace"], root + INSIDE_WORKSPACE, writable=True)
    os.makedirs(root + "/proc")
    _mount("proc", root + "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC,
           "hidepid=2" if cfg.get("uid") is not None else None)
    os.makedirs(root + "/dev")
    _mount("interpgym-dev", root + "/dev", "tmpfs", _MS_NOSUID, "size=64k,mode=755")
    for device in cfg["devices"]:
        if os.path.exists(device):
            _bind(device, root + device, writable=True, device=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    os.makedirs(root + "/dev/shm")
    _mount("interpgym-shm", root + "/dev/shm", "tmpfs", _MS_NOSUID | _MS_NODEV, "size=64m,mode=1777")
    for hidden in cfg["hidden"]:  # private paths that happen to lie under a bound directory
        target = root + hidden
        if os.path.isdir(target):
            _mount("interpgym-hidden", target, "tmpfs", _MS_RDONLY, "size=4k,mode=000")
        elif os.path.exists(target):
            _mount("/dev/null", target, None, _MS_BIND)
    os.chdir(root)
    os.mkdir(".old-root")
    if _libc.syscall(_PIVOT_ROOT[platform.machine()], b".", b".old-root") != 0:
        raise OSError(ctypes.get_errno(), "pivot_root failed")
    os.chdir("/")
    if _libc.umount2(b"/.old-root", _MNT_DETACH) != 0:
        raise OSError(ctypes.get_errno(), "umount of the old root failed")
    os.rmdir("/.old-root")
    _mount(None, "/", None, _existing_flags("/") | _MS_REMOUNT | _MS_BIND | _MS_RDONLY)


def solution_command(cfg: dict) -> list[str]:
    """`setpriv` drops every privilege (and switches to the trial's uid when given), then execs argv."""
    drop = ["setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    if cfg.get("uid") is not None:
        drop += [f"--reuid={cfg['uid']}", f"--regid={cfg['uid']}", "--clear-groups"]
    return [*drop, "--", *cfg["argv"]]


def main() -> None:
    with open(sys.argv[1]) as handle:  # in the harness's private scratch tree, read before the root changes
        cfg = json.load(handle)
    report_fd = cfg["report_fd"]
    program = seccomp_program()
    install = _seccomp_installer(program)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)  # /proc/1/{fd,mem,environ} closed to the solution
    try:
        build_root(cfg)
    except (OSError, KeyError) as exc:
        print(f"interpgym sandbox: cannot build the trial's root: {exc}", file=sys.stderr)
        os.write(report_fd, b"setup-failed")
        sys.exit(1)
    os.chdir(INSIDE_WORKSPACE)
    try:
        rc = subprocess.call(solution_command(cfg), preexec_fn=install, close_fds=True)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"cannot start solution: {exc}", file=sys.stderr)
        rc = 127
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    os.write(report_fd, f"{rc} {peak_kib}".encode())


if __name__ == "__main__":
    main()
