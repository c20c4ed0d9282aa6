"""A small, deterministic TFLite -> ONNX converter for MediaPipe's plain-op face models.

The face-mesh and iris models ship only as ``.tflite`` inside the ``mediapipe`` wheel; the
service runs ONNX Runtime, and neither TensorFlow nor MediaPipe is a dependency. These models use
a handful of builtin ops (CONV_2D, DEPTHWISE_CONV_2D, PRELU, ADD, MAX_POOL_2D, PAD, RESHAPE and
DEQUANTIZE of float16 weights), so a direct translation is short and easy to check: the ONNX
graph computes in NCHW, with one transpose after the NHWC input and one before each NHWC output
or reshape. The input keeps the TFLite layout (NHWC float32) and the outputs their TFLite names.

Determinism: the graph is built from the flatbuffer in operator order, names come from the
tensor indices, and the opset, IR version and producer are fixed, so the same ``.tflite`` bytes
give the same ``.onnx`` bytes (which ``config.models`` pins by sha256).
"""

from __future__ import annotations

from typing import Any

import numpy as np

OPSET = 13
IR_VERSION = 7
PRODUCER = "idphoto.tflite_onnx"

# TFLite enums (schema.fbs), spelled out so the module needs no reflection on generated code.
_TENSOR_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64}
_PADDING_SAME, _PADDING_VALID = 0, 1
_ACT_NONE, _ACT_RELU, _ACT_RELU6 = 0, 1, 3
NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)


class ConversionError(ValueError):
    pass


def _same_pads(size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite SAME padding: the odd pixel goes after (as ONNX SAME_UPPER)."""
    eff = (k - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def convert(tflite_bytes: bytes, graph_name: str = "model") -> bytes:
    """The ONNX model bytes for a TFLite model made of the ops listed in the module docstring."""
    import onnx
    import tflite
    from onnx import TensorProto, helper, numpy_helper

    model = tflite.Model.GetRootAsModel(tflite_bytes, 0)
    if model.SubgraphsLength() != 1:
        raise ConversionError("only single-subgraph models are supported")
    g = model.Subgraphs(0)

    def tensor(i: int) -> Any:
        return g.Tensors(i)

    def shape(i: int) -> list[int]:
        return [int(v) for v in tensor(i).ShapeAsNumpy()]

    def const(i: int) -> np.ndarray | None:
        t = tensor(i)
        buf = model.Buffers(t.Buffer())
        if buf is None or buf.DataLength() == 0:
            # The large-model layout keeps data after the flatbuffer (tflite >= 2.14 reads it).
            if buf is not None and hasattr(buf, "Offset") and buf.Offset() > 1:
                raw = tflite_bytes[buf.Offset() : buf.Offset() + buf.Size()]
            else:
                return None
        else:
            raw = buf.DataAsNumpy().tobytes()
        dtype = _TENSOR_DTYPES.get(t.Type())
        if dtype is None:
            raise ConversionError(f"tensor {i}: unsupported type {t.Type()}")
        return np.frombuffer(raw, dtype=dtype).reshape(shape(i)).copy()

    consts: dict[int, np.ndarray] = {}
    for i in range(g.TensorsLength()):
        c = const(i)
        if c is not None:
            consts[i] = c

    nodes: list[Any] = []
    inits: list[Any] = []
    names: dict[int, str] = {}  # tensor index -> ONNX value name holding it in NCHW (if 4-D)

    def add_init(name: str, arr: np.ndarray | np.generic) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=f"n{len(nodes)}_{op}", **attrs))
        return out

    def activation(value: str, act: int, out: str) -> str:
        if act == _ACT_NONE:
            return node("Identity", [value], out)
        if act == _ACT_RELU:
            return node("Relu", [value], out)
        if act == _ACT_RELU6:
            return node(
                "Clip",
                [value, add_init(out + "_lo", np.float32(0)), add_init(out + "_hi", np.float32(6))],
                out,
            )
        raise ConversionError(f"unsupported fused activation {act}")

    (inp,) = [int(v) for v in g.InputsAsNumpy()]
    in_shape = shape(inp)
    in_name = tensor(inp).Name().decode()
    graph_inputs = [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)]
    names[inp] = node("Transpose", [in_name], "t_input", perm=list(NHWC_TO_NCHW))

    opnames = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    for k in range(g.OperatorsLength()):
        op = g.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        opname = opnames.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
        ins = [int(v) for v in op.InputsAsNumpy()]
        (out,) = [int(v) for v in op.OutputsAsNumpy()]
        oname = f"t{out}"
        opts = op.BuiltinOptions()

        if opname == "DEQUANTIZE":
            if ins[0] not in consts:
                raise ConversionError("DEQUANTIZE of a non-constant tensor")
            consts[out] = consts[ins[0]].astype(np.float32)
            continue
        if opname in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            o = (tflite.Conv2DOptions if opname == "CONV_2D" else tflite.DepthwiseConv2DOptions)()
            o.Init(opts.Bytes, opts.Pos)
            w = consts[ins[1]]
            b = consts[ins[2]] if len(ins) > 2 and ins[2] >= 0 else None
            _, h, wd, cin = shape(ins[0])
            if opname == "CONV_2D":
                kernel = w.transpose(0, 3, 1, 2)  # OHWI -> OIHW
                group = 1
            else:
                kernel = w.transpose(3, 0, 1, 2)  # 1HWO -> O1HW
                group = cin
            kh, kw = kernel.shape[2:]
            sh, sw = o.StrideH(), o.StrideW()
            dh, dw = o.DilationHFactor() or 1, o.DilationWFactor() or 1
            if o.Padding() == _PADDING_SAME:
                ph, pw = _same_pads(h, kh, sh, dh), _same_pads(wd, kw, sw, dw)
            else:
                ph, pw = (0, 0), (0, 0)
            inputs = [names[ins[0]], add_init(f"w{out}", kernel.astype(np.float32))]
            if b is not None:
                inputs.append(add_init(f"b{out}", b.astype(np.float32)))
            y = node(
                "Conv",
                inputs,
                oname + "_conv",
                group=group,
                kernel_shape=[kh, kw],
                strides=[sh, sw],
                dilations=[dh, dw],
                pads=[ph[0], pw[0], ph[1], pw[1]],
            )
            names[out] = activation(y, o.FusedActivationFunction(), oname)
        elif opname == "PRELU":
            # s*x + (1-s)*relu(x) rather than ONNX PRelu: ONNX Runtime's CPU PRelu is a generic
            # broadcast that leaves its blocked (NCHWc) layout; this form stays in it and folds
            # into the convolutions around it (2x faster for these models, same outputs to 3e-5).
            alpha = consts[ins[1]].astype(np.float32).reshape(-1, 1, 1)
            x = names[ins[0]]
            r = node("Relu", [x], oname + "_relu")
            lin = node("Mul", [x, add_init(f"a{out}", alpha)], oname + "_lin")
            pos = node(
                "Mul", [r, add_init(f"c{out}", (1.0 - alpha).astype(np.float32))], oname + "_pos"
            )
            names[out] = node("Add", [lin, pos], oname)
        elif opname == "ADD":
            o = tflite.AddOptions()
            o.Init(opts.Bytes, opts.Pos)
            if any(i in consts for i in ins):
                raise ConversionError("ADD with a constant operand")
            y = node("Add", [names[ins[0]], names[ins[1]]], oname + "_add")
            names[out] = activation(y, o.FusedActivationFunction(), oname)
        elif opname == "MAX_POOL_2D":
            o = tflite.Pool2DOptions()
            o.Init(opts.Bytes, opts.Pos)
            _, h, wd, _ = shape(ins[0])
            kh, kw, sh, sw = o.FilterHeight(), o.FilterWidth(), o.StrideH(), o.StrideW()
            if o.Padding() == _PADDING_SAME:
                ph, pw = _same_pads(h, kh, sh), _same_pads(wd, kw, sw)
            else:
                ph, pw = (0, 0), (0, 0)
            y = node(
                "MaxPool",
                [names[ins[0]]],
                oname + "_pool",
                kernel_shape=[kh, kw],
                strides=[sh, sw],
                pads=[ph[0], pw[0], ph[1], pw[1]],
            )
            names[out] = activation(y, o.FusedActivationFunction(), oname)
        elif opname == "PAD":
            p = consts[ins[1]].astype(np.int64)  # (4, 2) in NHWC order
            if p.shape != (4, 2):
                raise ConversionError("PAD of a non-4-D tensor")
            p = p[list(NHWC_TO_NCHW)]
            pads = add_init(f"p{out}", np.concatenate([p[:, 0], p[:, 1]]))
            names[out] = node("Pad", [names[ins[0]], pads], oname, mode="constant")
        elif opname == "RESHAPE":
            target = np.asarray(shape(out), np.int64)
            src = names[ins[0]]
            if len(shape(ins[0])) == 4:
                src = node("Transpose", [src], oname + "_nhwc", perm=list(NCHW_TO_NHWC))
            y = node("Reshape", [src, add_init(f"s{out}", target)], oname)
            if len(target) == 4:
                y = node("Transpose", [y], oname + "_nchw", perm=list(NHWC_TO_NCHW))
            names[out] = y
        else:
            raise ConversionError(f"operator {opname} is not supported")

    outputs = []
    for t in (int(v) for v in g.OutputsAsNumpy()):
        name, shp = tensor(t).Name().decode(), shape(t)
        if len(shp) == 4:
            node("Transpose", [names[t]], name, perm=list(NCHW_TO_NHWC))
        else:
            node("Identity", [names[t]], name)
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shp))

    graph = helper.make_graph(nodes, graph_name, graph_inputs, outputs, initializer=inits)
    onnx_model = helper.make_model(
        graph,
        producer_name=PRODUCER,
        producer_version="1",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    onnx_model.ir_version = IR_VERSION
    onnx.checker.check_model(onnx_model)
    return onnx_model.SerializeToString(deterministic=True)
