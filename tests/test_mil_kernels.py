"""Every numpy MIL kernel against torch on small tensors: the interpreter's op semantics are only as good as these."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgevt.mil.kernels import KERNELS, UnsupportedOpError

rng = np.random.default_rng(0)


def r(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def t(x):
    return torch.from_numpy(np.asarray(x))


X, Y = r(2, 3, 4), r(3, 4)
POS = np.abs(r(2, 3)) + 0.5

# op -> (inputs, torch reference)
CASES = {
    "add": ({"x": X, "y": Y}, lambda: t(X) + t(Y)),
    "sub": ({"x": X, "y": Y}, lambda: t(X) - t(Y)),
    "mul": ({"x": X, "y": Y}, lambda: t(X) * t(Y)),
    "real_div": ({"x": X, "y": Y + 3}, lambda: t(X) / (t(Y) + 3)),
    "maximum": ({"x": X, "y": Y}, lambda: torch.maximum(t(X), t(Y))),
    "minimum": ({"x": X, "y": Y}, lambda: torch.minimum(t(X), t(Y))),
    "pow": ({"x": POS, "y": np.float32(1.7)}, lambda: t(POS) ** 1.7),
    "floor_div": ({"x": X * 5, "y": np.float32(2)}, lambda: torch.floor_divide(t(X * 5), 2)),
    "mod": ({"x": X * 5, "y": np.float32(2)}, lambda: torch.remainder(t(X * 5), 2)),
    "equal": ({"x": X, "y": X[0]}, lambda: t(X) == t(X[0])),
    "not_equal": ({"x": X, "y": X[0]}, lambda: t(X) != t(X[0])),
    "less": ({"x": X, "y": Y}, lambda: t(X) < t(Y)),
    "less_equal": ({"x": X, "y": Y}, lambda: t(X) <= t(Y)),
    "greater": ({"x": X, "y": Y}, lambda: t(X) > t(Y)),
    "greater_equal": ({"x": X, "y": Y}, lambda: t(X) >= t(Y)),
    "relu": ({"x": X}, lambda: F.relu(t(X))),
    "sigmoid": ({"x": X}, lambda: torch.sigmoid(t(X))),
    "tanh": ({"x": X}, lambda: torch.tanh(t(X))),
    "exp": ({"x": X}, lambda: torch.exp(t(X))),
    "log": ({"x": POS}, lambda: torch.log(t(POS))),
    "sqrt": ({"x": POS}, lambda: torch.sqrt(t(POS))),
    "rsqrt": ({"x": POS}, lambda: torch.rsqrt(t(POS))),
    "abs": ({"x": X}, lambda: torch.abs(t(X))),
    "square": ({"x": X}, lambda: torch.square(t(X))),
    "erf": ({"x": X}, lambda: torch.erf(t(X))),
    "silu": ({"x": X}, lambda: F.silu(t(X))),
    "floor": ({"x": X * 3}, lambda: torch.floor(t(X * 3))),
    "ceil": ({"x": X * 3}, lambda: torch.ceil(t(X * 3))),
    "sign": ({"x": X}, lambda: torch.sign(t(X))),
    "inverse": ({"x": POS}, lambda: 1 / t(POS)),
    "gelu": ({"x": X, "mode": "EXACT"}, lambda: F.gelu(t(X))),
    "clip": ({"x": X, "alpha": -0.5, "beta": 0.5}, lambda: torch.clamp(t(X), -0.5, 0.5)),
    "select": ({"cond": X > 0, "a": X, "b": -X}, lambda: torch.where(t(X) > 0, t(X), -t(X))),
    "identity": ({"x": X}, lambda: t(X)),
    "cast": ({"x": X * 4, "dtype": "int32"}, lambda: t(X * 4).to(torch.int32)),
    "softmax": ({"x": X, "axis": 1}, lambda: torch.softmax(t(X), 1)),
    "layer_norm": ({"x": X, "axes": [-1], "gamma": Y[0], "beta": Y[1], "epsilon": 1e-5},
                   lambda: F.layer_norm(t(X), (4,), t(Y[0]), t(Y[1]), 1e-5)),
    "batch_norm": ({"x": r(2, 3, 4, 4), "mean": Y[:, 0], "variance": POS[0], "gamma": Y[:, 1], "beta": Y[:, 2], "epsilon": 1e-3}, None),
    "reduce_mean": ({"x": X, "axes": [1, 2], "keep_dims": True}, lambda: t(X).mean((1, 2), keepdim=True)),
    "reduce_sum": ({"x": X, "axes": [-1]}, lambda: t(X).sum(-1)),
    "reduce_max": ({"x": X, "axes": [0]}, lambda: t(X).amax(0)),
    "reduce_min": ({"x": X, "axes": [0]}, lambda: t(X).amin(0)),
    "reduce_prod": ({"x": X, "axes": [1]}, lambda: t(X).prod(1)),
    "reduce_l2_norm": ({"x": X, "axes": [-1], "keep_dims": True}, lambda: torch.linalg.vector_norm(t(X), dim=-1, keepdim=True)),
    "reduce_l1_norm": ({"x": X, "axes": [-1]}, lambda: t(X).abs().sum(-1)),
    "reduce_sum_square": ({"x": X, "axes": [-1]}, lambda: (t(X) ** 2).sum(-1)),
    "reduce_argmax": ({"x": X, "axis": 2}, lambda: t(X).argmax(2)),
    "linear": ({"x": X, "weight": r(5, 4), "bias": r(5)}, None),
    "matmul": ({"x": X, "y": r(2, 5, 4), "transpose_y": True}, None),
    "avg_pool": ({"x": r(1, 2, 6, 6), "kernel_sizes": [3, 3], "strides": [2, 2], "pad_type": "custom", "pad": [1, 1, 1, 1],
                  "exclude_padding_from_average": True}, None),
    "max_pool": ({"x": r(1, 2, 6, 6), "kernel_sizes": [2, 2], "strides": [2, 2], "pad_type": "valid"}, None),
    "reshape": ({"x": X, "shape": [4, -1]}, lambda: t(X).reshape(4, -1)),
    "transpose": ({"x": X, "perm": [2, 0, 1]}, lambda: t(X).permute(2, 0, 1)),
    "expand_dims": ({"x": X, "axes": [-1, 0]}, lambda: t(X).unsqueeze(-1).unsqueeze(0)),
    "squeeze": ({"x": X[:, :1], "axes": [1]}, lambda: t(X[:, :1]).squeeze(1)),
    "tile": ({"x": Y, "reps": [2, 1]}, lambda: t(Y).repeat(2, 1)),
    "concat": ({"values": [X, X * 2], "axis": -1}, lambda: torch.cat([t(X), t(X * 2)], -1)),
    "split": ({"x": X, "split_sizes": [1, 3], "axis": 2}, lambda: torch.split(t(X), [1, 3], 2)),
    "slice_by_index": ({"x": X, "begin": [0, 1, 0], "end": [2, 3, 4], "stride": [1, 1, 2], "end_mask": [False, False, True]},
                       lambda: t(X)[:, 1:3, ::2]),
    "slice_by_size": ({"x": X, "begin": [1, 0, 1], "size": [1, -1, 2]}, lambda: t(X)[1:2, :, 1:3]),
    "gather": ({"x": X, "indices": np.array([2, 0, -1]), "axis": 1}, lambda: t(X)[:, [2, 0, 2]]),
    "gather_along_axis": ({"x": X, "indices": np.zeros((2, 3, 1), np.int32), "axis": 2},
                          lambda: torch.gather(t(X), 2, torch.zeros((2, 3, 1), dtype=torch.int64))),
    "pad": ({"x": X, "pad": [1, 2], "mode": "constant", "constant_val": 0.5}, lambda: F.pad(t(X), (1, 2), value=0.5)),
    "shape": ({"x": X}, lambda: torch.tensor(X.shape)),
    "fill": ({"shape": [2, 3], "value": 1.5}, lambda: torch.full((2, 3), 1.5)),
}

CONV_CASES = [
    dict(cin=4, cout=6, k=3, stride=1, dilation=1, groups=1, pad_type="custom", pad=[1, 1, 1, 1]),
    dict(cin=4, cout=4, k=3, stride=2, dilation=1, groups=4, pad_type="custom", pad=[1, 1, 1, 1]),  # depthwise
    dict(cin=4, cout=6, k=3, stride=1, dilation=2, groups=2, pad_type="valid", pad=None),  # grouped, dilated
    dict(cin=3, cout=8, k=4, stride=4, dilation=1, groups=1, pad_type="valid", pad=None),  # patch embedding
    dict(cin=4, cout=4, k=7, stride=1, dilation=1, groups=4, pad_type="same", pad=None),
    dict(cin=6, cout=5, k=1, stride=1, dilation=1, groups=1, pad_type="valid", pad=None),  # pointwise (SwiftFormer's most common)
    dict(cin=4, cout=8, k=3, stride=1, dilation=1, groups=4, pad_type="custom", pad=[1, 1, 1, 1]),  # depthwise x2 channels
]


def _check(got, want, atol=1e-5):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = w.numpy()
        assert g.shape == w.shape
        np.testing.assert_allclose(np.asarray(g, dtype=np.float64), w.astype(np.float64), atol=atol, rtol=1e-5)


@pytest.mark.parametrize("op", sorted(k for k, (_, ref) in CASES.items() if ref is not None))
def test_kernel_matches_torch(op):
    inputs, ref = CASES[op]
    _check(KERNELS[op](dict(inputs)), ref())


def test_every_registered_kernel_has_a_case():
    assert set(KERNELS) == set(CASES) | {"conv"}


def test_gelu_approximations_match_their_torch_forms():
    x = r(3, 7)
    _check(KERNELS["gelu"]({"x": x, "mode": "TANH_APPROXIMATION"}), F.gelu(t(x), approximate="tanh"))
    _check(KERNELS["gelu"]({"x": x, "mode": "SIGMOID_APPROXIMATION"}), t(x) * torch.sigmoid(1.702 * t(x)))


def test_batch_norm_linear_matmul_and_pools_match_torch():
    a = CASES["batch_norm"][0]
    want = F.batch_norm(t(a["x"]), t(a["mean"]), t(a["variance"]), t(a["gamma"]), t(a["beta"]), False, 0.0, 1e-3)
    _check(KERNELS["batch_norm"](a), want)
    a = CASES["linear"][0]
    _check(KERNELS["linear"](a), F.linear(t(a["x"]), t(a["weight"]), t(a["bias"])))
    a = CASES["matmul"][0]
    _check(KERNELS["matmul"](a), t(a["x"]) @ t(a["y"]).transpose(-1, -2))
    a = CASES["avg_pool"][0]
    _check(KERNELS["avg_pool"](a), F.avg_pool2d(t(a["x"]), 3, 2, 1, count_include_pad=False))
    a = CASES["max_pool"][0]
    _check(KERNELS["max_pool"](a), F.max_pool2d(t(a["x"]), 2, 2))


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"g{c['groups']}-k{c['k']}-s{c['stride']}-d{c['dilation']}-{c['pad_type']}")
def test_conv_matches_torch(case):
    x = r(2, case["cin"], 9, 10)
    w = r(case["cout"], case["cin"] // case["groups"], case["k"], case["k"])
    b = r(case["cout"])
    args = {"x": x, "weight": w, "bias": b, "strides": [case["stride"]] * 2, "dilations": [case["dilation"]] * 2,
            "groups": case["groups"], "pad_type": case["pad_type"]}
    if case["pad"]:
        args["pad"] = case["pad"]
    padding = {"custom": 1, "valid": 0, "same": "same"}[case["pad_type"]]
    want = F.conv2d(t(x), t(w), t(b), case["stride"], padding, case["dilation"], case["groups"])
    _check(KERNELS["conv"](args), want, atol=1e-4)


def test_unknown_modes_are_errors_not_guesses():
    with pytest.raises(UnsupportedOpError, match="gelu mode"):
        KERNELS["gelu"]({"x": X, "mode": "CUBIC"})
    with pytest.raises(UnsupportedOpError, match="batch_dims"):
        KERNELS["gather"]({"x": X, "indices": np.array([0]), "axis": 1, "batch_dims": 1})
