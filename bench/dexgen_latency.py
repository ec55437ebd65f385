"""Latency of one DexGen sample: guided DDIM sampling plus the inverse dynamics model.

    .venv/bin/python bench/dexgen_latency.py [--threads 2] [--repeats 200] --json PATH

One sample = batch 1, 10 DDIM steps (``--steps``), then the joint target from the inverse
model: what the controller does at 10 Hz. Models: the paper's size (Appendix F: U-Net width
768, state encoder 1024 x 6; random weights, which cost the same as trained ones) in float32
and bfloat16, and the shipped demo checkpoint. Guided and unguided samples alternate in the
same loop, so that both see the same machine load; guidance should cost almost nothing (its
gradient is analytic). On a machine with CUDA the same models are timed on the GPU too.

Records: ``{model, guided, ddim_steps, p50_ms, p99_ms, device, dtype, threads, params,
host_cpus}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MENAGERIE_ROOT", str(ROOT.parent / "shared" / "menagerie"))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def time_model(
    name: str, model, dtype, steps: int, repeats: int, device: str = "cpu"
) -> list[dict]:
    from controllers.dexgen.sampler import GuidedSampler

    sampler = GuidedSampler(model, steps=steps, dtype=dtype)
    c = model.config
    rng = np.random.default_rng(0)
    state = rng.normal(size=(1, c.state_dim)).astype(np.float32)
    norm = model.state_norm
    state = state * norm.std.cpu().numpy() + norm.mean.cpu().numpy()  # a typical state
    command = rng.normal(scale=0.005, size=(1, 8, 3)).astype(np.float32)
    now = np.zeros((1, c.n_joints), np.float32)
    gen = torch.Generator().manual_seed(0)

    cuda = device != "cpu"

    def one(guided: bool) -> float:
        t0 = time.perf_counter()
        smp = sampler.sample(state, command=command, guidance=0.5 if guided else 0.0, generator=gen)
        out = sampler.targets_from(smp.state_n, smp.motion_n, now)
        if cuda:
            out.cpu()  # the controller needs the target on the host
        return time.perf_counter() - t0

    for _ in range(10):
        one(True)
        one(False)
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(repeats):
        for guided in (i % 2 == 0, i % 2 == 1):  # alternate which goes first
            times[guided].append(one(guided))
    params = sum(p.numel() for p in model.parameters())
    out = []
    for guided in (False, True):
        t = np.array(times[guided]) * 1e3
        out.append(
            {
                "model": name,
                "guided": guided,
                "ddim_steps": steps,
                "p50_ms": round(float(np.percentile(t, 50)), 2),
                "p99_ms": round(float(np.percentile(t, 99)), 2),
                "device": device,
                "dtype": str(dtype).replace("torch.", ""),
                "threads": torch.get_num_threads(),
                "params": params,
                "repeats": repeats,
                "host_cpus": os.cpu_count(),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--checkpoint", help="demo model (default: the shipped LEAP one)")
    p.add_argument("--json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from controllers.dexgen.models import (
        SIZES,
        DexGenConfig,
        DexGenModel,
        load_model,
        shipped_checkpoint,
    )

    torch.manual_seed(0)
    paper = DexGenModel(DexGenConfig(**SIZES["paper"])).eval()
    runs = [("paper-768", paper, torch.float32), ("paper-768", paper, torch.bfloat16)]
    path = Path(args.checkpoint) if args.checkpoint else shipped_checkpoint("leap")
    if path.is_file():
        demo, _ = load_model(path)
        runs.append((f"demo ({path.name})", demo, torch.float32))
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
        runs += [(n, m, d, "cuda") for n, m, d in runs]
    records = []
    with torch.inference_mode():
        for name, model, dtype, *dev in runs:
            device = dev[0] if dev else "cpu"
            if device != "cpu":
                import copy

                model = copy.deepcopy(model).to(device)
            for r in time_model(name, model, dtype, args.steps, args.repeats, device):
                if device != "cpu":
                    r["device"] = f"cuda ({gpu})"
                records.append(r)
                print(json.dumps(r), flush=True)
    if args.json:
        from bench import write_json

        write_json(args.json, records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
