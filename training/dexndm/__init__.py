"""DexNDM's sim-to-real pipeline (``../shared/papers/dexndm.md`` Sec. 3.3): chaos-box data
on the hand at hand, the joint-wise neural dynamics model and the residual policy trained
through it. The models are in :mod:`controllers.dexndm`; this package makes their data and
trains them."""
