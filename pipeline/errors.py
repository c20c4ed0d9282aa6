"""The domain errors, re-exported for the pipeline and its callers.

The classes live in ``config/errors.py`` so that ``config`` (the lowest layer) can raise them
without importing ``pipeline``; every existing ``from pipeline.errors import X`` keeps working.
"""

from __future__ import annotations

from config.errors import (
    BadParameter,
    FaceCutOff,
    FaceError,
    FaceTooSmall,
    HeadCutOff,
    IdPhotoError,
    ImageTooLarge,
    ImageTooSmall,
    InputError,
    MultipleFacesError,
    NoFaceError,
    NotFrontal,
    SpecUnmet,
    TooClose,
    UnknownSpec,
    UnsupportedImage,
)

__all__ = [
    "BadParameter",
    "FaceCutOff",
    "FaceError",
    "FaceTooSmall",
    "HeadCutOff",
    "IdPhotoError",
    "ImageTooLarge",
    "ImageTooSmall",
    "InputError",
    "MultipleFacesError",
    "NoFaceError",
    "NotFrontal",
    "SpecUnmet",
    "TooClose",
    "UnknownSpec",
    "UnsupportedImage",
]
