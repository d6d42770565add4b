"""Reading and writing image files (tif, png, jpg, npy) without guessing layouts.

``read_image`` returns the array as stored in the file:

* ``.tif`` / ``.tiff``: any dtype and number of dimensions (tifffile), e.g. ``[Y, X]``,
  ``[Z, Y, X]``, ``[Y, X, 3]``.
* ``.png`` / ``.jpg`` / ``.jpeg`` (Pillow): gray -> ``[H, W]`` (uint8, or uint16 for 16-bit
  PNG), RGB -> ``[H, W, 3]``, RGBA -> ``[H, W, 4]``; gray+alpha drops the alpha, palette
  images become RGB(A), 1-bit images become bool. 16-bit RGB(A) PNG files (which Pillow
  would reduce to 8 bits) are decoded here exactly as uint16.
* ``.npy``: ``np.load(allow_pickle=False)`` (never pickles).

Every failure (missing file, unknown extension, corrupt or truncated data, a text file
with an image extension) raises :class:`~napari_pix2pix.errors.ImageReadError` naming
the file and the fix. Writing is atomic: a temporary file in the target folder is
written and then moved into place with ``os.replace``.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from .errors import ImageReadError, InputError

IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _ext(path: Path) -> str:
    return path.suffix.lower()


def read_image(path) -> np.ndarray:
    """Read one image file and return its array as stored (see the module docstring for layouts)."""
    path = Path(path)
    ext = _ext(path)
    if ext not in IMAGE_EXTENSIONS:
        raise ImageReadError(f"{path.name}: the extension {ext or '(none)'!r} is not a supported image type.",
                             f"save the image as one of {', '.join(IMAGE_EXTENSIONS)}.")
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file.", "check the path (and that the file was not moved).")
    try:
        if ext in (".tif", ".tiff"):
            arr = _read_tif(path)
        elif ext == ".npy":
            arr = np.load(path, allow_pickle=False)
            if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
                raise ValueError(f"dtype {getattr(arr, 'dtype', type(arr))} is not numeric")
        else:
            arr = _read_pil(path)
    except ImageReadError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # corrupt, truncated, or not an image at all
        raise ImageReadError(
            f"{path.name}: cannot be read as a {ext[1:]} image ({type(exc).__name__}: {exc}).",
            f"replace or remove {path} (it is corrupt, truncated or not an image), "
            "or re-save it from an image program.") from exc
    if arr.size == 0:
        raise ImageReadError(f"{path.name}: the image is empty (shape {arr.shape}).", f"replace or remove {path}.")
    return arr


def _read_tif(path: Path) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise ValueError("the file holds no image series")
        arr = tif.asarray()
    return np.asarray(arr)


def read_tif_metadata(path) -> dict:
    """The JSON metadata dict that :func:`write_image` stored in a tif ({} if none or not a tif)."""
    path = Path(path)
    if _ext(path) not in (".tif", ".tiff"):
        return {}
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            meta = tif.shaped_metadata
        return dict(meta[0]) if meta else {}
    except Exception:
        return {}


def _read_pil(path: Path) -> np.ndarray:
    from PIL import Image

    with open(path, "rb") as fh:
        head = fh.read(33)
    if head[:8] == _PNG_SIGNATURE and len(head) >= 26 and head[24] == 16 and head[25] in (2, 6):
        return _decode_png16(path.read_bytes())
    with Image.open(path) as im:
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


# -- 16-bit RGB(A) PNG, which Pillow cannot keep at 16 bits ------------------------------

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _encode_png16(arr: np.ndarray) -> bytes:
    """PNG bytes for a uint16 ``[H, W, 3|4]`` array (filter 0, zlib level 6)."""
    h, w, c = arr.shape
    rows = arr.astype(">u2").reshape(h, w * c).view(np.uint8).reshape(h, w * c * 2)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2 if c == 3 else 6, 0, 0, 0)
    return (_PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(raw, 6))
            + _png_chunk(b"IEND", b""))


def _decode_png16(data: bytes) -> np.ndarray:
    """Decode a non-interlaced 16-bit RGB/RGBA PNG to uint16 ``[H, W, 3|4]``."""
    if data[:8] != _PNG_SIGNATURE:
        raise ValueError("not a PNG file")
    pos, idat, ihdr = 8, [], None
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise ValueError("truncated PNG chunk")
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if ihdr is None or not idat:
        raise ValueError("PNG without IHDR or IDAT")
    w, h, depth, ctype, _, _, interlace = ihdr
    if interlace:
        raise ImageReadError("interlaced 16-bit colour PNG files are not supported.",
                             "re-save the image without interlacing, or as .tif.")
    c = 3 if ctype == 2 else 4
    bpp = 2 * c
    stride = w * bpp
    raw = zlib.decompress(b"".join(idat))
    if len(raw) < h * (stride + 1):
        raise ValueError("truncated PNG image data")
    lines = np.frombuffer(raw, np.uint8)[: h * (stride + 1)].reshape(h, stride + 1)
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    for y in range(h):
        f, line = lines[y, 0], lines[y, 1:]
        if f == 0:
            cur = line.copy()
        elif f == 1:  # Sub: running sum along the row, per byte position within a pixel
            cur = (np.cumsum(line.reshape(w, bpp).astype(np.int64), axis=0) % 256).astype(np.uint8).reshape(-1)
        elif f == 2:
            cur = (line.astype(np.uint16) + prev).astype(np.uint8)
        elif f in (3, 4):
            cur = bytearray(line.tobytes())
            p = prev.tobytes()
            for i in range(stride):
                left = cur[i - bpp] if i >= bpp else 0
                up = p[i]
                if f == 3:
                    cur[i] = (cur[i] + ((left + up) >> 1)) & 0xFF
                else:
                    ul = p[i - bpp] if i >= bpp else 0
                    est = left + up - ul
                    pa, pb, pc = abs(est - left), abs(est - up), abs(est - ul)
                    pred = left if pa <= pb and pa <= pc else (up if pb <= pc else ul)
                    cur[i] = (cur[i] + pred) & 0xFF
            cur = np.frombuffer(bytes(cur), np.uint8)
        else:
            raise ValueError(f"bad PNG filter type {f}")
        out[y] = cur
        prev = cur
    return out.view(">u2").reshape(h, w, c).astype(np.uint16)


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
