"""bpfmap's exceptions: one root, errno translated in one function.

Every message starts with the operation and the object (``update /sys/fs/bpf/m``)
and ends with what to try.  The CLI maps classes to exit codes: NotFound -> 1,
UsageError -> 2, everything else -> 3.
"""

from __future__ import annotations

import errno as _errno

ENOTSUPP = 524  # the kernel-internal "not supported" that bpf(2) leaks to user space


class BpfmapError(Exception):
    """Root of every error bpfmap raises."""

    exit_code = 3


class UsageError(BpfmapError, ValueError):
    """Bad input: an unknown type, a wrong key size, an invalid combination of options."""

    exit_code = 2


class NotFound(BpfmapError, LookupError):
    """Nothing there: a key that is not in the map, an empty queue."""

    exit_code = 1


class KeyNotFound(NotFound, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Empty(NotFound):
    """pop/peek on an empty queue or stack; bloom filter peek of an absent value."""


class KernelError(BpfmapError, OSError):
    """The kernel (or the system) refused; ``errno`` says how."""

    def __init__(self, message: str, errno: int = 0) -> None:
        BpfmapError.__init__(self, message)
        self.errno = errno
        self.message = message

    def __str__(self) -> str:
        return self.message


class PermissionDenied(KernelError):
    pass


class NoSuchObject(KernelError):
    """No pin at a path, no map with an id or name."""


class NotBpffs(KernelError):
    pass


class WrongObjectType(KernelError):
    """The pin or id is a program, a link or BTF, not a map (or the other way)."""


class Unsupported(KernelError):
    """This kernel or this map type does not support the operation."""


class InvalidArgument(KernelError):
    """EINVAL the kernel gave and we could not foresee."""


class MapFull(KernelError):
    pass


class KeyExists(KernelError):
    pass


class PinExists(KernelError):
    pass


class ReadOnly(KernelError):
    """A write to a frozen map or through a read-only file descriptor."""


class IterationAborted(KernelError):
    """Key iteration could not finish: the map kept changing under it."""


class VerifierRejected(KernelError):
    """The verifier refused a program; ``log`` holds what it said."""

    def __init__(self, message: str, errno: int = 0, log: str = "") -> None:
        super().__init__(message, errno)
        self.log = log


_PERM_HINT = "run as root or with CAP_BPF (CAP_SYS_ADMIN on kernels before 5.8)"


def translate(op: str, target: str, err: OSError) -> KernelError:
    """Turn an OSError from a bpf(2) call into the matching bpfmap exception.

    ``op`` is what we were doing (``lookup``, ``update``, ``create``, ``pin``, ...),
    ``target`` the map or path it was done to.
    """
    code = err.errno or 0
    where = f"{op} {target}".rstrip()
    if code in (_errno.EPERM, _errno.EACCES):
        return PermissionDenied(f"{where}: permission denied; {_PERM_HINT}", code)
    if code == _errno.ENOENT:
        if op in ("lookup", "delete", "update"):
            return KeyNotFound(f"{where}: key not found")
        if op in ("pop", "peek"):
            return Empty(f"{where}: the map is empty")
        return NoSuchObject(f"{where}: no such map; check the path, id or name ('bpfmap list')", code)
    if code == _errno.EEXIST:
        if op == "pin":
            return PinExists(f"{where}: a pin already exists there; choose another path or unpin it (rm)", code)
        return KeyExists(f"{where}: key already exists; drop --noexist to overwrite", code)
    if code == _errno.E2BIG:
        if op in ("update", "push"):
            return MapFull(f"{where}: map is full (max_entries reached); delete entries or "
                           f"create a bigger map", code)
        return InvalidArgument(f"{where}: argument too big for this kernel ({err.strerror})", code)
    if code in (ENOTSUPP, _errno.EOPNOTSUPP):
        return Unsupported(f"{where}: not supported by this map type or kernel", code)
    if code == _errno.EBADF:
        return WrongObjectType(f"{where}: not a map file descriptor", code)
    if code == _errno.ENOSYS:
        return Unsupported(f"{where}: the kernel has no bpf(2) syscall (CONFIG_BPF_SYSCALL)", code)
    if code == _errno.EINVAL:
        return InvalidArgument(f"{where}: the kernel rejected the arguments (EINVAL)", code)
    if code == _errno.ENOMEM:
        return KernelError(f"{where}: out of memory; lower max_entries or raise the memlock limit", code)
    return KernelError(f"{where}: {err.strerror or _errno.errorcode.get(code, code)}", code)
