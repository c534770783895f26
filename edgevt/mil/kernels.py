"""numpy kernels for MIL ops, written from the MIL op specification (coremltools.converters.mil.mil.ops.defs).

Each kernel takes the op's inputs by name (numpy arrays or Python scalars; absent optional inputs are
missing from the dict) and returns one array or a tuple of arrays, one per op output. Arithmetic runs in
float32; rounding to the program's storage type (fp16) is the interpreter's job, once per op output.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from edgevt.errors import EdgevtError

Kernel = Callable[[dict], "np.ndarray | tuple[np.ndarray, ...]"]
KERNELS: dict[str, Kernel] = {}


class UnsupportedOpError(EdgevtError):
    """The program has an op edgevt's interpreter does not implement: parity cannot be claimed."""


def kernel(*names: str):
    def register(fn: Kernel) -> Kernel:
        for name in names:
            if name in KERNELS:
                raise ValueError(f"MIL kernel {name!r} registered twice")
            KERNELS[name] = fn
        return fn

    return register


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _axes(value, rank: int) -> tuple[int, ...] | None:
    if value is None:
        return None
    return tuple(int(a) % rank for a in np.atleast_1d(value))


# --- elementwise -------------------------------------------------------------------------------------

_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.divide, "maximum": np.maximum,
    "minimum": np.minimum, "pow": np.power, "floor_div": np.floor_divide, "mod": np.mod,
}
_COMPARE = {"equal": np.equal, "not_equal": np.not_equal, "less": np.less, "less_equal": np.less_equal,
            "greater": np.greater, "greater_equal": np.greater_equal}


def _binary(fn):
    def run(a: dict):
        x, y = np.asarray(a["x"]), np.asarray(a["y"])
        if x.dtype.kind == "f" or y.dtype.kind == "f":
            x, y = _f32(x), _f32(y)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return fn(x, y)

    return run


for _name, _fn in {**_BINARY, **_COMPARE}.items():
    kernel(_name)(_binary(_fn))


def _erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return erf(x).astype(np.float32)


_UNARY = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "rsqrt": lambda x: 1 / np.sqrt(x),
    "abs": np.abs,
    "square": np.square,
    "erf": _erf,
    "silu": lambda x: x / (1 + np.exp(-x)),
    "floor": np.floor,
    "ceil": np.ceil,
    "sign": np.sign,
    "inverse": lambda x: 1 / x,
}


def _unary(fn):
    def run(a: dict):
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return fn(_f32(a["x"]))

    return run


for _name, _fn in _UNARY.items():
    kernel(_name)(_unary(_fn))


@kernel("gelu")
def gelu(a: dict) -> np.ndarray:
    x, mode = _f32(a["x"]), a.get("mode", "EXACT")
    if mode == "EXACT":
        return 0.5 * x * (1 + _erf(x / np.sqrt(2.0)))
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x / (1 + np.exp(-1.702 * x))
    raise UnsupportedOpError(f"gelu mode {mode!r} is not implemented by edgevt's MIL interpreter")


@kernel("clip")
def clip(a: dict) -> np.ndarray:
    return np.clip(_f32(a["x"]), a["alpha"], a["beta"])


@kernel("select")
def select(a: dict) -> np.ndarray:
    return np.where(np.asarray(a["cond"], dtype=bool), a["a"], a["b"])


@kernel("identity")
def identity(a: dict) -> np.ndarray:
    return np.asarray(a["x"])


_CAST = {"fp16": np.float32, "fp32": np.float32, "fp64": np.float32, "int32": np.int32, "int64": np.int32,
         "int16": np.int32, "int8": np.int32, "uint8": np.int32, "bool": np.bool_}


@kernel("cast")
def cast(a: dict) -> np.ndarray:
    # The interpreter rounds the result to fp16 when the output's storage type is fp16.
    if a["dtype"] not in _CAST:
        raise UnsupportedOpError(f"cast to {a['dtype']!r} is not implemented by edgevt's MIL interpreter")
    return np.asarray(a["x"]).astype(_CAST[a["dtype"]])


# --- normalisation, activations over an axis ----------------------------------------------------------


@kernel("softmax")
def softmax(a: dict) -> np.ndarray:
    x = _f32(a["x"])
    axis = int(a.get("axis", -1))
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@kernel("layer_norm")
def layer_norm(a: dict) -> np.ndarray:
    x = _f32(a["x"])
    axes = _axes(a.get("axes"), x.ndim) or tuple(range(x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = np.square(x - mean).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + np.float32(a.get("epsilon", 1e-5)))
    if a.get("gamma") is not None:
        y = y * _f32(a["gamma"])
    if a.get("beta") is not None:
        y = y + _f32(a["beta"])
    return y


@kernel("batch_norm")
def batch_norm(a: dict) -> np.ndarray:
    x = _f32(a["x"])
    shape = (1, -1) + (1,) * (x.ndim - 2)  # per channel, axis 1
    scale = 1 / np.sqrt(_f32(a["variance"]) + np.float32(a.get("epsilon", 1e-5)))
    y = (x - _f32(a["mean"]).reshape(shape)) * scale.reshape(shape)
    if a.get("gamma") is not None:
        y = y * _f32(a["gamma"]).reshape(shape)
    if a.get("beta") is not None:
        y = y + _f32(a["beta"]).reshape(shape)
    return y


def _reduce(fn):
    def run(a: dict):
        x = np.asarray(a["x"])
        x = _f32(x) if x.dtype.kind == "f" else x
        axes = _axes(a.get("axes"), x.ndim)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return fn(x, axes, bool(a.get("keep_dims", False)))

    return run


_REDUCE = {
    "reduce_mean": lambda x, ax, k: x.mean(axis=ax, keepdims=k),
    "reduce_sum": lambda x, ax, k: x.sum(axis=ax, keepdims=k),
    "reduce_max": lambda x, ax, k: x.max(axis=ax, keepdims=k),
    "reduce_min": lambda x, ax, k: x.min(axis=ax, keepdims=k),
    "reduce_prod": lambda x, ax, k: x.prod(axis=ax, keepdims=k),
    "reduce_l2_norm": lambda x, ax, k: np.sqrt(np.square(x).sum(axis=ax, keepdims=k)),
    "reduce_l1_norm": lambda x, ax, k: np.abs(x).sum(axis=ax, keepdims=k),
    "reduce_sum_square": lambda x, ax, k: np.square(x).sum(axis=ax, keepdims=k),
}
for _name, _fn in _REDUCE.items():
    kernel(_name)(_reduce(_fn))


@kernel("reduce_argmax")
def reduce_argmax(a: dict) -> np.ndarray:
    out = np.argmax(a["x"], axis=int(a.get("axis", -1)))
    return np.expand_dims(out, int(a.get("axis", -1))) if a.get("keep_dims", False) else out


# --- linear algebra ------------------------------------------------------------------------------------


@kernel("linear")
def linear(a: dict) -> np.ndarray:
    x, w = _f32(a["x"]), _f32(a["weight"])
    # One 2-D GEMM: np.matmul broadcasting a 3-D x against a 2-D weight loops over the batch instead.
    y = (x.reshape(-1, x.shape[-1]) @ w.T).reshape(*x.shape[:-1], w.shape[0])
    return y + _f32(a["bias"]) if a.get("bias") is not None else y


@kernel("matmul")
def matmul(a: dict) -> np.ndarray:
    x, y = _f32(a["x"]), _f32(a["y"])
    if a.get("transpose_x", False) and x.ndim > 1:
        x = np.swapaxes(x, -1, -2)
    if a.get("transpose_y", False) and y.ndim > 1:
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


def _conv_padding(a: dict, kernel_shape, dilations, strides, spatial) -> list[tuple[int, int]]:
    pad_type = a.get("pad_type", "valid")
    if pad_type == "valid":
        return [(0, 0)] * len(spatial)
    if pad_type == "custom":
        pad = [int(p) for p in np.atleast_1d(a.get("pad", [0] * 2 * len(spatial)))]
        return [(pad[2 * i], pad[2 * i + 1]) for i in range(len(spatial))]
    if pad_type in ("same", "same_lower"):
        out = []
        for size, k, d, s in zip(spatial, kernel_shape, dilations, strides):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small, large = total // 2, total - total // 2
            out.append((large, small) if pad_type == "same_lower" else (small, large))
        return out
    raise UnsupportedOpError(f"conv pad_type {pad_type!r} is not implemented by edgevt's MIL interpreter")


@kernel("conv")
def conv(a: dict) -> np.ndarray:
    """N-d grouped convolution as one matrix product per group over strided windows of the padded input."""
    x, w = _f32(a["x"]), _f32(a["weight"])
    nd = x.ndim - 2
    groups = int(a.get("groups", 1))
    strides = [int(s) for s in np.atleast_1d(a.get("strides", [1] * nd))]
    dilations = [int(d) for d in np.atleast_1d(a.get("dilations", [1] * nd))]
    ksize = w.shape[2:]
    pads = _conv_padding(a, ksize, dilations, strides, x.shape[2:])
    x = np.pad(x, [(0, 0), (0, 0), *pads])
    span = [(k - 1) * d + 1 for k, d in zip(ksize, dilations)]
    windows = np.lib.stride_tricks.sliding_window_view(x, span, axis=tuple(range(2, 2 + nd)))
    # windows: N, C, out..., span...; take strides over outputs and dilations inside each window
    out_sl = tuple(slice(None, None, s) for s in strides)
    in_sl = tuple(slice(None, None, d) for d in dilations)
    windows = windows[(slice(None), slice(None), *out_sl, *in_sl)]
    n, c = x.shape[:2]
    out_shape = windows.shape[2 : 2 + nd]
    cin, cout = c // groups, w.shape[0] // groups
    letters = "hwdxyz"[:nd]
    kl = "klmopq"[:nd]
    if groups == c and cin == 1 and cout == 1:  # depthwise: one filter per channel
        y = np.einsum(f"nc{letters}{kl},c{kl}->nc{letters}", windows, w[:, 0], optimize=True)
    else:
        parts = []
        for g in range(groups):
            win = windows[:, g * cin : (g + 1) * cin]
            wg = w[g * cout : (g + 1) * cout]
            parts.append(np.einsum(f"ni{letters}{kl},oi{kl}->no{letters}", win, wg, optimize=True))
        y = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
    y = y.reshape(n, w.shape[0], *out_shape)
    if a.get("bias") is not None:
        y = y + _f32(a["bias"]).reshape((1, -1) + (1,) * nd)
    return y


def _pool(a: dict, reduce) -> np.ndarray:
    x = _f32(a["x"])
    nd = x.ndim - 2
    ksize = [int(k) for k in np.atleast_1d(a["kernel_sizes"])]
    strides = [int(s) for s in np.atleast_1d(a.get("strides", [1] * nd))]
    pads = _conv_padding(a, ksize, [1] * nd, strides, x.shape[2:])
    exclude = bool(a.get("exclude_padding_from_average", False))
    valid = np.pad(np.ones_like(x[:1, :1]), [(0, 0), (0, 0), *pads])
    fill = -np.inf if reduce is np.max else 0.0
    x = np.pad(x, [(0, 0), (0, 0), *pads], constant_values=fill)
    axes = tuple(range(2, 2 + nd))
    sl = (slice(None), slice(None), *(slice(None, None, s) for s in strides))
    windows = np.lib.stride_tricks.sliding_window_view(x, ksize, axis=axes)[sl]
    inner = tuple(range(2 + nd, 2 + 2 * nd))
    if reduce is np.max:
        return windows.max(axis=inner)
    total = windows.sum(axis=inner)
    if exclude:
        counts = np.lib.stride_tricks.sliding_window_view(valid, ksize, axis=axes)[sl].sum(axis=inner)
        return total / counts
    return total / np.prod(ksize)


@kernel("avg_pool")
def avg_pool(a: dict) -> np.ndarray:
    return _pool(a, np.mean)


@kernel("max_pool")
def max_pool(a: dict) -> np.ndarray:
    return _pool(a, np.max)


# --- shape and data movement ---------------------------------------------------------------------------


@kernel("reshape")
def reshape(a: dict) -> np.ndarray:
    return np.reshape(a["x"], [int(s) for s in np.atleast_1d(a["shape"])])


@kernel("transpose")
def transpose(a: dict) -> np.ndarray:
    return np.transpose(a["x"], [int(p) for p in a["perm"]])


@kernel("expand_dims")
def expand_dims(a: dict) -> np.ndarray:
    x = np.asarray(a["x"])
    rank = x.ndim + len(np.atleast_1d(a["axes"]))
    return np.expand_dims(x, tuple(sorted(int(ax) % rank for ax in np.atleast_1d(a["axes"]))))


@kernel("squeeze")
def squeeze(a: dict) -> np.ndarray:
    x = np.asarray(a["x"])
    return np.squeeze(x, axis=_axes(a.get("axes"), x.ndim))


@kernel("tile")
def tile(a: dict) -> np.ndarray:
    return np.tile(a["x"], [int(r) for r in np.atleast_1d(a["reps"])])


@kernel("concat")
def concat(a: dict) -> np.ndarray:
    values = [np.asarray(v) for v in a["values"]]
    if any(v.ndim == 0 for v in values):  # shape arithmetic: scalars and 1-element vectors concatenated into a shape
        values = [np.atleast_1d(v) for v in values]
    axis = int(a["axis"])
    if a.get("interleave", False):
        stacked = np.stack(values, axis=axis + 1 if axis >= 0 else axis)
        shape = list(values[0].shape)
        shape[axis] *= len(values)
        return stacked.reshape(shape)
    return np.concatenate(values, axis=axis)


@kernel("split")
def split(a: dict) -> tuple[np.ndarray, ...]:
    x, axis = np.asarray(a["x"]), int(a["axis"])
    if a.get("split_sizes") is not None:
        bounds = np.cumsum([int(s) for s in np.atleast_1d(a["split_sizes"])])[:-1]
        return tuple(np.split(x, bounds, axis=axis))
    return tuple(np.split(x, int(a["num_splits"]), axis=axis))


@kernel("slice_by_index")
def slice_by_index(a: dict) -> np.ndarray:
    x = np.asarray(a["x"])
    rank = x.ndim
    begin = np.atleast_1d(a["begin"]).astype(int)
    end = np.atleast_1d(a["end"]).astype(int)
    stride = np.atleast_1d(a.get("stride", [1] * rank)).astype(int)
    begin_mask = np.atleast_1d(a.get("begin_mask", [False] * rank)).astype(bool)
    end_mask = np.atleast_1d(a.get("end_mask", [False] * rank)).astype(bool)
    squeeze_mask = np.atleast_1d(a.get("squeeze_mask", [False] * rank)).astype(bool)
    index = []
    for i in range(rank):
        if squeeze_mask[i]:
            index.append(int(begin[i]))
            continue
        start = None if begin_mask[i] else int(begin[i])
        stop = None if end_mask[i] else int(end[i])
        index.append(slice(start, stop, int(stride[i])))
    return x[tuple(index)]


@kernel("slice_by_size")
def slice_by_size(a: dict) -> np.ndarray:
    x = np.asarray(a["x"])
    begin = [int(b) for b in np.atleast_1d(a["begin"])]
    size = [int(s) for s in np.atleast_1d(a["size"])]
    return x[tuple(slice(b, None if s == -1 else b + s) for b, s in zip(begin, size))]


@kernel("gather")
def gather(a: dict) -> np.ndarray:
    x, idx = np.asarray(a["x"]), np.asarray(a["indices"]).astype(np.int64)
    axis, batch_dims = int(a.get("axis", 0)) % x.ndim, int(a.get("batch_dims", 0))
    if batch_dims:
        raise UnsupportedOpError("gather with batch_dims > 0 is not implemented by edgevt's MIL interpreter")
    return np.take(x, idx, axis=axis)


@kernel("gather_along_axis")
def gather_along_axis(a: dict) -> np.ndarray:
    x = np.asarray(a["x"])
    return np.take_along_axis(x, np.asarray(a["indices"]).astype(np.int64), axis=int(a.get("axis", 0)))


@kernel("pad")
def pad(a: dict) -> np.ndarray:
    x = np.asarray(a["x"])
    p = [int(v) for v in np.atleast_1d(a["pad"])]
    pairs = [(0, 0)] * (x.ndim - len(p) // 2) + [(p[i], p[i + 1]) for i in range(0, len(p), 2)]
    mode = a.get("mode", "constant")
    if mode == "constant":
        return np.pad(x, pairs, constant_values=a.get("constant_val", 0.0))
    if mode in ("reflect", "replicate"):
        return np.pad(x, pairs, mode="reflect" if mode == "reflect" else "edge")
    raise UnsupportedOpError(f"pad mode {mode!r} is not implemented by edgevt's MIL interpreter")


@kernel("shape")
def shape(a: dict) -> np.ndarray:
    return np.asarray(np.shape(a["x"]), dtype=np.int32)


@kernel("fill")
def fill(a: dict) -> np.ndarray:
    return np.full([int(s) for s in np.atleast_1d(a["shape"])], a.get("value", 0.0))
