"""Device specs on the command line."""

import dataclasses

import pytest

from devices.inputs.base import DEVICES, Device
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


@dataclasses.dataclass
class _PairConfig:
    left: str = "a"
    right: int = 0


class _PairDevice(Device):
    """A device with its own shorthand ``pair:LEFT/RIGHT``: nothing in spec.py names it."""

    Config = _PairConfig

    @classmethod
    def shorthand_settings(cls, arg):
        left, _, right = arg.partition("/")
        return {"left": left, "right": right}

    def _start(self):
        pass

    def _stop(self):
        pass


def test_a_device_declares_its_own_shorthand():
    DEVICES.register("pair")(_PairDevice)  # for this test only
    try:
        assert parse_device_spec("pair:x/7") == ("pair", {"left": "x", "right": 7})
        assert parse_device_spec("pair:right=3") == ("pair", {"right": 3})
        with pytest.raises(ValueError, match="right must be a int"):
            parse_device_spec("pair:x/seven")
    finally:
        DEVICES.unregister("pair")
    assert parse_device_spec("glove:9870") == ("glove", {"host": "127.0.0.1", "port": 9870})
    # the devices without a shorthand say so
    for name in DEVICES.names():
        if DEVICES.get(name).shorthand_settings("x") is None:
            with pytest.raises(ValueError, match="key=value"):
                parse_device_spec(f"{name}:x")


def test_tuple_settings_are_comma_separated_and_typed():
    """A tuple setting: typed as its default's items, or (empty default) as its annotation's."""
    from devices.spec import typed_options

    @dataclasses.dataclass
    class Cfg:
        scales: tuple[float, ...] = (1.0,)
        pose: tuple[float, ...] = ()
        ids: tuple[int, ...] = ()
        names: tuple[str, ...] = ()

    got = typed_options("T", Cfg, {"scales": "0.5, 2", "pose": "0.5,-0.75", "ids": "3,4",
                                    "names": "a,b"})  # fmt: skip
    assert got == {"scales": (0.5, 2.0), "pose": (0.5, -0.75), "ids": (3, 4), "names": ("a", "b")}
    assert all(isinstance(v, float) for v in got["pose"])
    with pytest.raises(ValueError, match="pose must be comma-separated floats"):
        typed_options("T", Cfg, {"pose": "0.5,x"})
