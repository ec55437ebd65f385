"""One checkpoint envelope (assets.checkpoint): saved atomically, checked on load, and the
shipped checkpoints of every component still load as they are."""

import numpy as np
import pytest
import torch
from torch import nn

from assets import CHECKPOINTS_DIR, checkpoint
from assets.checkpoint import CheckpointError

FORMAT = "dexteleop-test/1"


def _save(path, module, **meta):
    return checkpoint.save(path, {"config": {"n": 3}, "state": module.state_dict()},
                           format=FORMAT, meta=meta)  # fmt: skip


def test_round_trip_with_provenance(tmp_path):
    net = nn.Linear(3, 2)
    phys = checkpoint.physics("leap", timestep_s=0.002, substeps=25, kp=[1.0, 2.0], kv=[0.1, 0.2])
    data = checkpoint.fingerprint({"x": np.arange(4.0)})
    path = _save(tmp_path / "m.pt", net, physics=phys, data_fingerprint=data, step=7)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temp left
    raw = torch.load(path, weights_only=True)
    assert list(raw) == ["format", "config", "state", "meta"]
    ck = checkpoint.load(path, format=FORMAT, what="test", physics=phys)
    assert ck.format == FORMAT and ck["config"] == {"n": 3}
    assert ck.meta["physics"] == phys and ck.meta["data_fingerprint"] == data
    assert ck.meta["step"] == 7 and isinstance(ck.meta["commit"], str)
    again = nn.Linear(3, 2)
    checkpoint.load_weights(again, ck["state"], ck)
    for a, b in zip(net.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)


def test_fingerprints_tell_data_apart():
    a = {"actions": np.zeros((2, 3), np.float32), "tips": np.ones(4)}
    assert checkpoint.fingerprint(a) == checkpoint.fingerprint(dict(reversed(a.items())))
    assert checkpoint.fingerprint(a) != checkpoint.fingerprint({**a, "tips": np.ones(5)})
    assert checkpoint.fingerprint(a).startswith("sha256:")


def test_every_refusal_says_why(tmp_path):
    net = nn.Linear(3, 2)
    with pytest.raises(CheckpointError, match="no test checkpoint at"):
        checkpoint.load(tmp_path / "missing.pt", format=FORMAT, what="test")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="damaged, not a readable checkpoint"):
        checkpoint.load(bad, format=FORMAT, what="test")
    other = checkpoint.save(tmp_path / "o.pt", {}, format="dexteleop-other/1")
    with pytest.raises(CheckpointError, match="not a test model"):
        checkpoint.load(other, format=FORMAT, what="test")
    untagged = tmp_path / "u.pt"
    torch.save({"config": {}, "extra": {"x": 1}}, untagged)
    with pytest.raises(CheckpointError, match="not a test model"):
        checkpoint.load(untagged, format=FORMAT, what="test")
    assert checkpoint.load(untagged, format=FORMAT, what="test", untagged=True).meta == {"x": 1}
    odd = _save(tmp_path / "odd.pt", net, commit=5)
    with pytest.raises(CheckpointError, match="damaged metadata: commit"):
        checkpoint.load(odd, format=FORMAT, what="test")

    path = _save(tmp_path / "m.pt", net, physics=checkpoint.physics("leap", kp=[1.0, 2.0]))
    ck = checkpoint.load(path, format=FORMAT, what="test")
    with pytest.raises(CheckpointError, match="a test model of leap, not allegro"):
        checkpoint.check_hand(ck, "leap", "allegro", "test")
    with pytest.raises(CheckpointError, match="a test forward model, not inverse"):
        checkpoint.check_kind(ck, "forward", "inverse", "test")
    with pytest.raises(CheckpointError, match=r"other physics.*kp"):
        checkpoint.load(path, format=FORMAT, what="test", physics={"kp": [1.0, 3.0]})
    with pytest.raises(CheckpointError, match=r"other physics.*hand"):
        checkpoint.load(path, format=FORMAT, what="test", physics={"hand": "allegro"})
    # keys only one side describes, and files without physics, pass
    checkpoint.load(path, format=FORMAT, what="test", physics={"timestep_s": 0.004})
    plain = checkpoint.load(_save(tmp_path / "p.pt", net), format=FORMAT, what="test")
    checkpoint.check_physics(plain, {"hand": "allegro"}, "test")
    with pytest.raises(CheckpointError, match="weights do not fit"):
        checkpoint.load_weights(nn.Linear(4, 2), ck["state"], ck)
    state = {k: v.clone() for k, v in ck["state"].items()}
    state["bias"][0] = float("nan")
    with pytest.raises(CheckpointError, match="non-finite values in bias"):
        checkpoint.load_weights(nn.Linear(3, 2), state, ck)
    assert issubclass(CheckpointError, ValueError)


def test_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = _save(tmp_path / "m.pt", nn.Linear(3, 2), step=1)

    def full_disk(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"half a file")
        raise OSError("no space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="no space"):
        _save(path, nn.Linear(3, 2), step=2)
    monkeypatch.undo()
    assert checkpoint.load(path, format=FORMAT, what="test").meta["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_the_shipped_checkpoints_load_as_they_are():
    from controllers.dexgen.models import load_model as load_dexgen
    from controllers.modex.models import load_model as load_modex
    from training.rl.ppo import POLICY_FORMAT

    model, meta = load_dexgen(CHECKPOINTS_DIR / "dexgen" / "leap.pt", hand="leap")
    assert model.config.hand == "leap" and "commit" in meta
    files = sorted((CHECKPOINTS_DIR / "modex").glob("*.pt"))
    assert len(files) == 12
    for path in files:
        hand, setting, kind = path.stem.split("_")
        kind = ("qs_" if setting == "quasi-static" else "") + kind
        m = load_modex(path, kind=kind, hand=hand)
        assert m.config.kind == kind and m.config.hand == hand
    from controllers.dexndm.generalist import RotationGeneralist
    from training.rl.distill import is_generalist

    for path in (CHECKPOINTS_DIR / "rl").glob("*.pt"):
        if is_generalist(path):
            assert RotationGeneralist.load(path, hand=path.stem.split("_")[-1]).meta["physics"]
            continue
        ck = checkpoint.load(path, format=POLICY_FORMAT, what="RL policy")
        assert ck.meta["hand"] in path.stem and "actor_state_dict" in ck.record
