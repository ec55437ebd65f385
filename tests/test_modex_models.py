"""MoDex's internal models: they learn the hand from exploration data (held-out errors well
under trivial predictors), sigma follows eq. 7, checkpoints round-trip and fail clearly."""

import dataclasses

import numpy as np
import pytest
import torch

from controllers.modex.models import CheckpointError, load_model
from training.modex.data import collect
from training.modex.train import (
    TrainConfig,
    train_forward,
    train_inverse,
    train_qs_forward,
    train_qs_inverse,
)

TC = TrainConfig(steps=500, hidden=(128, 128), seed=0)


def split(data, key, n_train):
    train = {k: (v[:n_train] if k != "manifest" else v) for k, v in data.items()}
    test = {k: (v[n_train:] if k != "manifest" else v) for k, v in data.items()}
    return train, test


@pytest.fixture(scope="module")
def qs_data():
    torch.set_num_threads(2)
    return split(collect("allegro", "quasi-static", samples=900, seed=0), "next_tips", 800)


@pytest.fixture(scope="module")
def seq_data():
    return split(collect("allegro", "sequential", samples=2400, steps=20, seed=0), "tips", 100)


def test_quasi_static_forward_model_learns_the_settled_fingertips(qs_data, tmp_path):
    train, test = qs_data
    model, history = train_qs_forward(train, TC)
    assert history[-1] < history[0]
    with torch.no_grad():
        pred = model(torch.as_tensor(test["actions"])).numpy()
    err = np.linalg.norm((pred - test["next_tips"]).reshape(-1, 4, 3), axis=2).mean()
    base = np.linalg.norm(
        (train["next_tips"].mean(0) - test["next_tips"]).reshape(-1, 4, 3), axis=2
    ).mean()
    assert err < 0.35 * base, (err, base)  # well under predicting the mean pose
    path = model.save(tmp_path / "qs_forward.pt")
    again = load_model(path, kind="qs_forward", hand="allegro")
    with torch.no_grad():
        np.testing.assert_allclose(again(torch.as_tensor(test["actions"])).numpy(), pred)


def test_forward_model_multistep(seq_data):
    train, test = seq_data
    model, history = train_forward(train, TC)
    assert model.config.context
    assert history[-1] < 0.2 * history[0]
    tips, actions = torch.as_tensor(test["tips"]), torch.as_tensor(test["actions"])
    with torch.no_grad():
        one = model(tips[:, :-1], actions, *model.contexts(tips, actions))
        roll = model.rollout(tips[:, 0], actions[:, :4])  # the trajectories start at rest
    err = (one - tips[:, 1:]).norm(dim=-1).mean()
    still = (tips[:, :-1] - tips[:, 1:]).norm(dim=-1).mean()  # "nothing moves"
    assert err < 0.5 * still, (float(err), float(still))
    roll_err = (roll - tips[:, 1:5]).norm(dim=-1).mean()
    assert roll_err < still  # fed back for 4 steps, still better than standing still


def test_the_period_before_makes_leaps_fingertips_predictable():
    """LEAP's servos are still moving when the next target comes (they settle in about
    0.13 s, the period is 50 ms): a forward model that also sees the last period's motion
    and target predicts the next fingertips better than one that sees the fingertips alone
    (same data, same training)."""
    data = collect("leap", "sequential", samples=6000, steps=20, seed=0)
    train, test = split(data, "tips", len(data["actions"]) - 50)
    tips, actions = torch.as_tensor(test["tips"]), torch.as_tensor(test["actions"])
    tc = dataclasses.replace(TC, steps=800)
    errors = {}
    for context in (False, True):
        model, _ = train_forward(train, dataclasses.replace(tc, context=context))
        assert model.config.context == context
        with torch.no_grad():
            pred = model(tips[:, :-1], actions, *model.contexts(tips, actions))
        errors[context] = float((pred - tips[:, 1:]).reshape(-1, 3).norm(dim=-1).mean())
    assert errors[True] < 0.85 * errors[False], errors


def test_inverse_models_and_their_spread(seq_data, qs_data):
    train, test = seq_data
    model, _ = train_inverse(train, TC)
    s = torch.as_tensor(test["tips"][:, :-1].reshape(-1, 12))
    s1 = torch.as_tensor(test["tips"][:, 1:].reshape(-1, 12))
    a = torch.as_tensor(test["actions"].reshape(-1, 16))
    with torch.no_grad():
        err = (model(s, s1) - a).abs().mean()
    base = (a - torch.as_tensor(train["actions"].reshape(-1, 16).mean(0))).abs().mean()
    assert err < 0.8 * base, (float(err), float(base))
    # eq. 7: sigma is the mean absolute error on the training data, per action
    ts = torch.as_tensor(train["tips"][:, :-1].reshape(-1, 12))
    ts1 = torch.as_tensor(train["tips"][:, 1:].reshape(-1, 12))
    ta = torch.as_tensor(train["actions"].reshape(-1, 16))
    with torch.no_grad():
        expect = (model(ts, ts1) - ta).abs().mean(0)
    torch.testing.assert_close(model.sigma, expect.clamp_min(1e-4))
    qtrain, qtest = qs_data
    qs, _ = train_qs_inverse(qtrain, TC)
    with torch.no_grad():
        qerr = (
            (qs(torch.as_tensor(qtest["next_tips"])) - torch.as_tensor(qtest["actions"]))
            .abs()
            .mean()
        )
    qbase = np.abs(qtest["actions"] - qtrain["actions"].mean(0)).mean()
    assert float(qerr) < 0.8 * qbase


def test_bad_checkpoints_are_clear(tmp_path, qs_data):
    with pytest.raises(CheckpointError, match="no MoDex checkpoint"):
        load_model(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="damaged"):
        load_model(bad)
    model, _ = train_qs_forward(qs_data[0], TrainConfig(steps=5, hidden=(16,)))
    path = model.save(tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="not inverse"):
        load_model(path, kind="inverse")
    with pytest.raises(CheckpointError, match="not leap"):
        load_model(path, hand="leap")
    torch.save({"config": {"kind": "forward"}}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="not a MoDex model"):
        load_model(tmp_path / "odd.pt")
