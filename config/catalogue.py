"""The spec catalogue: every built-in ID/passport/visa photo spec, lookup, and custom specs.

Numbers come from ``shared/specs.md``; each spec's ``source`` names the ``[S#]`` tags and the
status (V = read on an official page or in the tool's own repository, U = secondary copies
only). All geometry is a fraction of the photo height H (see ``config/specs.py``):

- ``head``: chin to crown (top of hair);
- ``eye``: eye line measured from the *bottom* edge;
- ``top_margin``: crown to the top edge.

Where a source gives no number for the head, the trade convention "head about 2/3 of H" is used
as the band (0.60, 0.72) and the spec's ``notes`` say so. Every spec is checked at import time to
admit a real portrait layout (``feasible_layout``): a head whose eye line sits 0.42-0.52 of the
head height below the crown, a top margin > 0 and the chin above the bottom edge.

Public API: ``get_spec``, ``list_specs``, ``spec_ids``, ``custom_spec``, ``parse_spec_arg``,
``feasible_layout``, ``is_satisfiable``, ``validate_spec``, ``COUNTRY_NAMES``, ``ALIASES``,
``BACKGROUND_NAMES``.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import replace
from typing import NamedTuple

from config.specs import PhotoSpec, mm_to_px
from pipeline.errors import BadParameter, UnknownSpec

COUNTRY_NAMES: dict[str, str] = {
    "INT": "International",
    "AU": "Australia",
    "CA": "Canada",
    "CN": "China",
    "DE": "Germany",
    "EU": "Schengen area",
    "GB": "United Kingdom",
    "IN": "India",
    "JP": "Japan",
    "KR": "South Korea",
    "US": "United States",
}

# Background names a spec may list (hyphenated, lower case). The RGB values live with the
# colour table of the renderer; specs.md section 2 gives the sourced values.
BACKGROUND_NAMES: tuple[str, ...] = (
    "white",
    "off-white",
    "cream",
    "light-grey",
    "light-blue",
    "blue",
    "dark-blue",
    "red",
)

_HEX_COLOUR = re.compile(r"^#[0-9a-f]{6}$")

# Head model used by the satisfiability check: the eye line sits this fraction of the head
# height (chin to crown, hair included) below the crown, give or take the tolerance.
EYE_FROM_CROWN = 0.47
EYE_FROM_CROWN_TOL = 0.05
# A layout needs some air above the hair and some neck/shoulders below the chin.
MIN_TOP_MARGIN = 0.01
MIN_CHIN_MARGIN = 0.05

# Trade convention "head about 2/3 of H" used where a source gives no head number.
_TRADE_HEAD = (0.60, 0.72)
# HivisionIDPhotos generator default: crown to top 10-12 % of H ([S25], tool convention).
_HIVISION_TOP = (0.10, 0.12)
_TRADE_BACKGROUNDS = ("white", "blue", "red", "light-blue", "light-grey")


def _band(lo_mm: float, hi_mm: float, height_mm: float) -> tuple[float, float]:
    """A mm band as fractions of H, rounded inwards to 4 decimals (never looser than the source)."""
    return (
        math.ceil(lo_mm / height_mm * 10_000) / 10_000,
        math.floor(hi_mm / height_mm * 10_000) / 10_000,
    )


def _pxband(lo_px: float, hi_px: float, height_px: int) -> tuple[float, float]:
    return _band(lo_px, hi_px, height_px)


def _print(
    spec_id: str,
    name: str,
    country: str,
    width_mm: float,
    height_mm: float,
    dpi: int = 300,
    **kw: object,
) -> PhotoSpec:
    """A printed spec: pixels follow from mm and dpi (``mm_to_px``)."""
    kw.setdefault("tags", ("print",))
    return PhotoSpec(
        id=spec_id,
        name=name,
        country=country,
        width_px=mm_to_px(width_mm, dpi),
        height_px=mm_to_px(height_mm, dpi),
        dpi=dpi,
        width_mm=width_mm,
        height_mm=height_mm,
        **kw,  # type: ignore[arg-type]
    )


def _digital(
    spec_id: str,
    name: str,
    country: str,
    width_px: int,
    height_px: int,
    dpi: int = 300,
    **kw: object,
) -> PhotoSpec:
    """A digital (upload) spec: pixel size given by the source, no print size."""
    kw.setdefault("tags", ("digital",))
    return PhotoSpec(
        id=spec_id,
        name=name,
        country=country,
        width_px=width_px,
        height_px=height_px,
        dpi=dpi,
        **kw,  # type: ignore[arg-type]
    )


_US_NOTES = (
    "Full face, facing the camera, neutral expression, both eyes open; taken within 6 months; "
    "colour. No glasses since Nov 2016 unless medical."
)
_ICAO_BGS = ("white", "off-white", "light-grey", "cream", "light-blue")

_SPECS: tuple[PhotoSpec, ...] = (
    # ---------------------------------------------------------------- international
    _print(
        "icao-35x45",
        "ICAO 9303-style portrait 35x45 mm",
        "INT",
        35,
        45,
        head=(0.70, 0.80),
        eye=(0.50, 0.70),
        backgrounds=_ICAO_BGS,
        min_eye_distance_px=90,
        notes=(
            "ICAO sets no print size; 35x45 mm is the common ICAO-style format. Head 70-80 % "
            "of H (ICAO guidelines as quoted); eye line 50-70 % from the bottom (ISO/IEC "
            "19794-5 geometry). Inter-eye distance >= 90 px is a recommendation. Plain, "
            "light, uniform background; frontal; neutral expression; no glare or shadows."
        ),
        source="[S38][S36][S37][S9][S10] U (ICAO text only available as quotes)",
    ),
    # ---------------------------------------------------------------- United States
    _print(
        "us-passport",
        "US passport 2x2 in (print)",
        "US",
        50.8,
        50.8,
        head=(0.50, 0.6875),
        eye=(0.5625, 0.6875),
        backgrounds=("white", "off-white"),
        notes=(
            "2x2 in (51x51 mm). Head 1-1 3/8 in, eye line 1 1/8-1 3/8 in from the bottom. "
            + _US_NOTES
            + " Online renewal uploads (JPEG 54 KB-10 MB, U [S40]) are not modelled here."
        ),
        source="[S2] V (size, head, background); [S3] U (eye line); [S5] U (glasses)",
    ),
    _digital(
        "us-visa",
        "US visa DS-160 digital photo",
        "US",
        600,
        600,
        head=(0.50, 0.69),
        eye=(0.56, 0.69),
        backgrounds=("white", "off-white"),
        kb=(None, 240),
        height_px_range=(600, 1200),
        notes=(
            "DS-160/CEAC upload: square JPEG (JFIF), 600x600 up to 1200x1200 px, <= 240 KB, "
            "compression <= 20:1, 24-bit sRGB. " + _US_NOTES
        ),
        source="[S1] V (file rules); [S4] U (geometry, several copies agree); [S5] U",
    ),
    _digital(
        "us-dv",
        "US Diversity Visa (DV lottery) photo",
        "US",
        600,
        600,
        head=(0.50, 0.69),
        eye=(0.56, 0.69),
        backgrounds=("white", "off-white"),
        kb=(None, 240),
        notes=(
            "E-DV entry: square 600x600 px JPEG, <= 240 KB, 24-bit colour (no greyscale). "
            "Older instructions state 600x600 exactly; newer copies allow up to 1200x1200, "
            "kept at 600x600 here to satisfy both. No glasses; no head covering except "
            "religious."
        ),
        source="[S4] U (DV instructions quoted by >= 4 independent pages); [S5] U",
    ),
    # ---------------------------------------------------------------- Europe
    _print(
        "uk-passport",
        "UK passport (print)",
        "GB",
        35,
        45,
        head=_band(29, 34, 45),
        backgrounds=("light-grey", "cream"),
        default_background="light-grey",
        notes=(
            "Head 29-34 mm crown to chin. Plain cream or light grey background. Professionally "
            "printed, taken within the last month, unaltered; neutral expression, mouth "
            "closed; no shadows, red-eye, tinted glasses or glare. The online (digital) route "
            "asks for an uncropped photo >= 600x750 px and is not modelled."
        ),
        source="[S6] U (gov.uk wording copied on gov.tc and studio pages)",
    ),
    _print(
        "schengen-visa",
        "Schengen visa 35x45 mm",
        "EU",
        35,
        45,
        head=_band(32, 36, 45),
        backgrounds=("light-grey", "white", "off-white"),
        default_background="light-grey",
        notes=(
            "ICAO-based; consulate-specific. Face 70-80 % = 32-36 mm. Some consulates also "
            "accept 30x40 or 35x40 mm; one page asks for >= 2 mm above the head (U). Light "
            "grey is the default because some member states refuse pure white. Digital "
            "limits differ by portal (VFS/TLS), so none are set."
        ),
        source="[S9] U",
    ),
    _print(
        "de-biometric",
        "Germany passport / ID card (biometric)",
        "DE",
        35,
        45,
        dpi=600,
        head=_band(32, 36, 45),
        eye=_band(22, 32, 45),
        backgrounds=("light-grey", "white", "off-white"),
        default_background="light-grey",
        notes=(
            "Chin to crown 32-36 mm (70-80 %); BMI measures the crown without hair and rejects "
            "only < 27 or > 40 mm, so the hair-inclusive band here is conservative. Eye band "
            "22-32 mm from a template blog (U). Print >= 600 dpi. Since 1 May 2025 German "
            "offices take photos digitally (office or registered photographer's cloud); "
            "paper photos only until 31 Jul 2025."
        ),
        source="[S10] U (geometry as quoted from BMI); V (digital-only rule)",
    ),
    # ---------------------------------------------------------------- Americas / Asia-Pacific
    _print(
        "ca-passport",
        "Canada passport (print)",
        "CA",
        50,
        70,
        head=_band(31, 36, 70),
        backgrounds=("white", "off-white", "light-grey", "cream", "light-blue"),
        notes=(
            "50x70 mm; chin to natural top of head 31-36 mm. Plain white or light-coloured "
            "background with clear contrast. Taken by a commercial photographer, studio name "
            "and date on the back."
        ),
        source="[S8] U",
    ),
    _print(
        "jp-passport",
        "Japan passport",
        "JP",
        35,
        45,
        head=_band(32, 36, 45),
        top_margin=_band(2, 6, 45),
        backgrounds=("white", "off-white", "light-grey", "light-blue", "cream"),
        notes=(
            "Head 34 +/- 2 mm (70-80 %), crown to top 4 +/- 2 mm. Plain light background, "
            "uniform, no gradient, contrasting with face and hair. No smile showing teeth; "
            "nothing in the eye area."
        ),
        source="[S11] V (pref.miyazaki.lg.jp, emb-japan.go.jp)",
    ),
    _print(
        "kr-passport",
        "South Korea passport",
        "KR",
        35,
        45,
        head=_band(32, 36, 45),
        backgrounds=("white",),
        notes=(
            "Head 32-36 mm crown to chin; uniform white background (older rules allowed pale "
            "sky-blue or beige, and an eye band of 22-32 mm with a smaller head, not used). "
            "Ears and face outline visible; no tinted lenses; mouth closed."
        ),
        source="[S12] U",
    ),
    _print(
        "au-passport",
        "Australia passport",
        "AU",
        35,
        45,
        head=_band(32, 36, 45),
        backgrounds=("white", "light-grey"),
        notes=(
            "Accepted size is 35-40 x 45-50 mm; 35x45 is used. Head 32-36 mm chin to crown. "
            "Plain white or light grey, contrasting with the face. Colour gloss print taken "
            "within 6 months."
        ),
        source="[S13] U",
    ),
    _print(
        "in-visa",
        "India visa 2x2 in / e-Visa upload",
        "IN",
        50.8,
        50.8,
        head=_band(25, 35, 50.8),
        eye=_band(28, 35, 50.8),
        backgrounds=("white", "off-white", "light-grey", "cream"),
        kb=(10, 1000),
        height_px_range=(350, 1000),
        tags=("print", "digital"),
        notes=(
            "51x51 mm (2x2 in); head 25-35 mm; eye line 28-35 mm from the bottom. e-Visa "
            "upload: square JPEG, 10 KB-1 MB; the pixel range 350x350-1000x1000 comes from "
            "older instructions (current wording only says height = width)."
        ),
        source="[S14] U",
    ),
    _print(
        "in-oci",
        "India OCI card",
        "IN",
        50.8,
        50.8,
        head=(0.70, 0.80),
        backgrounds=("light-grey", "off-white", "cream"),
        default_background="light-grey",
        kb=(None, 200),
        height_px_range=(200, 900),
        tags=("print", "digital"),
        notes=(
            "51x51 mm square; head reported as 70-80 % (U). Sources conflict: one says the "
            "background must not be white, so only light non-white colours are allowed here. "
            "Upload limits disagree (<= 200 KB; 200x200 up to 900x900 or 1500x1500 px); the "
            "stricter reading is used."
        ),
        source="[S15] U (sources conflict)",
    ),
    # ---------------------------------------------------------------- China, official
    _print(
        "cn-passport",
        "China passport / visa 33x48 mm (MFA)",
        "CN",
        33,
        48,
        head=_band(28, 33, 48),
        top_margin=_band(3, 5, 48),
        backgrounds=("white",),
        kb=(30, 80),
        notes=(
            "China e-passport at overseas missions and China visa on paper: 33x48 mm, head "
            "28-33 mm, head width 15-22 mm, crown to top 3-5 mm, chin to bottom >= 7 mm (always "
            "met by the head and top bands). White or near-white, no border. Tilt <= 20 deg "
            "left/right, <= 25 deg up/down; ears visible; lips closed. Digital copy JPEG "
            "30-80 KB (U). The MFA page has the typo '20 mm to 33 mm'."
        ),
        source="[S18] V (visa rules, fmcoprc.gov.hk); U (28-33 mm, KB limits); [S19] V",
    ),
    _digital(
        "cn-exit-entry-digital",
        "China exit-entry documents, digital (MPS)",
        "CN",
        354,
        472,
        head=(0.70, 0.80),
        top_margin=_pxband(25, 45, 472),
        backgrounds=("white", "light-grey", "light-blue"),
        kb=(20, 80),
        height_px_range=(472, 640),
        notes=(
            "MPS guide for passports, HK/Macau/Taiwan permits: 354-480 x 472-640 px, 3:4 "
            "(354x472 = the 30x40 mm effective area at 300 dpi; paper is 33x48 mm, see "
            "cn-passport). Head 70-80 % of H. JPEG 24-bit, 20-80 KB, quality >= 85 in one "
            "copy. Top margin 25-45 px of 472 from a regional standard [S22] (the MPS copies "
            "give a garbled '12-35'). Light grey: lightness >= 198/240; light blue: hue 135, "
            "saturation 240, lightness >= 167/240. Dark collared clothing recommended."
        ),
        source="[S17] U (several consistent copies); [S22] U (top margin)",
    ),
    _digital(
        "cn-visa-online",
        "China visa online application (COVA)",
        "CN",
        354,
        472,
        head=_band(28, 33, 48),
        eye=(round(256 / 472, 4), 0.75),
        top_margin=_pxband(10, 70, 472),
        backgrounds=("white", "off-white"),
        kb=(40, 120),
        height_px_range=(472, 560),
        min_eye_distance_px=61,
        notes=(
            "354x472 up to 420x560 px, JPEG 40-120 KB, 24-bit RGB. Eye line > 256 px and crown "
            "10-70 px from the top at 354x472; inter-eye distance > 60 px. Head band is the "
            "paper rule 28-33 mm of 48 (no px number given); the eye band's upper end (0.75) "
            "is not sourced and never binds. 40 KB at 354x472 needs high JPEG quality; the "
            "encoder may upscale to 420x560."
        ),
        source="[S20] U",
    ),
    _print(
        "cn-id-card",
        "China resident ID card (GA 461-2004)",
        "CN",
        26,
        32,
        dpi=350,
        head=_TRADE_HEAD,
        eye=(round(207 / 441, 4), 0.75),
        top_margin=_pxband(7, 21, 441),
        backgrounds=("white",),
        notes=(
            "358x441 px at 350 dpi (26x32 mm). Crown (hairline) to top 7-21 px; eye line >= "
            "207 px from the bottom (wins over the top margin: tall hair may be cropped); "
            "head about 2/3 of H (band 0.60-0.72 is a default), face width 207 +/- 14 px. "
            "Pure white, no border; bottom edge at the collarbone. JPEG quality 70, which "
            "typically gives 14-20 KB (residence permits 14-30 KB): a typical result, not a "
            "hard limit, so no KB window is set. The eye band's upper end (0.75) is not "
            "sourced and never binds."
        ),
        source="[S21] U (GA 461 text copied consistently on >= 6 pages)",
    ),
    # ---------------------------------------------------------------- China, trade sizes
    _print(
        "cn-1inch",
        "1 inch (一寸)",
        "CN",
        25,
        35,
        head=_TRADE_HEAD,
        top_margin=_HIVISION_TOP,
        backgrounds=_TRADE_BACKGROUNDS,
        tags=("print", "trade"),
        notes=(
            "Trade size, no national standard. Head about 2/3 of H (default band 0.60-0.72); "
            "crown to top 10-12 % is the HivisionIDPhotos generator default, not a rule. "
            "Background by use: white (documents), blue (certificates, CVs), red."
        ),
        source="[S25][S26] V (tool convention); [S32] U (head 2/3)",
    ),
    _print(
        "cn-small-1inch",
        "Small 1 inch (小一寸) / driving licence",
        "CN",
        22,
        32,
        head=_TRADE_HEAD,
        top_margin=_HIVISION_TOP,
        backgrounds=_TRADE_BACKGROUNDS,
        tags=("print", "trade"),
        notes=(
            "Trade size, also the driving-licence size (white background, head about 2/3 of "
            "H). Head band 0.60-0.72 and crown to top 10-12 % are defaults."
        ),
        source="[S25][S26] V (tool convention); [S32] U (driving licence)",
    ),
    _print(
        "cn-large-1inch",
        "Large 1 inch (大一寸)",
        "CN",
        33,
        48,
        head=_TRADE_HEAD,
        top_margin=_HIVISION_TOP,
        backgrounds=_TRADE_BACKGROUNDS,
        tags=("print", "trade"),
        notes=(
            "Trade size, same size as the passport photo (MPS/police texts call 33x48 mm "
            "'小二寸'). Head band 0.60-0.72 and crown to top 10-12 % are defaults; for a "
            "passport use cn-passport."
        ),
        source="[S25][S26] V (tool convention)",
    ),
    _print(
        "cn-2inch",
        "2 inch (二寸)",
        "CN",
        35,
        49,
        head=_TRADE_HEAD,
        top_margin=_HIVISION_TOP,
        backgrounds=_TRADE_BACKGROUNDS,
        tags=("print", "trade"),
        notes=(
            "Trade size 35x49 mm. Naming clash: HivisionIDPhotos labels 413x626 (35x53 mm) "
            "as 二寸; see cn-large-2inch. Head band 0.60-0.72 and crown to top 10-12 % are "
            "defaults."
        ),
        source="[S26][S29] V (tool convention; tools disagree)",
    ),
    _print(
        "cn-large-2inch",
        "Large 2 inch (大二寸)",
        "CN",
        35,
        53,
        head=_TRADE_HEAD,
        top_margin=_HIVISION_TOP,
        backgrounds=_TRADE_BACKGROUNDS,
        tags=("print", "trade"),
        notes=(
            "Trade size 35x53 mm (one tool uses 38x53). Head band 0.60-0.72 and crown to top "
            "10-12 % are defaults."
        ),
        source="[S25][S26] V (tool convention)",
    ),
    _print(
        "cn-small-2inch",
        "Small 2 inch (小二寸)",
        "CN",
        35,
        45,
        head=_TRADE_HEAD,
        top_margin=_HIVISION_TOP,
        backgrounds=_TRADE_BACKGROUNDS,
        tags=("print", "trade"),
        notes=(
            "Trade size 35x45 mm (tools); the MPS/passport texts use '小二寸' for 33x48 mm. "
            "Head band 0.60-0.72 and crown to top 10-12 % are defaults."
        ),
        source="[S25][S26] V (tool convention)",
    ),
)

# Chinese names and search terms (English and Chinese) per spec. The Chinese tool presets of
# specs.md section 1 (社保卡, 电子驾驶证, 教师资格证 ...) are search terms of the spec with the same
# pixel size.
_SEARCH: dict[str, tuple[str, tuple[str, ...]]] = {
    "icao-35x45": (
        "ICAO 标准证件照 35×45 毫米",
        ("icao", "passport", "biometric", "35x45", "护照", "国际标准", "生物识别"),
    ),
    "us-passport": (
        "美国护照",
        ("passport", "usa", "united states", "america", "2x2", "2x2 inch", "51x51", "美国", "护照"),
    ),
    "us-visa": (
        "美国签证（DS-160）",
        ("visa", "ds-160", "ds160", "2x2", "600x600", "美国", "签证", "美签", "美国签证"),
    ),
    "us-dv": (
        "美国多元化移民签证（绿卡抽签）",
        ("dv", "dv lottery", "green card", "visa", "600x600", "美国", "绿卡", "绿卡抽签", "签证"),
    ),
    "uk-passport": (
        "英国护照",
        ("passport", "uk", "united kingdom", "britain", "gb", "35x45", "英国", "护照"),
    ),
    "schengen-visa": (
        "申根签证",
        ("visa", "schengen", "eu", "europe", "35x45", "申根", "签证", "欧洲签证"),
    ),
    "de-biometric": (
        "德国护照/身份证（生物识别）",
        (
            "passport",
            "id card",
            "germany",
            "reisepass",
            "personalausweis",
            "biometric",
            "35x45",
            "德国",
            "护照",
            "身份证",
        ),
    ),
    "ca-passport": ("加拿大护照", ("passport", "canada", "50x70", "加拿大", "护照")),
    "jp-passport": ("日本护照", ("passport", "japan", "35x45", "日本", "护照")),
    "kr-passport": ("韩国护照", ("passport", "korea", "south korea", "35x45", "韩国", "护照")),
    "au-passport": ("澳大利亚护照", ("passport", "australia", "35x45", "澳大利亚", "澳洲", "护照")),
    "in-visa": (
        "印度签证",
        ("visa", "e-visa", "india", "2x2", "51x51", "印度", "签证", "印度签证"),
    ),
    "in-oci": ("印度海外公民卡（OCI）", ("oci", "overseas citizen", "india", "2x2", "印度")),
    "cn-passport": (
        "中国护照/签证（33×48 毫米）",
        ("passport", "visa", "china", "33x48", "中国", "护照", "中国护照", "签证", "中国签证"),
    ),
    "cn-exit-entry-digital": (
        "出入境证件数字相片（护照、港澳台通行证）",
        (
            "passport",
            "exit-entry",
            "hong kong macau permit",
            "china",
            "354x472",
            "出入境",
            "护照",
            "港澳通行证",
            "台湾通行证",
            "数字相片",
        ),
    ),
    "cn-visa-online": (
        "中国签证在线申请（COVA）",
        ("visa", "online", "cova", "china", "354x472", "中国签证", "签证", "在线申请"),
    ),
    "cn-id-card": (
        "中国居民身份证",
        (
            "id card",
            "resident identity card",
            "social security card",
            "china",
            "358x441",
            "身份证",
            "居民身份证",
            "二代身份证",
            "社保卡",
            "居住证",
        ),
    ),
    "cn-1inch": (
        "一寸",
        (
            "1 inch",
            "one inch",
            "25x35",
            "295x413",
            "一寸",
            "1寸",
            "教师资格证",
            "初级会计",
            "日本签证",
        ),
    ),
    "cn-small-1inch": (
        "小一寸（驾驶证）",
        (
            "small 1 inch",
            "driving licence",
            "driver's license",
            "22x32",
            "260x378",
            "小一寸",
            "驾驶证",
            "驾照",
            "电子驾驶证",
        ),
    ),
    "cn-large-1inch": (
        "大一寸",
        ("large 1 inch", "33x48", "390x567", "大一寸", "计算机等级"),
    ),
    "cn-2inch": ("二寸", ("2 inch", "two inch", "35x49", "413x579", "二寸", "2寸")),
    "cn-large-2inch": ("大二寸", ("large 2 inch", "35x53", "413x626", "大二寸")),
    "cn-small-2inch": ("小二寸", ("small 2 inch", "35x45", "413x531", "小二寸", "韩国签证")),
}
_SPECS = tuple(replace(s, name_zh=_SEARCH[s.id][0], aliases=_SEARCH[s.id][1]) for s in _SPECS)

# Other names accepted by ``get_spec`` (besides case and '_' for '-'): the specs.md row ids and
# a few common spellings.
ALIASES: dict[str, str] = {
    "icao": "icao-35x45",
    "icao-generic": "icao-35x45",
    "ds-160": "us-visa",
    "ds160": "us-visa",
    "us-ds160": "us-visa",
    "dv": "us-dv",
    "dv-lottery": "us-dv",
    "uk-passport-print": "uk-passport",
    "gb-passport": "uk-passport",
    "schengen": "schengen-visa",
    "de-passport": "de-biometric",
    "cn-passport-mfa": "cn-passport",
    "cn-passport-legacy": "cn-passport",
    "cn-visa": "cn-passport",
    "cn-passport-mps": "cn-exit-entry-digital",
    "cn-id": "cn-id-card",
}


class Layout(NamedTuple):
    """A concrete placement satisfying a spec's bands (fractions of H)."""

    head: float  # chin to crown
    top_margin: float  # crown to top edge
    eye: float  # eye line from the bottom edge
    chin_margin: float  # chin to bottom edge


def feasible_layout(spec: PhotoSpec, eye_from_crown: float = EYE_FROM_CROWN) -> Layout | None:
    """A layout meeting ``spec``'s head, eye and top-margin bands, or None if there is none.

    Head model: the eye line sits ``eye_from_crown`` x head height below the crown. A spec
    without a top-margin band still needs ``MIN_TOP_MARGIN`` of air above the hair, and every
    layout keeps ``MIN_CHIN_MARGIN`` below the chin. Among feasible layouts the one with the head
    nearest the middle of its band is returned, with the top margin centred in what remains.
    """
    h_lo, h_hi = spec.head
    t_lo, t_hi = spec.top_margin if spec.top_margin else (0.0, 1.0)
    t_lo = max(t_lo, MIN_TOP_MARGIN)
    best: tuple[float, Layout] | None = None
    steps = 200
    h_mid = (h_lo + h_hi) / 2
    for i in range(steps + 1):
        h = h_lo + (h_hi - h_lo) * i / steps
        lo, hi = t_lo, min(t_hi, 1.0 - h - MIN_CHIN_MARGIN)
        if spec.eye:
            # eye from bottom e = 1 - t - k*h must lie in [e_lo, e_hi]
            lo = max(lo, 1.0 - eye_from_crown * h - spec.eye[1])
            hi = min(hi, 1.0 - eye_from_crown * h - spec.eye[0])
        if lo > hi + 1e-12:
            continue
        t = (lo + hi) / 2
        cost = abs(h - h_mid)
        if best is None or cost < best[0]:
            best = (cost, Layout(h, t, 1.0 - t - eye_from_crown * h, 1.0 - t - h))
    return best[1] if best else None


def is_satisfiable(spec: PhotoSpec) -> bool:
    """True if a layout exists for every head proportion in EYE_FROM_CROWN +/- the tolerance."""
    ks = [EYE_FROM_CROWN + EYE_FROM_CROWN_TOL * (j / 5 - 1) for j in range(11)]
    return all(feasible_layout(spec, k) is not None for k in ks)


def _check_band(label: str, band: tuple[float, float] | None) -> None:
    if band is None:
        return
    try:
        lo, hi = band
        ok = 0.0 < float(lo) <= float(hi) < 1.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise BadParameter(
            f"{label} band must be two fractions of the photo height with 0 < lo <= hi < 1, "
            f"got {band!r}.",
            param=label,
        )


def _check_background(name: str, label: str = "background") -> None:
    if name not in BACKGROUND_NAMES and not _HEX_COLOUR.match(name):
        raise BadParameter(
            f"Unknown {label} {name!r}: use one of {', '.join(BACKGROUND_NAMES)} or #rrggbb.",
            param=label,
        )


def validate_spec(spec: PhotoSpec) -> PhotoSpec:
    """Check a spec's values and geometry; return it unchanged or raise ``BadParameter``."""
    for label, px in (("width_px", spec.width_px), ("height_px", spec.height_px)):
        if not isinstance(px, int) or not 64 <= px <= 4000:
            raise BadParameter(f"{label} must be an integer in 64..4000, got {px!r}.", param=label)
    if not isinstance(spec.dpi, int) or not 72 <= spec.dpi <= 1200:
        raise BadParameter(f"dpi must be an integer in 72..1200, got {spec.dpi!r}.", param="dpi")
    for label, mm in (("width_mm", spec.width_mm), ("height_mm", spec.height_mm)):
        if mm is not None and not (isinstance(mm, int | float) and 0 < mm < 1000):
            raise BadParameter(f"{label} must be a positive size in mm, got {mm!r}.", param=label)
    _check_band("head", spec.head)
    _check_band("eye", spec.eye)
    _check_band("top_margin", spec.top_margin)
    if not spec.backgrounds:
        raise BadParameter("A spec needs at least one background.", param="background")
    for bg in spec.backgrounds:
        _check_background(bg)
    if spec.default_background not in spec.backgrounds:
        raise BadParameter(
            f"Default background {spec.default_background!r} is not among {spec.backgrounds}.",
            param="background",
        )
    if spec.kb is not None:
        lo, hi = spec.kb
        if (
            (lo is not None and lo < 1)
            or (hi is not None and hi < 1)
            or (lo is None and hi is None)
        ):
            raise BadParameter(f"kb window must hold positive sizes, got {spec.kb!r}.", param="kb")
        if lo is not None and hi is not None and lo * 1.024 > hi:
            raise BadParameter(f"kb window is empty: {spec.kb!r}.", param="kb")
    if spec.height_px_range is not None:
        r_lo, r_hi = spec.height_px_range
        if not 64 <= r_lo <= spec.height_px <= r_hi <= 4000:
            raise BadParameter(
                f"height_px_range {spec.height_px_range!r} must contain height_px "
                f"{spec.height_px} and lie in 64..4000.",
                param="height_px_range",
            )
    if spec.format not in ("jpeg", "png"):
        raise BadParameter(f"format must be jpeg or png, got {spec.format!r}.", param="format")
    if not is_satisfiable(spec):
        raise BadParameter(
            f"Spec {spec.id!r}: no portrait fits head {spec.head}, eye {spec.eye}, top margin "
            f"{spec.top_margin} (fractions of H) with the hair below the top edge and the chin "
            "above the bottom edge.",
            param="geometry",
        )
    return spec


_BY_ID: dict[str, PhotoSpec] = {}
for _spec in _SPECS:
    if _spec.id in _BY_ID:  # pragma: no cover - catalogue authoring error
        raise RuntimeError(f"duplicate spec id {_spec.id}")
    _BY_ID[validate_spec(_spec).id] = _spec
for _alias, _target in ALIASES.items():  # pragma: no cover - catalogue authoring error
    if _target not in _BY_ID:
        raise RuntimeError(f"alias {_alias} -> unknown {_target}")


def _normalise(spec_id: str) -> str:
    return spec_id.strip().lower().replace("_", "-").replace(" ", "-")


def spec_ids() -> list[str]:
    """All built-in spec ids, in ``list_specs`` order."""
    return [s.id for s in list_specs()]


def get_spec(spec_id: str) -> PhotoSpec:
    """The built-in spec with this id or alias (case-insensitive, '_' accepted for '-').

    A ``custom:...`` text (the id of a spec made by ``custom_spec``) is parsed with
    ``parse_spec_arg``, so a job that stored ``spec.id`` can rebuild its spec. Raises
    ``UnknownSpec`` whose message and ``details["suggestions"]`` list close matches.
    """
    if not isinstance(spec_id, str):
        raise UnknownSpec(f"Spec id must be a string, got {spec_id!r}.", spec=repr(spec_id))
    key = _normalise(spec_id)
    if key.startswith("custom:"):
        return parse_spec_arg(spec_id)
    key = ALIASES.get(key, key)
    spec = _BY_ID.get(key)
    if spec is not None:
        return spec
    names = list(_BY_ID) + list(ALIASES)
    close = difflib.get_close_matches(key, names, n=5, cutoff=0.5)
    suggestions: list[str] = []
    for name in close:
        target = ALIASES.get(name, name)
        if target not in suggestions:
            suggestions.append(target)
    hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
    raise UnknownSpec(
        f"Unknown spec {spec_id!r}.{hint}",
        spec=spec_id,
        suggestions=suggestions,
    )


def list_specs() -> list[PhotoSpec]:
    """All built-in specs, grouped by country (international first, then by code), then by id."""
    return sorted(_SPECS, key=lambda s: (s.country != "INT", s.country, s.id))


def _fmt(x: float) -> str:
    return f"{x:g}"


def _custom_id(
    width: float,
    height: float,
    unit: str,
    dpi: int,
    head: tuple[float, float],
    eye: tuple[float, float] | None,
    top_margin: tuple[float, float] | None,
    background: str,
    kb: tuple[int | None, int | None] | None,
) -> str:
    text = f"custom:{_fmt(width)}x{_fmt(height)}{unit}@{dpi}"
    opts = []
    if head != (0.70, 0.80):
        opts.append(f"head={_fmt(head[0])}-{_fmt(head[1])}")
    if eye:
        opts.append(f"eye={_fmt(eye[0])}-{_fmt(eye[1])}")
    if top_margin:
        opts.append(f"top={_fmt(top_margin[0])}-{_fmt(top_margin[1])}")
    if background != "white":
        opts.append(f"bg={background}")
    if kb:
        opts.append(f"kb={kb[0] or ''}-{kb[1] or ''}")
    return ",".join([text, *opts])


def _as_band(label: str, band: object) -> tuple[float, float] | None:
    if band is None:
        return None
    if not isinstance(band, tuple | list) or len(band) != 2:
        raise BadParameter(f"{label} must be a (lo, hi) pair, got {band!r}.", param=label)
    try:
        result = (float(band[0]), float(band[1]))
    except (TypeError, ValueError):
        raise BadParameter(f"{label} must hold two numbers, got {band!r}.", param=label) from None
    _check_band(label, result)
    return result


def custom_spec(
    *,
    width_mm: float | None = None,
    height_mm: float | None = None,
    dpi: int = 300,
    width_px: int | None = None,
    height_px: int | None = None,
    head: tuple[float, float] = (0.70, 0.80),
    eye: tuple[float, float] | None = None,
    top_margin: tuple[float, float] | None = None,
    background: str = "white",
    kb: tuple[int | None, int | None] | None = None,
    name: str = "custom",
) -> PhotoSpec:
    """A user-defined spec, validated; raises ``BadParameter`` with a clear message.

    Give the size either in mm (``width_mm`` and ``height_mm``; pixels follow from ``dpi``) or
    in pixels (``width_px`` and ``height_px``); if both are given the pixels win and the mm are
    kept as the print size. Pixels must be 64..4000, dpi 72..1200, bands fractions of H with
    0 < lo <= hi < 1, and the bands together must admit a real portrait (``is_satisfiable``).
    ``kb`` is (min, max) with either end None. The id is the ``parse_spec_arg`` text that
    rebuilds the spec (e.g. ``custom:35x45mm@300,bg=blue``).
    """
    if not isinstance(dpi, int) or isinstance(dpi, bool) or not 72 <= dpi <= 1200:
        raise BadParameter(f"dpi must be an integer in 72..1200, got {dpi!r}.", param="dpi")
    mm_given = [v is not None for v in (width_mm, height_mm)]
    px_given = [v is not None for v in (width_px, height_px)]
    if any(mm_given) and not all(mm_given):
        raise BadParameter("Give both width_mm and height_mm.", param="size")
    if any(px_given) and not all(px_given):
        raise BadParameter("Give both width_px and height_px.", param="size")
    if not any(mm_given) and not any(px_given):
        raise BadParameter(
            "Give a size: width_mm and height_mm, or width_px and height_px.", param="size"
        )
    if all(mm_given):
        for label, mm in (("width_mm", width_mm), ("height_mm", height_mm)):
            if not isinstance(mm, int | float) or isinstance(mm, bool) or not 0 < mm < 1000:
                raise BadParameter(
                    f"{label} must be a positive size in mm below 1000, got {mm!r}.", param=label
                )
    if all(px_given):
        for label, px in (("width_px", width_px), ("height_px", height_px)):
            if not isinstance(px, int) or isinstance(px, bool) or not 64 <= px <= 4000:
                raise BadParameter(
                    f"{label} must be an integer in 64..4000, got {px!r}.", param=label
                )
        w_px, h_px = int(width_px), int(height_px)  # type: ignore[arg-type]
        id_size: tuple[float, float, str] = (w_px, h_px, "px")
    else:
        w_px = mm_to_px(float(width_mm), dpi)  # type: ignore[arg-type]
        h_px = mm_to_px(float(height_mm), dpi)  # type: ignore[arg-type]
        for label, px in (("width", w_px), ("height", h_px)):
            if not 64 <= px <= 4000:
                raise BadParameter(
                    f"The {label} comes to {px} px at {dpi} dpi; it must be 64..4000 px.",
                    param="size",
                )
        id_size = (float(width_mm), float(height_mm), "mm")  # type: ignore[arg-type]
    head_band = _as_band("head", head)
    if head_band is None:
        raise BadParameter("head band is required.", param="head")
    eye_band = _as_band("eye", eye)
    top_band = _as_band("top_margin", top_margin)
    if not isinstance(background, str) or not background.strip():
        raise BadParameter("background must be a colour name.", param="background")
    bg = background.strip().lower().replace("_", "-").replace(" ", "-")
    _check_background(bg)
    kb_window: tuple[int | None, int | None] | None = None
    if kb is not None:
        if not isinstance(kb, tuple | list) or len(kb) != 2:
            raise BadParameter(f"kb must be a (min, max) pair, got {kb!r}.", param="kb")
        lo, hi = kb
        for v in (lo, hi):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise BadParameter(f"kb sizes must be positive integers, got {kb!r}.", param="kb")
        if lo is None and hi is None:
            kb_window = None
        elif lo is not None and hi is not None and lo * 1.024 > hi:
            raise BadParameter(f"kb window is empty: min {lo} > max {hi}.", param="kb")
        else:
            kb_window = (lo, hi)
    spec = PhotoSpec(
        id=_custom_id(*id_size, dpi, head_band, eye_band, top_band, bg, kb_window),
        name=name or "custom",
        country="INT",
        width_px=w_px,
        height_px=h_px,
        dpi=dpi,
        width_mm=float(width_mm) if width_mm is not None else None,
        height_mm=float(height_mm) if height_mm is not None else None,
        head=head_band,
        eye=eye_band,
        top_margin=top_band,
        backgrounds=(bg,),
        default_background=bg,
        kb=kb_window,
        notes="User-defined spec.",
        source="custom",
        tags=("custom", "print" if all(mm_given) else "digital"),
    )
    if not is_satisfiable(spec):
        raise BadParameter(
            f"These bands cannot all be met by a portrait: head {head_band}, eye {eye_band}, "
            f"top margin {top_band} (fractions of the height; eye measured from the bottom). "
            "The eye line sits about 47 % of the head height below the crown.",
            param="geometry",
        )
    return spec


_NUM = r"\d+(?:\.\d+)?"
_CUSTOM_RE = re.compile(
    rf"^custom:(?P<w>{_NUM})x(?P<h>{_NUM})(?P<unit>mm|in|px)(?:@(?P<dpi>\d+)(?:dpi)?)?"
    r"(?P<opts>(?:,[^,]+)*)$"
)
_GRAMMAR = (
    "custom:<W>x<H>(mm|in|px)[@<dpi>][,head=<lo>-<hi>][,eye=<lo>-<hi>][,top=<lo>-<hi>]"
    "[,bg=<colour>][,kb=[<min>]-[<max>]]"
)


def _parse_band(key: str, value: str) -> tuple[float, float]:
    m = re.fullmatch(rf"({_NUM})%?-({_NUM})%?", value)
    if not m:
        raise BadParameter(f"{key}={value!r}: expected <lo>-<hi>, e.g. {key}=0.6-0.7.", param=key)
    lo, hi = float(m.group(1)), float(m.group(2))
    if lo > 1 or hi > 1 or "%" in value:  # percentages
        lo, hi = lo / 100, hi / 100
    return (lo, hi)


def parse_spec_arg(text: str) -> PhotoSpec:
    """A spec from a command-line/API argument: a built-in id (or alias) or a custom form.

    Grammar (case-insensitive, spaces ignored)::

        spec    := ID | "custom:" SIZE ["@" DPI ["dpi"]] ("," OPTION)*
        SIZE    := NUM "x" NUM UNIT          UNIT := "mm" | "in" | "px"
        OPTION  := "head=" BAND | "eye=" BAND | "top=" BAND
                 | "bg=" COLOUR | "kb=" [INT] "-" [INT] | "kb=" INT
        BAND    := NUM "-" NUM               fractions of H (0.6-0.7) or percents (60-70)

    DPI defaults to 300. ``in`` sizes are converted to mm. ``eye`` is measured from the bottom
    edge, ``top`` is crown to top edge. ``kb=240`` means at most 240 KB. Head defaults to
    0.70-0.80 and the background to white. Examples: ``custom:35x45mm@300``,
    ``custom:600x600px``, ``custom:2x2in@300,head=50-69,eye=56-69``,
    ``custom:354x472px,kb=20-80,bg=light-blue``.

    Raises ``UnknownSpec`` for an unknown id and ``BadParameter`` for a malformed custom form.
    """
    if not isinstance(text, str):
        raise BadParameter(f"Spec must be a string, got {text!r}.", param="spec")
    compact = re.sub(r"\s+", "", text).lower()
    if not compact.startswith("custom:"):
        return get_spec(text)
    m = _CUSTOM_RE.match(compact)
    if not m:
        raise BadParameter(f"Cannot parse {text!r}; expected {_GRAMMAR}.", param="spec")
    w, h, unit = float(m.group("w")), float(m.group("h")), m.group("unit")
    kwargs: dict = {"dpi": int(m.group("dpi")) if m.group("dpi") else 300}
    if unit == "px":
        if not (w.is_integer() and h.is_integer()):
            raise BadParameter(f"Pixel sizes must be whole numbers in {text!r}.", param="size")
        kwargs.update(width_px=int(w), height_px=int(h))
    elif unit == "in":
        kwargs.update(width_mm=round(w * 25.4, 3), height_mm=round(h * 25.4, 3))
    else:
        kwargs.update(width_mm=w, height_mm=h)
    for opt in filter(None, m.group("opts").split(",")):
        key, sep, value = opt.partition("=")
        if not sep or not value:
            raise BadParameter(
                f"Option {opt!r} needs key=value; expected {_GRAMMAR}.", param="spec"
            )
        if key in ("head", "eye", "top"):
            kwargs["top_margin" if key == "top" else key] = _parse_band(key, value)
        elif key in ("bg", "background"):
            kwargs["background"] = value
        elif key == "kb":
            km = re.fullmatch(r"(\d*)-(\d*)|(\d+)", value)
            if not km:
                raise BadParameter(
                    f"kb={value!r}: expected <min>-<max>, -<max> or <max>.", param="kb"
                )
            if km.group(3):
                kwargs["kb"] = (None, int(km.group(3)))
            else:
                lo, hi = km.group(1), km.group(2)
                kwargs["kb"] = (int(lo) if lo else None, int(hi) if hi else None)
        else:
            raise BadParameter(f"Unknown option {key!r}; expected {_GRAMMAR}.", param="spec")
    return custom_spec(**kwargs)
