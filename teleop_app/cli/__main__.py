from teleop_app.cli import main

raise SystemExit(main())
