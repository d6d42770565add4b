"""Paths: keeping user-chosen names inside configured folders (graph nodes pick model and data
files by name; a name must never reach outside its folder), the output policy (never replace an
input, replace an existing output only when asked), preflight checks before long work, atomic
writes that honour the umask, and OSError -> Problem/Fix messages."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from pathlib import Path, PurePosixPath, PureWindowsPath

from .errors import InputError, Pix2PixError


class WriteError(Pix2PixError, OSError):
    """A file could not be written (full disk, read-only folder, no permission, a folder in the
    way). Also an :class:`OSError`, so code that catches those still does."""

    def __init__(self, problem: str, fix: str | None = None, errno_: int | None = None,
                 fallback: Path | None = None, *, setting: str | None = None):
        Pix2PixError.__init__(self, problem, fix, setting=setting)
        self.errno = errno_
        self.fallback = fallback


class OutputExistsError(Pix2PixError, ValueError):
    """An output would replace an existing file (or an input) without permission."""


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



# ------------------------------------------------------------------------- OSError messages
_REASONS = {
    errno.ENOSPC: ("the disk is full", "free some space or choose another folder"),
    getattr(errno, "EDQUOT", -1): ("the disk quota is exceeded", "free some space or choose another folder"),
    errno.EROFS: ("the folder is on a read-only file system", "choose a writable folder"),
    errno.EACCES: ("permission is denied", "choose a folder you can write to, or change its permissions"),
    errno.EPERM: ("the operation is not permitted", "choose a folder you can write to"),
    errno.EISDIR: ("a folder of that name is in the way", "pass a file name, not a folder"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "check the path"),
    errno.ENAMETOOLONG: ("the name is too long", "choose a shorter name"),
    errno.ENOENT: ("the folder does not exist", "check the path"),
}


def write_error(exc: OSError, path, what: str = "file", action: str = "write") -> WriteError:
    """A :class:`WriteError` (Problem/Fix, one line) for an OSError met while writing ``path``
    (``action``: the verb shown, e.g. ``read`` or ``use``)."""
    if isinstance(exc, WriteError):
        return exc
    code = getattr(exc, "errno", None)
    reason, fix = _REASONS.get(code, (exc.strerror or str(exc) or exc.__class__.__name__,
                                      "check the path, the free space and the permissions, or choose "
                                      "another folder"))
    return WriteError(f"cannot {action} the {what} {str(path)!r}: {reason}.", f"{fix}.", code)


# ---------------------------------------------------------------------------- output policy
def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_output(path, inputs=(), overwrite: bool = False, *, overwrite_setting: str = "overwrite",
                 suffixes: tuple[str, ...] | None = None, what: str = "output") -> Path:
    """The output policy, shared by every face. Raises :class:`OutputExistsError` when ``path``

    * is one of ``inputs`` (never allowed, whatever ``overwrite`` says),
    * is an existing folder,
    * does not end in one of ``suffixes`` (when given),
    * or already exists and ``overwrite`` is False (``overwrite_setting`` names the face's switch
      in the message: ``--overwrite`` on the CLI, the if-exists option of a node).
    """
    out = Path(path)
    if suffixes and out.suffix.lower() not in suffixes:
        raise OutputExistsError(f"the {what} {str(out)!r} does not end in {' or '.join(suffixes)}.",
                                f"name the {what} e.g. {out.stem or 'model'}{suffixes[0]}.")
    for item in inputs or ():
        if item is None:
            continue
        item = Path(item)
        if _same(out, item) or out.absolute() == item.absolute():
            raise OutputExistsError(f"the {what} {str(out)!r} is also an input; writing it would destroy "
                                    "the input.", f"choose another {what} file.")
    if out.is_dir():
        raise OutputExistsError(f"the {what} {str(out)!r} is a folder.", f"pass a file name for the {what}.")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"the {what} {str(out)!r} already exists.",
                                f"choose another name, or allow replacing it with {overwrite_setting}.")
    return out


def preflight(path, need_bytes: int = 0, what: str = "output") -> Path:
    """Check, before long work, that ``path`` can be written: its folder exists (or can be
    created) and is writable, and its disk has ``need_bytes`` free (plus 5 %). Creates the
    folder and a probe file that it removes. Raises :class:`WriteError`."""
    out = Path(path)
    if out.is_dir():
        raise WriteError(f"the {what} {str(out)!r} is a folder.", f"pass a file name for the {what}.",
                         errno.EISDIR)
    folder = out.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise write_error(exc, out, what) from None
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return out
    if need_bytes and free < need_bytes * 1.05:
        raise WriteError(f"the {what} {str(out)!r} needs about {need_bytes / 2**20:.1f} MiB but its disk has "
                         f"only {free / 2**20:.1f} MiB free.", "free some space or choose another folder.",
                         errno.ENOSPC)
    return out


# ------------------------------------------------------------------------------ temp files
def stale_temp_files(path, older_than: float = 0.0) -> list[Path]:
    """``.<name>.*.tmp`` siblings of ``path`` that :func:`atomic_write` left behind (a process
    killed mid-write) and that were last modified more than ``older_than`` seconds ago."""
    out = Path(path)
    try:
        candidates = list(out.parent.glob(f".{out.name}.*.tmp"))
    except OSError:
        return []
    now = time.time()
    stale = []
    for p in candidates:
        try:
            if p.is_file() and now - p.stat().st_mtime >= older_than:
                stale.append(p)
        except OSError:
            continue
    return stale


def clean_stale_temp_files(path, older_than: float = 60.0) -> list[Path]:
    """Remove stale temporary siblings of ``path`` (see :func:`stale_temp_files`). Returns the
    ones removed. Files younger than ``older_than`` seconds may belong to a running write and
    are left alone; files that cannot be removed are left too (and are reported by a warning)."""
    import warnings

    removed = []
    for p in stale_temp_files(path, older_than):
        try:
            p.unlink()
            removed.append(p)
        except OSError as exc:
            warnings.warn(f"could not remove the stale temporary file {p} ({exc.strerror or exc}); "
                          "delete it by hand to free its space.", stacklevel=2)
    return removed


# ------------------------------------------------------------------------------ atomic write
def _umask() -> int:
    try:  # Linux >= 4.7: read without changing it (os.umask is process-wide and racy)
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write, what: str = "file") -> Path:
    """Call ``write(tmp_path)`` for a temporary file beside ``path``, fsync it, then rename it
    over ``path``: readers see the old file or the new one, never half of one.

    The file gets the permissions of an ordinary new file (``0666 & ~umask``), set after
    ``write`` so that libraries which replace the temporary file (safetensors writes its own
    temp-and-rename) cannot leave it owner-only. Any OSError becomes a :class:`WriteError`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise write_error(exc, path, what) from None
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # as an ordinary new file (mkstemp makes it owner-only)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, Pix2PixError):
            raise write_error(exc, path, what) from exc
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
