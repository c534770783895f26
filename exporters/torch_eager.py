"""The reference: the PyTorch module itself, run eagerly. Baseline for parity and for latency ratios."""

from __future__ import annotations

import numpy as np


class TorchEagerRunner:
    engine = "torch-eager"

    def __init__(self, module, threads: int | None = None, output_names: tuple[str, ...] = ("logits",)):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.module = module.eval()
        self.output_names = tuple(output_names)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        with self._torch.inference_mode():
            out = self.module(self._torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return {name: t.float().numpy() for name, t in zip(self.output_names, outs)}
