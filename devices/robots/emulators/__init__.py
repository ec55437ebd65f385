"""Emulated hardware buses that speak the real wire protocols, for tests and for trying the
app without a hand: the real client libraries talk to them as to the hardware (e.g.
:mod:`devices.robots.emulators.dynamixel`, Dynamixel Protocol 2.0 servos on a
pseudo-terminal that ROBOTIS's ``dynamixel-sdk`` opens like a U2D2).
"""
