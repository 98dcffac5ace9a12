"""`mentor export RUN_DIR --format onnx|torchscript`: export a trained model of a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from mentor.batch import cut
from mentor.cli.run import add_trust_code
from mentor.export import FORMATS


def add_parser(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="export a trained model of a run to ONNX or TorchScript")
    export.add_argument("run", metavar="RUN_DIR", help="run directory written by `mentor run`")
    export.add_argument("--format", required=True, choices=sorted(FORMATS), help="file format")
    export.add_argument("--model", "--role", dest="model", metavar="NAME",
                        help="which model of the run (default: student-distilled, or the scheme's first; "
                             "`mentor eval RUN_DIR` lists them)")
    export.add_argument("--seed", type=int, help="which seed's model (default: the first seed)")
    export.add_argument("--out", metavar="FILE", help="output file (default: RUN_DIR/export/NAME-seedS.onnx|.pt)")
    add_trust_code(export)
    export.set_defaults(handler=command_export)


def command_export(args: argparse.Namespace) -> int:
    from mentor.export import export
    from mentor.report.runs import Run

    run = Run.open(args.run, args.trust_code)
    role = args.model or run.default_role()
    seed = args.seed if args.seed is not None else run.seeds()[0]
    run.check(role, seed)
    model = run.build_model(role, seed)
    data = run.load_data(seed)
    out = Path(args.out) if args.out else run.path / "export" / f"{role}-seed{seed}{FORMATS[args.format]}"
    metadata = {"role": role, "seed": seed, "recipe": run.name, "dataset": data.name,
                "input_shape": list(data.input_shape), "num_classes": data.num_classes,
                "mean": data.mean.tolist() if data.mean is not None else None,
                "std": data.std.tolist() if data.std is not None else None}
    inputs = cut(data.test.inputs, 0, 8)
    difference = export(model, inputs, args.format, out, metadata)
    check = (f"max |difference| to PyTorch on {len(inputs)} test samples: {difference:.1e}" if difference is not None
             else "not checked: install onnxruntime to compare outputs")
    print(f"mentor: exported {role} (seed {seed}) as {args.format} to {out} ({check})")
    if data.mean is not None:
        print("  inputs must be standardized per channel with the mean and std stored in the file's metadata")
    return 0
