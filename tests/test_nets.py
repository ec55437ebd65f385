"""The one Normalizer (controllers.nets): DexGen's and MoDex's statistics as before, and the
buffer names the shipped checkpoints hold."""

import numpy as np
import torch

from assets import CHECKPOINTS_DIR
from controllers.nets import Normalizer


def test_statistics_as_each_component_computed_them():
    x = np.random.default_rng(0).normal(3.0, 0.01, size=(1000, 4))
    x[:, 3] = 1.0  # a feature that never varies
    dexgen = Normalizer(4).fit(x)  # float64 statistics, std >= 1e-4
    x64 = torch.as_tensor(x, dtype=torch.float64)
    assert torch.equal(dexgen.mean, x64.mean(0).float())
    assert torch.equal(dexgen.std, x64.std(0).clamp_min(1e-4).float())
    assert torch.equal(Normalizer(4).fit(x, min_std=1e-5).std, x64.std(0).clamp_min(1e-5).float())
    modex = Normalizer(4, min_std=1e-6, fit_dtype=torch.float32).fit(x)  # float32, >= 1e-6
    x32 = torch.as_tensor(x, dtype=torch.float32)
    assert torch.equal(modex.mean, x32.mean(0))
    assert torch.equal(modex.std, x32.std(0).clamp_min(1e-6))
    y = torch.as_tensor(x[:5], dtype=torch.float32)
    torch.testing.assert_close(dexgen.inverse(dexgen(y)), y)
    assert list(dexgen.state_dict()) == ["mean", "std"]


def test_shipped_checkpoints_hold_the_normalizer_buffers():
    for path in [CHECKPOINTS_DIR / "dexgen" / "leap.pt", *(CHECKPOINTS_DIR / "modex").glob("*.pt")]:
        state = torch.load(path, map_location="cpu", weights_only=True)["state"]
        norms = {k.rsplit(".", 1)[0] for k in state if k.endswith((".mean", ".std"))}
        assert norms and all(f"{n}.mean" in state and f"{n}.std" in state for n in norms), path
