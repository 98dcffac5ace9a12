"""Reading a finished run directory (written by ``mentor run RECIPE --out DIR``).

A run directory holds ``recipe.yaml`` (the resolved recipe), ``metrics.jsonl`` (one record per epoch,
``run`` naming what was trained), ``summary.json`` (test results per model) and
``checkpoints/seed<S>/<run>/[<stage>/]{best,last}.pt``. Its models ("roles") are discovered from the
summary, the metrics and the checkpoint folders, never from a fixed list. Summary keys with spaces
(``"student alone"``) are spelled with hyphens, like the folders (``student-alone``).

A distillation run has ``teacher``, ``student-alone`` and ``student-distilled``. A scheme run has the
models its scheme gives (``peer0``, ``ensemble``, ``exit1``, ``fused``..., trained together in one
checkpoint folder named after the scheme), the peers trained alone (``peer0-alone``...) and their
plain ensemble (``ensemble-alone``); a scheme's models are rebuilt from ``recipe.yaml`` and restored
from its checkpoints without training (:func:`mentor.pipelines.collaborate.restore_scheme`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mentor.data import Splits
from mentor.engine import checkpoint
from mentor.engine.metrics import read as read_metrics
from mentor.errors import MentorError, shown, unknown

RECIPE, METRICS, SUMMARY, CHECKPOINTS = "recipe.yaml", "metrics.jsonl", "summary.json", "checkpoints"
ALONE = "-alone"
_ALONE = re.compile(r"^peer\d+-alone$")


def role_name(name: str) -> str:
    """The folder spelling of a role (``"student alone"`` -> ``"student-alone"``)."""
    return name.replace(" ", "-")


Number = (int, float)
# what each field of summary.json's per-role entries and of a metrics record must hold
SUMMARY_FIELDS: dict[str, Any] = {"seeds": [int], "accuracy": [Number], "accuracy_mean": Number,
                                  "accuracy_std": Number, "parameters": int, "latency_ms": Number, "best_epochs": [int],
                                  "mse": [Number], "mae": [Number]}
RECORD_FIELDS: dict[str, Any] = {"run": str, "stage": str, "seed": int, "epoch": int}


def _fits(value: Any, kind: Any) -> bool:
    if isinstance(kind, list):
        return isinstance(value, list) and all(_fits(item, kind[0]) for item in value)
    return isinstance(value, kind) and not isinstance(value, bool)


def _check_fields(entry: dict[str, Any], fields: dict[str, Any], where: str) -> None:
    for key, kind in fields.items():
        if key in entry and not _fits(entry[key], kind):
            raise MentorError(f"{where}: {key!r} holds {shown(entry[key])}, not what Mentor writes there; "
                              "the run directory is damaged")


def _summary(path: Path) -> dict[str, Any]:
    """``summary.json`` checked field by field (``{}`` when the run has none yet)."""
    from mentor.recipes.load import read_text

    if not path.is_file():
        return {}
    text = read_text(path, "run summary")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise MentorError(f"{str(path)!r} cannot be parsed; the run directory is damaged "
                          "(`mentor resume` writes it again)") from None
    models = data.get("models", {}) if isinstance(data, dict) else None
    if not isinstance(models, dict) or not all(isinstance(entry, dict) for entry in models.values()):
        raise MentorError(f"{str(path)!r} must map 'models' to one entry per role; the run directory is damaged")
    for role, entry in models.items():
        _check_fields(entry, SUMMARY_FIELDS, f"{str(path)!r}, role {shown(role)}")
    return data


def _checked_records(records: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """Metrics records whose fields hold what Mentor writes (numbers, or null for a non-finite one)."""
    for number, record in enumerate(records, start=1):
        _check_fields(record, RECORD_FIELDS, f"{str(path)!r} record {number}")
        for key, value in record.items():
            if key.startswith(("train/", "val/")) and value is not None and not _fits(value, Number):
                raise MentorError(f"{str(path)!r} record {number}: {shown(key)} holds {shown(value)}, not a number; "
                                  "the file is damaged")
    return records


def _check_weights(model: nn.Module, weights: dict[str, torch.Tensor], role: str, path: Path) -> None:
    """Raise a one-line error naming the first key where ``weights`` and ``model`` differ."""
    expected = model.state_dict()
    problem = ""
    for key, value in expected.items():
        if key not in weights:
            problem = f"key {key!r} of the model is missing from the checkpoint"
        elif tuple(weights[key].shape) != tuple(value.shape):
            problem = (f"key {key!r} has shape {tuple(weights[key].shape)} in the checkpoint but "
                       f"{tuple(value.shape)} in the model")
        if problem:
            break
    extra = [key for key in weights if key not in expected]
    if not problem and extra:
        problem = f"key {extra[0]!r} of the checkpoint is not in the model"
    if problem:
        raise MentorError(f"the checkpoint of role {role!r} ({path}) does not match the model recipe.yaml builds "
                          f"for it: {problem}; it comes from another model or the recipe was edited")


@dataclass
class Run:
    """A finished run directory. Open it with :meth:`Run.open`."""

    path: Path
    recipe: dict[str, Any]
    summary: dict[str, Any]
    records: list[dict[str, Any]]
    trust_code: bool = False
    _data: dict[int, Splits] = field(default_factory=dict, repr=False)
    _restored: dict[int, dict[str, nn.Module]] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: str | Path, trust_code: bool = False) -> Run:
        """Read ``recipe.yaml``, ``metrics.jsonl`` and ``summary.json`` of the run at ``path``.

        ``trust_code``: consent to build models named ``package.module:callable`` (see :mod:`mentor.models.trust`);
        without it :meth:`build_model` refuses them, whatever the run was started with.
        """
        from mentor.recipes import read_run_recipe

        path = Path(path)
        if not path.exists():
            raise MentorError(f"run directory {str(path)!r} does not exist")
        if not path.is_dir():
            raise MentorError(f"{str(path)!r} is not a run directory; pass a directory written by "
                              "`mentor run RECIPE --out DIR`")
        recipe = read_run_recipe(path).model_dump(mode="json")
        records = _checked_records(read_metrics(path / METRICS), path / METRICS)
        run = cls(path, recipe, _summary(path / SUMMARY), records, trust_code)
        if not run.roles():
            raise MentorError(f"run directory {str(path)!r} holds no results yet (no {SUMMARY}, {METRICS} or "
                              f"{CHECKPOINTS}); was the run interrupted?")
        return run

    @property
    def name(self) -> str:
        """The recipe name (or the folder name)."""
        return str(self.summary.get("recipe") or self.recipe.get("name") or self.path.name)

    @property
    def scheme(self) -> str | None:
        """The name of the run's scheme (``None`` for a distillation run)."""
        scheme = self.recipe.get("scheme")
        return str(scheme["name"]) if isinstance(scheme, dict) and "name" in scheme else None

    def runs(self) -> list[str]:
        """What was trained, as named in ``metrics.jsonl`` (a role, or a scheme's name), in file order."""
        return list(dict.fromkeys(role_name(str(record["run"])) for record in self.records if "run" in record))

    def roles(self) -> list[str]:
        """Every model of the run, in order of first appearance (summary, metrics, checkpoint folders)."""
        found = [role_name(name) for name in self.summary.get("models", {})]
        scheme = role_name(self.scheme) if self.scheme else None
        for record in self.records:
            if role_name(str(record.get("run", ""))) == scheme:  # unfinished: what a one-loop scheme validated
                if not self.summary and record.get("stage") == "train":
                    found += [key.split("/")[1] for key in record
                              if key.startswith("val/") and key.endswith("/accuracy")]
            elif "run" in record:
                found.append(role_name(str(record["run"])))
        for seed_folder in sorted((self.path / CHECKPOINTS).glob("seed*")):
            found += sorted(child.name for child in seed_folder.iterdir() if child.is_dir() and child.name != scheme)
        found = list(dict.fromkeys(found))
        if scheme and sum(1 for name in found if _ALONE.match(name)) > 1 and f"ensemble{ALONE}" not in found:
            found.append(f"ensemble{ALONE}")
        return found

    def seeds(self) -> list[int]:
        """Every seed of the run, sorted."""
        found = {int(record["seed"]) for record in self.records if "seed" in record}
        for entry in self.summary.get("models", {}).values():
            found.update(int(seed) for seed in entry.get("seeds", []))
        for folder in (self.path / CHECKPOINTS).glob("seed*"):
            if folder.name[4:].isdigit():
                found.add(int(folder.name[4:]))
        return sorted(found or {int(seed) for seed in self.recipe.get("seeds", [0])})

    def models_summary(self) -> dict[str, dict[str, Any]]:
        """``summary.json``'s per-role results, keyed by role (hyphenated)."""
        return {role_name(name): entry for name, entry in self.summary.get("models", {}).items()}

    def history(self, role: str) -> list[dict[str, Any]]:
        """The metrics records of ``role``, in file order."""
        return [record for record in self.records if role_name(str(record.get("run", ""))) == role]

    def check(self, role: str | None = None, seed: int | None = None) -> None:
        """Raise a :class:`MentorError` listing the valid roles / seeds for an unknown one."""
        if role is not None and role not in self.roles():
            raise unknown("model", role, self.roles(), where=f"run {str(self.path)!r}")
        if seed is not None and seed not in self.seeds():
            valid = ", ".join(map(str, self.seeds()))
            raise MentorError(f"run {str(self.path)!r} has no seed {seed} (valid: {valid})")

    def default_role(self) -> str:
        """``student-distilled`` when present, else the first role that is not the teacher."""
        roles = self.roles()
        if "student-distilled" in roles:
            return "student-distilled"
        return next((role for role in roles if role != "teacher"), roles[0])

    def weights_path(self, role: str, seed: int) -> Path:
        """The final weights of ``role``: ``best.pt`` of its last stage (``last.pt`` when no best)."""
        self.check(role, seed)
        folder = self.path / CHECKPOINTS / f"seed{seed}" / role
        if not folder.is_dir():
            teacher_file = (self.recipe.get("teacher") or {}).get("checkpoint")
            if self._member(role) is not None and self._member(role).get("checkpoint"):  # type: ignore[union-attr]
                return Path(self._member(role)["checkpoint"])  # type: ignore[index]
            if role == "teacher" and teacher_file:
                return Path(teacher_file)
            raise MentorError(f"run {str(self.path)!r} has no checkpoint of role {role!r} for seed {seed} "
                              f"(expected {folder}/best.pt)")
        stages = [child for child in folder.iterdir() if child.is_dir()]
        if stages and not any((folder / name).is_file() for name in ("best.pt", "last.pt")):
            order = list(dict.fromkeys(str(r.get("stage")) for r in self.history(role) if r.get("seed") == seed))
            stages.sort(key=lambda stage: (order.index(stage.name) if stage.name in order else -1, stage.name))
            folder = stages[-1]
        for name in ("best.pt", "last.pt"):
            if (folder / name).is_file():
                return folder / name
        raise MentorError(f"run {str(self.path)!r} has no best.pt or last.pt in {folder} for role {role!r}")

    def _member(self, role: str) -> dict[str, Any] | None:
        """The ``teachers:`` item of role ``teacherN`` in a run with several teachers."""
        match = re.fullmatch(r"teacher(\d+)", role)
        members = self.recipe.get("teachers")
        if match and isinstance(members, list) and int(match.group(1)) < len(members):
            return members[int(match.group(1))]
        return None

    def _python_member(self, role: str) -> None:
        """A member ``teacherN`` of an Ensemble given from Python: described by the ``teacher`` section alone."""
        if re.fullmatch(r"teacher\d+", role) and self._member(role) is None and self.recipe.get("teacher"):
            self._buildable(self.model_section("teacher")["model"])

    def model_section(self, role: str) -> dict[str, Any]:
        """The recipe section that builds ``role``'s model (``teacher``, ``student``, or a ``peers`` entry)."""
        if role == "teacher" and isinstance(self.recipe.get("teacher"), dict):
            return self.recipe["teacher"]
        if self._member(role) is not None:
            return self._member(role)  # type: ignore[return-value]
        if role.startswith("student") and isinstance(self.recipe.get("student"), dict):
            return self.recipe["student"]
        assistants = self.recipe.get("assistants") or []
        index = role.removeprefix("assistant")
        if role.startswith("assistant") and index.isdigit() and int(index) < len(assistants):
            return assistants[int(index)]
        peers = self.recipe.get("peers") or []
        for index, peer in enumerate(peers):
            if isinstance(peer, dict) and (peer.get("name") == role or role.split("-")[0] == f"peer{index}"):
                return peer
        raise MentorError(f"recipe.yaml of run {str(self.path)!r} has no model section for role {role!r} "
                          "(looked for teacher:, student:, assistants: and peers:)")

    def available(self, role: str, seed: int) -> None:
        """Raise a :class:`MentorError` when ``role``'s weights for ``seed`` or the recipe section that builds it
        are missing (what a report shows as a note; a model that is there but cannot be built is an error)."""
        self.check(role, seed)
        if self.scheme and role == f"ensemble{ALONE}":
            for name in (name for name in self.roles() if _ALONE.match(name)):
                self.available(name, seed)
        elif self.scheme and not _ALONE.match(role):
            folder = self.path / CHECKPOINTS / f"seed{seed}" / role_name(self.scheme)
            if not folder.is_dir():
                raise MentorError(f"run {str(self.path)!r} has no checkpoint of the {self.scheme} scheme for seed "
                                  f"{seed} (expected {folder})")
            peers = self.recipe.get("peers") or []
            self._buildable(self.scheme, *(peer.get("model") for peer in peers if isinstance(peer, dict)))
        elif role == "teacher" and isinstance(self.recipe.get("teachers"), list):
            for index in range(len(self.recipe["teachers"])):
                self.available(f"teacher{index}", seed)
        else:
            self._python_member(role)
            self.weights_path(role, seed)
            self._buildable(self.model_section(role)["model"])

    def _buildable(self, *names: object) -> None:
        """Raise the description of a Python run when one of ``names`` stands for a Python object."""
        from mentor.pipelines.output import is_python_object

        if any(is_python_object(name) for name in names):
            raise MentorError(f"run {str(self.path)!r} was {self.recipe.get('description', 'made from Python')}")

    def load_data(self, seed: int) -> Splits:
        """The run's dataset splits for ``seed`` (the test split is the same for every seed)."""
        if seed not in self._data:
            from mentor.data import load
            from mentor.recipes.schema import Data

            spec = Data.model_validate(self.recipe.get("data") or {})
            self._data[seed] = load(spec.name, validation=spec.validation, seed=seed, root=spec.root,
                                    limit=spec.limit, normalize=spec.normalize, offset=spec.offset)
        return self._data[seed]

    def _scheme_models(self, seed: int) -> dict[str, nn.Module]:
        """The models of the run's scheme for ``seed``, restored from its checkpoints (rebuilt once)."""
        if seed not in self._restored:
            from mentor.engine import seed_everything
            from mentor.pipelines.collaborate import restore_scheme
            from mentor.recipes import validate
            from mentor.recipes.build import build_peers_job

            recipe = validate(self.recipe)
            self._buildable(recipe.scheme.name, *(peer.model for peer in recipe.peers or []))
            job = build_peers_job(recipe, progress=False, trust_code=self.trust_code)
            seed_everything(seed)
            built = job.build([factory() for factory in job.peers])
            folder = self.path / CHECKPOINTS / f"seed{seed}" / role_name(job.scheme)
            self._restored[seed] = restore_scheme(built, self.load_data(seed), replace(job.settings, seed=seed),
                                                  folder)
        return self._restored[seed]

    def build_model(self, role: str, seed: int) -> nn.Module:
        """``role``'s model for ``seed`` with its final weights loaded, in eval mode."""
        from mentor.models import create
        from mentor.teachers import Ensemble

        self.check(role, seed)
        if self.scheme and role == f"ensemble{ALONE}":
            alone = [name for name in self.roles() if _ALONE.match(name)]
            return Ensemble([self.build_model(name, seed) for name in alone]).eval()
        if self.scheme and not _ALONE.match(role):
            restored = self._scheme_models(seed)
            if role not in restored:
                raise unknown("model", role, restored, where=f"the {self.scheme} scheme of run {str(self.path)!r}")
            return restored[role].eval()
        if role == "teacher" and isinstance(self.recipe.get("teachers"), list):  # several teachers: their ensemble
            return Ensemble([self.build_model(f"teacher{i}", seed) for i in range(len(self.recipe["teachers"]))]).eval()
        self._python_member(role)
        path = self.weights_path(role, seed)
        section = self.model_section(role)
        self._buildable(section["model"])
        data = self.load_data(seed)
        model = create(section["model"], data.num_classes, data.input_shape, trust_code=self.trust_code,
                       **(section.get("options") or {}))
        state = checkpoint.load_kept(path.parent) if path.name in ("best.pt", "last.pt") else checkpoint.load(path)
        models = state.get("models") if isinstance(state.get("models"), dict) else None
        if models is None:
            weights = state
        elif role in models or "student" in models:
            weights = models.get(role, models.get("student"))
        elif len(models) == 1:
            weights = next(iter(models.values()))
        else:
            raise MentorError(f"checkpoint {str(path)!r} holds models {sorted(models)}, none of them for role {role!r}")
        _check_weights(model, weights, role, path)
        model.load_state_dict(weights)
        return model.eval()


SUMMARY_HEADER = ("run", "recipe", "role", "test accuracy %", "seeds", "parameters", "latency ms/batch")


def summary_rows(runs: list[Run]) -> list[list[str]]:
    """One row per role of each run: accuracy (regression: MSE) mean ± std over seeds, parameters and latency."""
    from mentor.report.table import mean_std

    rows = []
    for run in runs:
        for role, entry in run.models_summary().items():
            accuracy = entry.get("accuracy") or [entry.get("accuracy_mean", float("nan"))]
            result = mean_std(accuracy, scale=100.0)
            if entry.get("mse"):  # a regression model: its test MSE instead
                accuracy, result = entry["mse"], f"MSE {mean_std(entry['mse'])}"
            parameters = entry.get("parameters")
            latency = entry.get("latency_ms")
            rows.append([run.path.name, run.name, role, result, str(len(accuracy)),
                         f"{parameters:,}" if isinstance(parameters, int) else "-",
                         f"{latency:.3f}" if isinstance(latency, (int, float)) else "-"])
    return rows
