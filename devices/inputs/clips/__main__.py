"""``python -m devices.inputs.clips --out DIR``: write the shipped clips."""

from devices.inputs.clips.cli import main

raise SystemExit(main())
