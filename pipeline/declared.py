"""What an applicant declares that changes how a rule applies (a religious head covering,
medical glasses), from a request's options. Kept apart from ``pipeline.examine`` so that the
task layer can validate options without importing any model runtime."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from config.errors import BadParameter


@dataclass(frozen=True)
class Declared:
    """What the applicant declares, which changes how a rule applies."""

    religious_head_covering: bool = False  # worn for religious reasons (signed statement)
    medical_head_covering: bool = False
    medical_glasses: bool = False  # the US exception: glasses with a medical statement

    #: The keys a request's options may carry for these declarations.
    OPTION_KEYS: ClassVar[tuple[str, ...]] = ("head_covering", "medical_glasses")

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> Declared:
        """The declarations in a request's options (``head_covering``: "religious" or
        "medical"; ``medical_glasses``: true), or ``BadParameter``."""
        options = options or {}
        reason = options.get("head_covering")
        if reason is not None and reason not in ("religious", "medical"):
            raise BadParameter(
                "Option 'head_covering' must be 'religious' or 'medical'.", param="options"
            )
        glasses = options.get("medical_glasses", False)
        if not isinstance(glasses, bool):
            raise BadParameter("Option 'medical_glasses' must be true or false.", param="options")
        return cls(
            religious_head_covering=reason == "religious",
            medical_head_covering=reason == "medical",
            medical_glasses=glasses,
        )
