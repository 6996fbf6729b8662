"""bpfmap's exceptions: one root, errno translated in one function.

Every message starts with the operation and the object (``update /sys/fs/bpf/m``)
and ends with what to try.  The CLI maps classes to exit codes: NotFound -> 1,
UsageError -> 2, everything else -> 3 (the EXIT_ constants: the one list of them).
"""

from __future__ import annotations

import errno as _errno
from _collections_abc import Callable  # collections.abc's, loaded with os: no collections package to import

from ._lazy import lazy_pattern

ENOTSUPP = 524  # the kernel-internal "not supported" that bpf(2) leaks to user space

# The command's exit codes, a contract for scripts; the classes below carry theirs.
EXIT_OK = 0
EXIT_NOT_FOUND = 1  # not found or empty
EXIT_DIFFER = EXIT_NOT_FOUND  # diff: the maps differ, as diff(1) says it
EXIT_USAGE = 2  # usage or input error
EXIT_SYSTEM = 3  # error from the kernel or the system
EXIT_INTERRUPTED = 130  # stopped by Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # stopped by SIGTERM (128 + 15)


def signal_exit(signum: int) -> int:
    """The exit code of a command stopped by signal ``signum``, as a shell reports it."""
    return 128 + signum


class Param:
    """A parameter named in a message: ``str`` spells it as a Python caller passes it
    (``cpu``); the command line words it as its option (``--cpu N``, see
    :meth:`BpfmapError.worded`).  ``metavar`` is what the option's value is called there;
    ``also``: the message means any way of giving the parameter, so the command line names
    its other options that give it too (``--layout (or --c-header)``)."""

    __slots__ = ("name", "metavar", "also")

    def __init__(self, name: str, metavar: str = "", also: bool = False) -> None:
        self.name, self.metavar, self.also = name, metavar, also

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Param({self.name!r})"


class Words(tuple):  # type: ignore[type-arg]  # of str and Param
    """A message whose pieces name parameters (:class:`Param`): ``str`` says them the
    Python way; an error built from one keeps them, so the CLI can say them its way."""

    __slots__ = ()

    def __str__(self) -> str:
        return "".join(map(str, self))

    def worded(self, name: Callable[[Param], str]) -> str:
        return "".join(name(p) if isinstance(p, Param) else p for p in self)


def words(*pieces: str | Param | Words) -> Words:
    """A message naming parameters: ``words(Param("cpu"), " takes one value")``; a piece
    that is itself a Words message is taken in its pieces."""
    flat: list[str | Param] = []
    for piece in pieces:
        if isinstance(piece, Words):
            flat.extend(piece)
        else:
            flat.append(piece)
    return Words(flat)


def said(exc: BaseException) -> str | Words:
    """``exc``'s message as it was raised: the Words naming parameters (to say again in a
    message of one's own: ``words("key 'x': ", said(err))``), else its text."""
    first = exc.args[0] if isinstance(exc, BpfmapError) and exc.args else None
    return first if isinstance(first, Words) else str(exc)


class BpfmapError(Exception):
    """Root of every error bpfmap raises.  ``done``: for a batch operation, how many
    elements went in before the error (None otherwise).  A message that names
    parameters (:func:`words`) says them as Python spells them; :meth:`worded` says them
    another way (the command line's options)."""

    exit_code = EXIT_SYSTEM
    done: int | None = None

    @property
    def params(self) -> tuple[str, ...]:
        """The parameters the message names (``("cpu",)``), or ()."""
        first = self.args[0] if self.args else None
        return tuple(p.name for p in first if isinstance(p, Param)) if isinstance(first, Words) else ()

    def worded(self, name: Callable[[Param], str]) -> str:
        """The message with each parameter it names said by ``name``."""
        first = self.args[0] if self.args else None
        return first.worded(name) if isinstance(first, Words) else str(self)


class UsageError(BpfmapError, ValueError):
    """Bad input: an unknown type, a wrong key size, an invalid combination of options."""

    exit_code = EXIT_USAGE


class NoRoom(UsageError):
    """A copy or migration would leave entries out (keys past an array's end, more new
    keys than the target has room for, keys that become one another's): found before
    anything is written, so nothing was.  ``entries``: how many would be left out."""

    def __init__(self, message: str | Words, entries: int = 0) -> None:
        super().__init__(message)
        self.entries = entries


class EntriesDropped(BpfmapError):
    """Entries written went missing (evicted) or could not be carried over: what was
    written stays, and ``dropped`` says how many did not make it."""

    def __init__(self, message: str | Words, dropped: int = 0) -> None:
        super().__init__(message)
        self.dropped = dropped


class NotFound(BpfmapError, LookupError):
    """Nothing there: a key that is not in the map, an empty queue."""

    exit_code = EXIT_NOT_FOUND


class KeyNotFound(NotFound, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Empty(NotFound):
    """pop/peek on an empty queue or stack; bloom filter peek of an absent value."""


class KernelError(BpfmapError, OSError):
    """The kernel (or the system) refused; ``errno`` says how."""

    def __init__(self, message: str | Words, errno: int | None = 0) -> None:
        BpfmapError.__init__(self, message)
        self.errno = errno or 0
        self.message = str(message)

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

    def __init__(self, message: str, errno: int | None = 0, log: str = "") -> None:
        super().__init__(message, errno)
        self.log = log


def quote(text: str, limit: int = 200, bare: bool = False, at: int | None = None) -> str:
    """User input for an error message: repr()-quoted (``bare``: as it is, for paths),
    cut to about ``limit`` characters with its length when longer
    (``'0a0a0a'... (120000 chars)``); ``at``: keep the part around that position
    (where a parse error is) rather than the start."""
    show = _shown_bare if bare else _shown
    if len(text) <= limit:
        return show(text)
    if at is None or at < limit - 20:
        return f"{show(text[:limit])}... ({len(text)} chars)"
    start = min(at - (limit - 40), len(text) - limit)
    return f"...{show(text[start : start + limit])}{'...' if start + limit < len(text) else ''} ({len(text)} chars)"


_escaped_byte = lazy_pattern(r"\\udc([89a-f][0-9a-f])")  # compiled by the first such message


def _shown(text: str) -> str:
    """repr(), with the bytes that were not UTF-8 (surrogate escapes, as Python reads
    argv and files) shown as the bytes they were: ``\\xff``, not ``\\udcff``."""
    shown = repr(text)
    return _escaped_byte().sub(r"\\x\1", shown) if "\\udc" in shown else shown


def _shown_bare(text: str) -> str:
    return _shown(text)[1:-1] if "\\udc" in repr(text) and _escaped_byte().search(repr(text)) else text


_PERM_HINT = "run as root or with CAP_BPF (CAP_SYS_ADMIN on kernels before 5.8)"
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_SYS_ADMIN, CAP_BPF = 1, 2, 21, 39


def effective_caps() -> int | None:
    """This process's effective capability set (a bit per CAP_*), None if unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return None


def permission_hint(op: str, target: str) -> str:
    """What this process lacks for ``op`` on ``target``, from what it holds: the file
    permissions of a pin, CAP_BPF, or CAP_SYS_ADMIN (maps by id or name, listing, BTF)."""
    caps = effective_caps()
    if caps is None:
        return _PERM_HINT

    def has(cap: int) -> bool:
        return bool(caps >> cap & 1)

    if target.startswith("/"):
        hint = _file_hint(target, has)
        if hint:
            return hint
    if not has(CAP_BPF) and not has(CAP_SYS_ADMIN):
        return f"this process has neither CAP_BPF nor CAP_SYS_ADMIN; {_PERM_HINT}"
    by_id = target.startswith(("id:", "name:")) or op.startswith(("list", "btf")) or "BTF" in op
    if not has(CAP_SYS_ADMIN) and by_id:
        return (
            "this process has CAP_BPF but not CAP_SYS_ADMIN, which the kernel wants for reaching maps by id "
            "or name, listing them and reading BTF; open the map by its pin, or add CAP_SYS_ADMIN"
        )
    if not has(CAP_SYS_ADMIN):
        return (
            "this process has CAP_BPF but not CAP_SYS_ADMIN, which some map types and operations need "
            "(CAP_NET_ADMIN or CAP_PERFMON for others); add CAP_SYS_ADMIN or run as root"
        )
    if op == "create":
        return (
            "the process has CAP_BPF and CAP_SYS_ADMIN, so the kernel itself does not allow this map here "
            "(a security module such as SELinux or a BPF LSM, lockdown, a cgroup's limits, or a kernel "
            "built without support for it)"
        )
    return (
        "the process has CAP_BPF and CAP_SYS_ADMIN, so a security module (SELinux, AppArmor, lockdown) "
        "or the map itself (read-only, frozen) refused it"
    )


def _file_hint(path: str, has: Callable[[int], bool]) -> str | None:
    """Why the file permissions of ``path`` keep this process out, if they do."""
    import os

    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if has(CAP_DAC_OVERRIDE):
        return None
    uid = os.geteuid()
    if uid == st.st_uid:
        bits, who = st.st_mode >> 6, "its owner"
    elif st.st_gid in {os.getegid(), *os.getgroups()}:
        bits, who = st.st_mode >> 3, "its group"
    else:
        bits, who = st.st_mode, "others"
    can_read = bool(bits & 4) or has(CAP_DAC_READ_SEARCH)
    if can_read and bits & 2:
        return None
    mode = f"mode {st.st_mode & 0o7777:04o}, owner uid {st.st_uid} gid {st.st_gid}"
    if not can_read:
        return (
            f"{path} is {mode}: uid {uid} ({who}) may not read it; change its mode or owner "
            f"(chmod, chown) or run as a user who may"
        )
    return (
        f"{path} is {mode}: uid {uid} ({who}) may read it but not write it; commands that only read "
        f"open it read-only, writing needs write permission (chmod u+w, chown)"
    )


def translate(op: str, target: str, err: OSError, detail: str = "", done: int | None = None) -> BpfmapError:
    """Turn an OSError from a bpf(2) call into the matching bpfmap exception.

    ``op`` is what we were doing (``lookup``, ``update``, ``create``, ``pin``, ...),
    ``target`` the map or path it was done to; ``detail`` ends the message (``(after 3
    element(s) of the batch)``) and ``done`` (how many elements of a batch went in before
    the error) is set on the exception.
    """
    cls, text = _classify(op, target, err)
    code = err.errno or 0
    message = words(text, detail) if isinstance(text, Words) else text + detail
    exc = cls(message, code) if issubclass(cls, KernelError) else cls(message)
    exc.done = done
    return exc


def amended(exc: BpfmapError, note: str, **attrs: object) -> BpfmapError:
    """A copy of ``exc`` whose message ends with ``note`` (and with ``attrs`` set), to raise
    from it: a caller that knows more (how many entries went in) says so without changing
    an exception already raised."""
    import copy

    new = copy.copy(exc)
    first = exc.args[0] if exc.args else None
    message: str | Words = Words((*first, note)) if isinstance(first, Words) else f"{exc}{note}"
    new.args = (message,)
    if isinstance(new, KernelError):
        new.message = str(message)
    for name, value in attrs.items():
        setattr(new, name, value)
    return new


def _classify(op: str, target: str, err: OSError) -> tuple[type[BpfmapError], str | Words]:
    code = err.errno or 0
    where = f"{op} {quote(target, bare=True)}".rstrip()
    if code in (_errno.EPERM, _errno.EACCES):
        return PermissionDenied, f"{where}: permission denied; {permission_hint(op, target)}"
    if code == _errno.ENOENT:
        if op in ("lookup", "delete", "update"):
            return KeyNotFound, f"{where}: key not found"
        if op in ("pop", "peek"):
            return Empty, f"{where}: the map is empty"
        return NoSuchObject, f"{where}: no such map; check the path, id or name ('bpfmap list')"
    if code == _errno.EEXIST:
        if op == "pin":
            return PinExists, f"{where}: a pin already exists there; choose another path or unpin it (rm)"
        return KeyExists, words(f"{where}: key already exists; drop ", Param("noexist"), " to overwrite")
    if code == _errno.E2BIG:
        if op in ("update", "push"):
            return MapFull, f"{where}: map is full (max_entries reached); delete entries or create a bigger map"
        return InvalidArgument, f"{where}: argument too big for this kernel ({err.strerror})"
    if code in (ENOTSUPP, _errno.EOPNOTSUPP):
        return Unsupported, f"{where}: not supported by this map type or kernel"
    if code == _errno.EBADF:
        return WrongObjectType, f"{where}: not a map file descriptor"
    if code == _errno.ENOSYS:
        return Unsupported, f"{where}: the kernel has no bpf(2) syscall (CONFIG_BPF_SYSCALL)"
    if code == _errno.EINVAL:
        return InvalidArgument, f"{where}: the kernel rejected the arguments (EINVAL)"
    if code in (_errno.EMFILE, _errno.ENFILE):
        return KernelError, f"{where}: too many open files; raise the limit (ulimit -n) or close maps held open"
    if code == _errno.ENOMEM:
        return KernelError, f"{where}: out of memory; lower max_entries or raise the memlock limit"
    return KernelError, f"{where}: {err.strerror or _errno.errorcode.get(code, code)}"
