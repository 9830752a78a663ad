"""aekit's estimators against scikit-learn's own checks, in a Pipeline with
GridSearchCV, and through pickling and the CLI's model files."""

import pickle

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import aekit

# Settings that suit the checks' small real-valued data (squared loss with a
# linear output; the default cross-entropy needs data in [0, 1]).
ESTIMATORS = [
    aekit.DenoisingAutoencoder(
        8, loss="squared", output_activation="identity", noise="gauss:0.1",
        max_iter=3, batch_size=10, learning_rate=0.01, random_state=0,
    ),
    aekit.SparseAutoencoder(4, output_activation="identity", max_iter=20, random_state=0),
    aekit.ConvAutoencoder(
        {"encoder": [{"type": "conv", "out": 3, "kernel": 1}, {"type": "relu"}],
         "decoder": [{"type": "conv", "out": 1, "kernel": 1}]},
        max_iter=3, batch_size=10, learning_rate=0.01, random_state=0,
    ),
    aekit.StackedDenoisingAutoencoder(
        (8,), noise="gauss:0.1", loss="squared", pretrain_epochs=2, max_iter=40, batch_size=10,
        validation_fraction=0.2, random_state=0,
    ),
    aekit.PCA(n_components=1),
    aekit.Imputer(layers=(8,), max_iter=3, random_state=0),
]

EXPECTED_FAILURES = {}


@parametrize_with_checks(
    ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILURES.get(type(est).__name__, {})
)
def test_scikit_learn_checks(estimator, check):
    check(estimator)
