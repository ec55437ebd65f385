"""DexNDM (in-hand rotation about a commanded axis): the rotation generalist's model.

The generalist (:mod:`controllers.dexndm.generalist`) is distilled from the rotation
specialists by ``training.rl.distill``; the controller built on it (with the joint-wise
neural dynamics residual) is the DexNDM issue's.
"""
