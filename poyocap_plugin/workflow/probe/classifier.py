"""The linear probe's classifier: a logistic regression on standardised features."""

from __future__ import annotations

import numpy as np

__all__ = ["CLASSIFIER_DESCRIPTION", "linear_probe_accuracy"]

_MAX_ITER = 10_000  # lbfgs iterations of the logistic regression
_RANDOM_STATE = 0

#: The classifier, in words, for ``probe.json``.
CLASSIFIER_DESCRIPTION = (
    f"StandardScaler + LogisticRegression(max_iter={_MAX_ITER}, random_state={_RANDOM_STATE})"
)


def linear_probe_accuracy(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
) -> float:
    """Test accuracy of a logistic regression fit on standardised training features.

    Args:
        train_features: Features of shape :math:`(N_{train}, F)`.
        train_labels: Class labels of shape :math:`(N_{train},)`, integer.
        test_features: Features of shape :math:`(N_{test}, F)`.
        test_labels: Class labels of shape :math:`(N_{test},)`, integer.

    Returns:
        The fraction of test samples classified correctly.

    Raises:
        ValueError: If the shapes disagree, a split is empty, or the training labels hold
            fewer than two classes.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_features, test_features = np.asarray(train_features), np.asarray(test_features)
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    for name, features, labels in (
        ("train", train_features, train_labels),
        ("test", test_features, test_labels),
    ):
        if features.ndim != 2 or labels.shape != (len(features),) or len(features) == 0:
            raise ValueError(
                f"{name}_features must be (N, F) with N > 0 and {name}_labels (N,); got "
                f"{features.shape} and {labels.shape}"
            )
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f"train and test features differ in width: {train_features.shape[1]} vs "
            f"{test_features.shape[1]}"
        )
    classes = np.unique(train_labels)
    if len(classes) < 2:
        raise ValueError(
            f"train_labels must hold at least two classes to fit a classifier; got {classes}"
        )
    classifier = make_pipeline(
        StandardScaler(),
        LogisticRegression(max_iter=_MAX_ITER, random_state=_RANDOM_STATE),
    )
    classifier.fit(train_features, train_labels)
    return float(np.mean(classifier.predict(test_features) == test_labels))
