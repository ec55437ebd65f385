"""The one limit rule (devices.robots.limits): inside the limits, within a step of the last
target, the same in numpy and torch, and the same in the safety filter, the RL environments
and MoDex."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from devices.robots.limits import limit_step, max_step
from devices.robots.safety import SafetyFilter

N = 5
bounds = st.floats(-10, 10)
wild = st.floats(allow_nan=False, allow_infinity=True, width=64)  # extremes included


@st.composite
def cases(draw):
    batch = draw(st.sampled_from([(), (3,), (2, 4)]))
    a = draw(arrays(np.float64, N, elements=bounds))
    b = draw(arrays(np.float64, N, elements=bounds))
    lower, upper = np.minimum(a, b), np.maximum(a, b)
    frac = draw(arrays(np.float64, (*batch, N), elements=st.floats(0, 1)))
    last = lower + frac * (upper - lower)  # the last safe target is inside the limits
    target = draw(arrays(np.float64, (*batch, N), elements=wild))
    step = draw(st.one_of(st.floats(0, 5), arrays(np.float64, N, elements=st.floats(0, 5))))
    return target, last, lower, upper, step


@settings(max_examples=500, deadline=None)
@given(cases())
def test_output_inside_the_limits_and_within_a_step_of_the_last(case):
    target, last, lower, upper, step = case
    out = limit_step(target, last, lower=lower, upper=upper, max_step=step)
    assert out.shape == np.broadcast_shapes(target.shape, last.shape)
    assert np.all(np.isfinite(out))
    assert np.all(out >= lower) and np.all(out <= upper)
    assert np.all(np.abs(out - last) <= step + 1e-12)
    # and as close to the target as those allow: the projection on the box around last
    box_lo = np.maximum(lower, last - step)
    box_hi = np.minimum(upper, last + step)
    np.testing.assert_allclose(out, np.clip(target, box_lo, box_hi), rtol=0, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(cases(), st.sampled_from([np.float32, np.float64]), st.booleans())
def test_numpy_and_torch_agree_exactly(case, dtype, bounded):
    target, last, lower, upper, step = case
    target = np.clip(target, -1e30, 1e30)  # finite in float32 too
    np_args = [np.asarray(x, dtype=dtype) for x in (target, last, lower, upper)]
    np_step = np.asarray(step, dtype=dtype)
    t_args = [torch.as_tensor(x) for x in np_args]
    t_step = torch.as_tensor(np_step)
    if not bounded:
        np_args[2:] = t_args[2:] = [None, None]
    a = limit_step(np_args[0], np_args[1], lower=np_args[2], upper=np_args[3], max_step=np_step)
    b = limit_step(t_args[0], t_args[1], lower=t_args[2], upper=t_args[3], max_step=t_step)
    assert isinstance(b, torch.Tensor) and b.dtype == t_args[0].dtype
    np.testing.assert_array_equal(a, b.numpy())


def test_max_step_is_speed_times_the_elapsed_time_up_to_a_period():
    speed = np.array([2.0, 6.0])
    np.testing.assert_array_equal(max_step(speed, 0.05), speed * 0.05)
    np.testing.assert_array_equal(max_step(speed, 0.05, 0.01), speed * 0.01)
    np.testing.assert_array_equal(max_step(speed, 0.05, 1.0), speed * 0.05)  # an overrun
    np.testing.assert_array_equal(max_step(speed, 0.05, -1.0), speed * 0.0)
    assert max_step(6.0, 0.05, float("nan")) == max_step(6.0, 0.05) == 6.0 * 0.05


def test_filter_environment_and_modex_agree():
    """One target (outside the limits on one joint, beyond the rate limit on others) from the
    open hand: LEAP's safety filter at 20 Hz, an RL environment's step and MoDex's predicted
    execution give the same safe target."""
    from controllers.modex.core import limit_sequence
    from controllers.modex.hand import exploration_hand
    from training.envs import make_env

    env = make_env("free_finger", hand="leap", num_envs=2, nthread=1)
    hand = env.hand
    xhand = exploration_hand("leap")
    f = SafetyFilter(hand.lower, hand.upper, hand.spec.max_joint_speed_rad_s, 0.05,
                     hand.default_open)  # fmt: skip
    np.testing.assert_array_equal(env.max_step, f.max_step())
    assert np.all(f.max_step() == xhand.max_step)
    np.testing.assert_array_equal(xhand.ctrl_low, hand.lower)  # MoDex's ranges: the limits
    np.testing.assert_array_equal(xhand.ctrl_high, hand.upper)

    rng = np.random.default_rng(0)
    start = hand.default_open.copy()
    wanted = start + rng.uniform(-0.6, 0.6, hand.n_joints)
    wanted[0] = hand.upper[0] + 1.0  # beyond the limit
    wanted[1] = start[1] + 0.01  # within a step: passes unchanged
    safe, events = f(wanted)
    assert "clipped_to_limits" in events and "rate_limited" in events
    assert safe[1] == wanted[1]

    env.target[:] = start
    env.step_targets(np.tile(wanted, (2, 1)))
    np.testing.assert_array_equal(env.target, np.tile(safe, (2, 1)))

    # MoDex's actions are inside the control ranges (its planners clamp them): in range, its
    # rate limit alone gives what the filter gives
    inside = np.clip(wanted, xhand.ctrl_low, xhand.ctrl_high)
    actions = torch.as_tensor(inside)[None, None]
    pred = limit_sequence(actions, torch.as_tensor(start), xhand.max_step)
    np.testing.assert_array_equal(pred[0, 0].numpy(), safe)


@pytest.mark.parametrize("hold", ["nan", "inf"])
def test_environment_maps_nan_to_zero_before_the_rule(hold):
    """The environments' documented pre-step: NaN -> 0 rad, +inf -> the upper limit (then
    rate-limited); the filter instead holds the last target."""
    from training.envs import make_env

    env = make_env("free_finger", hand="leap", num_envs=1, nthread=1)
    start = env.target.copy()
    bad = np.full_like(start, np.nan if hold == "nan" else np.inf)
    env.step_targets(bad)
    expect = np.zeros_like(start) if hold == "nan" else np.full_like(start, np.inf)
    np.testing.assert_array_equal(
        env.target,
        limit_step(expect, start, lower=env.lower, upper=env.upper, max_step=env.max_step),
    )
