"""The teleoperation session, its report, the CLI and (under ``ui/``) the Qt app."""
