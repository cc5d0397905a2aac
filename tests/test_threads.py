"""Threads: several threads may share one model.

* Inference (calling a runner, a layer or a model) from several threads at once gives, in each
  thread, exactly what one thread alone gets.
* Training from several threads at once (forward and backward, each thread with its own
  inputs) loses no gradient update: the accumulated gradients are the sum of the
  single-threaded ones (to rounding: the order of the additions differs).

The oracle is the same calls made one after another in one thread.
"""

import threading

import numpy as np
import pytest

from lstmkit import Dense, Gate, LSTMCell, Recurrent, Sequential, Stacked
from lstmkit.layers import MeanPool
from lstmkit.module import GRADIENT_LOCK, accumulates_gradients
from lstmkit.optimizers import SGD

THREADS = 2


def run_in_threads(work, n=THREADS):
    """Run ``work(k)`` in ``n`` threads started together; re-raise the first error."""
    barrier = threading.Barrier(n)
    errors = []

    def target(k):
        try:
            barrier.wait()
            work(k)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=target, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def inputs(thread, count, shape):
    gen = np.random.default_rng(100 + thread)
    return [gen.standard_normal(shape) for _ in range(count)]


def train_calls(model, xs):
    for x in xs:
        if isinstance(model, Dense):
            y, cache = model.forward(x)
            model.backward(cache, np.ones_like(y))
        elif isinstance(model, Sequential):
            y, cache = model.forward(x)
            model.backward(cache, np.ones_like(y))
        else:
            y, _, cache = model.forward(x)
            model.backward(cache, np.ones_like(y))


def assert_sums_match(model, want):
    for name, p in model.named_parameters().items():
        scale = np.max(np.abs(want[name]))
        np.testing.assert_allclose(p.grad, want[name], rtol=0, atol=1e-11 * scale, err_msg=name)


MODELS = {
    # Wide weights, short sequences: most of a backward pass is adding gradient arrays of
    # thousands of values into .grad, which NumPy does without holding the GIL; that is where
    # two threads lost updates.
    "fused": (lambda: Recurrent(LSTMCell(32, 128, rng=0)), (1, 2, 32), 300),
    "stacked": (
        lambda: Stacked([LSTMCell(32, 96, rng=1), LSTMCell(96, 96, rng=2)]),
        (1, 2, 32),
        200,
    ),
    "stepped-sequential": (
        lambda: Sequential(
            Recurrent(LSTMCell(32, 64, rng=3), fused=False), MeanPool(), Dense(64, 256, rng=4)
        ),
        (2, 2, 32),
        300,
    ),
    "dense": (lambda: Dense(256, 256, rng=5), (4, 256), 400),
}


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_training_one_model_from_two_threads_loses_no_gradient(kind):
    build, shape, calls = MODELS[kind]
    xs = [inputs(k, calls, shape) for k in range(THREADS)]

    alone = build()
    for k in range(THREADS):
        train_calls(alone, xs[k])
    want = {name: p.grad.copy() for name, p in alone.named_parameters().items()}

    shared = build()
    run_in_threads(lambda k: train_calls(shared, xs[k]))
    assert_sums_match(shared, want)


def test_gate_backward_from_two_threads_loses_no_gradient():
    gate = Gate(128, 128, rng=0)
    xs = [inputs(k, 300, (2, 128)) for k in range(THREADS)]
    h = np.random.default_rng(1).standard_normal((2, 128))

    def calls(target, k):
        for x in xs[k]:
            y, cache = target.forward_train(x, h)
            target.backward(np.ones_like(y), cache)

    alone = Gate(128, 128, rng=0)
    for k in range(THREADS):
        calls(alone, k)
    run_in_threads(lambda k: calls(gate, k))
    for name in ("W", "U", "b"):
        want = getattr(alone, name).grad
        np.testing.assert_allclose(
            getattr(gate, name).grad, want, rtol=0, atol=1e-11 * np.max(np.abs(want))
        )


def test_inference_from_several_threads_gives_the_single_threaded_outputs():
    model = Sequential(
        Stacked([LSTMCell(8, 32, rng=0), LSTMCell(32, 32, rng=1)]), MeanPool(), Dense(32, 4, rng=2)
    )
    n = 4
    xs = [inputs(k, 20, (3, 7, 8)) for k in range(n)]
    lengths = np.array([7, 4, 2])
    want = [[model(x, lengths=lengths) for x in xs[k]] for k in range(n)]
    got = [[None] * len(xs[k]) for k in range(n)]

    def work(k):
        for j, x in enumerate(xs[k]):
            got[k][j] = model(x, lengths=lengths)

    run_in_threads(work, n)
    for k in range(n):
        for j in range(len(xs[k])):
            np.testing.assert_array_equal(got[k][j], want[k][j])


def test_the_gradient_lock_is_reentrant_and_held_by_backward_and_optimizer_steps():
    seen = []

    @accumulates_gradients
    def inner():
        seen.append(GRADIENT_LOCK._is_owned())  # type: ignore[attr-defined]

    @accumulates_gradients
    def outer():
        inner()

    outer()
    assert seen == [True]
    assert not GRADIENT_LOCK._is_owned()  # type: ignore[attr-defined]

    # A step waits for a backward pass running in another thread, and the other way round.
    model = Recurrent(LSTMCell(3, 4, rng=0))
    opt = SGD(model, lr=0.1)
    y, _, cache = model.forward(np.ones((2, 3, 3)))
    order = []
    with GRADIENT_LOCK:
        stepper = threading.Thread(target=lambda: (opt.step(), order.append("step")))
        stepper.start()
        stepper.join(timeout=0.2)
        assert stepper.is_alive()  # blocked on the lock
        model.backward(cache, np.ones_like(y))  # reentrant: the holder's own backward runs
        order.append("backward")
    stepper.join()
    assert order == ["backward", "step"]
