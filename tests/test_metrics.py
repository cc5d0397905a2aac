"""Metrics against plain-Python references written here, batch by batch and element by element."""

import math

import numpy as np
import pytest

from lstmkit import metrics
from lstmkit.metrics import (
    Accuracy,
    BitsPerCharacter,
    MeanSquaredError,
    Metric,
    NegativeLogLikelihood,
    Perplexity,
)


def _batches(seed=0, classes=4):
    """Three batches of different shapes, each with a (batch, time) mask."""
    rng = np.random.default_rng(seed)
    out = []
    for B, T in ((2, 5), (3, 2), (1, 4)):
        logits = rng.standard_normal((B, T, classes)) * 3
        targets = rng.integers(0, classes, (B, T))
        mask = rng.random((B, T)) < 0.7
        targets[~mask] = -1  # padding: never read
        out.append((logits, targets, mask))
    return out


def _reference_nll(batches):
    total, count = 0.0, 0
    for logits, targets, mask in batches:
        for b in range(logits.shape[0]):
            for t in range(logits.shape[1]):
                if not mask[b, t]:
                    continue
                row = [float(v) for v in logits[b, t]]
                log_sum = math.log(sum(math.exp(v) for v in row))
                total += log_sum - row[targets[b, t]]
                count += 1
    return total / count


def test_accuracy_counts_masked_entries_over_batches():
    batches = _batches()
    right = count = 0
    for logits, targets, mask in batches:
        for b in range(logits.shape[0]):
            for t in range(logits.shape[1]):
                if mask[b, t]:
                    row = list(logits[b, t])
                    right += row.index(max(row)) == targets[b, t]
                    count += 1
    metric = Accuracy()
    for logits, targets, mask in batches:
        metric.update(logits, targets, mask)
    assert metric.result() == pytest.approx(right / count, rel=1e-15)
    # Not the mean of batch accuracies (the batches count different numbers of entries).
    per_batch = []
    for logits, targets, mask in batches:
        one = Accuracy()
        one.update(logits, targets, mask)
        per_batch.append(one.result())
    assert metric.result() != pytest.approx(np.mean(per_batch))


def test_perplexity_and_bits_per_character():
    batches = _batches(1)
    nll = _reference_nll(batches)
    ppl, bpc, mean = Perplexity(), BitsPerCharacter(), NegativeLogLikelihood()
    for logits, targets, mask in batches:
        ppl.update(logits, targets, mask)
        bpc.update(logits, targets, mask)
        mean.update(logits, targets, mask)
    assert mean.result() == pytest.approx(nll, rel=1e-12)
    assert ppl.result() == pytest.approx(math.exp(nll), rel=1e-12)
    assert bpc.result() == pytest.approx(nll / math.log(2), rel=1e-12)
    ppl.reset()
    assert math.isnan(ppl.result())


def test_mean_squared_error_over_elements():
    rng = np.random.default_rng(2)
    total, count = 0.0, 0
    metric = MeanSquaredError()
    for B, T in ((2, 3), (4, 1)):
        pred, target = rng.standard_normal((B, T, 2)), rng.standard_normal((B, T, 2))
        mask = rng.random((B, T)) < 0.6
        mask[0, 0] = True
        for b in range(B):
            for t in range(T):
                if mask[b, t]:
                    for f in range(2):
                        total += (float(pred[b, t, f]) - float(target[b, t, f])) ** 2
                        count += 1
        metric.update(pred, target, mask)
    assert metric.result() == pytest.approx(total / count, rel=1e-13)


def test_metrics_by_name_and_errors():
    assert isinstance(metrics.get("bpc"), BitsPerCharacter)
    assert isinstance(metrics.get("mse"), MeanSquaredError)
    own = Accuracy()
    assert metrics.get(own) is own
    with pytest.raises(ValueError, match=r"metrics: expected one of .*received 'f1'"):
        metrics.get("f1")
    with pytest.raises(TypeError, match=r"metrics: expected a metric name"):
        metrics.get(3)
    with pytest.raises(ValueError, match=r"target: expected shape \(2, 3\)"):
        Accuracy().update(np.zeros((2, 3, 4)), np.zeros((2, 4), int))
    with pytest.raises(TypeError, match=r"target: expected integer class indices"):
        Perplexity().update(np.zeros((2, 4)), np.zeros(2))
    with pytest.raises(ValueError, match=r"target: expected class indices in \[0, 4\)"):
        Perplexity().update(np.zeros((2, 4)), np.array([0, 4]))
    with pytest.raises(ValueError, match=r"mask: expected a shape that is a prefix"):
        MeanSquaredError().update(np.zeros((2, 3)), np.zeros((2, 3)), np.ones(3, bool))


def test_a_users_metric_is_a_metric():
    class MaxAbsError(Metric):
        name = "max_abs_error"

        def update(self, prediction, target, mask=None):
            self.total = max(self.total, float(np.max(np.abs(prediction - target))))
            self.count = 1

    m = MaxAbsError()
    m.update(np.array([1.0, 5.0]), np.array([0.0, 0.0]))
    assert metrics.get(m).result() == 5.0
