"""Small ICC profiles built by the spec (ICC.1), like those scanners and Photoshop embed: no
profile files ship with the test machines. littlecms (through Pillow) accepts them, which the
tests use as the independent reference."""

from __future__ import annotations

import struct

import numpy as np

D50 = (0.9642, 1.0, 0.8249)
# Adobe RGB (1998) colorants as its profile states them (adapted to D50), and its gamma 563/256
ADOBE_RGB_XYZ = ((0.60974, 0.31111, 0.01947), (0.20528, 0.62567, 0.06087), (0.14919, 0.06322, 0.74457))
ADOBE_RGB_GAMMA = 563


def _s15(values) -> bytes:
    return b"".join(struct.pack(">i", round(v * 65536)) for v in values)


def xyz_tag(xyz) -> bytes:
    return b"XYZ " + bytes(4) + _s15(xyz)


def gamma_curve(gamma_256ths: int) -> bytes:
    return b"curv" + bytes(4) + struct.pack(">IH", 1, gamma_256ths) + bytes(2)


def table_curve(values: np.ndarray) -> bytes:
    table = np.round(np.clip(values, 0, 1) * 65535).astype(">u2").tobytes()
    data = b"curv" + bytes(4) + struct.pack(">I", len(values)) + table
    return data + bytes(-len(data) % 4)


def dot_gain_curve(gain: float = 0.20, samples: int = 256) -> bytes:
    """A press-like tone curve, as "Dot Gain 20%" profiles carry: ink spreads, so the printed dot
    at a 50 % level covers 50 % + gain, and the reflected light (Y) follows that coverage."""
    level = np.linspace(0.0, 1.0, samples)  # grey level: 0 black … 1 white
    ink = 1.0 - level
    coverage = np.clip(ink + 4 * gain * ink * (1 - ink), 0, 1)  # +gain at 50 %, none at 0 or 100 %
    return table_curve(1.0 - coverage)


def parametric_srgb_curve() -> bytes:
    params = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
    return b"para" + bytes(4) + struct.pack(">HH", 3, 0) + _s15(params)


def _text(text: str) -> bytes:
    encoded = text.encode("utf-16-be")
    return b"mluc" + bytes(4) + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(encoded), 28) + encoded


def profile(space: bytes, tags: dict[bytes, bytes], version: int = 0x04300000) -> bytes:
    """An ICC display profile in `space` (b"GRAY" or b"RGB ") with these tags (PCS XYZ)."""
    tags = {b"desc": _text("archivecolor test profile"), b"wtpt": xyz_tag(D50), **tags}
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    entries, blobs = [], b""
    for signature, data in tags.items():
        data = data + bytes(-len(data) % 4)
        entries.append(struct.pack(">4sII", signature, offset + len(blobs), len(data)))
        blobs += data
    size = offset + len(blobs)
    header = struct.pack(">I4sI4s4s4s", size, b"lcms", version, b"mntr", space, b"XYZ ")
    header += bytes(12) + b"acsp" + bytes(24) + bytes(4) + struct.pack(">I", 0) + _s15(D50)
    header += bytes(128 - len(header))
    return header + struct.pack(">I", len(tags)) + b"".join(entries) + blobs


def grey_profile(curve: bytes) -> bytes:
    return profile(b"GRAY", {b"kTRC": curve})


# Display P3 (phones' photos) as Apple's profile states it: D50-adapted colorants, the sRGB curve
DISPLAY_P3_XYZ = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))


def display_p3_profile() -> bytes:
    curve = parametric_srgb_curve()
    r, g, b = DISPLAY_P3_XYZ
    return profile(b"RGB ", {b"rXYZ": xyz_tag(r), b"gXYZ": xyz_tag(g), b"bXYZ": xyz_tag(b),
                             b"rTRC": curve, b"gTRC": curve, b"bTRC": curve})


def adobe_rgb_profile() -> bytes:
    curve = gamma_curve(ADOBE_RGB_GAMMA)
    r, g, b = ADOBE_RGB_XYZ
    return profile(b"RGB ", {b"rXYZ": xyz_tag(r), b"gXYZ": xyz_tag(g), b"bXYZ": xyz_tag(b),
                             b"rTRC": curve, b"gTRC": curve, b"bTRC": curve})
