"""Every input kind an archive holds, written in the test, read back with its metadata."""

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from archivecolor.imageio import PROVENANCE, BadInput, Metadata, encode_still, encode_tiff_pages, read_stills

from conftest import synthetic_photo

ICC = b"\x00\x00\x02\x0cfake-icc-pro" + b"RGB " + bytes(range(200))  # opaque but for its colour space (RGB)
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def grey_image(h=40, w=60, dtype=np.uint8):
    peak = np.iinfo(dtype).max
    y, x = np.mgrid[0:h, 0:w]
    return ((x + 2 * y) / (w + 2 * h) * peak).astype(dtype)


def test_jpeg_exif_orientation_is_applied(tmp_path):
    rgb = synthetic_photo(np.random.default_rng(0), 48)[:, :40]  # 48 rows × 40 cols stored
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = tmp_path / "rot.jpg"
    Image.fromarray(rgb).save(path, exif=exif, icc_profile=ICC, dpi=(300, 300), quality=95)
    (still,) = read_stills(path)
    assert still.pixels.shape == (40, 48, 3)  # upright: width and height swapped
    assert still.metadata.orientation == 6 and still.metadata.icc == ICC
    assert still.metadata.dpi == pytest.approx((300, 300), abs=1)


@pytest.mark.parametrize(
    "name,writer,shape,dtype",
    [
        ("grey8.png", lambda p: cv2.imwrite(str(p), grey_image()), (40, 60), np.uint8),
        ("grey16.png", lambda p: cv2.imwrite(str(p), grey_image(dtype=np.uint16)), (40, 60), np.uint16),
        ("rgb16.png", lambda p: cv2.imwrite(str(p), np.dstack([grey_image(dtype=np.uint16)] * 3)), (40, 60, 3), np.uint16),
        ("rgba.png", lambda p: cv2.imwrite(str(p), np.dstack([grey_image()] * 3 + [np.full((40, 60), 128, np.uint8)])), (40, 60, 4), np.uint8),
        ("palette.png", lambda p: Image.fromarray(grey_image()).convert("P").save(p), (40, 60, 3), np.uint8),
        ("cmyk.jpg", lambda p: Image.fromarray(np.dstack([grey_image()] * 4), "CMYK").save(p), (40, 60, 3), np.uint8),
        ("grey.webp", lambda p: Image.fromarray(grey_image()).save(p, lossless=True), (40, 60, 3), np.uint8),
        ("grey.bmp", lambda p: cv2.imwrite(str(p), grey_image()), (40, 60), np.uint8),
        ("rgb.bmp", lambda p: cv2.imwrite(str(p), np.dstack([grey_image()] * 3)), (40, 60, 3), np.uint8),
        ("rgb16.tif", lambda p: tifffile.imwrite(p, np.dstack([grey_image(dtype=np.uint16)] * 3), photometric="rgb"), (40, 60, 3), np.uint16),
        ("cmyk.tif", lambda p: tifffile.imwrite(p, np.dstack([grey_image()] * 4), photometric="separated"), (40, 60, 3), np.uint8),
        ("miniswhite.tif", lambda p: tifffile.imwrite(p, grey_image(), photometric="miniswhite"), (40, 60), np.uint8),
    ],
)
def test_input_kinds_decode_at_full_depth(tmp_path, name, writer, shape, dtype):
    path = tmp_path / name
    writer(path)
    (still,) = read_stills(path)
    assert still.pixels.shape == shape
    assert still.pixels.dtype == dtype


@pytest.mark.parametrize("compression", ["tiff_lzw", "jpeg", "tiff_adobe_deflate", "packbits"])
def test_compressed_tiffs_as_scanners_write_them(tmp_path, compression):
    grey = grey_image(48, 64)
    path = tmp_path / f"{compression}.tif"
    Image.fromarray(grey).save(path, compression=compression)
    (still,) = read_stills(path)
    tolerance = 8 if compression == "jpeg" else 0  # JPEG-in-TIFF is lossy
    assert still.pixels.shape == (48, 64) and np.abs(still.pixels.astype(int) - grey).max() <= tolerance


def test_bilevel_fax_compressed_tiff_reads_as_black_and_white(tmp_path):
    bits = grey_image(48, 64) > 100
    Image.fromarray(bits).save(tmp_path / "g4.tif", compression="group4")
    (still,) = read_stills(tmp_path / "g4.tif")
    assert still.pixels.dtype == np.uint8 and np.array_equal(still.pixels, np.where(bits, 255, 0))


def test_multipage_tiff_gives_every_page(tmp_path):
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as w:
        w.write(grey_image(), photometric="minisblack")
        w.write(grey_image(30, 50), photometric="minisblack")
    stills = read_stills(path)
    assert [s.pixels.shape for s in stills] == [(40, 60), (30, 50)]


@pytest.mark.parametrize(
    "name,content,reason",
    [
        ("empty.jpg", b"", "0 bytes"),
        ("garbage.png", b"\x89PNG\r\n\x1a\nthis is not a png", "truncated PNG"),
        ("text.tif", b"hello", "TIFF"),
        ("notes.pdf", b"%PDF-1.4", "unsupported file type"),
        ("cut.gif", b"GIF89a", "not a decodable"),
        ("notes.jpg", b"hello, these are notes", "not a JPEG file"),  # not "truncated": it never was a JPEG
    ],
)
def test_bad_inputs_raise_one_line_reasons(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BadInput, match=reason) as info:
        read_stills(path)
    assert "\n" not in str(info.value)


def test_content_decides_the_decoder_not_the_name(tmp_path):
    ok, png = cv2.imencode(".png", grey_image())
    (tmp_path / "scan.jpg").write_bytes(png.tobytes())
    (still,) = read_stills(tmp_path / "scan.jpg")
    assert np.array_equal(still.pixels, grey_image())
    with tifffile.TiffWriter(tmp_path / "scan.png") as w:
        w.write(grey_image(), photometric="minisblack")
        w.write(grey_image(30, 50), photometric="minisblack")
    assert [s.pixels.shape for s in read_stills(tmp_path / "scan.png")] == [(40, 60), (30, 50)]


def test_truncated_jpeg_and_tiny_image_are_refused(tmp_path):
    ok, data = cv2.imencode(".jpg", synthetic_photo(np.random.default_rng(1), 64))
    (tmp_path / "cut.jpg").write_bytes(data.tobytes()[: len(data) // 2])
    with pytest.raises(BadInput, match="truncated"):
        read_stills(tmp_path / "cut.jpg")
    cv2.imwrite(str(tmp_path / "dot.png"), np.zeros((1, 1), np.uint8))
    with pytest.raises(BadInput, match="too small"):
        read_stills(tmp_path / "dot.png")


@pytest.mark.parametrize("dtype, channels", [(np.uint8, 3), (np.uint16, 3), (np.uint16, 4)])
def test_tiff_outputs_use_a_predictor_that_other_readers_undo(tmp_path, dtype, channels):
    """Deflate after horizontal differencing: smaller and faster to write, and read back exactly
    by libtiff (through OpenCV), not only by tifffile."""
    peak = np.iinfo(dtype).max
    y, x = np.mgrid[0:64, 0:96]
    smooth = np.dstack([(x * 7 + y * 3 + 400 * c) % (peak + 1) for c in range(channels)]).astype(dtype)
    path = tmp_path / "out.tif"
    path.write_bytes(encode_tiff_pages([(smooth, Metadata())]))
    with tifffile.TiffFile(path) as t:
        assert int(t.pages[0].predictor) == 2 and int(t.pages[0].compression) in (8, 32946)
    by_libtiff = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    by_libtiff = cv2.cvtColor(by_libtiff, cv2.COLOR_BGRA2RGBA if channels == 4 else cv2.COLOR_BGR2RGB)
    assert by_libtiff.dtype == dtype and np.array_equal(by_libtiff, smooth)
    assert np.array_equal(read_stills(path)[0].pixels, smooth)


@pytest.mark.parametrize("fmt,suffix", [("jpeg", ".jpg"), ("png", ".png"), ("webp", ".webp"), ("tiff", ".tif")])
def test_metadata_and_provenance_survive_encoding(tmp_path, fmt, suffix):
    rgb = synthetic_photo(np.random.default_rng(2), 48)
    src_exif = Image.Exif()
    src_exif[0x010F] = "ScanCo"  # Make
    src_exif[0x0112] = 6
    meta = Metadata(exif=src_exif.tobytes()[6:], xmp=XMP, icc=ICC, dpi=(600.0, 600.0))
    path = tmp_path / f"out{suffix}"
    path.write_bytes(encode_still(rgb, fmt, meta))
    with Image.open(path) as im:
        assert im.size == (48, 48)
        assert im.info.get("icc_profile") == ICC
        if fmt != "tiff":
            exif = im.getexif()
            assert exif.get(0x0131) == PROVENANCE
            assert exif.get(0x010F) == "ScanCo"
            assert exif.get(0x0112) == 1  # pixels are upright now
            xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
            assert xmp and b"xmpmeta" in (xmp if isinstance(xmp, bytes) else xmp.encode())
        if fmt in ("jpeg", "png", "tiff"):
            assert im.info.get("dpi") == pytest.approx((600, 600), abs=1)
    if fmt == "tiff":
        with tifffile.TiffFile(path) as tif:
            assert tif.pages[0].tags[305].value == PROVENANCE
            assert XMP in bytes(tif.pages[0].tags[700].value)


def test_sixteen_bit_stays_sixteen_bit_in_png_and_tiff(tmp_path):
    rgb16 = (np.random.default_rng(3).random((20, 30, 3)) * 65535).astype(np.uint16)
    (tmp_path / "a.png").write_bytes(encode_still(rgb16, "png", Metadata()))
    back = cv2.cvtColor(cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    assert back.dtype == np.uint16 and np.array_equal(back, rgb16)
    (tmp_path / "a.tif").write_bytes(encode_tiff_pages([(rgb16, Metadata()), (rgb16[:10], Metadata())]))
    pages = read_stills(tmp_path / "a.tif")
    assert len(pages) == 2 and pages[0].pixels.dtype == np.uint16 and np.array_equal(pages[0].pixels, rgb16)


def test_alpha_is_carried_in_png(tmp_path):
    rgba = np.dstack([synthetic_photo(np.random.default_rng(4), 32), np.arange(32 * 32, dtype=np.uint16).reshape(32, 32).astype(np.uint8)])
    (tmp_path / "a.png").write_bytes(encode_still(rgba, "png", Metadata()))
    (still,) = read_stills(tmp_path / "a.png")
    assert np.array_equal(still.alpha, rgba[..., 3])


def test_descriptive_tags_cross_between_exif_and_tiff(tmp_path):
    rgb = synthetic_photo(np.random.default_rng(5), 32)
    exif = Image.Exif()
    exif[315] = "Jane Archivist"  # Artist
    exif[33432] = "(c) Town Museum"  # Copyright
    exif[270] = "Harbour, 1921"  # ImageDescription
    src = tmp_path / "src.jpg"
    Image.fromarray(rgb).save(src, exif=exif)
    (still,) = read_stills(src)
    assert still.metadata.descriptive == {270: "Harbour, 1921", 315: "Jane Archivist", 33432: "(c) Town Museum"}

    tif = tmp_path / "out.tif"
    tif.write_bytes(encode_tiff_pages([(rgb, still.metadata)]))
    with tifffile.TiffFile(tif) as t:
        tags = t.pages[0].tags
        assert tags[315].value == "Jane Archivist" and tags[33432].value == "(c) Town Museum"
        assert tags[270].value == "Harbour, 1921" and tags[305].value == PROVENANCE

    (from_tiff,) = read_stills(tif)
    back = tmp_path / "back.jpg"
    back.write_bytes(encode_still(rgb, "jpeg", from_tiff.metadata))
    with Image.open(back) as im:
        tags = im.getexif()
        assert tags[315] == "Jane Archivist" and tags[33432] == "(c) Town Museum" and tags[0x0131] == PROVENANCE


def iptc_datasets(*items) -> bytes:
    """IPTC-IIM datasets: 0x1C, record, dataset, 16-bit length, value."""
    return b"".join(bytes([0x1C, record, dataset]) + len(value).to_bytes(2, "big") + value for (record, dataset), value in items)


CAPTION = ((2, 120), b"Harbour at dawn, 1921")
CREDIT = ((2, 110), b"City Archive")
KEYWORDS = (((2, 25), b"harbour"), ((2, 25), b"steamship"))


def test_iptc_captions_cross_between_jpeg_and_tiff(tmp_path):
    """Photo archives keep captions, credits and keywords in IPTC-IIM: APP13 in JPEG, tag 33723 in TIFF."""
    from PIL import IptcImagePlugin

    iptc = iptc_datasets(CAPTION, CREDIT, *KEYWORDS)
    resource = b"8BIM\x04\x04\x00\x00" + len(iptc).to_bytes(4, "big") + iptc + b"\x00" * (len(iptc) % 2)
    app13 = b"Photoshop 3.0\x00" + b"8BIM\x04\x0c\x00\x00\x00\x00\x00\x02ab" + resource  # after a thumbnail-like resource
    buffer = __import__("io").BytesIO()
    Image.fromarray(grey_image()).save(buffer, "JPEG")
    jpeg = buffer.getvalue()
    src = tmp_path / "src.jpg"
    src.write_bytes(jpeg[:2] + b"\xff\xed" + (len(app13) + 2).to_bytes(2, "big") + app13 + jpeg[2:])
    (still,) = read_stills(src)
    expected = {CAPTION[0]: CAPTION[1], CREDIT[0]: CREDIT[1], (2, 25): [b"harbour", b"steamship"]}

    for fmt, name in (("jpeg", "out.jpg"), ("tiff", "out.tif")):
        (tmp_path / name).write_bytes(encode_still(np.dstack([grey_image()] * 3), fmt, still.metadata))
        with Image.open(tmp_path / name) as im:  # Pillow's own IPTC reader, not ours
            assert IptcImagePlugin.getiptcinfo(im) == expected, fmt

    padded = iptc + b"\x00" * (-len(iptc) % 4)  # many TIFF writers type the tag LONG, in the file's byte order
    tifffile.imwrite(tmp_path / "long.tif", grey_image(), byteorder="<",
                     extratags=[(33723, 4, len(padded) // 4, tuple(np.frombuffer(padded, "<u4").tolist()), True)])
    (from_tiff,) = read_stills(tmp_path / "long.tif")
    (tmp_path / "back.jpg").write_bytes(encode_still(np.dstack([grey_image()] * 3), "jpeg", from_tiff.metadata))
    with Image.open(tmp_path / "back.jpg") as im:
        assert IptcImagePlugin.getiptcinfo(im) == expected


def test_png_text_stays_in_png_and_crosses_to_exif_and_tiff_tags(tmp_path):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for keyword, value in (("Title", "Harbour"), ("Author", "Jane Archivist"), ("Description", "Steamship at dawn"),
                           ("Copyright", "(c) Town Museum"), ("Software", "ScanTool 2")):
        info.add_text(keyword, value)
    info.add_itxt("Comment", "Łódź, 1921")  # not Latin-1: iTXt
    src = tmp_path / "src.png"
    Image.fromarray(grey_image()).save(src, pnginfo=info)
    (still,) = read_stills(src)
    rgb = np.dstack([grey_image()] * 3)
    (tmp_path / "out.png").write_bytes(encode_still(rgb, "png", still.metadata))
    with Image.open(tmp_path / "out.png") as im:
        assert im.text == {"Title": "Harbour", "Author": "Jane Archivist", "Description": "Steamship at dawn",
                           "Copyright": "(c) Town Museum", "Comment": "Łódź, 1921", "Software": PROVENANCE}  # ScanTool gives way
    (tmp_path / "out.tif").write_bytes(encode_still(rgb, "tiff", still.metadata))
    with tifffile.TiffFile(tmp_path / "out.tif") as t:
        tags = t.pages[0].tags
        assert (tags[270].value, tags[315].value, tags[33432].value) == ("Steamship at dawn", "Jane Archivist", "(c) Town Museum")


def test_tifffiles_own_shape_description_is_not_carried_onto_the_colour_page(tmp_path):
    """tifffile writes '{"shape": [h, w]}' as a grey TIFF's description; on the RGB output it
    would state the wrong shape (tifffile readers then warn and mis-shape the picture)."""
    src = tmp_path / "frame.tif"
    tifffile.imwrite(src, np.zeros((24, 32), np.uint16))
    (still,) = read_stills(src)
    assert 270 not in still.metadata.descriptive
    out = tmp_path / "colour.tif"
    out.write_bytes(encode_tiff_pages([(np.zeros((24, 32, 3), np.uint16), still.metadata)]))
    with tifffile.TiffFile(out) as t:
        assert not t.pages[0].is_shaped and t.asarray().shape == (24, 32, 3)


def test_jp2_round_trip_is_lossless_sixteen_bit_with_metadata_and_provenance(tmp_path):
    rgb16 = (np.random.default_rng(4).random((36, 40, 3)) * 65535).astype(np.uint16)
    source_xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                  b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" dc:source="Box 12"/></rdf:RDF></x:xmpmeta>')
    path = tmp_path / "master.jp2"
    path.write_bytes(encode_still(rgb16, "jp2", Metadata(xmp=source_xmp, icc=ICC, dpi=(600.0, 400.0))))
    (still,) = read_stills(path)
    assert still.pixels.dtype == np.uint16 and np.array_equal(still.pixels, rgb16)  # lossless
    meta = still.metadata
    assert meta.icc == ICC and meta.dpi == pytest.approx((600, 400), abs=0.01)
    assert b'dc:source="Box 12"' in meta.xmp and f'CreatorTool="{PROVENANCE}"'.encode() in meta.xmp
    with Image.open(path) as im:  # an independent reader parses the boxes we wrote
        assert im.format == "JPEG2000" and im.size == (40, 36) and im.info["dpi"] == pytest.approx((600, 400), abs=0.01)
        im.load()


def test_jp2_provenance_replaces_a_creator_tool_and_survives_re_encoding(tmp_path):
    from archivecolor.jp2 import xmp_with_provenance

    scanned = b'<rdf:RDF><rdf:Description xmp:CreatorTool="ScanSoft 3"/></rdf:RDF>'
    marked = xmp_with_provenance(scanned, PROVENANCE)
    assert marked.count(b"CreatorTool") == 1 and b"ScanSoft" not in marked and PROVENANCE.encode() in marked
    element = b"<rdf:RDF><rdf:Description><xmp:CreatorTool>ScanSoft 3</xmp:CreatorTool></rdf:Description></rdf:RDF>"
    assert xmp_with_provenance(element, PROVENANCE).count(PROVENANCE.encode()) == 1
    # a colorized JP2 colorized again keeps one XMP box and one mark
    grey = synthetic_photo(np.random.default_rng(5), 32)
    once = encode_still(grey, "jp2", Metadata())
    (tmp_path / "a.jp2").write_bytes(once)
    twice = encode_still(grey, "jp2", read_stills(tmp_path / "a.jp2")[0].metadata)
    assert twice.count(bytes.fromhex("be7acfcb97a942e89c71999491e3afac")) == 1 and twice.count(b"CreatorTool") == 1


def test_jp2_too_small_for_its_encoder_is_a_one_line_refusal():
    with pytest.raises(BadInput, match="too small for JPEG 2000"):
        encode_still(np.zeros((20, 64, 3), np.uint8), "jp2", Metadata())


def test_a_grey_scans_icc_profile_is_not_put_on_its_colour_output(tmp_path):
    """Scanners tag grey scans "Gray Gamma 2.2": on an RGB picture such a profile is wrong."""
    grey_icc = ICC[:16] + b"GRAY" + ICC[20:]
    rgb = synthetic_photo(np.random.default_rng(6), 48)
    for fmt, suffix in (("jpeg", ".jpg"), ("png", ".png"), ("tiff", ".tif"), ("webp", ".webp")):
        path = tmp_path / f"out{suffix}"
        path.write_bytes(encode_still(rgb, fmt, Metadata(icc=grey_icc, xmp=XMP)))
        (still,) = read_stills(path)
        assert still.metadata.icc is None and still.metadata.xmp is not None, fmt  # the rest still travels


def test_a_damaged_exif_block_is_read_as_far_as_it_goes_without_warnings_on_screen(tmp_path):
    """Pillow warns on cut-off EXIF tags; the warning would break into the progress bar."""
    import subprocess
    import sys

    exif = Image.Exif()
    exif[0x010F] = "A scanner maker with a long name"
    path = tmp_path / "damaged-exif.jpg"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(path, exif=exif.tobytes()[:-10])
    code = f"from archivecolor.imageio import read_stills; print(read_stills({str(path)!r})[0].pixels.shape)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "(32, 32)" and "Warning" not in run.stderr


def _png(width, height, depth, colour, interlace, image_data, palette=False):
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace))
    return (b"\x89PNG\r\n\x1a\n" + header + (chunk(b"PLTE", bytes(range(48))) if palette else b"")
            + chunk(b"IDAT", zlib.compress(image_data)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("interlace", [0, 1])
@pytest.mark.parametrize("width,height,depth,colour", [(13, 7, 8, 2), (9, 11, 16, 0), (5, 5, 1, 0), (3, 2, 8, 6), (1, 1, 8, 0), (17, 3, 4, 3)])
def test_png_image_data_is_checked_scanline_by_scanline_as_libpng_reads_it(width, height, depth, colour, interlace):
    """A PNG whose chunk checksums are right but whose image data is short or not scanlines (a
    writer's bug) is refused in our words before libpng prints its own line; every layout libpng
    decodes (interlaced or not, 1- to 16-bit, palette) passes."""
    import cv2

    from archivecolor.imageio import _png_rows, png_damage

    rng = np.random.default_rng(width * height)
    rows = list(_png_rows(width, height, depth, colour, interlace))
    scanlines = b"".join(bytes([i % 5]) + rng.integers(0, 256, row - 1, dtype=np.uint8).tobytes() for i, row in enumerate(rows))
    whole = _png(width, height, depth, colour, interlace, scanlines, palette=colour == 3)
    assert cv2.imdecode(np.frombuffer(whole, np.uint8), cv2.IMREAD_UNCHANGED).shape[:2] == (height, width)
    assert png_damage(whole) is None
    assert "ends before the picture does" in png_damage(_png(width, height, depth, colour, interlace, scanlines[:-1], colour == 3))
    if len(rows) > 1:
        wrong_filter = bytearray(scanlines)
        wrong_filter[rows[0]] = 7  # the second scanline's filter byte: PNG has five (0-4)
        assert "not PNG scanlines" in png_damage(_png(width, height, depth, colour, interlace, bytes(wrong_filter), colour == 3))
