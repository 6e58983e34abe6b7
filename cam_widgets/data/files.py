"""Files read and written by the package: regular files only, and writes that never destroy.

Reading: :func:`check_regular` refuses a path that is not a regular file (a folder, a named
pipe, a device such as ``/dev/zero``, a socket) from ``os.stat`` alone, before anything opens
it (opening a FIFO blocks until a writer comes; ``/dev/zero`` never ends);
:func:`open_regular` opens without blocking and checks the opened file again (a path swapped
between the check and the open is refused too).

Writing: :func:`atomic_write` and :func:`atomic_path` write a temporary file in the target's
folder and rename it over the target (``os.replace``) only once it is complete and fsynced,
so a write that fails (disk full, an exception midway, an interruption) leaves the previous
file byte-identical. :func:`check_output` refuses, before any work, an output that exists and
is not a regular file or whose folder cannot take a new file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Union

from cam_widgets.errors import CamWidgetsError, InvalidParameterError, expected

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "file_kind",
    "special_kind",
    "check_regular",
    "open_regular",
    "open_append",
    "check_output",
    "probe_folder",
    "atomic_write",
    "atomic_path",
    "output_error",
]


def file_kind(mode: int) -> str:
    """What an ``st_mode`` is, in words: "a folder", "a named pipe (FIFO)", ..."""
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISREG, "a regular file"),
    )
    return next((text for test, text in kinds if test(mode)), "not a regular file")


def check_regular(
    path: PathLike,
    what: str,
    error: type[CamWidgetsError] = InvalidParameterError,
    hint: str = "give a regular file",
) -> os.stat_result:
    """``os.stat(path)`` of a regular file (symbolic links followed), else ``error``.

    Nothing is opened. A missing path raises ``FileNotFoundError`` (callers word that one).
    """
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise error(
            f"{what} {os.fspath(path)!r} is {file_kind(info.st_mode)}: expected a regular file; hint: {hint}."
        )
    return info


def open_regular(
    path: PathLike,
    what: str,
    error: type[CamWidgetsError] = InvalidParameterError,
    hint: str = "give a regular file",
) -> IO[bytes]:
    """Open a regular file for reading in binary mode, never blocking on a pipe or device.

    The path is checked with ``os.stat`` first, then opened with ``O_NONBLOCK`` (a FIFO put in
    its place meanwhile does not block the open) and checked again with ``fstat``.
    """
    check_regular(path, what, error, hint)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(
                f"{what} {os.fspath(path)!r} is {file_kind(mode)}: expected a regular file; hint: {hint}."
            )
        if flags & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def open_append(
    path: PathLike,
    what: str = "the output",
    error: type[CamWidgetsError] = InvalidParameterError,
    hint: str = "pick another output path",
) -> IO[str]:
    """Open a regular file (created if missing) for appending text, never blocking: opened
    with ``O_NONBLOCK`` (a FIFO without a reader would block an ordinary open) and checked
    with ``fstat``; a folder, FIFO or device is one line of ``error``."""
    flags = (
        os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    )
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:  # EISDIR, ENXIO (a FIFO without a reader), EACCES, EROFS...
        raise output_error(path, f"{os.fspath(path)!r} cannot be opened", exc, hint, error) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise output_error(path, f"{os.fspath(path)!r} is {file_kind(mode)}", None, hint, error)
        os.set_blocking(fd, True)
        handle = os.fdopen(fd, "a", encoding="utf-8")
        handle.buffer.raw.name = os.fspath(path)  # (an error message names the file, not the fd)
        return handle
    except BaseException:
        os.close(fd)
        raise


def output_error(
    path: PathLike,
    why: str,
    exc: BaseException | None = None,
    hint: str = "pick another output path",
    error: type[CamWidgetsError] = InvalidParameterError,
) -> CamWidgetsError:
    """One-line error for an output that cannot be written."""
    reason = ""
    if isinstance(exc, OSError):
        reason = f" ({type(exc).__name__}: {exc.strerror or exc})"
    elif exc is not None:
        reason = f" ({type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''})"
    return error(
        f"Cannot write {os.fspath(path)!r}: expected a regular file in a writable "
        f"folder, received a path where {why}{reason}; hint: {hint}."
    )


def _target(path: PathLike) -> Path:
    """The file a write replaces: a symbolic link's target (the link itself stays)."""
    path = Path(path).expanduser()
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def check_output(
    path: PathLike,
    hint: str = "pick another output path",
    create_folder: bool = True,
    error: type[CamWidgetsError] = InvalidParameterError,
    probe: bool = True,
) -> Path:
    """Check, before any work, that ``path`` can be written atomically; returns the file written.

    Refused: an existing path that is not a regular file (a folder, a FIFO, ``/dev/full``,
    ``/dev/null``...), a parent that is a file, a folder that cannot be created or that does
    not take a new file (read-only, full, no permission: a probe file is created and removed).
    Nothing is read. With ``create_folder`` missing folders are made; ``probe=False`` skips
    the probe file (for a caller that creates its own file there at once).
    """
    target = _target(path)
    try:
        info = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):  # none yet, or a parent is a file (below)
        info = None
    except OSError as exc:  # a loop of links: ELOOP; a name too long
        raise output_error(path, "the path cannot be looked at", exc, hint, error) from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise output_error(path, f"{str(target)!r} is {file_kind(info.st_mode)}", None, hint, error)
    folder = target.parent
    blocker = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise output_error(
            path,
            f"{str(blocker)!r} is {file_kind(os.stat(blocker).st_mode)}, not a folder",
            None,
            hint,
            error,
        )
    try:
        if create_folder:
            folder.mkdir(parents=True, exist_ok=True)
        if probe:
            probe_folder(folder, target.name)
    except OSError as exc:
        raise output_error(
            path, f"the folder {str(folder)!r} does not take a new file", exc, hint, error
        ) from None
    return target


def probe_folder(folder: PathLike, name: str = "cam_widgets") -> None:
    """Create and remove a file in ``folder``: ``OSError`` when it does not take a new file
    (read-only, no permission, no space or inodes left)."""
    fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".probe")
    os.close(fd)
    os.unlink(probe)


def special_kind(path: PathLike) -> str | None:
    """What ``path`` is when it exists and is not a regular file ("a folder", ...), else None."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return None if stat.S_ISREG(mode) else file_kind(mode)


@contextlib.contextmanager
def atomic_path(
    path: PathLike,
    hint: str = "pick another output path",
    error: type[CamWidgetsError] = InvalidParameterError,
    fail: Callable[[str, OSError], BaseException] | None = None,
) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix) for a writer that wants a path;
    once the block ends without an error the file is fsynced and renamed over ``path``.

    On any error the temporary file is removed and ``path`` is left as it was; an ``OSError``
    (disk full, no permission...) becomes one line: ``fail(why, exc)`` when given, else
    ``error`` worded by :func:`output_error`.
    """
    fail = fail or (lambda why, exc: output_error(path, why, exc, hint, error))
    target = check_output(path, hint, error=error, probe=False)
    try:
        fd, tmp = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}"
        )
        os.close(fd)
    except OSError as exc:
        raise fail(f"{str(target)!r} cannot be written", exc) from None
    try:
        yield Path(tmp)
        _finish(Path(tmp), target)
    except OSError as exc:
        _discard(tmp)
        raise fail(f"{str(target)!r} cannot be written", exc) from None
    except BaseException:
        _discard(tmp)
        raise


@contextlib.contextmanager
def atomic_write(
    path: PathLike,
    mode: str = "wb",
    hint: str = "pick another output path",
    error: type[CamWidgetsError] = InvalidParameterError,
    **open_args,
) -> Iterator[IO]:
    """``with atomic_write(path, "w") as handle: ...``: an open temporary file renamed over
    ``path`` when the block ends without an error (see :func:`atomic_path`)."""
    if mode not in ("w", "wb", "wt", "x", "xb", "xt"):
        raise InvalidParameterError(expected("mode", "a write mode such as 'w' or 'wb'", mode))
    with atomic_path(path, hint, error) as tmp:
        with open(tmp, mode.replace("x", "w"), **open_args) as handle:
            yield handle
            handle.flush()


def _finish(tmp: Path, target: Path) -> None:
    """fsync ``tmp``, give it the target's permissions (or the umask's), rename it over."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    info = None
    with contextlib.suppress(FileNotFoundError):
        info = os.stat(target)
    if info is not None and not stat.S_ISREG(info.st_mode):  # swapped for a device meanwhile
        raise OSError(errno.EEXIST, f"{target} is {file_kind(info.st_mode)}")
    os.replace(tmp, target)
    with contextlib.suppress(OSError):  # the rename itself survives a crash
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _discard(tmp: PathLike) -> None:
    with contextlib.suppress(OSError):
        os.unlink(tmp)
