"""The safety filter: whatever goes in, what comes out is inside the limits and rate bound."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from devices.robots.safety import SafetyFilter

N = 6
LOWER = np.array([-1.0, -0.5, 0.0, -2.0, 0.3, -0.1])
UPPER = np.array([1.0, 1.5, 2.0, 0.0, 1.4, 0.1])
MAX_SPEED = np.array([2.0, 4.0, 1.0, 6.0, 2.0, 0.2])  # rad/s
PERIOD = 0.05
MAX_DELTA = MAX_SPEED * PERIOD

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
targets = st.one_of(
    arrays(np.float64, N, elements=floats),
    arrays(np.float64, N, elements=st.floats(-10, 10)),
    arrays(np.float64, st.integers(0, 9), elements=floats),  # wrong lengths
    st.none(),
    st.text(max_size=5),
    st.lists(st.floats(-3, 3), min_size=N, max_size=N),
)
holds = st.one_of(st.none(), st.sampled_from(["stale_input", "invalid_input", "emergency_stop"]))
dts = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@settings(max_examples=300, deadline=None)
@given(
    initial=arrays(np.float64, N, elements=floats),
    steps=st.lists(st.tuples(targets, holds, dts), min_size=1, max_size=30),
)
def test_output_always_within_limits_and_rate(initial, steps):
    f = SafetyFilter(LOWER, UPPER, MAX_SPEED, PERIOD, initial)
    prev = f.last.copy()
    assert np.all(prev >= LOWER) and np.all(prev <= UPPER)
    for target, hold, dt in steps:
        out, events = f(target, hold=hold, dt_s=dt)
        assert out.shape == (N,) and np.all(np.isfinite(out))
        assert np.all(out >= LOWER) and np.all(out <= UPPER)
        # Never faster than max_speed: the step is bounded by the elapsed time (<= a period).
        allowed = (
            MAX_DELTA if dt is None or not np.isfinite(dt) else MAX_SPEED * min(max(dt, 0), PERIOD)
        )
        assert np.all(np.abs(out - prev) <= allowed + 1e-12)
        if hold is not None:
            assert np.array_equal(out, prev) and hold in events
        prev = out


def test_valid_targets_are_reached_at_the_rate_limit():
    f = SafetyFilter(LOWER, UPPER, MAX_SPEED, PERIOD, np.array([0.0, 0, 0, -1, 0.5, 0]))
    goal = np.array([0.5, 1.0, 1.0, -1.5, 1.0, 0.05])
    for _ in range(100):
        out, _ = f(goal)
    np.testing.assert_allclose(out, goal)


def test_events_are_counted():
    f = SafetyFilter(LOWER, UPPER, MAX_SPEED, PERIOD, np.clip(np.zeros(N), LOWER, UPPER))
    f(np.full(N, np.nan))
    f(np.full(N, 100.0))
    f(None, hold="stale_input")
    assert f.counts["invalid_target"] == 1
    assert f.counts["clipped_to_limits"] == 1 and f.counts["rate_limited"] == 1
    assert f.counts["stale_input"] == 1


def test_a_loop_catching_up_moves_no_faster():
    """Two sends 5 ms apart may move 5 ms worth, not a whole period's worth."""
    f = SafetyFilter(LOWER, UPPER, MAX_SPEED, PERIOD, np.clip(np.zeros(N), LOWER, UPPER))
    start = f.last.copy()
    out, events = f(UPPER, dt_s=0.005)
    np.testing.assert_allclose(np.abs(out - start), np.minimum(MAX_SPEED * 0.005, UPPER - start))
    assert "rate_limited" in events
