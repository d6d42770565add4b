"""Keeping user-chosen names inside configured folders (graph nodes pick model and data files by
name; a name must never reach outside its folder)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from .errors import InputError


def safe_join(root: str | os.PathLike, name: str | os.PathLike) -> Path:
    """``root / name``, guaranteed to lie inside ``root`` after resolving symbolic links.

    Raises :class:`InputError` for an empty name, an absolute path or a drive (``/x``, ``C:\\x``,
    ``\\\\server\\share``), any ``..`` component (with ``/`` or ``\\`` separators), a NUL byte,
    or a path that leaves ``root`` through a symbolic link. The file need not exist.
    """
    root_path = Path(root)
    text = os.fspath(name)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    fix = f"choose a file inside {str(root_path)!r} by its name (sub-folders allowed, no '..' or absolute paths)."
    if not text or not text.strip():
        raise InputError("the file name is empty.", fix)
    if "\x00" in text:
        raise InputError("the file name contains a NUL byte.", fix)
    win, posix = PureWindowsPath(text), PurePosixPath(text)
    if posix.is_absolute() or win.is_absolute() or win.drive or win.root:
        raise InputError(f"{text!r} is an absolute path; only names inside the folder are allowed.", fix)
    parts = [p for p in text.replace("\\", "/").split("/") if p]
    if any(p == ".." for p in parts):
        raise InputError(f"{text!r} tries to leave the folder with '..'.", fix)
    base = root_path.resolve()
    candidate = (base / Path(*parts)) if parts else base
    resolved = candidate.resolve()
    if resolved != base and base not in resolved.parents:
        raise InputError(f"{text!r} leads outside {str(root_path)!r} (through a symbolic link).", fix)
    if resolved == base:
        raise InputError(f"{text!r} names the folder itself, not a file in it.", fix)
    return resolved


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` for a temporary file beside ``path``, fsync it, then rename it
    over ``path``: readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        # as an ordinary new file (mkstemp makes it owner-only, and a writer may replace it)
        os.chmod(tmp, 0o666 & ~umask)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path
