"""docs/shapes-world.md is the spec: its constants must match palette.py."""

import re
from pathlib import Path

from tuna.data.shapes import palette

DOC = (Path(__file__).resolve().parents[1] / "docs" / "shapes-world.md").read_text(encoding="utf-8")


def test_palette_tables_match_code():
    rows = dict(re.findall(r"^\|\s*([a-z]+)\s*\|\s*(\(\d+, \d+, \d+\))\s*\|", DOC, flags=re.M))
    assert {k: eval(v) for k, v in rows.items()} == palette.all_rgb()
    assert str(palette.BLANK_RGB) in DOC and f"`MATCH_RADIUS` = {palette.MATCH_RADIUS:g}" in DOC


def test_constants_are_documented():
    for name, frac in palette.SIZES.items():
        assert f"`{name}` = {frac}" in DOC
    for const in ("EDGE_MARGIN", "OBJECT_GAP", "MOTION_DISTANCE", "EDIT_MOVE_DISTANCE"):
        assert f"`{const}` = {getattr(palette, const)}" in DOC, const
    for color, shape in palette.HELD_OUT:
        assert f"{color} {shape}" in DOC
