"""Containing a submission's worker process with what the operating system offers, each feature probed and reported.

Applied by the worker to itself, in this order, before it imports any submission code (:func:`enter`):
- ``session``: a new session and process group, so that the grader kills it with everything it started;
- ``environment``: an environment of its own (no variable of the grader's, so no secret seed);
- ``namespaces``: new network and PID namespaces: no network at all (not even loopback), no process outside visible,
  and every process it starts dies with it (the worker is PID 1 of its namespace);
- ``uid``: when the grader runs as root, an unprivileged uid (``nobody``), so no file of the grader's is writable
  and no process of the grader's can be signalled or traced; where the Python installation is readable by root
  alone, root's uid is kept but every capability is dropped (no privilege beyond a plain user's of uid 0, whose
  reach Landlock then bounds);
- ``limits``: resource limits: CPU seconds, address space, file size, process count, no core files;
- ``landlock``: a Landlock ruleset: it may write only in its scratch directory and read only the Python installation,
  the harness, the system's libraries and its copy of the submission; it cannot signal or trace processes outside.
A feature the system lacks is recorded as unavailable with the reason, and grading goes on without it. The grading
process makes itself non-dumpable (:func:`protect_grader`), so that a worker sharing its uid cannot read its memory.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WorkerLimits", "enter", "die_with_parent", "protect_grader", "tree_cpu_seconds"]

NOBODY = 65534

_CLONE_NEWUSER, _CLONE_NEWPID, _CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_SET_NO_NEW_PRIVS = 1, 4, 38
_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446


@dataclass(frozen=True)
class WorkerLimits:
    """Resource limits of one worker."""

    cpu_s: int = 3600
    memory_bytes: int = 12 * 2**30  # address space above what the worker has mapped when it is contained
    file_bytes: int = 256 * 2**20
    processes: int = 256  # per uid: counts threads too


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _error() -> str:
    return os.strerror(ctypes.get_errno())


def die_with_parent() -> None:
    """Be killed when the parent process ends (Linux): a worker must not outlive the zygote that started it."""
    libc = _libc() if sys.platform == "linux" else None
    if libc is not None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() == 1:  # the parent was already gone
            os._exit(70)


def protect_grader() -> bool:
    """Make this (grading) process non-dumpable: no process of its uid without privileges may trace it or read its
    memory and environment through /proc."""
    libc = _libc()
    return libc is not None and sys.platform == "linux" and libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0


def enter(scratch: Path, readable: list[Path], limits: WorkerLimits, environment: dict[str, str]) -> dict[str, str]:
    """Contain this process (see the module docstring); returns each feature's state: ``"on"`` or why it is not.

    When the PID namespace is entered this function forks: the original process only waits for its child (the
    worker, PID 1 of the namespace) and exits with its status; the child returns from here.
    """
    state: dict[str, str] = {}
    libc = _libc() if sys.platform == "linux" else None
    os.setsid()
    state["session"] = "on"
    os.environ.clear()
    os.environ.update(environment)
    state["environment"] = "on"
    state["namespaces"] = _namespaces(libc)
    state["uid"] = _drop_uid(scratch, readable)
    state["capabilities"] = _drop_capabilities(libc)
    state["limits"] = _limits(limits, uid_dropped=state["uid"] == "on")
    state["landlock"] = _landlock(libc, scratch, readable)
    if libc is not None:  # again after the uid change, which clears it: its parent (the outer process, or the zygote) gone,
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the worker goes too
    return state


def _namespaces(libc: ctypes.CDLL | None) -> str:
    if libc is None:
        return "unavailable: not Linux"
    flags = _CLONE_NEWPID | _CLONE_NEWNET | (0 if os.geteuid() == 0 else _CLONE_NEWUSER)
    if libc.unshare(flags) != 0:
        return f"unavailable: unshare: {_error()}"
    child = os.fork()
    if child:  # the outer process: wait for the worker, then leave with its status
        signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGKILL))
        os.closerange(3, 65536)
        _, status = os.waitpid(child, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
    return "on"


def _world_readable(path: Path) -> bool:
    """Whether a uid of no group of the owner's could read ``path`` (every directory above it searchable)."""
    try:
        for part in [path, *path.parents]:
            mode = part.stat().st_mode
            if not mode & 0o001 or (part == path and not mode & 0o004):
                return False
    except OSError:
        return False
    return True


def _drop_uid(scratch: Path, readable: list[Path]) -> str:
    if not hasattr(os, "setresuid"):
        return "unavailable: no setresuid"
    if os.geteuid() != 0:
        return "unavailable: the grader is not root (the worker shares its uid; Landlock and namespaces still apply)"
    unreadable = [str(p) for p in readable if not _world_readable(p)]
    if unreadable:
        return f"unavailable: not readable by other users: {unreadable[0]}"
    for directory in [scratch, *scratch.glob("*")]:
        if directory.is_dir() and directory.name != "submission":
            os.chown(directory, NOBODY, NOBODY)
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)
    return "on"


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_PR_CAPBSET_DROP, _CAPABILITY_VERSION_3, _LAST_CAPABILITY = 24, 0x20080522, 63


def _drop_capabilities(libc: ctypes.CDLL | None) -> str:
    """No capability left, none to be regained (the bounding set emptied): root keeps only what any uid 0 owner has."""
    if libc is None:
        return "unavailable: not Linux"
    if os.geteuid() != 0 and Path("/proc/self/status").read_text().count("CapEff:\t0000000000000000"):
        return "on (none held)"
    for capability in range(_LAST_CAPABILITY + 1):
        libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0)  # EINVAL past the kernel's last: harmless
    header, data = _CapHeader(_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        return f"unavailable: capset: {_error()}"
    return "on"


def _limits(limits: WorkerLimits, *, uid_dropped: bool) -> str:
    mapped = _vm_size_bytes()
    settings = [
        (resource.RLIMIT_CPU, limits.cpu_s, limits.cpu_s + 5),
        (resource.RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    if mapped is not None:
        settings.append((resource.RLIMIT_AS, mapped + limits.memory_bytes, mapped + limits.memory_bytes))
    # per uid, threads included: a uid of its own gets the limit; a shared uid (capabilities dropped, so it is enforced)
    # gets what that uid runs now plus the limit
    processes = limits.processes if uid_dropped else _processes_of(os.geteuid()) + limits.processes
    settings.append((resource.RLIMIT_NPROC, processes, processes))
    failed = []
    for kind, soft, hard in settings:
        try:
            _, current_hard = resource.getrlimit(kind)
            hard = hard if current_hard == resource.RLIM_INFINITY else min(hard, current_hard)
            resource.setrlimit(kind, (min(soft, hard), hard))
        except (ValueError, OSError) as error:
            failed.append(f"{kind}: {error}")
    missing = [] if mapped is not None else ["address space (no /proc)"]
    if failed:
        return f"partial: {'; '.join(failed)}"
    return "on" if not missing else f"on, except {', '.join(missing)}"


def _processes_of(uid: int) -> int:
    """Tasks (threads count) of ``uid`` running now, as RLIMIT_NPROC counts them."""
    count = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if line.startswith(("Uid:", "Threads:")))
        except (OSError, ValueError):
            continue
        if fields.get("Uid", "").split()[1:2] == [str(uid)]:
            count += int(fields.get("Threads", "1"))
    return count


def _vm_size_bytes() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# Landlock (linux/landlock.h): filesystem rights by bit, and the scopes of ABI 6.
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_WRITE_ALL = sum(1 << bit for bit in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12))  # write, remove, make_*
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_RULE_PATH_BENEATH = 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _landlock(libc: ctypes.CDLL | None, scratch: Path, readable: list[Path]) -> str:
    if libc is None:
        return "unavailable: not Linux"
    abi = libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return f"unavailable: {_error()}"
    read = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
    handled = read | _FS_WRITE_ALL | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0) | (_FS_IOCTL_DEV if abi >= 5 else 0)
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
    attr = _RulesetAttr(handled, 0, scoped)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else 16
    ruleset = libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return f"unavailable: create_ruleset: {_error()}"
    try:
        rules = [(path, read) for path in readable] + [(scratch, handled), (Path("/dev/null"), _FS_READ_FILE | _FS_WRITE_FILE)]
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                access &= handled if path.is_dir() else handled & (_FS_EXECUTE | _FS_READ_FILE | _FS_WRITE_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV)
                rule = _PathBeneath(access, fd)
                if libc.syscall(_SYS_LANDLOCK_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                    return f"unavailable: add_rule {path}: {_error()}"
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return f"unavailable: no_new_privs: {_error()}"
        if libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
            return f"unavailable: restrict_self: {_error()}"
    finally:
        os.close(ruleset)
    return "on" if scoped else f"on (ABI {abi}: signals to outside processes not scoped)"


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) used by ``pid`` and every process below it, alive or reaped; None without /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    total = sum(int(value) for value in fields[11:15]) / tick  # utime, stime, cutime, cstime
    try:
        children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    except OSError:
        children = []
    return total + sum(tree_cpu_seconds(child) or 0.0 for child in children)
