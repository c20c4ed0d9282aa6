"""Domain errors, in a neutral module of the lowest layer (``config``).

They live here, not in ``pipeline``, so that ``config`` (which raises ``BadParameter`` and
``UnknownSpec`` for specs) imports nothing from the layers above it; ``pipeline.errors`` re-exports
every name, so ``from pipeline.errors import X`` keeps working. Every error carries a stable machine-readable ``code`` (the job record's ``reason``, the API's
``error`` field, the CLI's message prefix) and a human message. The HTTP status and CLI exit code
are decided at the edges (``web/errors.py``, ``idphoto/cli.py``), never here.
"""

from __future__ import annotations

from typing import Any


class IdPhotoError(Exception):
    """Base of every error the pipeline raises on purpose."""

    code = "idphoto_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}


class InputError(IdPhotoError):
    """The uploaded file cannot be used as a photo at all."""


class UnsupportedImage(InputError):
    code = "unsupported_image"


class ImageTooLarge(InputError):
    code = "image_too_large"


class ImageTooSmall(InputError):
    code = "image_too_small"


class FaceError(IdPhotoError):
    """The photo decodes but the person in it cannot make a compliant ID photo."""

    def __init__(self, message: str, face_count: int = 1, **details: Any) -> None:
        super().__init__(message, face_count=face_count, **details)
        self.face_count = face_count


class NoFaceError(FaceError):
    code = "no_face"

    def __init__(self, message: str = "No face was found in the photo.", **details: Any) -> None:
        super().__init__(message, face_count=0, **details)


class MultipleFacesError(FaceError):
    code = "multiple_faces"


class FaceTooSmall(FaceError):
    code = "face_too_small"


class FaceCutOff(FaceError):
    code = "face_cut_off"


class NotFrontal(FaceError):
    """The face is turned too far from the camera (a profile, a three-quarter view)."""

    code = "not_frontal"


class HeadCutOff(FaceError):
    """The top of the head (hair) touches the top edge of the photo."""

    code = "head_cut_off"


class TooClose(FaceError):
    """Not enough of the person below the chin to fill the spec's frame."""

    code = "too_close"


class SpecUnmet(IdPhotoError):
    """The spec's limits cannot all be met (e.g. file size window, geometry bands)."""

    code = "spec_unmet"


class BadParameter(IdPhotoError):
    """A request parameter (spec id, colour, size) is invalid."""

    code = "bad_parameter"


class UnknownSpec(BadParameter):
    code = "unknown_spec"


class CatalogueError(ValueError):
    """The spec data file (``config/specs.toml``) is malformed: an authoring error.

    Not an ``IdPhotoError``: it is never the user's request that is wrong, and it is raised when
    the catalogue loads (at import), naming the file, the entry and the key.
    """
