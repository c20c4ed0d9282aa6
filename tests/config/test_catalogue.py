"""The spec catalogue: required ids, pixel arithmetic, band sanity, satisfiability, lookup and
custom specs."""

from __future__ import annotations

import pytest

from config import catalogue
from config.catalogue import (
    ALIASES,
    BACKGROUND_NAMES,
    COUNTRY_NAMES,
    custom_spec,
    feasible_layout,
    get_spec,
    is_satisfiable,
    list_specs,
    parse_spec_arg,
)
from config.specs import PhotoSpec
from pipeline.errors import BadParameter, UnknownSpec

REQUIRED_IDS = [
    "us-passport",
    "us-visa",
    "icao-35x45",
    "uk-passport",
    "schengen-visa",
    "ca-passport",
    "jp-passport",
    "kr-passport",
    "au-passport",
    "in-visa",
    "cn-passport",
    "cn-exit-entry-digital",
    "cn-visa-online",
    "cn-id-card",
    "cn-1inch",
    "cn-small-1inch",
    "cn-large-1inch",
    "cn-2inch",
    "cn-large-2inch",
    "cn-small-2inch",
]

# Pixel sizes stated by the sources (specs.md section 1), w x h @ dpi.
STATED_PX = {
    "cn-id-card": (358, 441, 350),
    "cn-exit-entry-digital": (354, 472, 300),
    "cn-visa-online": (354, 472, 300),
    "us-visa": (600, 600, 300),
    "us-dv": (600, 600, 300),
    "us-passport": (600, 600, 300),
    "cn-1inch": (295, 413, 300),
    "cn-small-1inch": (260, 378, 300),
    "cn-large-1inch": (390, 567, 300),
    "cn-passport": (390, 567, 300),
    "cn-2inch": (413, 579, 300),
    "cn-large-2inch": (413, 626, 300),
    "cn-small-2inch": (413, 531, 300),
    "icao-35x45": (413, 531, 300),
    "ca-passport": (591, 827, 300),
}

SPECS = list_specs()
IDS = [s.id for s in SPECS]


def test_required_ids_present_and_count() -> None:
    assert len(SPECS) >= 20
    assert len(set(IDS)) == len(IDS)
    for spec_id in REQUIRED_IDS:
        assert spec_id in IDS


def test_ids_are_hyphenated_lower_case() -> None:
    for spec_id in IDS:
        assert spec_id == spec_id.lower() and "_" not in spec_id and " " not in spec_id


@pytest.mark.parametrize("spec_id", sorted(STATED_PX))
def test_stated_pixel_sizes(spec_id: str) -> None:
    spec = get_spec(spec_id)
    assert (spec.width_px, spec.height_px, spec.dpi) == STATED_PX[spec_id]


def test_cn_sizes_in_mm() -> None:
    assert get_spec("cn-passport").size_mm == (33, 48)
    assert get_spec("cn-id-card").size_mm == (26, 32)
    assert get_spec("cn-2inch").size_mm == (35, 49)
    assert get_spec("cn-large-2inch").size_mm == (35, 53)
    assert get_spec("cn-small-2inch").size_mm == (35, 45)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_px_follow_from_mm_and_dpi(spec: PhotoSpec) -> None:
    if spec.width_mm is None or spec.height_mm is None:
        return
    assert spec.width_px == round(spec.width_mm / 25.4 * spec.dpi)
    assert spec.height_px == round(spec.height_mm / 25.4 * spec.dpi)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_fields_are_sane(spec: PhotoSpec) -> None:
    assert spec.name and spec.notes and spec.source
    assert spec.country in COUNTRY_NAMES
    assert spec.format in ("jpeg", "png")
    for band in (spec.head, spec.eye, spec.top_margin):
        if band is not None:
            lo, hi = band
            assert 0 < lo <= hi < 1
    assert spec.backgrounds and spec.default_background in spec.backgrounds
    assert set(spec.backgrounds) <= set(BACKGROUND_NAMES)
    if spec.height_px_range is not None:
        lo, hi = spec.height_px_range
        assert lo <= spec.height_px <= hi
    assert " V" in spec.source or " U" in spec.source


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_kb_window_is_achievable(spec: PhotoSpec) -> None:
    """Some allowed size puts the KB window inside 0.5-2 bits/pixel (JPEG q60-95 portraits)."""
    if spec.kb is None:
        return
    lo_b, hi_b = spec.kb_bytes
    lo_b = lo_b or 0
    hi_b = hi_b or 10**12
    assert lo_b < hi_b
    heights = spec.height_px_range or (spec.height_px, spec.height_px)
    ok = False
    for h in range(heights[0], heights[1] + 1, 8):
        pixels = h * round(h * spec.width_px / spec.height_px)
        lo_bpp, hi_bpp = lo_b * 8 / pixels, hi_b * 8 / pixels
        ok = ok or (lo_bpp <= 2.0 and hi_bpp >= 0.5)
    assert ok, f"{spec.id}: KB window {spec.kb} not reachable at its pixel sizes"


def _brute_force_fits(spec: PhotoSpec, k: float) -> bool:
    """Independent of feasible_layout: grid over head and top margin, eye at k*head below crown."""
    h_lo, h_hi = spec.head
    t_lo, t_hi = spec.top_margin or (0.0, 1.0)
    n = 60
    for i in range(n + 1):
        h = h_lo + (h_hi - h_lo) * i / n
        for j in range(n + 1):
            t = t_lo + (t_hi - t_lo) * j / n
            if t <= 0 or 1 - t - h <= 0:  # hair below the top edge, chin above the bottom
                continue
            e = 1 - t - k * h
            if spec.eye is None or spec.eye[0] <= e <= spec.eye[1]:
                return True
    return False


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_spec_admits_a_real_portrait(spec: PhotoSpec) -> None:
    for k in (0.42, 0.47, 0.52):
        assert _brute_force_fits(spec, k), f"{spec.id}: no layout with eye at {k} of head"
    assert is_satisfiable(spec)
    layout = feasible_layout(spec)
    assert layout is not None
    assert spec.head[0] <= layout.head <= spec.head[1]
    assert layout.top_margin > 0 and layout.chin_margin > 0
    assert layout.top_margin + layout.head + layout.chin_margin == pytest.approx(1.0)
    if spec.top_margin:
        assert spec.top_margin[0] <= layout.top_margin <= spec.top_margin[1]
    if spec.eye:
        assert spec.eye[0] - 1e-9 <= layout.eye <= spec.eye[1] + 1e-9


def test_specific_numbers() -> None:
    us = get_spec("us-visa")
    assert us.kb == (None, 240) and us.height_px_range == (600, 1200)
    assert get_spec("cn-exit-entry-digital").kb == (20, 80)
    assert get_spec("cn-visa-online").kb == (40, 120)
    assert get_spec("in-visa").kb == (10, 1000)
    idc = get_spec("cn-id-card")
    assert idc.kb is None and idc.backgrounds == ("white",)
    assert idc.top_margin is not None and idc.eye is not None
    assert round(idc.top_margin[0] * 441) == 7 and round(idc.top_margin[1] * 441) == 21
    assert 207 <= idc.eye[0] * 441 < 207.1
    cnp = get_spec("cn-passport")
    assert cnp.head[0] * 48 == pytest.approx(28, abs=0.01)
    assert cnp.head[1] * 48 == pytest.approx(33, abs=0.01)
    assert cnp.top_margin is not None
    assert cnp.top_margin[0] * 48 == pytest.approx(3, abs=0.01)
    # chin to bottom >= 7 mm in every combination of the bands
    assert (1 - cnp.top_margin[1] - cnp.head[1]) * 48 >= 7
    assert get_spec("icao-35x45").min_eye_distance_px == 90


def test_list_specs_grouped_by_country() -> None:
    keys = [(s.country != "INT", s.country, s.id) for s in SPECS]
    assert keys == sorted(keys)
    assert SPECS[0].country == "INT"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("us_passport", "us-passport"),
        ("US-Passport", "us-passport"),
        (" cn_id_card ", "cn-id-card"),
        ("icao_generic", "icao-35x45"),
        ("us_ds160", "us-visa"),
        ("cn_passport_mfa", "cn-passport"),
    ],
)
def test_aliases(text: str, expected: str) -> None:
    assert get_spec(text).id == expected
    assert parse_spec_arg(text).id == expected


def test_alias_targets_exist() -> None:
    for target in ALIASES.values():
        assert get_spec(target).id == target


def test_unknown_id_lists_suggestions() -> None:
    with pytest.raises(UnknownSpec) as exc:
        get_spec("us-pasport")
    assert "us-passport" in exc.value.message
    assert "us-passport" in exc.value.details["suggestions"]
    assert exc.value.to_dict()["error"] == "unknown_spec"
    assert isinstance(exc.value, BadParameter)
    with pytest.raises(UnknownSpec) as exc:
        get_spec("zzzzzz")
    assert exc.value.details["suggestions"] == []


def test_custom_spec_mm() -> None:
    spec = custom_spec(width_mm=35, height_mm=45, dpi=300)
    assert (spec.width_px, spec.height_px) == (413, 531)
    assert spec.head == (0.70, 0.80) and spec.default_background == "white"
    assert get_spec(spec.id) == spec  # the id rebuilds the spec


def test_custom_spec_px_and_options() -> None:
    spec = custom_spec(
        width_px=600,
        height_px=600,
        head=(0.5, 0.69),
        eye=(0.56, 0.69),
        background="Light_Blue",
        kb=(None, 240),
    )
    assert spec.size_mm is None and spec.default_background == "light-blue"
    assert parse_spec_arg(spec.id) == spec


@pytest.mark.parametrize(
    ("text", "size", "dpi"),
    [
        ("custom:35x45mm@300", (413, 531), 300),
        ("custom:35x45mm", (413, 531), 300),
        ("CUSTOM: 35x45mm @ 600dpi", (827, 1063), 600),
        ("custom:600x600px", (600, 600), 300),
        ("custom:2x2in@300", (600, 600), 300),
    ],
)
def test_parse_custom(text: str, size: tuple[int, int], dpi: int) -> None:
    spec = parse_spec_arg(text)
    assert (spec.width_px, spec.height_px, spec.dpi) == (*size, dpi)


def test_parse_custom_small_but_valid() -> None:
    assert parse_spec_arg("custom:10x10mm@300").width_px == 118  # 5 mm (59 px) is too small


def test_parse_custom_options() -> None:
    spec = parse_spec_arg("custom:354x472px,head=70-80,top=0.05-0.1,bg=blue,kb=20-80")
    assert spec.head == (0.70, 0.80) and spec.top_margin == (0.05, 0.1)
    assert spec.backgrounds == ("blue",) and spec.kb == (20, 80)
    assert parse_spec_arg("custom:600x600px,kb=240").kb == (None, 240)
    assert parse_spec_arg("custom:600x600px,kb=-240").kb == (None, 240)
    assert parse_spec_arg("custom:600x600px,eye=56%-69%").eye == (0.56, 0.69)


@pytest.mark.parametrize(
    "text",
    [
        "custom:",
        "custom:35mm",
        "custom:35x45cm",
        "custom:35.5x45.5px",
        "custom:35x45mm,head",
        "custom:35x45mm,foo=1",
        "custom:35x45mm,head=0.7",
        "custom:35x45mm,kb=a-b",
        "custom:5x5mm@300",
        "custom:35x45mm@50",
        "custom:5000x600px",
        "custom:600x600px,bg=purple-ish",
        "custom:600x600px,head=0.9-0.95,top=0.1-0.2",
    ],
)
def test_parse_custom_errors(text: str) -> None:
    with pytest.raises(BadParameter) as exc:
        parse_spec_arg(text)
    assert exc.value.message
    assert not isinstance(exc.value, UnknownSpec)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({}, "size"),
        ({"width_mm": 35}, "size"),
        ({"width_px": 600}, "size"),
        ({"width_mm": -35, "height_mm": 45}, "width_mm"),
        ({"width_mm": 35, "height_mm": 0}, "height_mm"),
        ({"width_px": 32, "height_px": 600}, "width_px"),
        ({"width_px": 600, "height_px": 4001}, "height_px"),
        ({"width_mm": 35, "height_mm": 45, "dpi": 71}, "dpi"),
        ({"width_mm": 35, "height_mm": 45, "dpi": 1201}, "dpi"),
        ({"width_mm": 35, "height_mm": 45, "head": (0.8, 0.7)}, "head"),
        ({"width_mm": 35, "height_mm": 45, "head": (0.0, 0.7)}, "head"),
        ({"width_mm": 35, "height_mm": 45, "eye": (0.5, 1.0)}, "eye"),
        ({"width_mm": 35, "height_mm": 45, "top_margin": (0.1,)}, "top_margin"),
        ({"width_mm": 35, "height_mm": 45, "background": "plaid"}, "background"),
        ({"width_mm": 35, "height_mm": 45, "kb": (80, 20)}, "kb"),
        ({"width_mm": 35, "height_mm": 45, "kb": (0, 20)}, "kb"),
        ({"width_mm": 35, "height_mm": 45, "head": (0.7, 0.8), "eye": (0.1, 0.2)}, "geometry"),
    ],
)
def test_custom_spec_validation(kwargs: dict, param: str) -> None:
    with pytest.raises(BadParameter) as exc:
        custom_spec(**kwargs)
    assert exc.value.details.get("param") == param
    assert exc.value.to_dict()["error"] == "bad_parameter"


def test_custom_hex_background_and_name() -> None:
    spec = custom_spec(width_px=300, height_px=400, background="#438EDB", name="exam")
    assert spec.default_background == "#438edb" and spec.name == "exam"


def test_catalogue_module_exports() -> None:
    assert COUNTRY_NAMES["US"] == "United States"
    assert COUNTRY_NAMES["CN"] == "China"
    assert COUNTRY_NAMES["INT"] == "International"
    assert catalogue.spec_ids() == IDS


def test_every_builtin_spec_has_a_chinese_name_and_search_terms() -> None:
    for spec in SPECS:
        assert any("\u4e00" <= ch <= "\u9fff" for ch in spec.name_zh), spec.id
        assert spec.aliases and all(a.strip() == a and a for a in spec.aliases), spec.id
        d = spec.to_dict()
        assert d["name_zh"] == spec.name_zh and d["aliases"] == list(spec.aliases)
    terms = {s.id: set(s.aliases) for s in SPECS}
    assert "身份证" in terms["cn-id-card"] and "社保卡" in terms["cn-id-card"]
    assert "驾驶证" in terms["cn-small-1inch"] and "2x2" in terms["us-passport"]
    assert (
        get_spec("cn-1inch").name_zh == "一寸" and get_spec("schengen-visa").name_zh == "申根签证"
    )


@pytest.mark.parametrize(
    "text",
    [
        "custom:" + "9" * 5000 + "x45mm",
        "custom:35x45mm@" + "3" * 5000,
        "custom:35x45mm,kb=-" + "1" * 5000,
        "us-passport" + " " * 100_000 + "x",
        "no-such-spec-" + "z" * 400_000,
    ],
    ids=["width", "dpi", "kb", "spaces", "long-id"],
)
def test_overlong_spec_is_a_bad_parameter_without_echo(text: str) -> None:
    # int() of more than 4,300 digits raises ValueError, which the API answered with a 500.
    with pytest.raises(BadParameter) as exc:
        parse_spec_arg(text)
    assert exc.value.code == "bad_parameter"
    assert len(str(exc.value)) < 200
