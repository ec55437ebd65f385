"""``dexteleop dataset info | doctor | export``: inspect, repair and export recordings."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from teleop_app.cli.common import CliError, output_path


def cmd_dataset(args: argparse.Namespace) -> int:
    from teleop_app.recording.reader import RecordedDataset, export_hdf5
    from teleop_app.recording.recorder import pending_logs, recover

    if args.dataset_command == "doctor":
        root = Path(args.dir)
        if not root.is_dir():
            raise CliError(f"{args.dir} is not a folder")
        logs = pending_logs(root)
        for line in recover(root, discard=args.discard, rebuild_stats=True):
            print(line)
        if (root / "meta" / "info.json").exists():
            problems = RecordedDataset(root).validate()
            for p in problems:
                print(f"problem: {p}")
            if problems:
                return 1
        if not logs:
            print("no unfinished episodes")
        print("ok")
        return 0
    ds = RecordedDataset(args.dir)
    if args.dataset_command == "info":
        summary = ds.summary()
        if args.json:
            print(json.dumps(summary, indent=2))
            return 0
        print(f"{summary['path']}: {summary['format']} dataset, robot {summary['robot_type']}")
        print(
            f"  {summary['episodes']} episodes, {summary['frames']} frames at "
            f"{summary['fps']} fps ({summary['duration_s']:.1f} s), {summary['bytes'] / 1e6:.1f} MB"
        )
        print(f"  tasks: {', '.join(repr(t) for t in summary['tasks']) or '-'}")
        print(f"  features: {len(summary['features'])}")
        for name, (dtype, *shape) in summary["features"].items():
            print(f"    {name:28s} {dtype:8s} {shape}")
        if summary["unfinished_logs"]:
            print(f"  unfinished: {summary['unfinished_logs']} (run 'dexteleop dataset doctor')")
        return 0
    if args.dataset_command == "export":
        out = output_path(args.out)
        assert out is not None
        export_hdf5(ds, out)
        print(f"wrote {out} ({ds.num_episodes} demos, {ds.num_frames} samples)")
        return 0
    raise CliError(f"unknown dataset command {args.dataset_command!r}")


def add_parsers(sub: Any) -> None:
    ds = sub.add_parser("dataset", help="inspect, repair and export recorded datasets")
    dsub = ds.add_subparsers(dest="dataset_command", required=True)
    di = dsub.add_parser("info", help="what a dataset holds")
    di.add_argument("dir")
    di.add_argument("--json", action="store_true")
    dd = dsub.add_parser("doctor", help="recover (or --discard) unfinished episodes; validate")
    dd.add_argument("dir")
    dd.add_argument("--discard", action="store_true", help="drop unfinished episodes")
    de = dsub.add_parser("export", help="export to another format")
    de.add_argument("dir")
    de.add_argument("--to", choices=["hdf5"], required=True, help="hdf5: robomimic layout")
    de.add_argument("out", help="output file")
    ds.set_defaults(func=cmd_dataset)
