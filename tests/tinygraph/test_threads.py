"""The processing state (grad mode, default dtype, current template instance) is per thread,
and ``@no_grad()`` on a generator function applies inside the generator's body.

Each threaded test holds one thread inside a block (``no_grad``, ``default_dtype``, a template
call) with an Event while another thread records, so the two really overlap in time.
"""
import threading

import numpy as np
import pytest

import tinygraph as tg

TIMEOUT = 30  # seconds; generous for a loaded machine, and only reached when the test fails


def run_while_blocked(block, probe):
    """Run ``block(entered, release)`` in thread A; once A has entered its block, run ``probe()``
    in thread B and return its result; then release A. Errors in either thread are raised."""
    entered, release = threading.Event(), threading.Event()
    errors, result = [], []

    def a():
        try:
            block(entered, release)
        except BaseException as exc:  # noqa: BLE001  (reported to the test below)
            errors.append(exc)
            entered.set()

    def b():
        try:
            result.append(probe())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread_a = threading.Thread(target=a)
    thread_a.start()
    assert entered.wait(TIMEOUT)
    thread_b = threading.Thread(target=b)
    thread_b.start()
    thread_b.join(TIMEOUT)
    release.set()
    thread_a.join(TIMEOUT)
    if errors:
        raise errors[0]
    return result[0]


def test_no_grad_in_one_thread_does_not_stop_recording_in_another():
    def block(entered, release):
        with tg.no_grad():
            assert not tg.is_grad_enabled()
            entered.set()
            assert release.wait(TIMEOUT)
            assert not tg.is_grad_enabled()  # and the other thread did not turn it back on

    def probe():
        x = tg.tensor(np.ones(3), requires_grad=True)
        y = (x * 2).sum()
        return tg.is_grad_enabled(), y.requires_grad, y.op

    assert run_while_blocked(block, probe) == (True, True, "sum")


def test_no_grad_decorator_shared_by_threads():
    """One decorated function running in two threads at once: each restores its own mode."""
    barrier = threading.Barrier(2, timeout=TIMEOUT)
    seen = []

    @tg.no_grad()
    def work():
        barrier.wait()  # both threads inside at once
        seen.append(tg.is_grad_enabled())
        barrier.wait()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert seen == [False, False] and tg.is_grad_enabled()


def test_default_dtype_block_in_one_thread_does_not_change_another():
    def block(entered, release):
        with tg.default_dtype(np.float64):
            assert tg.tensor(1.0).dtype == np.float64
            entered.set()
            assert release.wait(TIMEOUT)
            assert tg.tensor(1.0).dtype == np.float64

    def probe():
        return tg.get_default_dtype(), tg.tensor([1.0, 2.0]).dtype

    assert run_while_blocked(block, probe) == (np.float32, np.float32)


def test_set_default_dtype_applies_to_threads_started_later():
    previous = tg.get_default_dtype()
    seen = []
    try:
        tg.set_default_dtype(np.float64)
        t = threading.Thread(target=lambda: seen.append(tg.tensor(1.0).dtype))
        t.start()
        t.join(TIMEOUT)
    finally:
        tg.set_default_dtype(previous)
    assert seen == [np.float64]


def test_template_call_in_one_thread_does_not_tag_tensors_of_another():
    class Waiting(tg.Template):
        def __init__(self, entered, release):
            super().__init__()
            self.entered, self.release = entered, release

        def forward(self, x, h):
            y = x * 2  # tagged with this call
            self.entered.set()
            assert self.release.wait(TIMEOUT)
            return y, h

    made_inside = []

    def block(entered, release):
        y, _ = Waiting(entered, release)(tg.tensor(np.ones(2), requires_grad=True), None)
        made_inside.append(y)

    def probe():
        x = tg.tensor(np.ones(2), requires_grad=True)
        return x.instance, (x + 1).instance

    assert run_while_blocked(block, probe) == (None, None)
    assert made_inside[0].instance == ("Waiting", 0)


def test_no_grad_on_a_generator_function_applies_inside_its_body():
    x = tg.tensor(np.ones(3), requires_grad=True)

    @tg.no_grad()
    def steps(n):
        for _ in range(n):
            received = yield (x * 2, tg.is_grad_enabled())
            assert received is None or received == "hello"
        return "done"

    gen = steps(3)
    y, enabled = next(gen)
    assert not y.requires_grad and y.op is None and not enabled
    assert tg.is_grad_enabled()  # between yields the caller records as usual
    assert (x * 2).requires_grad
    y, enabled = gen.send("hello")
    assert not y.requires_grad and not enabled
    assert [e for _, e in gen] == [False]
    assert tg.is_grad_enabled()


def test_no_grad_generator_return_value_close_and_throw():
    @tg.no_grad()
    def counting():
        try:
            yield 1
            yield 2
        except KeyError:
            yield tg.is_grad_enabled()
        return "finished"

    def outer():
        return (yield from counting())

    assert list(outer()) == [1, 2]
    gen = counting()
    next(gen)
    assert gen.throw(KeyError("k")) is False  # the exception reaches the body, inside no_grad
    assert tg.is_grad_enabled()
    gen.close()
    with pytest.raises(StopIteration) as stop:
        g = counting()
        next(g), next(g), next(g)
    assert stop.value.value == "finished"


def test_enable_grad_generator_inside_no_grad():
    @tg.enable_grad()
    def recording():
        yield tg.is_grad_enabled()

    with tg.no_grad():
        assert list(recording()) == [True]
        assert not tg.is_grad_enabled()
