"""The HTML report rendered by a real browser: scripts/screenshot_report.py
builds a month of nightly history, renders the page and takes a headless
Chromium screenshot. Runs only where Chromium is installed."""

from __future__ import annotations

import importlib.util
import re
import struct
import zlib
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "screenshot_report.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("screenshot_report", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png_rows(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the rows (still filtered) of an 8-bit RGB(A) PNG,
    without an imaging library: a row of one colour holds at most two byte
    values under any PNG filter, so a row with more has something drawn."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + width * channels
    return width, height, [raw[r * stride + 1 : (r + 1) * stride] for r in range(height)]


def test_the_page_renders_in_chromium(tmp_path: Path) -> None:
    script = load_script()
    if script.chromium() is None:
        pytest.skip("no Chromium on this machine (chromium, chromium-browser, google-chrome or $CHROMIUM)")
    assert script.main(["--out", str(tmp_path), "--window-size", "1400,2400"]) == 0
    page = (tmp_path / "report.html").read_text()
    # The history the script builds: 7 stages in the legend, dates on the axes, a broken test.
    for stage in ("unit", "integration_1", "integration_2", "e2e_1", "e2e_2", "benchmark", "security"):
        assert re.search(rf">\s*{stage}\s*</text>", page), stage
    assert re.search(r">\s*Jan \d\d\s*</text>", page)
    assert "seconds (log scale)" in page
    assert page.index("<h2>Broken tests</h2>") < page.index("<svg")
    width, height, rows = png_rows((tmp_path / "report.png").read_bytes())
    assert (width, height) == (1400, 2400)
    # Not a blank page: most rows of the upper page hold more than the background.
    drawn = sum(len(set(row)) > 2 for row in rows[:1200])
    assert drawn > 300, drawn
