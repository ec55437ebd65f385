"""Input devices, hand backends and retargeting."""
