"""Output keys: picking the logits from a tensor, tuple, dict or ModelOutput, and select_output."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mentor.errors import MentorError
from mentor.outputs import check_key, keys_of, pick, select_output
from mentor.taps import run_with_taps


class TwoOutputs(nn.Module):
    """Returns (logits, features) or {"scores": ..., "features": ...}."""

    def __init__(self, as_dict: bool = False) -> None:
        super().__init__()
        self.body = nn.Linear(3, 4)
        self.head = nn.Linear(4, 2)
        self.as_dict = as_dict

    def forward(self, x: torch.Tensor) -> object:
        features = self.body(x)
        if self.as_dict:
            return {"scores": self.head(features), "features": features}
        return self.head(features), features


def test_the_default_is_logits_when_present_else_the_first_element() -> None:
    logits, other = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0]])
    assert pick(logits) is logits
    assert pick((logits, other)) is logits
    assert pick({"hidden": other, "logits": logits}) is logits
    assert pick({"scores": logits, "hidden": other}) is logits


def test_keys_indices_and_dotted_paths() -> None:
    states = (torch.zeros(1, 2), torch.ones(1, 2))
    result = {"logits": torch.zeros(1, 3), "hidden_states": states}
    assert pick(result, "hidden_states.1") is states[1]
    assert pick(result, "hidden_states.-1") is states[1]
    assert pick((torch.zeros(1), torch.ones(1)), 1).item() == 1.0
    assert keys_of(result) == ["logits", "hidden_states"]


def test_a_transformers_model_output_gives_its_logits() -> None:
    outputs = pytest.importorskip("transformers.modeling_outputs")
    logits = torch.tensor([[0.5, -0.5]])
    result = outputs.SequenceClassifierOutput(logits=logits, hidden_states=(torch.zeros(1, 4, 8),))
    assert pick(result) is logits
    assert pick(result, "hidden_states.0").shape == (1, 4, 8)
    with pytest.raises(MentorError, match=r"'attentions' is not in .*available: logits, hidden_states.*eager"):
        pick(result, "attentions.0", "teacher")


def test_an_unknown_key_lists_the_available_ones() -> None:
    with pytest.raises(MentorError, match=r"output 'score' of the student: 'score' is not .*available: logits, x"):
        pick({"logits": torch.zeros(1), "x": torch.zeros(1)}, "score", "student")
    with pytest.raises(MentorError, match=r"'2' is not .*available: 0, 1"):
        pick((torch.zeros(1), torch.zeros(1)), 2)
    with pytest.raises(MentorError, match="is a tuple, not a tensor"):
        pick({"states": (torch.zeros(1),)}, "states")


@pytest.mark.parametrize("key", [True, "", "a..b", 1.5])
def test_a_bad_key_is_one_line(key: object) -> None:
    with pytest.raises(MentorError, match="The 'output' parameter must be a key name"):
        check_key(key)


def test_select_output_makes_every_call_return_the_chosen_tensor() -> None:
    model = TwoOutputs(as_dict=True)
    x = torch.randn(5, 3)
    expected = model.head(model.body(x))
    select_output(model, "scores")
    assert torch.equal(model(x), expected)
    select_output(model, "features")  # chosen again: replaces the key, no second hook
    assert model(x).shape == (5, 4) and len(model._forward_hooks) == 1
    assert [name for name, _ in model.named_modules()] == ["", "body", "head"]  # paths unchanged


def test_select_output_passes_named_tensors_as_keywords() -> None:
    class Keywords(nn.Module):
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"logits": (input_ids * attention_mask).float()}

    model = select_output(Keywords())
    batch = {"input_ids": torch.tensor([[2, 3]]), "attention_mask": torch.tensor([[1, 0]])}
    assert model(batch).tolist() == [[2.0, 0.0]]


def test_output_taps_read_the_result_and_module_taps_still_work() -> None:
    model = TwoOutputs()
    logits, features = run_with_taps(model, torch.randn(2, 3), ["1", "body"])
    assert logits.shape == (2, 2)
    assert torch.equal(features["1"], features["body"])  # the second element is the body's output
    with pytest.raises(MentorError, match=r"'bdy' is not .*available: 0, 1.*nearest module paths: body"):
        run_with_taps(model, torch.randn(2, 3), ["bdy"])


def test_a_model_returning_one_tensor_keeps_the_module_path_error() -> None:
    with pytest.raises(MentorError, match=r"unknown module path 'fc' in student"):
        run_with_taps(nn.Sequential(nn.Linear(3, 2)), torch.randn(2, 3), ["fc"], role="student")


def test_distill_takes_a_model_returning_a_dict_of_logits_without_configuration() -> None:
    import mentor

    class Dictionary(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(64, 10)

        def forward(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"features": inputs.flatten(1), "logits": self.linear(inputs.flatten(1))}

    data = mentor.data.load("digits", validation=0.1, limit=200)
    teacher = mentor.models.create("mlp-tiny", data.num_classes, data.input_shape)
    result = mentor.distill(teacher, Dictionary(), data, mentor.knowledge.create("kd"), epochs=1, progress=False)
    assert 0.0 <= result.accuracies()["student distilled"] <= 1.0
