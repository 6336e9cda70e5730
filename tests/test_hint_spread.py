"""Hints made to hold after the network: the hint's colour at its point, carried over its region, stopped by edges, gone far away."""

import numpy as np

from archivecolor.colorizer import Colorizer
from archivecolor.hint_spread import SPREAD_PIXELS, spread_hints
from archivecolor.hints import Hint


def two_regions(h=128, w=192):
    """A darker left half and a lighter right half (a 40 L* edge down the middle), a little texture."""
    rng = np.random.default_rng(0)
    L = np.where(np.arange(w)[None, :] < w // 2, 35.0, 75.0) + rng.normal(0, 1.0, (h, w))
    return L.astype(np.float32)


def test_a_hint_colours_its_region_and_stops_at_an_edge():
    L = two_regions()
    ab = np.zeros((*L.shape, 2), np.float32)
    out = spread_hints(L, ab, [(60, 65, 40, 45, 40.0, -30.0)])  # a 5 × 5 hint in the left half
    assert np.allclose(out[60:65, 40:45].mean(axis=(0, 1)), (40.0, -30.0), atol=2.0)  # the hint's colour at the hint
    left_near, right_near = out[50:75, 50:75].mean(axis=(0, 1)), out[50:75, 100:125].mean(axis=(0, 1))  # 10-35 px away
    assert left_near[0] > 15 and left_near[1] < -10  # carried over its own region…
    assert np.abs(right_near).max() < 0.2 * np.abs(left_near).max()  # …not across the edge, though as near
    assert np.array_equal(spread_hints(L, ab, []), ab)  # no hints: the network's colour, untouched


def test_texture_does_not_stop_a_hint_where_an_edge_does():
    """Grass, fabric, foliage: a region of texture (±10 L* stripes 8 px wide) is one thing, so
    the hint carries across it; the 40 L* edge beside it still stops it."""
    h, w = 128, 192
    stripes = np.where(np.arange(w)[None, :] % 16 < 8, 25.0, 45.0) * np.ones((h, 1))
    L = np.where(np.arange(w)[None, :] < w // 2, stripes, 75.0).astype(np.float32)
    ab = np.zeros((h, w, 2), np.float32)
    out = spread_hints(L, ab, [(60, 65, 10, 15, 40.0, -30.0)])  # a hint near the left end of the texture
    far_in_texture, across_edge = out[40:90, 70:90, 0].mean(), out[40:90, 106:126, 0].mean()  # 55-75 px away; 91-111 px
    assert far_in_texture > 20  # carried across the texture…
    assert across_edge < 0.2 * far_in_texture  # …and not over the edge


def test_a_hint_fades_with_distance_along_even_luminance():
    L = np.full((64, 1024), 50.0, np.float32)  # one long even strip
    ab = np.zeros((64, 1024, 2), np.float32)
    out = spread_hints(L, ab, [(30, 35, 10, 15, 30.0, 0.0)])
    a = out[32, :, 0]
    assert a[12] > 28 and a[100] > a[300] > a[900] and a[900] < 1.0


class GreyBackend:
    """A stand-in network that takes hints and ignores them (what a model that never learned to use them does)."""

    name, size_multiple, hint_channels = "grey stand-in", 16, 3

    def run(self, l_net, hints=None):
        return np.zeros((l_net.shape[0], 2, *l_net.shape[2:]), np.float32)


def test_the_colorizer_spreads_an_archivists_hint_even_where_the_network_ignores_it():
    L = two_regions(256, 384)
    for spread, expect_colour in ((120.0, True), (0.0, False)):
        colorizer = Colorizer(GreyBackend(), render_size=128, hint_spread=spread)
        job = colorizer.prepare(L)
        job.add_hints([Hint(x=80.0, y=120.0, a=40.0, b=-30.0, radius=6.0)])  # full-picture pixels, left half
        colorizer.predict([job])
        at_hint = job.ab[60, 40]  # render size is half the picture
        assert (np.abs(at_hint - (40.0, -30.0)).max() < 2.0) == expect_colour
        assert np.abs(job.ab[:, 110:]).max() < 6.0  # the other side of the edge stays as the network made it


class RecordingBackend(GreyBackend):
    """Records whether the network was given the hint planes."""

    def __init__(self):
        self.given = []

    def run(self, l_net, hints=None):
        self.given.append(hints is not None and bool(hints[:, 2].any()))
        return super().run(l_net, hints)


def test_the_spreading_starts_from_the_automatic_colour_and_reach_0_gives_the_hints_to_the_network():
    """Measured: spreading from the automatic colour beat spreading what a hint-trained network had
    made of the hints, and that network alone; with no spreading the network is what follows them."""
    for spread, network_told in ((SPREAD_PIXELS, False), (0.0, True)):
        backend = RecordingBackend()
        colorizer = Colorizer(backend, render_size=128, hint_spread=spread)
        job = colorizer.prepare(two_regions(256, 384))
        job.add_hints([Hint(x=80.0, y=120.0, a=40.0, b=-30.0, radius=6.0)])
        colorizer.predict([job])
        assert backend.given == [network_told]
        assert (np.abs(job.ab[60, 40] - (40.0, -30.0)).max() < 2.0) == (not network_told)  # the grey stand-in ignores them
