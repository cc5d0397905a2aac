"""fit: epochs, validation, the mask from lengths, callbacks, schedules and progress.

Oracles: the unpadded sequences computed one by one (the mask from lengths); weights snapshotted
at every epoch by a callback written here (early stopping and checkpoints restore exactly those
of the best epoch); PyTorch's learning-rate schedulers and the formulas written out here.
"""

import io
import math
import os
import sys
import tempfile

import numpy as np
import pytest

from lstmkit import (
    Bidirectional,
    Dense,
    GRUCell,
    LSTMCell,
    Recurrent,
    Sequential,
    load,
    losses,
)
from lstmkit.callbacks import Callback, EarlyStopping, LearningRateScheduler, ModelCheckpoint
from lstmkit.data import ArrayBatches
from lstmkit.evaluation import evaluate
from lstmkit.layers import FinalState
from lstmkit.metrics import Metric
from lstmkit.optimizers import SGD, Adam
from lstmkit.schedules import CosineDecay, ExponentialDecay, StepDecay
from lstmkit.training import fit, train_step

# -- the mask from lengths ---------------------------------------------------------------------


def _padded(seed, lengths, T=6, I=2):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((len(lengths), T, I))
    for b, n in enumerate(lengths):
        x[b, n:] = 1e3  # padding: must never matter
    return x


@pytest.mark.parametrize("task", ["regression", "classes"])
def test_mask_from_lengths_gives_the_loss_and_gradient_of_the_unpadded_sequences(task):
    lengths = np.array([6, 2, 4])
    x = _padded(0, lengths)
    rng = np.random.default_rng(1)
    if task == "regression":
        model = Sequential(Recurrent(GRUCell(2, 3, rng=0)), Dense(3, 2, rng=1))
        loss_fn, target = losses.mean_squared_error, rng.standard_normal((3, 6, 2))
        target[np.arange(6)[None, :] >= lengths[:, None]] = 1e3
    else:
        model = Sequential(Bidirectional(LSTMCell(2, 3, rng=0), rng=2), Dense(6, 4, rng=1))
        loss_fn, target = losses.softmax_cross_entropy, rng.integers(0, 4, (3, 6))
        target[np.arange(6)[None, :] >= lengths[:, None]] = -1
    opt = SGD(model, lr=0.0)  # the step leaves the gradients in place and the weights unchanged
    loss = train_step(model, loss_fn, opt, x, target, lengths=lengths).loss
    grads = {n: p.grad.copy() for n, p in model.named_parameters().items()}

    # One sequence at a time, unpadded: each loss is a mean over its own steps.
    total = sum(lengths)
    want_loss, want = 0.0, {n: 0.0 for n in grads}
    for b, n in enumerate(lengths):
        model.zero_grad()
        y, cache = model.forward(x[b : b + 1, :n])
        lb, dy = loss_fn(y, target[b : b + 1, :n])
        model.backward(cache, dy)
        want_loss += lb * n / total
        for name, p in model.named_parameters().items():
            want[name] = want[name] + p.grad * (n / total)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    for name in grads:
        np.testing.assert_allclose(grads[name], want[name], rtol=1e-10, atol=1e-14, err_msg=name)

    # Validation metrics see the same: padding never counts.
    metric = "accuracy" if task == "classes" else "mse"
    padded = evaluate(model, loss_fn, [(x, target, lengths)], [metric])
    pieces = [(x[b : b + 1, :n], target[b : b + 1, :n]) for b, n in enumerate(lengths)]
    unpadded = evaluate(model, loss_fn, pieces, [metric])
    assert padded == pytest.approx(unpadded, rel=1e-12)
    # Without the mask the padding would count.
    unmasked = train_step(
        model, loss_fn, opt, x, np.where(target == -1, 0, target), lengths=lengths, auto_mask=False
    ).loss
    assert unmasked != pytest.approx(loss)


# -- early stopping and checkpoints -------------------------------------------------------------


class Scripted(Metric):
    """A user's metric whose value per epoch is given (reset starts each epoch's evaluation)."""

    name = "scripted"

    def __init__(self, values):
        super().__init__()
        self.values, self.epoch = list(values), -1

    def reset(self):
        super().reset()
        self.epoch += 1

    def update(self, prediction, target, mask=None):
        pass

    def result(self):
        return self.values[self.epoch]


class Snapshots(Callback):
    def __init__(self):
        self.weights = []

    def on_epoch_end(self, state, logs):
        self.weights.append(state.model.state_dict())


def _small_run(values, callbacks, epochs=None):
    rng = np.random.default_rng(0)
    model = Sequential(Recurrent(LSTMCell(1, 4, rng=0)), FinalState(), Dense(4, 1, rng=1))
    x = rng.standard_normal((8, 5, 1))
    data = (x, x.sum(axis=1))
    snaps = Snapshots()
    history = fit(
        model,
        losses.mean_squared_error,
        Adam(model, lr=0.05),
        data,
        epochs=epochs or len(values),
        validation_data=data,
        metrics=[Scripted(values)],
        callbacks=[snaps, *callbacks],
        progress=False,
    )
    return model, history, snaps


def _assert_weights(model, expected):
    state = model.state_dict()
    assert state.keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_array_equal(state[name], value, err_msg=name)


@pytest.mark.parametrize(
    ("values", "patience", "min_delta", "mode", "best", "stopped"),
    [
        ([5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 2.0], 2, 0.0, "min", 2, 5),
        ([5.0, 4.0, 3.0, 3.5, 3.2, 2.9, 2.0], 2, 0.0, "min", 6, None),
        ([5.0, 4.8, 4.6, 4.55, 1.0], 2, 0.5, "min", 0, 3),
        ([5.0, 6.0, 7.0], 0, 0.0, "min", 0, 1),
        ([0.1, 0.5, 0.4, 0.45, 0.9], 1, 0.0, "max", 1, 3),
        ([1.0, math.nan, 0.5, math.nan, math.nan], 1, 0.0, "min", 2, 4),
    ],
)
def test_early_stopping_stops_at_the_right_epoch_and_restores_the_best(
    values, patience, min_delta, mode, best, stopped
):
    stop = EarlyStopping("val_scripted", patience=patience, min_delta=min_delta, mode=mode)
    model, history, snaps = _small_run(values, [stop])
    last = len(values) - 1 if stopped is None else stopped
    assert history.epochs == list(range(last + 1))
    assert history.stopped_epoch == stopped == stop.stopped_epoch
    assert stop.best_epoch == best
    assert history.metrics["val_scripted"][: last + 1] == pytest.approx(
        values[: last + 1], nan_ok=True
    )
    _assert_weights(model, snaps.weights[best])
    if best != last:  # the weights changed since, so restoring them is observable
        assert not np.array_equal(
            snaps.weights[best]["layers.2.W"], snaps.weights[last]["layers.2.W"]
        )


def test_checkpoint_file_holds_the_best_model_and_it_is_restored():
    folder = tempfile.mkdtemp()
    best_path = os.path.join(folder, "best.npz")
    every = os.path.join(folder, "ckpt-{epoch:02d}.npz")
    values = [3.0, 2.0, 2.5, 1.5, 1.7]
    ckpt = ModelCheckpoint(best_path, monitor="val_scripted")
    all_epochs = ModelCheckpoint(
        every, monitor="val_scripted", save_best_only=False, restore_best=False
    )
    model, history, snaps = _small_run(values, [all_epochs, ckpt])
    assert ckpt.best == 1.5 and str(ckpt.best_path) == best_path
    _assert_weights(load(best_path), snaps.weights[3])
    _assert_weights(model, snaps.weights[3])  # restored at the end
    assert sorted(os.listdir(folder)) == ["best.npz"] + [f"ckpt-{e:02d}.npz" for e in range(1, 6)]
    _assert_weights(load(os.path.join(folder, "ckpt-05.npz")), snaps.weights[4])


def test_callbacks_refuse_what_they_cannot_do():
    with pytest.raises(
        ValueError,
        match=r"monitor: EarlyStopping watches 'val_loss', but the epoch recorded only loss, lr",
    ):
        rng = np.random.default_rng(0)
        model = Sequential(Recurrent(LSTMCell(1, 2, rng=0)), FinalState(), Dense(2, 1, rng=1))
        x = rng.standard_normal((4, 3, 1))
        fit(
            model,
            losses.mean_squared_error,
            SGD(model, lr=0.1),
            (x, x[:, 0]),
            callbacks=[EarlyStopping()],
            progress=False,
        )
    with pytest.raises(ValueError, match=r"patience: expected an integer >= 0"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match=r"mode: expected one of auto, min, max"):
        ModelCheckpoint("x.npz", mode="up")
    with pytest.raises(ValueError, match=r"path: saving every epoch to the one file"):
        ModelCheckpoint("x.npz", save_best_only=False)
    with pytest.raises(ValueError, match=r"path: expected a file name whose only"):
        ModelCheckpoint("x-{step}.npz")
    with pytest.raises(TypeError, match=r"schedule: expected a function of the epoch"):
        LearningRateScheduler(0.1)


# -- learning-rate schedules --------------------------------------------------------------------


def test_schedules_follow_their_formulas_and_torch():
    step, expo, cos = (
        StepDecay(0.1, 3, gamma=0.5),
        ExponentialDecay(0.2, 0.9),
        CosineDecay(0.3, 8, 0.01),
    )
    for e in range(12):
        assert step(e) == pytest.approx(0.1 * 0.5 ** (e // 3), rel=1e-15)
        assert expo(e) == pytest.approx(0.2 * 0.9**e, rel=1e-14)
        c = 0.01 + (0.3 - 0.01) * (1 + math.cos(math.pi * min(e, 8) / 8)) / 2
        assert cos(e) == pytest.approx(c, rel=1e-14)
    torch = pytest.importorskip("torch")
    for ours, make in (
        (step, lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
        (expo, lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9)),
        (cos, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=8, eta_min=0.01)),
    ):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=ours(0))
        sched = make(opt)
        for e in range(9):
            assert ours(e) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12), (ours, e)
            opt.step()
            sched.step()
    with pytest.raises(ValueError, match=r"initial: expected a finite number > 0"):
        StepDecay(0.0, 2)
    with pytest.raises(ValueError, match=r"step_size: expected an integer >= 1"):
        StepDecay(0.1, 0)
    with pytest.raises(ValueError, match=r"epoch: expected an integer >= 0"):
        expo(-1)


def test_scheduler_sets_the_rate_of_every_epoch():
    seen = []

    class Watch(Callback):
        def on_batch_end(self, state, step, loss):
            seen.append((state.epoch, state.optimizer.lr))

    rng = np.random.default_rng(0)
    model = Sequential(Recurrent(LSTMCell(1, 2, rng=0)), FinalState(), Dense(2, 1, rng=1))
    x = rng.standard_normal((4, 3, 1))
    schedule = CosineDecay(0.1, 4)
    history = fit(
        model,
        losses.mean_squared_error,
        SGD(model, lr=1.0),
        (x, x[:, 0]),
        batch_size=2,
        epochs=5,
        callbacks=[LearningRateScheduler(schedule), Watch()],
        progress=False,
    )
    assert history.metrics["lr"] == pytest.approx([schedule(e) for e in range(5)])
    assert seen == [(e, pytest.approx(schedule(e))) for e in range(5) for _ in range(2)]
    custom = fit(
        model,
        losses.mean_squared_error,
        SGD(model, lr=1.0),
        (x, x[:, 0]),
        epochs=3,
        callbacks=[LearningRateScheduler(lambda e: 0.01 / (e + 1))],
        progress=False,
    )
    assert custom.metrics["lr"] == pytest.approx([0.01, 0.005, 0.01 / 3])
    # Keras' form, schedule(epoch, lr): the optimizer's current rate comes in.
    keras_style = fit(
        model,
        losses.mean_squared_error,
        SGD(model, lr=0.08),
        (x, x[:, 0]),
        epochs=4,
        callbacks=[LearningRateScheduler(lambda epoch, lr: lr if epoch == 0 else lr / 2)],
        progress=False,
    )
    assert keras_style.metrics["lr"] == pytest.approx([0.08, 0.04, 0.02, 0.01])
    # A NumPy number is a learning rate too.
    numpy_rate = fit(
        model,
        losses.mean_squared_error,
        SGD(model, lr=1.0),
        (x, x[:, 0]),
        epochs=2,
        callbacks=[LearningRateScheduler(lambda e: np.float32(0.5) ** (e + 1))],
        progress=False,
    )
    assert numpy_rate.metrics["lr"] == pytest.approx([0.5, 0.25])


# -- epochs, data and learning ------------------------------------------------------------------


def _sum_task(n, seed):
    """Sum of a variable-length sequence: the target needs every valid step."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 8, n)
    x = rng.uniform(-1, 1, (n, 8, 1))
    x[np.arange(8)[None, :] >= lengths[:, None]] = 0.0
    return x, x.sum(axis=1) / 4, lengths


def test_training_on_a_small_task_reduces_validation_loss():
    train, valid = _sum_task(64, 0), _sum_task(32, 1)
    model = Sequential(
        Bidirectional(LSTMCell(1, 8, rng=0), rng=1), FinalState(), Dense(16, 1, rng=2)
    )
    history = fit(
        model,
        losses.mean_squared_error,
        Adam(model, lr=0.02),
        train,
        batch_size=16,
        shuffle=True,
        rng=3,
        epochs=8,
        validation_data=valid,
        metrics=["mse"],
        progress=False,
    )
    val = history.metrics["val_loss"]
    assert len(val) == 8 and val[-1] < 0.25 * val[0]
    assert history.metrics["val_mse"] == pytest.approx(val, rel=1e-12)  # same quantity
    assert len(history.losses) == 8 * 4


def test_array_batches_shuffle_every_epoch_from_the_given_rng():
    x = np.arange(7.0).reshape(7, 1, 1)
    data = ArrayBatches(x, x[:, 0], batch_size=3, shuffle=True, rng=5)
    first = [b["target"].ravel().tolist() for b in data]
    second = [b["target"].ravel().tolist() for b in data]
    assert [len(b) for b in first] == [3, 3, 1]
    assert sorted(sum(first, [])) == sorted(sum(second, [])) == list(range(7))
    assert first != second
    again = ArrayBatches(x, x[:, 0], batch_size=3, shuffle=True, rng=np.random.default_rng(5))
    assert [b["target"].ravel().tolist() for b in again] == first
    with pytest.raises(ValueError, match=r"target: expected 7 rows like x"):
        ArrayBatches(x, x[:5, 0])
    with pytest.raises(ValueError, match=r"batch_size: expected an integer >= 1"):
        ArrayBatches(x, x[:, 0], batch_size=0)


def test_fit_reads_a_dataset_every_epoch_and_refuses_one_shot_iterators():
    rng = np.random.default_rng(0)
    model = Sequential(Recurrent(LSTMCell(1, 2, rng=0)), FinalState(), Dense(2, 1, rng=1))
    batches = [(rng.standard_normal((2, 3, 1)), rng.standard_normal((2, 1))) for _ in range(3)]
    history = fit(
        model, losses.mean_squared_error, SGD(model, lr=0.01), batches, epochs=2, progress=False
    )
    assert len(history.losses) == 6 and history.epochs == [0, 1]
    assert history.metrics["loss"] == pytest.approx(
        [np.mean(history.losses[:3]), np.mean(history.losses[3:])]
    )
    with pytest.raises(ValueError, match=r"batches: a one-shot iterator .* epochs=2"):
        fit(model, losses.mean_squared_error, SGD(model, lr=0.01), iter(batches), epochs=2)
    with pytest.raises(ValueError, match=r"validation_data: a one-shot iterator"):
        fit(
            model,
            losses.mean_squared_error,
            SGD(model, lr=0.01),
            batches,
            epochs=2,
            validation_data=iter(batches),
        )
    with pytest.raises(ValueError, match=r"batch_size, shuffle: cut arrays into batches"):
        fit(model, losses.mean_squared_error, SGD(model, lr=0.01), batches, batch_size=2)
    with pytest.raises(ValueError, match=r"metrics: they are computed on validation_data"):
        fit(model, losses.mean_squared_error, SGD(model, lr=0.01), batches, metrics=["mse"])
    with pytest.raises(ValueError, match=r"epochs: expected an integer >= 1"):
        fit(model, losses.mean_squared_error, SGD(model, lr=0.01), batches, epochs=0)
    # A function of the step number: steps per epoch, the step counted over the whole run.
    calls = []

    def batch(step):
        calls.append(step)
        return batches[step % 3]

    fit(
        model,
        losses.mean_squared_error,
        SGD(model, lr=0.01),
        batch,
        steps=2,
        epochs=3,
        progress=False,
    )
    assert calls == list(range(6))


# -- progress -----------------------------------------------------------------------------------


def _progress_run(stream):
    rng = np.random.default_rng(0)
    model = Sequential(Recurrent(LSTMCell(1, 2, rng=0)), FinalState(), Dense(2, 1, rng=1))
    x = rng.standard_normal((6, 3, 1))
    return fit(
        model,
        losses.mean_squared_error,
        SGD(model, lr=0.01),
        (x, x[:, 0]),
        batch_size=2,
        epochs=2,
        validation_data=(x, x[:, 0]),
        stream=stream,
    )


def test_progress_uses_tqdm_when_installed():
    pytest.importorskip("tqdm")
    out = io.StringIO()
    _progress_run(out)
    text = out.getvalue()
    assert "3/3" in text and "loss " in text and ("it/s" in text or "s/it" in text)
    assert "epoch 2/2  loss " in text and "val_loss " in text


def test_progress_without_tqdm_uses_the_built_in_bar(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # `from tqdm.auto import tqdm` fails
    monkeypatch.setitem(sys.modules, "tqdm", None)
    out = io.StringIO()
    _progress_run(out)
    text = out.getvalue()
    assert "train 1/2 [" in text and "3/3" in text and "it/s" not in text
    assert "epoch 2/2  loss " in text and "val_loss " in text
