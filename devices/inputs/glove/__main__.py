"""``python -m devices.inputs.glove FILE``: stream a clip to a glove receiver."""

from devices.inputs.glove.sender import main

raise SystemExit(main())
