"""The outputs registry: one list that keys, content types, the CLI, the API document and the
web page's downloads agree with."""

from __future__ import annotations

import pytest

from config import outputs
from tasks import keys


def test_every_output_has_a_key_a_content_type_and_a_download_button() -> None:
    from web.messages import DOWNLOADS
    from web.openapi import openapi_document

    assert set(DOWNLOADS) == set(outputs.NAMES)
    listed = openapi_document(1 << 20)["components"]["schemas"]["Job"]["properties"]["outputs"]
    assert set(listed["properties"]) == set(outputs.NAMES)
    for output in outputs.OUTPUTS:
        for ext in output.extensions:
            assert (
                keys.output_key("j" * 22, output.name, ext)
                == f"jobs/{'j' * 22}/{output.name}.{ext}"
            )
            assert outputs.content_type(ext) != "application/octet-stream"


@pytest.mark.parametrize(("name", "ext"), [("photo", "json"), ("report", "png"), ("nope", "jpg")])
def test_an_output_only_has_its_own_file_types(name: str, ext: str) -> None:
    with pytest.raises(ValueError):
        keys.output_key("j" * 22, name, ext)
