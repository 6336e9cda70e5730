"""Stills in and out at full bit depth, with their metadata, written atomically.

Pixels: OpenCV decodes PNG/WebP/BMP/JPEG 2000 (8/16-bit, grey, RGB, RGBA, palette); Pillow
decodes JPEG (its libjpeg reports damage as an exception, where OpenCV's prints it on stderr
naming no file); tifffile decodes TIFF (every page, 8/16-bit, grey, RGB(A), palette, CMYK).
Pillow reads the metadata (EXIF, XMP, ICC, DPI) without touching pixels; jp2.py reads JP2's.
A PNG's chunks are checked (CRCs, header, end) before libpng sees it, for the same reason.

Output metadata: the source's EXIF (orientation reset, since pixels are already upright), XMP,
ICC profile and DPI, plus a provenance mark (EXIF Software, PNG text, TIFF Software, JP2 XMP
CreatorTool) so that a colorized file is never taken for an original.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from . import __version__, dpx, heif, icc, jp2

# OpenCV's own warnings (such as "unknown colour space" for a JP2 whose colour is an ICC profile)
# would break into the progress bar; a file that cannot be read is reported by BadInput instead.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
# tifffile logs what it skips in a damaged file ("<TiffTag.fromfile> raised …") naming no file;
# the page that cannot be decoded is reported by BadInput, in the file's own line.
logging.getLogger("tifffile").setLevel(logging.CRITICAL)
# Pillow parses EXIF with its TIFF plugin and warns on damaged tags ("Truncated File Read"); the
# metadata is a courtesy, read as far as it goes, and the warnings would break into the progress bar.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")

STILL_EXTENSIONS = {".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".jfif": "jpeg", ".png": "png", ".tif": "tiff", ".tiff": "tiff", ".webp": "webp", ".bmp": "bmp",
                    ".jp2": "jp2", ".pgm": "pnm", ".pbm": "pnm", ".ppm": "pnm", ".pnm": "pnm", ".gif": "gif",
                    ".heic": "heif", ".heif": "heif", ".hif": "heif", ".dpx": "dpx"}
OUTPUT_FORMATS = ("jpeg", "png", "tiff", "webp", "bmp", "jp2", "pnm", "dpx")
FORMAT_SUFFIX = {"jpeg": ".jpg", "png": ".png", "tiff": ".tif", "webp": ".webp", "bmp": ".bmp", "jp2": ".jp2", "pnm": ".ppm", "dpx": ".dpx"}
# Names that cannot hold the colour picture (a scanner's grey .pgm, bilevel .pbm; GIF's 256
# colours) or that are only read (HEIC): the format and suffix their colour output is written as.
COLOUR_OUTPUT = {".pgm": ("pnm", ".ppm"), ".pbm": ("pnm", ".ppm"), ".gif": ("png", ".png"),
                 ".heic": ("jpeg", ".jpg"), ".heif": ("jpeg", ".jpg"), ".hif": ("jpeg", ".jpg")}
MIN_SIDE = 8  # pixels; anything smaller carries no picture to colorize
JP2_MIN_SIDE = 32  # OpenCV's JPEG 2000 encoder uses 6 resolution levels, which need 2^5 px a side
COLORIZED_MARK = "(colorized; not an original)"  # stills and films both carry it
PROVENANCE = f"archivecolor {__version__} {COLORIZED_MARK}"


def provenance_mark(made_with: str, hints: int = 0) -> str:
    """The mark an output carries (EXIF/TIFF Software, PNG text, JP2 XMP, DPX creator, a film's
    comment): that it was colorized, and by what: `made_with` (the weights' name and SHA-256,
    render size, saturation) and how many colour hints, so a hinted output is never taken for an
    automatic one."""
    if not made_with:
        return PROVENANCE
    made_with = made_with.encode("ascii", "replace").decode()  # TIFF's and EXIF's Software are ASCII
    return f"{PROVENANCE}: {made_with}, " + (f"{hints} colour hint{'s' * (hints != 1)}" if hints else "no colour hints")
JPEG_QUALITY = 95
# TIFF outputs: deflate at level 1 after horizontal differencing (predictor 2, which every TIFF
# reader knows). On 24 MP scans here that wrote 2.6-3x faster than deflate's default level
# alone and gave files 30-67 % smaller: differencing, not the level, is what makes photos compress.
TIFF_DEFLATE_LEVEL = 1

ANIMATED_FORMATS = ("gif", "png", "webp")  # refused when animated: a still's tools would keep one frame
_EXIF_ORIENTATION, _EXIF_SOFTWARE = 0x0112, 0x0131
DESCRIPTIVE_TAGS = (270, 271, 272, 306, 315, 33432)  # ImageDescription, Make, Model, DateTime, Artist, Copyright

# Pillow refuses headers above 179 MP as decompression bombs, which would hide a 20000 × 20000
# archive TIFF's size; archivecolor's own limit (FolderConfig.max_megapixels) is checked from the
# header instead, before any pixel is decoded.
Image.MAX_IMAGE_PIXELS = None


class BadInput(Exception):
    """A file that cannot be colorized; str() is the one-line reason shown beside its name."""


@dataclass
class Metadata:
    exif: bytes | None = None  # raw EXIF (TIFF structure, without the "Exif\0\0" prefix)
    xmp: bytes | None = None
    icc: bytes | None = None
    dpi: tuple[float, float] | None = None
    orientation: int = 1
    # The descriptive tags (description, make, model, date, artist, copyright) that TIFF keeps in
    # its main IFD and JPEG/PNG/WebP keep in EXIF's: carried between the two kinds of file.
    descriptive: dict[int, str] = field(default_factory=dict)
    dpx_header: bytes | None = None  # a DPX source's headers: its film and TV headers go on into a DPX output
    iptc: bytes | None = None  # IPTC-IIM datasets (caption, credit, keywords…) as JPEG's APP13 and TIFF's tag 33723 hold them
    text: dict[str, str] = field(default_factory=dict)  # a PNG source's text chunks (Title, Author, Comment…), for a PNG output
    provenance: str = ""  # an output's mark when it says more than PROVENANCE (what made its colours: provenance_mark)

    @property
    def mark(self) -> str:
        return self.provenance or PROVENANCE


@dataclass
class Still:
    """One decoded picture: (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA; uint8 or uint16; upright."""

    pixels: np.ndarray
    metadata: Metadata = field(default_factory=Metadata)

    @property
    def is_grey(self) -> bool:
        return self.pixels.ndim == 2

    @property
    def alpha(self) -> np.ndarray | None:
        return self.pixels[..., 3] if self.pixels.ndim == 3 and self.pixels.shape[2] == 4 else None


def still_format(path: Path) -> str | None:
    return STILL_EXTENSIONS.get(Path(path).suffix.lower())


_SIGNATURES = ((jp2.SIGNATURE, "jp2"), *((magic, "dpx") for magic in dpx.MAGICS), (b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"),
               (b"II+\x00", "tiff"), (b"MM\x00+", "tiff"), (b"BM", "bmp"),
               (b"GIF8", "gif"), *((b"P" + bytes([digit]), "pnm") for digit in b"123456"))


def content_format(data: bytes) -> str | None:
    """The format the bytes themselves say; archives hold PNG or TIFF data under .jpg names."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if heif.is_heif(data):
        return "heif"
    return next((fmt for signature, fmt in _SIGNATURES if data.startswith(signature)), None)


# --- reading -------------------------------------------------------------------------------
def read_stills(path: Path) -> list[Still]:
    """Every picture in `path` (a multi-page TIFF gives several), decoded by content, not by
    name (the name only says whether to try). Raises BadInput."""
    path = Path(path)
    fmt = still_format(path)
    if fmt is None:
        raise BadInput(f"unsupported file type {path.suffix!r}")
    try:
        data = path.read_bytes()
    except PermissionError:
        raise BadInput("permission denied (cannot read)") from None
    except OSError as exc:
        raise BadInput(f"cannot read ({exc.strerror or exc})") from None
    if not data:
        raise BadInput("empty file (0 bytes)")
    held = content_format(data)
    if held is None and fmt == "jpeg":  # without this, the end-of-image check below would call it truncated
        raise BadInput("not a JPEG file (its bytes start with no picture format's signature)")
    fmt = held or fmt  # decode what the file holds, whatever its name says
    if fmt == "jpeg" and b"\xff\xd9" not in data[-1024:]:
        # libjpeg decodes a cut-off JPEG without complaint, greying the missing rows
        raise BadInput("truncated JPEG (no end-of-image marker)")
    if fmt == "png" and (damage := png_damage(data)):
        raise BadInput(damage)
    if fmt in ANIMATED_FORMATS and (refusal := animated_refusal(fmt, _frames(data))):
        raise BadInput(refusal)
    readers = {"tiff": _read_tiff, "heif": _read_heif, "dpx": _read_dpx, "jpeg": _read_jpeg}
    stills = readers[fmt](data) if fmt in readers else [_read_other(data, fmt)]
    for still in stills:
        h, w = still.pixels.shape[:2]
        if min(h, w) < MIN_SIDE:
            raise BadInput(f"too small ({w}×{h} px; at least {MIN_SIDE} px a side)")
    return stills


def animated_refusal(fmt: str, frames: int) -> str | None:
    """Why an animated GIF, PNG or WebP is not colorized (a still's tools would keep one frame); None for a still."""
    if fmt in ANIMATED_FORMATS and frames > 1:
        return f"animated {fmt.upper()} ({frames} frames), not a still"
    return None


def _frames(data: bytes) -> int:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return getattr(im, "n_frames", 1)
    except Exception:
        return 1  # decoding will say what is wrong


PHOTOSHOP_APP13 = b"Photoshop 3.0\x00"
_IRB_IPTC = 0x0404  # the Photoshop image resource that holds IPTC-IIM
_TIFF_IPTC, _TIFF_PHOTOSHOP = 33723, 34377


def iptc_from_resources(irb: bytes) -> bytes | None:
    """The IPTC-IIM datasets in Photoshop image resources ("8BIM" blocks), if any."""
    at = 0
    while at + 12 <= len(irb) and irb[at : at + 4] == b"8BIM":
        resource = int.from_bytes(irb[at + 4 : at + 6], "big")
        name = 1 + irb[at + 6]  # Pascal string, padded to an even length
        at += 6 + name + (name % 2)
        size = int.from_bytes(irb[at : at + 4], "big")
        body = irb[at + 4 : at + 4 + size]
        if resource == _IRB_IPTC:
            return bytes(body) or None
        at += 4 + size + (size % 2)
    return None


def iptc_resource(iptc: bytes) -> bytes:
    """IPTC-IIM datasets as a Photoshop image resource (what JPEG's APP13 holds)."""
    return b"8BIM" + _IRB_IPTC.to_bytes(2, "big") + b"\x00\x00" + len(iptc).to_bytes(4, "big") + iptc + b"\x00" * (len(iptc) % 2)


# PNG's registered text keywords that have an EXIF/TIFF tag: carried into the other formats as those tags
PNG_TEXT_TAGS = {"Description": 270, "Author": 315, "Copyright": 33432}
_PNG_TEXT_NOT_CARRIED = ("XML:com.adobe.xmp", "Software")  # XMP is carried as such; Software is set to the provenance mark


def _png_text(im) -> dict[str, str]:
    """A PNG's text chunks (tEXt, zTXt, iTXt), less what is carried otherwise (XMP, ImageMagick's
    'Raw profile type' copies of EXIF/IPTC, which would contradict the EXIF written)."""
    text = getattr(im, "text", None) or {}
    return {str(k): str(v) for k, v in text.items()
            if k not in _PNG_TEXT_NOT_CARRIED and not str(k).startswith("Raw profile type")}


def _read_metadata(data: bytes) -> Metadata:
    from PIL import Image

    meta = Metadata()
    try:
        with Image.open(io.BytesIO(data)) as im:
            info = im.info
            exif = im.getexif()
            meta.orientation = int(exif.get(_EXIF_ORIENTATION, 1) or 1)
            meta.descriptive = {tag: str(exif[tag]) for tag in DESCRIPTIVE_TAGS if exif.get(tag)}
            raw = info.get("exif")
            if raw:
                meta.exif = raw[6:] if raw.startswith(b"Exif\x00\x00") else raw
            xmp = info.get("xmp") or info.get("XML:com.adobe.xmp")
            if xmp:
                meta.xmp = xmp.encode() if isinstance(xmp, str) else bytes(xmp)
            meta.icc = info.get("icc_profile") or None
            app13 = b"".join(body[len(PHOTOSHOP_APP13) :] for marker, body in getattr(im, "applist", [])
                             if marker == "APP13" and body.startswith(PHOTOSHOP_APP13))
            meta.iptc = iptc_from_resources(app13) if app13 else None
            if im.format == "PNG":
                meta.text = _png_text(im)
                for keyword, tag in (*PNG_TEXT_TAGS.items(), ("Title", 270)):
                    if meta.text.get(keyword):
                        meta.descriptive.setdefault(tag, meta.text[keyword])
            if info.get("dpi"):
                meta.dpi = (float(info["dpi"][0]), float(info["dpi"][1]))
    except Exception:
        pass  # metadata is a courtesy: pixels decide whether a file is readable
    return meta


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1–8) so the picture is upright."""
    ops = {
        2: lambda p: p[:, ::-1],
        3: lambda p: p[::-1, ::-1],
        4: lambda p: p[::-1],
        5: lambda p: np.swapaxes(p, 0, 1),
        6: lambda p: np.rot90(p, k=-1),
        7: lambda p: np.rot90(p, k=1)[::-1, ::-1],
        8: lambda p: np.rot90(p, k=1),
    }
    return np.ascontiguousarray(ops[orientation](pixels)) if orientation in ops else pixels


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}  # colour type: bit depths


def png_damage(data: bytes) -> str | None:
    """What is wrong with a PNG's chunks (a CRC that does not match, a header libpng would refuse,
    no end), or None: checked before decoding, since libpng says it on stderr, naming no file."""
    if not data.startswith(PNG_SIGNATURE):
        return "not a PNG file"
    at, first, header, image_data = len(PNG_SIGNATURE), True, None, []
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        end = at + 12 + length
        if end > len(data):
            return f"truncated PNG (its {kind.decode() if kind.isalpha() else 'last'} chunk is cut off)"
        body = data[at + 4 : end - 4]
        if zlib.crc32(body) != struct.unpack(">I", data[end - 4 : end])[0]:
            named = f"its {kind.decode()} chunk" if kind.isalpha() else "a chunk"
            return f"damaged PNG (the checksum of {named} does not match)"
        if first:
            if kind != b"IHDR" or length != 13:
                return "damaged PNG (it does not start with its header chunk)"
            width, height, depth, colour = struct.unpack(">IIBB", body[4:14])
            if not width or not height or depth not in PNG_DEPTHS.get(colour, ()):
                return f"damaged PNG (an impossible header: {width}×{height}, colour type {colour}, {depth}-bit)"
            first, header = False, (width, height, depth, colour, body[16])
        if kind == b"IDAT":
            image_data.append(memoryview(data)[at + 8 : end - 4])
        if kind == b"IEND":
            return _png_image_data_damage(image_data, *header) if image_data else "damaged PNG (it holds no image data)"
        at = end
    return "truncated PNG (no end chunk)"


PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type: samples a pixel
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))  # x0, y0, dx, dy
INFLATE_PIECE = 1 << 20  # inflated bytes at a time: the check holds about a megabyte, whatever the picture's size


def _png_rows(width: int, height: int, depth: int, colour: int, interlace: int):
    """The length of each scanline in a PNG's inflated image data (filter byte included), in order."""
    bits = PNG_CHANNELS[colour] * depth
    passes = ADAM7 if interlace else ((0, 0, 1, 1),)
    for x0, y0, dx, dy in passes:
        columns = (width - x0 + dx - 1) // dx if width > x0 else 0
        rows = (height - y0 + dy - 1) // dy if height > y0 else 0
        if columns:
            yield from [1 + (columns * bits + 7) // 8] * rows


def _png_image_data_damage(image_data: list, width: int, height: int, depth: int, colour: int, interlace: int) -> str | None:
    """What is wrong with a PNG's compressed image data, or None. Chunks whose checksums a writer
    computed over damaged data pass the chunk walk; libpng would then print its own line, naming
    no file. So the data is inflated here a megabyte at a time, checking that it inflates, that
    each scanline's filter byte is one of PNG's five and that it holds every scanline. It costs
    about half of decoding's time again (24 MP, 16-bit: 0.6 s against 1.0 s)."""
    rows = _png_rows(width, height, depth, colour, interlace)
    inflater, inflated, next_row = zlib.decompressobj(), 0, 0  # next_row: where the next filter byte sits
    try:
        for chunk in image_data:
            piece = inflater.decompress(chunk, INFLATE_PIECE)
            while piece:
                while next_row < inflated + len(piece):
                    if piece[next_row - inflated] > 4:
                        return "damaged PNG (its image data is not PNG scanlines)"
                    row = next(rows, None)
                    if row is None:  # every scanline is there; what follows is libpng's to ignore
                        return None
                    next_row += row
                inflated += len(piece)
                piece = inflater.decompress(inflater.unconsumed_tail, INFLATE_PIECE) if inflater.unconsumed_tail else b""
    except zlib.error:
        return "damaged PNG (its compressed image data cannot be decoded)"
    if next_row > inflated or next(rows, None) is not None:
        return "damaged PNG (its image data ends before the picture does)"
    return None


def _read_jpeg(data: bytes) -> list[Still]:
    """A JPEG's pixels by Pillow's libjpeg (grey, RGB; CMYK converted), not yet upright."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.mode not in ("L", "RGB"):
                im = im.convert("RGB")
            pixels = np.asarray(im)
    except Image.DecompressionBombError:
        raise BadInput("too many pixels for its size (a decompression bomb?)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = "truncated JPEG" if "truncated" in str(exc) else "damaged JPEG (its compressed data cannot be decoded)"
        raise BadInput(reason) from None
    meta = _read_metadata(data)
    return [Still(_orient(pixels, meta.orientation), meta)]


def _read_other(data: bytes, fmt: str) -> Still:
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if pixels is None:
        raise BadInput("not a decodable image (corrupt, truncated or unsupported variant)")
    if pixels.dtype not in (np.uint8, np.uint16):
        raise BadInput(f"unsupported sample type {pixels.dtype} (8- and 16-bit integer images are supported)")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    elif pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
    if fmt == "jp2":
        meta = Metadata()
        meta.xmp, meta.icc, meta.dpi = jp2.read_metadata(data)
    else:
        meta = _read_metadata(data)
    pixels = _orient(pixels, meta.orientation)
    return Still(pixels, meta)


def _read_heif(data: bytes) -> list[Still]:
    """Every picture of a HEIC file, upright (libheif applies its rotation: EXIF's is not applied again)."""
    from PIL import Image

    try:
        pictures = heif.read(data)
    except heif.HeifError as exc:
        raise BadInput(str(exc)) from None
    stills = []
    for picture in pictures:
        meta = Metadata(exif=picture.exif, xmp=picture.xmp, icc=picture.icc)
        if picture.exif:
            try:
                tags = Image.Exif()
                tags.load(b"Exif\x00\x00" + picture.exif)
                meta.descriptive = {tag: str(tags[tag]) for tag in DESCRIPTIVE_TAGS if tags.get(tag)}
            except Exception:
                pass  # metadata is a courtesy: pixels decide whether a file is readable
        stills.append(Still(picture.pixels, meta))
    return stills


def _read_dpx(data: bytes) -> list[Still]:
    """A DPX frame at its full depth; its project and copyright fields carried as description and copyright."""
    try:
        picture = dpx.read(data)
    except dpx.DpxError as exc:
        raise BadInput(str(exc)) from None
    meta = Metadata()
    meta.descriptive = {tag: value for tag, value in ((270, picture.project), (33432, picture.copyright)) if value}
    meta.dpx_header = picture.header
    return [Still(picture.pixels, meta)]


def _tiff_failure(exc: Exception) -> str:
    """Why a TIFF page did not decode, in words rather than its codec library's."""
    text = str(exc).lower()
    if any(word in text for word in ("decompress", "deflate", "zlib", "lzw", "jpeg", "packbits", "bad_data", "corrupt")):
        return "its compressed data is damaged"
    if any(word in text for word in ("not implemented", "unsupported", "unknown")):
        return "a compression or layout tifffile does not decode"
    return "damaged, or a variant tifffile does not know"


def _read_tiff(data: bytes) -> list[Still]:
    import tifffile

    try:
        tif = tifffile.TiffFile(io.BytesIO(data))
    except Exception:
        raise BadInput("not a readable TIFF (damaged, or a variant tifffile does not know)") from None
    stills = []
    with tif:
        for index, page in enumerate(tif.pages):
            try:
                pixels = page.asarray()
            except Exception as exc:
                raise BadInput(f"TIFF page {index + 1} cannot be decoded ({_tiff_failure(exc)})") from None
            photometric = int(page.photometric)
            if pixels.dtype == bool:  # bilevel (1-bit) scans, e.g. CCITT fax-compressed
                pixels = pixels.astype(np.uint8) * np.uint8(255)
            if pixels.dtype not in (np.uint8, np.uint16):
                raise BadInput(f"TIFF page {index + 1}: unsupported sample type {pixels.dtype}")
            if photometric == 0:  # MINISWHITE
                pixels = np.iinfo(pixels.dtype).max - pixels
            elif photometric == 3:  # PALETTE: colormap is (3, 2**bits) uint16
                cmap = page.colormap
                pixels = (cmap[:, pixels].transpose(1, 2, 0) >> 8).astype(np.uint8)
            elif photometric == 5:  # SEPARATED (CMYK)
                cmyk = pixels[..., :4].astype(np.float32) / np.iinfo(pixels.dtype).max
                rgb = (1.0 - cmyk[..., :3]) * (1.0 - cmyk[..., 3:4])
                pixels = (rgb * np.iinfo(pixels.dtype).max + 0.5).astype(pixels.dtype)
            if pixels.ndim == 3 and pixels.shape[2] == 2:  # grey + alpha
                pixels = np.dstack([pixels[..., 0]] * 3 + [pixels[..., 1]])
            elif pixels.ndim == 3 and pixels.shape[2] > 4:
                pixels = pixels[..., :4]
            if pixels.ndim not in (2, 3):
                raise BadInput(f"TIFF page {index + 1}: unsupported layout {pixels.shape}")
            meta = Metadata()
            tags = page.tags
            if 34675 in tags:
                meta.icc = bytes(tags[34675].value)
            if 700 in tags:
                value = tags[700].value
                meta.xmp = value if isinstance(value, bytes) else str(value).encode()
            meta.iptc = _tiff_iptc(tags, tif.byteorder)
            if 282 in tags and 283 in tags:
                xr, yr = tags[282].value, tags[283].value
                unit = tags[296].value if 296 in tags else 2
                to_dpi = 2.54 if int(unit) == 3 else 1.0
                meta.dpi = (xr[0] / xr[1] * to_dpi, yr[0] / yr[1] * to_dpi)
            meta.descriptive = {tag: str(tags[tag].value) for tag in DESCRIPTIVE_TAGS if tag in tags and isinstance(tags[tag].value, str) and tags[tag].value}
            if page.is_shaped:  # tifffile's own '{"shape": [h, w]}' description: the colour page has another shape
                meta.descriptive.pop(270, None)
            stills.append(Still(np.ascontiguousarray(pixels), meta))
    if not stills:
        raise BadInput("TIFF holds no pages")
    return stills


def _tiff_iptc(tags, byteorder: str) -> bytes | None:
    """A TIFF page's IPTC-IIM: tag 33723 (often typed LONG, so its bytes come back as numbers),
    else the IPTC resource of its Photoshop tag."""
    try:
        if _TIFF_IPTC in tags:
            value = tags[_TIFF_IPTC].value
            if isinstance(value, (bytes, bytearray)):
                return bytes(value) or None
            width = {1: "u1", 3: "u2", 4: "u4", 7: "u1"}.get(int(tags[_TIFF_IPTC].dtype), "u1")
            return np.asarray(value, dtype=byteorder + width).tobytes() or None
        if _TIFF_PHOTOSHOP in tags:
            return iptc_from_resources(bytes(tags[_TIFF_PHOTOSHOP].value))
    except Exception:
        pass  # metadata is a courtesy: pixels decide whether a file is readable
    return None


# --- writing -------------------------------------------------------------------------------
def _exif_with_provenance(exif: bytes | None, descriptive: dict[int, str] | None = None, mark: str = PROVENANCE) -> bytes:
    """The source EXIF (or a TIFF source's descriptive tags) with orientation reset to 1 and
    Software set to the provenance mark."""
    from PIL import Image

    tags = Image.Exif()
    if exif:
        try:
            tags.load(b"Exif\x00\x00" + exif)
        except Exception:
            tags = Image.Exif()
    for tag, value in (descriptive or {}).items():
        tags.setdefault(tag, value)
    tags[_EXIF_ORIENTATION] = 1
    tags[_EXIF_SOFTWARE] = mark
    raw = tags.tobytes()
    return raw[6:] if raw.startswith(b"Exif\x00\x00") else raw


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png_with_metadata(png: bytes, meta: Metadata) -> bytes:
    chunks = []
    if meta.icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(meta.icc)))
    if meta.dpi:
        ppm = [max(1, round(d / 0.0254)) for d in meta.dpi]
        chunks.append(_png_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    chunks.append(_png_chunk(b"eXIf", _exif_with_provenance(meta.exif, meta.descriptive, meta.mark)))
    if meta.xmp:
        chunks.append(_png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + meta.xmp))
    for keyword, value in meta.text.items():
        key = keyword.encode("latin-1", "replace")[:79]
        try:
            chunks.append(_png_chunk(b"tEXt", key + b"\x00" + value.encode("latin-1")))
        except UnicodeEncodeError:  # tEXt is Latin-1; iTXt holds UTF-8
            chunks.append(_png_chunk(b"iTXt", key + b"\x00\x00\x00\x00\x00" + value.encode("utf-8")))
    chunks.append(_png_chunk(b"tEXt", b"Software\x00" + meta.mark.encode("latin-1", "replace")))
    ihdr_end = 8 + 4 + 4 + 13 + 4  # signature + IHDR chunk
    return png[:ihdr_end] + b"".join(chunks) + png[ihdr_end:]


def _jpeg_with_metadata(jpeg: bytes, meta: Metadata) -> bytes:
    def segment(marker: int, body: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body

    segments = [segment(0xE1, b"Exif\x00\x00" + _exif_with_provenance(meta.exif, meta.descriptive, meta.mark))]
    if meta.xmp and len(meta.xmp) < 65000:
        segments.append(segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + meta.xmp))
    if meta.iptc and len(meta.iptc) < 65000:
        segments.append(segment(0xED, PHOTOSHOP_APP13 + iptc_resource(meta.iptc)))
    if meta.icc:
        size = 65519
        parts = [meta.icc[i : i + size] for i in range(0, len(meta.icc), size)]
        for i, part in enumerate(parts):
            segments.append(segment(0xE2, b"ICC_PROFILE\x00" + bytes([i + 1, len(parts)]) + part))
    body = jpeg[2:]
    if body[:2] == b"\xff\xe0" and body[4:9] == b"JFIF\x00" and meta.dpi:  # DPI in the JFIF header
        body = body[:11] + struct.pack(">BHH", 1, round(meta.dpi[0]), round(meta.dpi[1])) + body[16:]
    return jpeg[:2] + b"".join(segments) + body


def _for_colour_output(meta: Metadata) -> Metadata:
    """The metadata for a colour (RGB) picture, whose pixels are sRGB: a profile whose numbers were
    converted (Dot Gain 20%, Adobe RGB…) gives way to sRGB's; a grey or CMYK one that was not
    (colour-managed viewers would refuse or misread it on RGB pixels) is left out."""
    profile = icc.output_profile(meta.icc)
    return meta if profile is meta.icc else replace(meta, icc=profile)


def encode_still(pixels: np.ndarray, fmt: str, meta: Metadata, quality: int = JPEG_QUALITY) -> bytes:
    """(H, W, 3|4) RGB(A) uint8/uint16 -> file bytes in `fmt`, metadata and provenance included.

    16-bit stays 16-bit in PNG, TIFF, JP2 (lossless, as suits a preservation format) and PPM;
    JPEG, WebP and BMP are 8-bit formats; DPX takes its depth from the DPX source (see dpx.encode).
    """
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {fmt!r}")
    meta = _for_colour_output(meta)
    if fmt in ("jpeg", "webp", "bmp") and pixels.dtype == np.uint16:
        pixels = (pixels.astype(np.uint32) * 255 + 32767) // 65535
        pixels = pixels.astype(np.uint8)
    if fmt in ("jpeg", "bmp", "pnm") and pixels.shape[2] == 4:
        pixels = pixels[..., :3]  # these formats carry no alpha
    if fmt == "jp2" and min(pixels.shape[:2]) < JP2_MIN_SIDE:
        h, w = pixels.shape[:2]
        raise BadInput(f"too small for JPEG 2000 ({w}×{h} px; its encoder needs {JP2_MIN_SIDE} px a side): choose another --format")
    if fmt == "tiff":
        return encode_tiff_pages([(pixels, meta)])
    if fmt == "dpx":  # DPX holds no ICC profile or EXIF; its header carries the film's own fields
        return dpx.encode(pixels, meta.dpx_header, meta.mark, meta.descriptive.get(270), meta.descriptive.get(33432))
    if fmt == "webp":
        return _encode_webp(pixels, meta, quality)
    bgr = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    params = {"jpeg": [cv2.IMWRITE_JPEG_QUALITY, quality], "jp2": [cv2.IMWRITE_JPEG2000_COMPRESSION_X1000, 1000]}.get(fmt, [])
    ok, encoded = cv2.imencode(FORMAT_SUFFIX[fmt], bgr, params)
    if not ok:
        raise BadInput(f"could not encode as {fmt}")
    data = encoded.tobytes()
    if fmt == "png":
        return _png_with_metadata(data, meta)
    if fmt == "jpeg":
        return _jpeg_with_metadata(data, meta)
    if fmt == "jp2":
        return jp2.with_metadata(data, jp2.xmp_with_provenance(meta.xmp, meta.mark), meta.icc, meta.dpi)
    if fmt == "pnm":  # netpbm holds only comments: the mark goes in one, after the magic number
        return data[:3] + f"# {meta.mark}\n".encode() + data[3:]
    return data  # BMP carries no metadata


def _encode_webp(pixels: np.ndarray, meta: Metadata, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    options = {"quality": quality, "exif": b"Exif\x00\x00" + _exif_with_provenance(meta.exif, meta.descriptive, meta.mark)}
    if meta.icc:
        options["icc_profile"] = meta.icc
    if meta.xmp:
        options["xmp"] = meta.xmp
    Image.fromarray(pixels).save(buf, format="WEBP", **options)
    return buf.getvalue()


def encode_tiff_pages(pages: list[tuple[np.ndarray, Metadata]]) -> bytes:
    """Several colorized pages -> one multi-page TIFF (deflate with predictor), each page with its metadata."""
    import tifffile

    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as writer:
        for pixels, meta in pages:
            meta = _for_colour_output(meta)
            extratags = []
            if meta.icc:
                extratags.append((34675, "B", len(meta.icc), meta.icc, True))
            if meta.xmp:
                extratags.append((700, "B", len(meta.xmp), meta.xmp, True))
            if meta.iptc:
                extratags.append((_TIFF_IPTC, 7, len(meta.iptc), meta.iptc, True))  # UNDEFINED: the bytes as they are
            for tag, value in meta.descriptive.items():
                if tag != 270:  # ImageDescription is tifffile's own 'description' argument
                    extratags.append((tag, "s", 0, value, True))
            options = {}
            if 270 in meta.descriptive:
                options["description"] = meta.descriptive[270]
            if meta.dpi:
                options.update(resolution=(meta.dpi[0], meta.dpi[1]), resolutionunit="INCH")
            writer.write(
                pixels, photometric="rgb", compression="zlib", compressionargs={"level": TIFF_DEFLATE_LEVEL},
                predictor=True, software=meta.mark,
                extrasamples=("unassalpha",) if pixels.shape[2] == 4 else None,
                extratags=extratags, metadata=None, **options,
            )
    return buf.getvalue()
