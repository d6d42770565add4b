"""Reading and writing image files (tif, png, jpg, npy) without guessing layouts.

``read_image`` returns the array as stored in the file:

* ``.tif`` / ``.tiff``: any dtype and number of dimensions (tifffile), e.g. ``[Y, X]``,
  ``[Z, Y, X]``, ``[Y, X, 3]``.
* ``.png`` / ``.jpg`` / ``.jpeg`` (Pillow): gray -> ``[H, W]`` (uint8, or uint16 for 16-bit
  PNG), RGB -> ``[H, W, 3]``, RGBA -> ``[H, W, 4]``; gray+alpha drops the alpha, palette
  images become RGB(A), 1-bit images become bool. 16-bit RGB(A) PNG files (which Pillow
  would reduce to 8 bits) are decoded exactly as uint16 by imagecodecs.
* ``.npy``: ``np.load(allow_pickle=False)`` (never pickles).

Every reader checks the image's size from its header against the pixel limit
(:mod:`napari_pix2pix.limits`) before decoding. Every failure (missing file, unknown extension,
corrupt or truncated data, a text file with an image extension, too many pixels) raises :class:`~napari_pix2pix.errors.ImageReadError` naming
the file and the fix. Writing is atomic: a temporary file in the target folder is
written and then moved into place with ``os.replace``.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import threading
import warnings
from pathlib import Path

import numpy as np

from .errors import ConfigError, ImageReadError, InputError
from .limits import check_pixels

IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _ext(path: Path) -> str:
    return path.suffix.lower()


def read_image(path) -> np.ndarray:
    """Read one image file and return its array as stored (see the module docstring for layouts).

    The image's size is read from its header first and checked against the pixel limit
    (:func:`napari_pix2pix.limits.max_pixels`) before anything is decoded."""
    path = Path(path)
    ext = _ext(path)
    if ext not in IMAGE_EXTENSIONS:
        raise ImageReadError(f"{path.name}: the extension {ext or '(none)'!r} is not a supported image type.",
                             f"save the image as one of {', '.join(IMAGE_EXTENSIONS)}.")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image file.", "choose an image file inside it.")
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file.", "check the path (and that the file was not moved).")
    try:
        if ext in (".tif", ".tiff"):
            arr = _read_tif(path)
        elif ext == ".npy":
            arr = _read_npy(path)
        else:
            arr = _read_pil(path)
    except (ImageReadError, MemoryError, ConfigError):
        raise
    except Exception as exc:  # corrupt, truncated, or not an image at all
        detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise ImageReadError(
            f"{path.name}: cannot be read as a {ext[1:]} image ({type(exc).__name__}: {detail}).",
            f"replace or remove {path} (it is corrupt, truncated or not an image), "
            "or re-save it from an image program.") from exc
    if arr.size == 0:
        raise ImageReadError(f"{path.name}: the image is empty (shape {arr.shape}).", f"replace or remove {path}.")
    return arr


@contextlib.contextmanager
def _quiet_tifffile():
    """tifffile logs its own complaints (``<tifffile.TiffFile ...> ...``); the errors we raise say
    what matters, so its logger is muted while we read."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _read_tif(path: Path) -> np.ndarray:
    import tifffile

    with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise ValueError("the file holds no image series")
        series = tif.series[0]
        check_pixels(series.shape, path.name, np.dtype(series.dtype).itemsize)
        arr = series.asarray()
    return np.asarray(arr)


def _read_npy(path: Path) -> np.ndarray:
    arr = np.load(path, mmap_mode="r", allow_pickle=False)  # the header only; data stays on disk
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise ValueError(f"dtype {getattr(arr, 'dtype', type(arr))} is not numeric")
    check_pixels(arr.shape, path.name, arr.dtype.itemsize)
    return np.array(arr)


def read_tif_metadata(path) -> dict:
    """The JSON metadata dict that :func:`write_image` stored in a tif ({} if none or not a tif)."""
    path = Path(path)
    if _ext(path) not in (".tif", ".tiff"):
        return {}
    try:
        import tifffile

        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            meta = tif.shaped_metadata
        return dict(meta[0]) if meta else {}
    except Exception:
        return {}


def _png_header(path: Path) -> tuple[int, int, int, int] | None:
    """``(width, height, bit depth, colour type)`` from a PNG's IHDR, or None for other files."""
    with open(path, "rb") as fh:
        head = fh.read(33)
    if head[:8] != _PNG_SIGNATURE or len(head) < 26 or head[12:16] != b"IHDR":
        return None
    width, height, depth, ctype = struct.unpack(">IIBB", head[16:26])
    return width, height, depth, ctype


def _read_png16_colour(path: Path, width: int, height: int, channels: int) -> np.ndarray:
    """16-bit RGB(A) PNG, which Pillow would reduce to 8 bits, decoded exactly by imagecodecs."""
    try:
        import imagecodecs
    except ImportError:
        raise ImageReadError(f"{path.name}: 16-bit colour PNG files need the imagecodecs package.",
                             "pip install imagecodecs, or save the image as .tif.") from None
    arr = np.asarray(imagecodecs.png_decode(path.read_bytes()))
    if arr.shape != (height, width, channels) or arr.dtype != np.uint16:
        raise ValueError(f"decoded {arr.dtype} {list(arr.shape)}, expected uint16 {[height, width, channels]}")
    return arr


_PIL_LOCK = threading.Lock()


def _read_pil(path: Path) -> np.ndarray:
    from PIL import Image

    png = _png_header(path)
    if png is not None and png[2] == 16 and png[3] in (2, 6):
        width, height, _, ctype = png
        channels = 3 if ctype == 2 else 4
        check_pixels((height, width, channels), path.name, 2)
        return _read_png16_colour(path, width, height, channels)
    with _PIL_LOCK:  # Pillow's own bomb check (a global) gives way to ours, made from the header
        old, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            im = Image.open(path)  # reads the header only
        finally:
            Image.MAX_IMAGE_PIXELS = old
    with im:
        width, height = im.size
        check_pixels((height, width, len(im.getbands())), path.name, 1)
        im.load()
        mode = im.mode
        if mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif mode in ("LA", "La"):
            im = im.convert("L")
        elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
            im = im.convert("RGB")
        elif mode == "PA":
            im = im.convert("RGBA")
        arr = np.asarray(im)
    if arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return np.ascontiguousarray(arr)


def _encode_png16(arr: np.ndarray) -> bytes:
    """PNG bytes for a uint16 ``[H, W, 3|4]`` array (imagecodecs)."""
    try:
        import imagecodecs
    except ImportError:
        raise InputError("writing 16-bit colour PNG files needs the imagecodecs package.",
                         "pip install imagecodecs, or save the image as .tif.") from None
    return bytes(imagecodecs.png_encode(np.ascontiguousarray(arr)))


# -- writing -------------------------------------------------------------------------------

def write_image(path, array: np.ndarray, metadata: dict | None = None) -> Path:
    """Write ``array`` to ``path`` atomically; the format follows the extension.

    ``.tif``/``.tiff``: any dtype and shape. ``.png``: uint8 or uint16 (bool is written as
    uint8 0/1), ``[H, W]`` or ``[H, W, 3|4]``. ``.jpg``/``.jpeg``: uint8 ``[H, W]`` or
    ``[H, W, 3]`` (lossy). ``.npy``: any numeric array. Anything else raises InputError.
    ``metadata``: a JSON-safe dict stored in a tif's description (read it back with
    :func:`read_tif_metadata`); ignored for other formats. Returns the path written.
    """
    path = Path(path)
    ext = _ext(path)
    arr = np.asarray(array)
    if ext not in IMAGE_EXTENSIONS:
        raise InputError(f"{path.name}: cannot write images with extension {ext or '(none)'!r}.",
                         f"use one of {', '.join(IMAGE_EXTENSIONS)}.")
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{path.name}: dtype {arr.dtype} is not an image dtype.", "pass a numeric array.")
    if ext in (".png", ".jpg", ".jpeg"):
        if arr.dtype == bool:
            arr = arr.astype(np.uint8)
        allowed = (np.uint8,) if ext != ".png" else (np.uint8, np.uint16)
        channels_ok = arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in ((3,) if ext != ".png" else (3, 4)))
        if arr.dtype.type not in allowed or not channels_ok:
            kinds = "uint8 or uint16" if ext == ".png" else "uint8"
            shapes = "[H, W] or [H, W, 3|4]" if ext == ".png" else "[H, W] or [H, W, 3]"
            raise InputError(f"{path.name}: {ext[1:]} holds only {kinds} arrays shaped {shapes}, "
                             f"not {arr.dtype} {list(arr.shape)}.",
                             "save as .tif, which keeps any dtype and shape.")
    path.parent.mkdir(parents=True, exist_ok=True)
    from .paths import atomic_write

    def write(tmp: str) -> None:
        if ext in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(tmp, arr, photometric="rgb" if _looks_rgb(arr) else "minisblack",
                             metadata=dict(metadata or {}))
        elif ext == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
        elif ext == ".png" and arr.dtype == np.uint16 and arr.ndim == 3:
            Path(tmp).write_bytes(_encode_png16(arr))
        else:
            from PIL import Image

            fmt = "PNG" if ext == ".png" else "JPEG"
            im = Image.fromarray(np.ascontiguousarray(arr))
            im.save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))

    atomic_write(path, write)
    return path


def _looks_rgb(arr: np.ndarray) -> bool:
    return arr.ndim == 3 and arr.shape[2] in (3, 4) and arr.dtype in (np.uint8, np.uint16)
