"""`archivecolor hints`: the page, in a real browser (headless Chromium over the DevTools pipe)."""

import json
import time

import numpy as np
from click.testing import CliRunner

from archivecolor.cli import main
from archivecolor.hints import read_hints

from browser import Browser
from conftest import synthetic_photo, write_rgb


def downloaded(path, seconds: float = 20):
    """`path` once the browser has saved it (or after `seconds`, for the assertion to say so)."""
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return path


def test_the_page_places_two_hints_where_clicked_and_saves_what_folder_reads(tmp_path):
    """A 1600 × 1200 picture is shown 1000 px wide: clicks map back to the source's pixels. One
    hint in the picker's colour, one in a swatch's; Save downloads NAME.hints.json, which
    `folder --hints` accepts."""
    picture = tmp_path / "plate-12.png"
    write_rgb(picture, np.repeat(np.repeat(synthetic_photo(np.random.default_rng(3), 100), 16, 0), 16, 1)[:1200])
    result = CliRunner().invoke(main, ["hints", str(picture)])
    assert result.exit_code == 0, result.output
    page_file = tmp_path / "plate-12.hints.html"
    assert page_file.exists() and "http" not in page_file.read_text().split("<script>")[1]  # nothing fetched
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser() as browser:
        page = browser.open(page_file.as_uri(), downloads=downloads)
        left, top = page.evaluate("(() => { const r = document.getElementById('picture').getBoundingClientRect(); return [r.left, r.top]; })()")
        assert page.evaluate("document.getElementById('picture').getBoundingClientRect().width") == 1000
        clicks = [(round(left) + 100, round(top) + 50), (round(left) + 500, round(top) + 400)]  # whole pixels, as a mouse gives
        page.click(*clicks[0])
        page.click(*page.centre_of('.swatch[title="grass"]'))
        page.click(*clicks[1])
        assert page.evaluate("document.getElementById('list').children.length") == 2
        page.click(*page.centre_of("#save"))
        saved = downloaded(downloads / "plate-12.hints.json")
    points = json.loads(saved.read_text())["points"]
    where = [(round((x - left) * 1.6), round((y - top) * 1.6)) for x, y in clicks]  # shown at 1000 of 1600 px
    assert points == [{"x": where[0][0], "y": where[0][1], "color": "#2f4f8f"}, {"x": where[1][0], "y": where[1][1], "color": "#4f7a2a"}]
    assert abs(where[0][0] - 160) <= 1 and abs(where[1][1] - 640) <= 1
    hints = read_hints(saved, (1600, 1200))
    assert [(h.x, h.y) for h in hints] == where and hints[1].a < 0 < hints[1].b  # grass: green-yellow


def test_the_page_starts_from_the_hints_file_beside_the_picture_and_previews_them(tmp_path, hint_weights, tiny_weights):
    picture = tmp_path / "cat.png"
    write_rgb(picture, synthetic_photo(np.random.default_rng(4), 96))
    (tmp_path / "cat.hints.json").write_text(json.dumps({"points": [{"x": 10, "y": 20, "color": "#c07030", "radius": 3}]}))
    result = CliRunner().invoke(main, ["hints", str(picture), "--preview", "--weights", str(hint_weights), "--render-size", "64"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "cat.hints.html").read_text()
    assert '"points": [{"x": 10, "y": 20, "color": "#c07030", "radius": 3}]' in text
    assert "without hints" in text and "with its 1 hint<" in text and text.count("data:image/jpeg;base64,") == 3
    unhinted = CliRunner().invoke(main, ["hints", str(picture), "--preview", "--weights", str(tiny_weights), "--render-size", "64"])
    assert unhinted.exit_code == 0 and "this model takes no hints" in (tmp_path / "cat.hints.html").read_text()
    (tmp_path / "cat.hints.json").write_text(json.dumps({"points": [{"x": 500, "y": 20, "color": "#c07030"}]}))
    bad = CliRunner().invoke(main, ["hints", str(picture)])
    assert bad.exit_code == 1 and "outside the picture" in " ".join(bad.output.split())
    (tmp_path / "cat.hints.json").write_bytes(b"\xff\xfe not UTF-8")  # one line, not a traceback
    unreadable = CliRunner().invoke(main, ["hints", str(picture)])
    assert unreadable.exit_code == 1 and "cat.hints.json: cannot be read" in unreadable.output and "Traceback" not in unreadable.output


def test_a_films_page_shows_the_frame_named_and_saves_its_hints_with_the_frame_beside_the_films_others(tmp_path):
    import base64
    import re

    import cv2

    from archivecolor.video.film_hints import read_film_hints
    from test_film_hints import square_film

    film = square_film(tmp_path / "reel.mkv")  # a bright square moving 4 px a frame from x = 20
    (tmp_path / "reel.hints.json").write_text(json.dumps({"points": [{"x": 30, "y": 60, "color": "#c03020", "frame": 3}]}))
    result = CliRunner().invoke(main, ["hints", str(film), "--frame", "12"])
    assert result.exit_code == 0, result.output
    page_file = tmp_path / "reel.frame12.hints.html"
    shown = re.search(r'id="picture" src="data:image/jpeg;base64,([^"]+)"', page_file.read_text()).group(1)
    grey = cv2.imdecode(np.frombuffer(base64.b64decode(shown), np.uint8), cv2.IMREAD_GRAYSCALE)
    bright = np.flatnonzero(grey[64] > 235)
    assert abs(bright.min() - 2 * (10 + 2 * 12)) <= 2  # frame 12's square, not frame 0's
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser() as browser:
        page = browser.open(page_file.as_uri(), downloads=downloads)
        assert page.evaluate("document.querySelectorAll('.mark').length") == 0  # the other frame's hint: listed, not marked
        assert page.evaluate("document.getElementById('list').children.length") == 1
        left, top = page.evaluate("(() => { const r = document.getElementById('picture').getBoundingClientRect(); return [r.left, r.top]; })()")
        page.click(round(left) + 80, round(top) + 64)
        page.click(*page.centre_of("#save"))
        saved = downloaded(downloads / "reel.hints.json")
    points = json.loads(saved.read_text())["points"]
    assert points == [{"x": 30, "y": 60, "color": "#c03020", "frame": 3}, {"x": 80, "y": 64, "color": "#2f4f8f", "frame": 12}]
    assert [h.frame for h in read_film_hints(saved, (128, 192), 30)] == [3, 12]  # what `video --hints` reads

    beyond = CliRunner().invoke(main, ["hints", str(film), "--frame", "30"])
    assert beyond.exit_code == 1 and "frame 30 is not in the film" in " ".join(beyond.output.split())
    unnamed = CliRunner().invoke(main, ["hints", str(film)])
    assert unnamed.exit_code == 2 and "--frame" in unnamed.output
