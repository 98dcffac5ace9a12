"""How good a target each teacher and the teachers' average are, on images they learned and on images none saw.

    mentor bench teacher_targets --run DIR [--unseen 12000]

``DIR`` is the ``--out`` folder of ``mentor bench teachers``: ``DIR/teachers`` holds its trained teachers and
``DIR/teachers.yaml`` their recipe. Loads each teacher, standardizes the images as the teachers' run did (the
statistics of its seed-0 training split), and measures on two pools at τ = 1:

* the student's pool: the first ``data.limit`` training images, the ones every student of that benchmark
  learns from; each of them is in at least one teacher's subset (save the held-out validation images);
* the unseen pool: the next ``--unseen`` training images, which no teacher saw.

For each teacher and for the uniform average of their softmax outputs (the `uniform` weighting's target at
τ = 1): accuracy, mean negative log-likelihood of the true class and mean entropy (nats). The average helps a
student only where it is the better target: more often right, or a lower NLL. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from mentor.data import load  # noqa: E402
from mentor.engine import checkpoint  # noqa: E402
from mentor.models import create  # noqa: E402


def target_quality(probabilities: torch.Tensor, targets: torch.Tensor) -> tuple[float, float, float]:
    """Accuracy %, mean NLL of the true class and mean entropy of ``probabilities`` ``(N, K)``."""
    accuracy = 100 * (probabilities.argmax(1) == targets).float().mean().item()
    nll = -torch.log(probabilities.gather(1, targets[:, None]).clamp_min(1e-12)).mean().item()
    entropy = -torch.special.xlogy(probabilities, probabilities).sum(1).mean().item()
    return accuracy, nll, entropy


def main() -> None:
    parser = argparse.ArgumentParser(prog="mentor bench teacher_targets", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="the --out folder of `mentor bench teachers`")
    parser.add_argument("--unseen", type=int, default=12_000, help="images after the student's pool (default 12000)")
    args = parser.parse_args()
    run = Path(args.run)
    recipe_file = run / "teachers.yaml"
    if not recipe_file.is_file():
        raise SystemExit(f"--run {args.run!r} holds no teachers.yaml; give the --out folder of `mentor bench "
                         "teachers` after its teachers were trained")
    recipe = yaml.safe_load(recipe_file.read_text())
    limit, name = recipe["data"]["limit"], recipe["data"]["name"]
    reference = load(name, validation=recipe["data"]["validation"], seed=0, limit=limit)
    raw = load(name, validation=0.0, seed=0, limit=limit + args.unseen, normalize=False)
    shape = (1, -1) + (1,) * (raw.train.inputs.ndim - 2)
    inputs = (raw.train.inputs - reference.mean.view(shape)) / reference.std.view(shape)
    teachers = []
    for index, spec in enumerate(recipe["teachers"]):
        model = create(spec["model"], num_classes=reference.num_classes, input_shape=reference.input_shape,
                       **spec.get("options", {}))
        state = checkpoint.load(run / "teachers" / "checkpoints" / "seed0" / f"teacher{index}" / "best.pt")
        model.load_state_dict(state["models"]["student"])
        teachers.append(model.eval())
    with torch.inference_mode():
        probabilities = torch.stack([torch.cat([torch.softmax(teacher(inputs[i:i + 1000]), 1)
                                                for i in range(0, len(inputs), 1000)]) for teacher in teachers], 1)
    pools = {"student's pool": slice(0, limit), "unseen": slice(limit, limit + args.unseen)}
    rows = []
    for index, spec in enumerate([*recipe["teachers"], None]):
        label = f"teacher{index} ({spec['model']})" if spec else "average of the teachers"
        chosen = probabilities[:, index] if spec else probabilities.mean(1)
        cells = [target_quality(chosen[part], raw.train.targets[part]) for part in pools.values()]
        rows.append([label, *(f"{value:.2f}" if column == 0 else f"{value:.3f}"
                              for cell in cells for column, value in enumerate(cell))])
    header = ["target (τ = 1)"] + [f"{pool}: {measure}" for pool in pools for measure in ("acc. %", "NLL", "entropy")]
    print(f"{_common.invocation('teacher_targets')}\n\n{name}: the student's pool is the first {limit:,} training "
          f"images, the unseen pool the next {args.unseen:,}.\n\n{_common.table(header, rows)}")


if __name__ == "__main__":
    main()
