"""Real transformers models (tiny configurations built offline) as Mentor models: factories, taps, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from mentor.errors import MentorError
from mentor.models import create
from mentor.taps import run_with_taps
from tests.ecosystem.conftest import TINY_BERT

transformers = pytest.importorskip("transformers")


def batch(size: int = 2, length: int = 6) -> dict[str, torch.Tensor]:
    ids = torch.arange(size * length).reshape(size, length) % TINY_BERT["vocab_size"]
    mask = torch.ones(size, length, dtype=torch.long)
    mask[0, -2:] = 0  # the first text is 2 tokens shorter
    return {"input_ids": ids, "attention_mask": mask}


def test_hf_config_builds_a_classifier_for_the_runs_classes() -> None:
    model = create("hf-config", num_classes=3, **TINY_BERT)
    assert isinstance(model, transformers.BertForSequenceClassification)
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 16
    assert model(batch()).shape == (2, 3)  # named tensors in, logits out
    assert model.mentor_recipe == {"model": "hf-config", "options": TINY_BERT}


def test_hidden_states_are_tapped_by_name() -> None:
    model = create("hf-config", num_classes=3, **TINY_BERT).eval()  # no dropout: two passes agree
    logits, features = run_with_taps(model, batch(), ["hidden_states.0", "hidden_states.2", "bert.embeddings"])
    assert logits.shape == (2, 3)
    assert features["hidden_states.2"].shape == (2, 6, 16)
    assert torch.equal(features["hidden_states.0"], features["bert.embeddings"])  # entry 0: the embeddings
    _, last = run_with_taps(model, batch(), ["bert.encoder.layer.1"])
    assert torch.equal(features["hidden_states.2"], last["bert.encoder.layer.1"])


def test_attentions_are_tapped_with_eager_attention() -> None:
    model = create("hf-config", num_classes=3, attn_implementation="eager", **TINY_BERT)
    model.eval()
    _, features = run_with_taps(model, batch(), ["attentions.1"])
    weights = features["attentions.1"]
    assert weights.shape == (2, 2, 6, 6)  # (B, heads, L, L)
    assert torch.allclose(weights.sum(dim=-1), torch.ones(2, 2, 6), atol=1e-5)  # each row a distribution
    assert weights[0, :, :, -2:].abs().max() < 1e-6  # no weight on the padded tokens of the first text


def test_attentions_without_eager_attention_say_how_to_get_them() -> None:
    model = create("hf-config", num_classes=3, attn_implementation="sdpa", **TINY_BERT)
    with pytest.raises(MentorError, match="attn_implementation: eager"):
        run_with_taps(model, batch(), ["attentions.0"], role="teacher")


def test_a_misspelt_output_tap_lists_keys_and_paths() -> None:
    model = create("hf-config", num_classes=3, **TINY_BERT)
    with pytest.raises(MentorError, match=r"'hiden_states' is not .*available: logits.*hidden_states\.N"):
        run_with_taps(model, batch(), ["hiden_states.1"], role="student")


def test_hf_loads_a_saved_folder_with_a_new_head(tmp_path: Path) -> None:
    saved = create("hf-config", num_classes=5, **TINY_BERT)
    saved.save_pretrained(tmp_path)
    loaded = create(f"hf:{tmp_path}", num_classes=3)
    assert loaded(batch()).shape == (2, 3)
    encoder = saved.bert.embeddings.word_embeddings.weight
    assert torch.equal(loaded.bert.embeddings.word_embeddings.weight, encoder)


def test_hf_never_downloads(tmp_path: Path) -> None:
    with pytest.raises(MentorError, match=r"model 'hf:.*no Hugging Face model .* on disk \(nothing downloads"):
        create(f"hf:{tmp_path / 'absent'}", num_classes=3)
    with pytest.raises(MentorError, match="names no model after 'hf:'"):
        create("hf:", num_classes=3)


def test_hf_config_with_an_unknown_model_type_is_one_line() -> None:
    with pytest.raises(MentorError, match="The 'model_type' option of hf-config must be a transformers model type"):
        create("hf-config", num_classes=3, model_type="bort")


@pytest.mark.parametrize(("spec", "extra"), [("timm:resnet18", "timm"), ("torchvision:resnet18", "torchvision")])
def test_a_missing_extra_is_one_line_naming_it(spec: str, extra: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, extra, None)  # as if the package were not installed
    with pytest.raises(MentorError, match=rf"needs the optional package '{extra}'.*pip install 'mentor\[{extra}\]'"):
        create(spec, num_classes=10, input_shape=(3, 32, 32))


def test_a_missing_transformers_names_the_hf_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MentorError, match=r"pip install 'mentor\[hf\]'"):
        create("hf-config", num_classes=3)


def test_output_option_of_create_on_a_users_model() -> None:
    model = transformers.BertForSequenceClassification(transformers.BertConfig(**{
        key: value for key, value in TINY_BERT.items() if key != "model_type"}, num_labels=2))
    adapted = create(model, output="logits")
    assert adapted is model and model(batch()).shape == (2, 2)
