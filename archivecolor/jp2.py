"""JPEG 2000 (JP2) metadata: what preservation masters keep beside their pixels.

OpenCV (OpenJPEG) decodes and encodes the pixels; it neither reads nor writes the boxes that
carry XMP (the XMP UUID box), the ICC profile (the colour specification box) and the capture
resolution (`resc`). This module walks and rebuilds the box tree of ISO/IEC 15444-1 Annex I
for those three, and marks a colorized file in its XMP, since JP2 has no EXIF Software tag.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator

SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
XMP_UUID = bytes.fromhex("be7acfcb97a942e89c71999491e3afac")
_ICC_METHODS = (2, 3)  # restricted ICC, any ICC


def _boxes(data: bytes) -> Iterator[tuple[bytes, bytes, bytes]]:
    """(type, payload, the whole box) of each box in `data`; stops at anything malformed."""
    end, at = len(data), 0
    while at + 8 <= end:
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        header = 8
        if length == 1:
            if at + 16 > end:
                return
            length, header = struct.unpack(">Q", data[at + 8 : at + 16])[0], 16
        elif length == 0:
            length = end - at
        if length < header or at + length > end:
            return
        yield kind, data[at + header : at + length], data[at : at + length]
        at += length


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def read_metadata(data: bytes) -> tuple[bytes | None, bytes | None, tuple[float, float] | None]:
    """(XMP, ICC profile, DPI) of a JP2 file; None for each that it does not carry."""
    xmp = icc = dpi = None
    for kind, payload, _ in _boxes(data):
        if kind == b"uuid" and payload[:16] == XMP_UUID:
            xmp = payload[16:]
        elif kind == b"jp2h":
            for child, body, _ in _boxes(payload):
                if child == b"colr" and len(body) > 3 and body[0] in _ICC_METHODS and icc is None:
                    icc = body[3:]
                elif child == b"res ":
                    for grandchild, res, _ in _boxes(body):
                        if grandchild == b"resc" and len(res) == 10:
                            dpi = _resolution_dpi(res)
    return xmp, icc, dpi


def _resolution_dpi(res: bytes) -> tuple[float, float] | None:
    vn, vd, hn, hd, ve, he = struct.unpack(">HHHHbb", res)
    if not (vd and hd and vn and hn):
        return None
    per_metre = (hn / hd * 10.0**he, vn / vd * 10.0**ve)
    return per_metre[0] * 0.0254, per_metre[1] * 0.0254


def _resolution_box(dpi: tuple[float, float]) -> bytes:
    """A `res ` superbox holding the capture resolution, in pixels per metre as N/1 · 10^E."""
    def fraction(d: float) -> tuple[int, int]:
        per_metre, exponent = d / 0.0254, 0
        while round(per_metre) > 0xFFFF:
            per_metre, exponent = per_metre / 10, exponent + 1
        return max(1, round(per_metre)), exponent

    (hn, he), (vn, ve) = fraction(dpi[0]), fraction(dpi[1])
    return _box(b"res ", _box(b"resc", struct.pack(">HHHHbb", vn, 1, hn, 1, ve, he)))


def xmp_with_provenance(xmp: bytes | None, provenance: str) -> bytes:
    """The source's XMP with xmp:CreatorTool set to `provenance` (a new packet if there is none)."""
    tool = provenance.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;").encode()
    text = xmp or b""
    for pattern in (rb'(\w+:CreatorTool=")[^"]*(")', rb"(<(?:\w+):CreatorTool>)[^<]*(</\w+:CreatorTool>)"):
        if re.search(pattern, text):
            return re.sub(pattern, lambda m: m.group(1) + tool + m.group(2), text, count=1)
    description = (b'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="'
                   + tool + b'"/>')
    if b"</rdf:RDF>" in text:
        return text.replace(b"</rdf:RDF>", description + b"</rdf:RDF>", 1)
    return (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' + description
            + b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


def with_metadata(jp2: bytes, xmp: bytes, icc: bytes | None, dpi: tuple[float, float] | None) -> bytes:
    """An encoder's JP2 with the ICC profile and resolution in its header box and an XMP box after it."""
    if not jp2.startswith(SIGNATURE):
        raise ValueError("not a JP2 file (a bare codestream carries no boxes)")
    out = []
    for kind, payload, whole in _boxes(jp2):
        if kind == b"uuid" and payload[:16] == XMP_UUID:
            continue  # replaced below
        if kind != b"jp2h":
            out.append(whole)
            continue
        children = []
        for child, body, child_whole in _boxes(payload):
            if child == b"colr" and icc is not None:
                if not any(c.startswith(b"colr", 4) for c in children):
                    children.append(_box(b"colr", bytes([2, 0, 0]) + icc))
            elif child != b"res ":
                children.append(child_whole)
        if dpi:
            children.append(_resolution_box(dpi))
        out.append(_box(b"jp2h", b"".join(children)))
        out.append(_box(b"uuid", XMP_UUID + xmp))
    return b"".join(out)
