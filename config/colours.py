"""Named background colours (sRGB hex) and their sources.

Sources are the sections of ``../shared/specs.md`` §2 ("Background colours used by Chinese
ID-photo tools"). No national standard fixes an RGB value for generic blue or red backgrounds;
the values below are the ones the open-source tools and quoted references use.
"""

from __future__ import annotations

NAMED_COLOURS: dict[str, str] = {
    # The only official value found: ID card [S21], CN regional passport standard [S22].
    "white": "#ffffff",
    # No source gives a number for "off-white" (US/Schengen texts say "white or off-white").
    # Every channel stays >= 240 so near-white checks pass; the slight warm tint (B 5 below R/G)
    # keeps it visibly different from pure white.
    "off-white": "#f5f5f0",
    # MPS exit-entry rule [S17]: hue 0, saturation 0, lightness >= 198/240 -> RGB >= 210 (#D2D2D2,
    # calc). 220 (#DCDCDC) leaves a margin of 10 levels over the threshold for JPEG noise and
    # uneven lighting while still reading as grey.
    "light-grey": "#dcdcdc",
    # HivisionIDPhotos light grey [S25]; lighter than the MPS minimum.
    "light-grey-hivision": "#f2f0f0",
    # The usual "cream" colour name value (not from specs.md; a common UI option).
    "cream": "#fffdd0",
    # MPS light blue at its threshold [S17]: hue 135, saturation 240, lightness 167 (0..240
    # Windows HSL scale) -> RGB (100, 197, 255) (calc, §2). Higher lightness would be paler.
    "light-blue": "#64c5ff",
    # The most common "证件照蓝" in open-source tools: dreepLoop [S26], guo-pu [S27], colorect [S29].
    "blue": "#438edb",
    # HivisionIDPhotos current blue (color_list_CN.csv, since 2024-09-10) [S25].
    "blue-hivision": "#628bce",
    # "R0 G191 B243" quoted from Baidu Baike [S32]; also dreepLoop [S26].
    "sky-blue": "#00bff3",
    # HivisionIDPhotos dark blue [S25].
    "dark-blue": "#4b6190",
    # "R255 G0 B0" quoted from Baidu Baike [S32]; dreepLoop [S26]; PaddleHub [S28].
    "red": "#ff0000",
    # HivisionIDPhotos current red [S25].
    "red-hivision": "#d74532",
}

# Other spellings of the names above, after normalise_colour_name().
ALIASES: dict[str, str] = {
    "grey": "light-grey",
    "offwhite": "off-white",
    "lightgrey": "light-grey",
    "lightblue": "light-blue",
    "skyblue": "sky-blue",
    "darkblue": "dark-blue",
    "白": "white",
    "白底": "white",
    "蓝": "blue",
    "蓝底": "blue",
    "红": "red",
    "红底": "red",
}


def normalise_colour_name(name: str) -> str:
    """Lower case, hyphens for spaces and underscores, "grey" for "gray"."""
    text = "-".join(name.strip().lower().replace("_", " ").replace("-", " ").split())
    return text.replace("gray", "grey")


def lookup_colour(name: str) -> str | None:
    """The hex value ("#rrggbb") of a colour name or alias, or None when it is not one."""
    key = normalise_colour_name(name)
    key = ALIASES.get(key, key)
    return NAMED_COLOURS.get(key)
