"""Is a raster file whole? Structural checks of PNG, JPEG and TIFF files, without decoding.

GDAL decodes a truncated PNG into noise without an error, so a file that ends early is caught
here, when it is opened: the PNG end chunk, the JPEG end marker after the first scan, and every
TIFF strip or tile inside the file."""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from rs_helpers.errors import BadInputError

_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the fixed 12 bytes of the PNG end chunk
_TAIL = 4096  # bytes at the end of a file searched for an end marker before walking the file


def check_complete(path: str | Path, driver: str) -> None:
    """Refuse a PNG, JPEG or TIFF file that ends before its own structure says it should.

    Why here and not at decode time: GDAL (3.10) fills the missing rows of a truncated PNG with
    garbage and reports nothing, and ``rs-seg info`` must notice without decoding. The checks read
    the file's end (PNG: the IEND chunk; JPEG: the EOI marker after the first scan) or its header
    (TIFF: every strip or tile must end inside the file); a longer walk happens only when the end
    is not where expected (trailing bytes after the image). Other drivers are left to the decoder.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            why = {"PNG": _png_truncated, "JPEG": _jpeg_truncated, "GTiff": _tiff_truncated}.get(
                driver, lambda fh, size: None)(fh, size)
    except (OSError, struct.error, ValueError):
        return  # the check has no opinion; the decoder still has the last word
    if why:
        raise BadInputError(f"{path}: {why} (corrupt or truncated); re-download or re-export the file")


def _tail(fh, size: int) -> tuple[int, bytes]:
    start = max(0, size - _TAIL)
    fh.seek(start)
    return start, fh.read()


def _png_truncated(fh, size: int) -> str | None:
    """None when the IEND chunk is present (the last chunk written); else a reason."""
    if _PNG_IEND in _tail(fh, size)[1]:
        return None
    pos = 8  # walk the chunks: length (4) + type (4) + data + CRC (4)
    while pos + 8 <= size:
        fh.seek(pos)
        length, kind = struct.unpack(">I4s", fh.read(8))
        pos += 12 + length
        if kind == b"IEND" and pos <= size:  # the whole chunk, CRC included
            return None
    return "the PNG stops before its end chunk"


def _jpeg_truncated(fh, size: int) -> str | None:
    """None when an end-of-image marker follows the first scan's start; else a reason."""
    fh.seek(0)
    if fh.read(2) != b"\xff\xd8":
        return None
    pos = 2  # hop over the header segments (each FF xx + 2-byte length) to the first scan (FF DA)
    while True:
        fh.seek(pos)
        marker = fh.read(4)
        if len(marker) < 2:
            return "the JPEG stops inside its header"
        if marker[0] != 0xFF:
            return None  # not a layout this check understands
        if marker[1] == 0xFF:
            pos += 1  # fill byte
            continue
        if marker[1] in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        if marker[1] == 0xD9:
            return "the JPEG ends before any image data"
        if marker[1] == 0xDA:
            scan = pos
            break
        if len(marker) < 4:
            return "the JPEG stops inside its header"
        pos += 2 + struct.unpack(">H", marker[2:4])[0]
    start, tail = _tail(fh, size)
    found = tail.rfind(b"\xff\xd9")
    if found >= 0 and start + found > scan:
        return None
    fh.seek(scan)  # trailing data after the image: search the entropy-coded data (FF D9 is unique there)
    previous = b""
    while chunk := fh.read(1 << 20):
        if b"\xff\xd9" in previous[-1:] + chunk:
            return None
        previous = chunk
    return "the JPEG stops before its end-of-image marker"


_TIFF_VALUE = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8: the types of offsets and byte counts


def _tiff_truncated(fh, size: int) -> str | None:
    """None when every IFD and every strip or tile (offset + byte count) lies inside the file.

    Classic TIFF and BigTIFF, little or big endian. Sparse blocks (offset and count 0) are fine.
    Anything this small parser does not understand is left to GDAL (None)."""
    fh.seek(0)
    head = fh.read(16)
    order = {b"II": "<", b"MM": ">"}.get(head[:2])
    if order is None or len(head) < 8:
        return None
    version = struct.unpack(order + "H", head[2:4])[0]
    if version == 42:
        big, ifd = False, struct.unpack(order + "I", head[4:8])[0]
    elif version == 43 and len(head) == 16:
        big, ifd = True, struct.unpack(order + "Q", head[8:16])[0]
    else:
        return None
    n_fmt, entry, ptr = ("Q", 20, "Q") if big else ("H", 12, "I")
    n_size, ptr_size, inline = struct.calcsize(n_fmt), struct.calcsize(ptr), 8 if big else 4
    seen: set[int] = set()
    while ifd and ifd not in seen and len(seen) < 1000:
        seen.add(ifd)
        if ifd + n_size > size:
            return "an image directory of the TIFF lies past its end"
        fh.seek(ifd)
        n = struct.unpack(order + n_fmt, fh.read(n_size))[0]
        if ifd + n_size + n * entry + ptr_size > size:
            return "an image directory of the TIFF lies past its end"
        table = fh.read(n * entry + ptr_size)
        arrays = {}
        for i in range(n):
            e = table[i * entry:(i + 1) * entry]
            tag, kind = struct.unpack(order + "HH", e[:4])
            if tag not in (273, 279, 324, 325):  # Strip/TileOffsets, Strip/TileByteCounts
                continue
            code = _TIFF_VALUE.get(kind)
            if code is None:
                return None
            count = struct.unpack(order + ("Q" if big else "I"), e[4:12 if big else 8])[0]
            nbytes = count * struct.calcsize(code)
            if nbytes <= inline:
                raw = e[12 if big else 8:][:nbytes]
            else:
                where = struct.unpack(order + ptr, e[12 if big else 8:])[0]
                if where + nbytes > size:
                    return "the TIFF's block table lies past its end"
                fh.seek(where)
                raw = fh.read(nbytes)
            arrays[tag] = np.frombuffer(raw, np.dtype(code).newbyteorder(order)).astype(np.uint64)
        for offsets, counts in ((273, 279), (324, 325)):
            if offsets in arrays and counts in arrays and arrays[offsets].size == arrays[counts].size:
                if arrays[offsets].size and int((arrays[offsets] + arrays[counts]).max()) > size:
                    return "image data of the TIFF lies past its end"
        ifd = struct.unpack(order + ptr, table[n * entry:])[0]
    return None
