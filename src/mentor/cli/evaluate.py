"""`mentor eval RUN_DIR`: evaluate a trained model of a run on its test split or another dataset."""

from __future__ import annotations

import argparse

from mentor.cli.run import add_trust_code
from mentor.data import ArrayDataset
from mentor.errors import MentorError, unknown
from mentor.report.runs import Run


def add_parser(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser("eval", help="evaluate a trained model of a run (accuracy and loss)")
    evaluate.add_argument("run", metavar="RUN_DIR", help="run directory written by `mentor run`")
    evaluate.add_argument("--data", metavar="NAME", help="dataset name or directory with the same input shape and "
                                                         "classes (default: the run's own test split)")
    evaluate.add_argument("--root", metavar="DIR", help="directory holding the --data files")
    evaluate.add_argument("--model", "--role", dest="model", metavar="NAME",
                          help="which model of the run (default: every one, in a table)")
    evaluate.add_argument("--seed", type=int, help="which seed's model (default: the first seed)")
    add_trust_code(evaluate)
    evaluate.set_defaults(handler=command_eval)


def compatible_test_set(run: Run, seed: int, name: str, root: str | None) -> tuple[str, ArrayDataset]:
    """The test split of dataset ``name``, standardized like the run's training data.

    Raises:
        MentorError: when its input shape or class count differs from the run's data.
    """
    from mentor.data import load

    trained = run.load_data(seed)
    if name == trained.name and root is None:
        return trained.name, trained.test
    other = load(name, validation=0.0, seed=seed, root=root, normalize=False)
    differences = []
    if tuple(other.input_shape) != tuple(trained.input_shape):
        differences.append(f"inputs of shape {tuple(other.input_shape)}, not {tuple(trained.input_shape)}")
    if other.num_classes != trained.num_classes:
        differences.append(f"{other.num_classes} classes, not {trained.num_classes}")
    if differences:
        raise MentorError(f"dataset {name!r} does not fit the models of run {str(run.path)!r} (trained on "
                          f"{trained.name}): it has {' and '.join(differences)}")
    inputs = other.test.inputs
    if trained.mean is not None and trained.std is not None:
        shape = (1, -1) + (1,) * (inputs.ndim - 2)
        inputs = (inputs - trained.mean.view(shape)) / trained.std.view(shape)
    return other.name, ArrayDataset(inputs, other.test.targets)


def command_eval(args: argparse.Namespace) -> int:
    from mentor.engine import evaluate
    from mentor.report.table import render

    run = Run.open(args.run, args.trust_code)
    seed = args.seed if args.seed is not None else run.seeds()[0]
    if run.recipe.get("multitask"):
        run.check(None, seed)
        return _eval_multitask(run, seed, args)
    run.check(args.model, seed)
    if args.data is None:
        name, dataset = run.load_data(seed).name, run.load_data(seed).test
    else:
        name, dataset = compatible_test_set(run, seed, args.data, args.root)
    regression = dataset.targets.is_floating_point()
    if args.model is not None:
        metrics = evaluate(run.build_model(args.model, seed), dataset)
        result = (f"MSE {metrics['mse']:.4f}, MAE {metrics['mae']:.4f}" if regression
                  else f"accuracy {100 * metrics['accuracy']:.2f}%, loss {metrics['loss']:.4f}")
        print(f"{args.model} (seed {seed}) on the {name} test split, {len(dataset)} samples: {result}")
        return 0
    rows = []
    for role in run.roles():
        metrics = evaluate(run.build_model(role, seed), dataset)
        rows.append([role, f"{metrics['mse']:.4f}" if regression else f"{100 * metrics['accuracy']:.2f}",
                     f"{metrics['mae' if regression else 'loss']:.4f}"])
    print(f"the models of {run.name} (seed {seed}) on the {name} test split, {len(dataset)} samples "
          "(one of them: --model NAME)")
    print(render(["model", "test MSE", "test MAE"] if regression else ["model", "test accuracy %", "loss"], rows))
    return 0


def _eval_multitask(run: Run, seed: int, args: argparse.Namespace) -> int:
    """Each model of a multi-task run on its own task's test split (a row per model and task)."""
    from mentor.engine import evaluate
    from mentor.pipelines.multitask import restore
    from mentor.recipes import validate
    from mentor.recipes.multitask import build_multitask_job
    from mentor.report.runs import role_name
    from mentor.report.table import render

    if args.data is not None:
        raise MentorError("--data does not apply to a multi-task run: each task is measured on its own dataset's "
                          "test split; leave --data out")
    job = build_multitask_job(validate(run.recipe), progress=False, trust_code=run.trust_code)
    models = {role_name(role): measured for role, measured in restore(job, run.path, seed).items()}
    if args.model is not None and args.model not in models:
        raise unknown("model", args.model, list(models), where=f"run {str(run.path)!r}")
    rows = []
    for role, (model, splits) in models.items():
        if args.model is not None and role != args.model:
            continue
        metrics = evaluate(model, splits.test)
        result = ([f"MSE {metrics['mse']:.4f}", f"{metrics['mae']:.4f}"] if "mse" in metrics
                  else [f"{100 * metrics['accuracy']:.2f} %", f"{metrics['loss']:.4f}"])
        rows.append([role, splits.name, str(len(splits.test)), *result])
    print(f"the models of {run.name} (seed {seed}), each on its task's test split")
    print(render(["model", "dataset", "samples", "accuracy / MSE", "loss / MAE"], rows))
    return 0
