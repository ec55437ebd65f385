"""Device specs on the command line."""

import pytest

from devices.inputs.spec import parse_device_spec


def test_shorthands_and_key_values():
    assert parse_device_spec("replay") == ("replay", {})
    assert parse_device_spec("replay:clip.npz") == ("replay", {"path": "clip.npz"})
    assert parse_device_spec("glove:10.0.0.2:9999") == ("glove", {"host": "10.0.0.2", "port": 9999})
    assert parse_device_spec("glove:0.0.0.0") == ("glove", {"host": "0.0.0.0"})
    _, opts = parse_device_spec("replay:path=a.npz,loop=no,speed=2")
    assert opts == {"path": "a.npz", "loop": False, "speed": 2.0}
    mount = ",".join(["1", "0", "0", "0"] * 4)
    _, opts = parse_device_spec(f"vive:tracker=LHR-1,mount={mount}")
    assert opts == {"tracker": "LHR-1", "mount": mount}


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("replay:loop=maybe", "true or false"),
        ("replay:speed=fast", "float"),
        ("replay:colour=red", "no setting"),
        ("quest3:logcat", "key=value"),
        ("glove:,port=1", "key=value"),
    ],
)
def test_bad_specs_name_the_problem(spec, needle):
    with pytest.raises(ValueError, match=needle):
        parse_device_spec(spec)
