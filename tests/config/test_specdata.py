"""The catalogue as data: the TOML loads to exactly the specs the Python catalogue had, each
authority's examiner rules are attached, and the loader rejects malformed data clearly."""

from __future__ import annotations

import ast
import configparser
import json
from pathlib import Path

import pytest

from config import errors as config_errors
from config.catalogue import AUTHORITIES, custom_spec, get_spec, list_specs
from config.errors import CatalogueError
from config.specdata import load_catalogue
from config.specfile import SPEC_FILE
from config.specs import EXPRESSION, GLASSES, PhotoSpec, default_rules
from pipeline import errors as pipeline_errors

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = json.loads((Path(__file__).with_name("catalogue_snapshot.json")).read_text("utf-8"))
SPECS = list_specs()
CN_OFFICIAL = ["cn-id-card", "cn-passport", "cn-exit-entry-digital", "cn-visa-online"]


def test_specs_equal_the_python_catalogue_snapshot() -> None:
    """Every value (and its type) the Python catalogue had, before the move to TOML."""
    assert [s.id for s in SPECS] == SNAPSHOT["order"]
    for spec in SPECS:
        got = spec.to_dict() | {"tags": list(spec.tags)}
        for key, want in SNAPSHOT["specs"][spec.id].items():
            assert got[key] == want, (spec.id, key)
            assert type(got[key]) is type(want), (spec.id, key)


def test_bands_are_converted_from_the_units_of_the_source() -> None:
    assert get_spec("us-passport").head == (0.5, 0.6875)  # 1 - 1 3/8 in of 2 in
    assert get_spec("uk-passport").head == (0.6445, 0.7555)  # 29-34 mm of 45, rounded inwards
    assert get_spec("us-visa").eye == (0.56, 0.69)  # 56-69 %
    idc = get_spec("cn-id-card")
    assert idc.top_margin == (0.0159, 0.0476)  # 7-21 px of 441
    assert idc.eye == (0.4694, 0.75)  # >= 207 px of 441; the 0.75 end is unsourced
    assert get_spec("cn-visa-online").head == (0.5834, 0.6875)  # paper 28-33 mm of 48


def test_every_spec_has_its_authority_rules() -> None:
    for spec in SPECS:
        rules = spec.rules
        assert AUTHORITIES[rules.authority] is rules
        assert rules.glasses in GLASSES and rules.expression in EXPRESSION
        assert rules.headphones_forbidden and rules.sources and rules.notes
        assert spec.to_dict()["rules"] == rules.to_dict()
        assert spec.to_dict()["rules"]["authority"] == rules.authority
    assert {s.rules.authority for s in SPECS} >= {
        "icao",
        "us",
        "uk",
        "schengen",
        "de",
        "cn-id",
        "cn-mps",
        "cn-mfa",
        "jp",
        "kr",
        "au",
        "ca",
        "in",
    }


def test_us_forbids_glasses_and_allows_a_smile() -> None:
    for spec_id in ("us-passport", "us-visa", "us-dv"):
        rules = get_spec(spec_id).rules
        assert rules.glasses == "forbidden"
        assert rules.expression == "neutral_or_smile" and not rules.mouth_closed
        assert "medical" in rules.head_covering_exceptions


def test_schengen_and_china_want_a_neutral_face_with_the_mouth_closed() -> None:
    for spec_id in ["schengen-visa", "de-biometric", "uk-passport", "jp-passport", *CN_OFFICIAL]:
        rules = get_spec(spec_id).rules
        assert rules.expression == "neutral" and rules.mouth_closed, spec_id
        assert rules.glasses != "forbidden", spec_id
    for spec_id in [*CN_OFFICIAL, "kr-passport"]:
        assert get_spec(spec_id).rules.ears_visible, spec_id
    assert get_spec("cn-id-card").rules.glasses == "usually_worn"
    assert get_spec("cn-id-card").rules.head_covering_exceptions == ("ethnic_custom",)
    assert get_spec("schengen-visa").rules.head_covering_exceptions == ("religious",)


def test_pose_limits() -> None:
    icao = get_spec("icao-35x45").rules
    assert (icao.max_yaw_deg, icao.max_pitch_deg, icao.max_roll_deg) == (5, 5, 8)
    mfa = get_spec("cn-passport").rules
    assert (mfa.max_yaw_deg, mfa.max_pitch_deg, mfa.max_roll_deg) == (20, 25, 20)
    assert get_spec("cn-visa-online").rules is mfa


def test_default_and_custom_specs_get_the_icao_rules() -> None:
    assert default_rules() == AUTHORITIES["icao"]
    assert custom_spec(width_mm=35, height_mm=45).rules == AUTHORITIES["icao"]
    plain = PhotoSpec(id="x", name="x", country="INT", width_px=600, height_px=600, dpi=300,
                      head=(0.5, 0.7))  # fmt: skip
    assert plain.rules.authority == "icao"


def test_the_shipped_file_loads_the_same_from_a_copy(tmp_path: Path) -> None:
    copy = tmp_path / "specs.toml"
    copy.write_bytes(SPEC_FILE.read_bytes())
    loaded = load_catalogue(copy)
    assert loaded.specs == tuple(s for s in load_catalogue().specs)
    assert [s.id for s in loaded.specs] == [s.id for s in load_catalogue().specs]
    assert sorted(loaded.specs, key=lambda s: (s.country != "INT", s.country, s.id)) == SPECS


def _load_edited(tmp_path: Path, old: str, new: str) -> None:
    text = SPEC_FILE.read_text("utf-8")
    assert text.count(old) == 1, f"the test's anchor {old!r} is not unique in specs.toml"
    path = tmp_path / "specs.toml"
    path.write_text(text.replace(old, new), "utf-8")
    load_catalogue(path)


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (  # an enum value that does not exist
            'glasses = "forbidden"',
            'glasses = "tinted_ok"',
            ["authority 'us'", "glasses", "'tinted_ok'", "clear_only"],
        ),
        (
            'expression = "neutral_or_smile"',
            'expression = "grin"',
            ["authority 'us'", "expression", "neutral_or_smile"],
        ),
        (  # 29-50 mm of a 45 mm photo: more than the photo
            "head = { mm = [29, 34] }",
            "head = { mm = [29, 50] }",
            ["spec 'uk-passport'", "head", "(0, 1)"],
        ),
        (
            "eye = { pct = [50, 70] }",
            "eye = { pct = [50, 170] }",
            ["spec 'icao-35x45'", "eye", "(0, 1)"],
        ),
        (  # a band written in a unit the loader does not know
            "head = { mm = [29, 34] }",
            "head = { cm = [2.9, 3.4] }",
            ["spec 'uk-passport'", "head", "cm"],
        ),
        ('authority = "kr"', 'authority = "korea"', ["spec 'kr-passport'", "'korea'"]),
        ("max_roll_deg = 20", "max_roll_deg = 90", ["authority 'cn-mfa'", "max_roll_deg"]),
        ("mouth_closed = false", 'mouth_closed = "no"', ["authority 'us'", "mouth_closed"]),
        ('source = "[S13] U"', 'source = "[S99] U"', ["spec 'au-passport'", "S99"]),
        ("min_eye_distance_px = 90", "min_eye_dist_px = 90", ["icao-35x45", "min_eye_dist_px"]),
        (
            'head_covering_exceptions = ["ethnic_custom"]',
            'head_covering_exceptions = ["hat"]',
            ["authority 'cn-id'", "head_covering_exceptions"],
        ),  # fmt: skip
        ("kb = { min = 40, max = 120 }", "kb = { min = 140, max = 120 }", ["kb window is empty"]),
        ("top_margin = { mm = [2, 6] }", "top_margin = { mm = [20, 26] }", ["No portrait fits"]),
    ],
)
def test_loader_rejects_bad_data_with_a_clear_error(
    tmp_path: Path, old: str, new: str, words: list[str]
) -> None:
    with pytest.raises(CatalogueError) as exc:
        _load_edited(tmp_path, old, new)
    message = str(exc.value)
    assert str(tmp_path / "specs.toml") in message
    for word in words:
        assert word in message


def test_loader_rejects_malformed_toml(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="specs.toml"):
        _load_edited(tmp_path, "\n[countries]\n", "\n[countries\n")


def test_config_imports_nothing_from_other_layers() -> None:
    layers = {"pipeline", "tasks", "web", "storage", "idphoto", "bench", "tests"}
    for path in sorted((ROOT / "config").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in layers, f"{path.name} imports {name}"


def test_pipeline_errors_are_the_config_errors() -> None:
    for name in pipeline_errors.__all__:
        assert getattr(pipeline_errors, name) is getattr(config_errors, name)


def test_spec_file_is_package_data() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    patterns = [p.strip() for p in cfg["options.package_data"]["config"].split(",")]
    assert "*.toml" in patterns and SPEC_FILE.name == "specs.toml"


def test_enumerated_settings_are_checked_where_settings_are_made() -> None:
    import pytest

    from config.settings import CHOICES, Settings

    for name, allowed in CHOICES.items():
        for value in allowed:
            assert getattr(Settings(**{name: value}), name) == value
        with pytest.raises(ValueError, match=f"IDPHOTO_{name.upper()} must be one of"):
            Settings.from_env({f"IDPHOTO_{name.upper()}": "bogus"})
