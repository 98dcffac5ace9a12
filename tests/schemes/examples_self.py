"""Scheme contract examples for the self-learning schemes (survey §5.2)."""

from tests.schemes.conftest import SchemeExample, small_cnn


def one_model() -> list:
    return [small_cnn(1)]


EXAMPLES = {
    "tfkd-self": SchemeExample(models=one_model, params={"temperature": 4.0, "alpha": 0.5}),
    "tfkd-virtual": SchemeExample(models=one_model, params={"correct_probability": 0.9, "temperature": 2.0}),
    "byot": SchemeExample(models=one_model, params={"taps": ["stage1", "stage2"]}),
    "born-again": SchemeExample(models=one_model, params={"generations": 2}),
    "oskd": SchemeExample(models=one_model, params={"subclasses": 2}),
    "pseudo-labels": SchemeExample(models=one_model, params={"rounds": 2, "labelled_fraction": 0.5, "threshold": 0.0}),
    "mean-teacher": SchemeExample(models=one_model, params={"labels": 10, "consistency": 10.0}),
}
