"""Recording demonstrations: LeRobot v3.0 datasets written crash-safe, read back, exported.

- :mod:`.features`: what a tick records (the feature schema, a tick's row).
- :mod:`.wal`: the write-ahead log of the episode being recorded.
- :mod:`.dataset`: the on-disk layout, committing an episode, statistics.
- :mod:`.recorder`: the session listener that records, and recovery of unfinished logs.
- :mod:`.reader`: loading and validating datasets; HDF5 export.
"""
