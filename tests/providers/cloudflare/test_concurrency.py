"""ordered_map: input order kept, a bounded number in flight, lazy input, errors and early stops.

Every test instruments the function it maps (what runs, on which thread, at once); none measures time.
Waits on events carry a generous timeout only so that a broken implementation fails instead of hanging.
"""

from __future__ import annotations

import itertools
import threading

import pytest

from airflow_provider_cloudflare.concurrency import ordered_map

WAIT = 10  # s; never reached when the code is right


class Probe:
    """Counts the calls of the mapped function: started, running at once (and the most ever), threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.started: list = []
        self.running = 0
        self.most = 0
        self.threads: set[threading.Thread] = set()

    def enter(self, item) -> None:
        with self.lock:
            self.started.append(item)
            self.running += 1
            self.most = max(self.most, self.running)
            self.threads.add(threading.current_thread())

    def leave(self) -> None:
        with self.lock:
            self.running -= 1

    def join_threads(self) -> None:
        for thread in self.threads - {threading.current_thread()}:
            thread.join(WAIT)
            assert not thread.is_alive(), f"{thread.name} still runs after the stream ended"


class Pulled:
    """An input that counts how many items were read from it."""

    def __init__(self, items):
        self.items = iter(items)
        self.count = 0

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self.items)
        self.count += 1
        return item


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None, "4"])
def test_max_in_flight_is_checked_when_called_not_when_iterated(bad):
    with pytest.raises(ValueError, match="max_in_flight"):
        ordered_map(str, [1], bad)


def test_one_in_flight_is_a_plain_loop_on_the_callers_thread():
    probe, source = Probe(), Pulled(range(5))

    def fn(i):
        probe.enter(i)
        probe.leave()
        return i * 10

    stream = ordered_map(fn, source, 1)
    assert source.count == 0  # nothing read before the first result is asked for
    assert next(stream) == 0 and source.count == 1 and probe.started == [0]
    assert list(stream) == [10, 20, 30, 40]
    assert probe.threads == {threading.current_thread()} and probe.most == 1


def test_results_come_in_input_order_although_calls_finish_in_reverse():
    # Within each group of 4 (all in flight together), item i waits until item i+1 has finished,
    # so calls finish 3, 2, 1, 0, 7, 6, 5, 4, ...
    done = [threading.Event() for _ in range(13)]
    finished: list[int] = []
    lock = threading.Lock()

    def fn(i):
        if i % 4 != 3 and i + 1 < len(done):
            assert done[i + 1].wait(WAIT), f"item {i + 1} never finished: fewer than 4 in flight"
        with lock:
            finished.append(i)
        done[i].set()
        return f"<{i}>"

    assert list(ordered_map(fn, range(13), 4)) == [f"<{i}>" for i in range(13)]
    assert finished[:8] == [3, 2, 1, 0, 7, 6, 5, 4]


@pytest.mark.parametrize("max_in_flight", [2, 4, 16])
def test_never_more_than_max_in_flight_submitted_and_not_yet_yielded(max_in_flight):
    probe = Probe()
    # The first `max_in_flight` calls can only pass the barrier together: they do run at once.
    barrier = threading.Barrier(max_in_flight, timeout=WAIT)

    def fn(i):
        probe.enter(i)
        try:
            if i < max_in_flight:
                barrier.wait()
            return i
        finally:
            probe.leave()

    got = []
    for result in ordered_map(fn, range(100), max_in_flight):
        got.append(result)
        with probe.lock:
            assert len(probe.started) - len(got) <= max_in_flight
            assert probe.running <= max_in_flight
    assert got == list(range(100))
    assert probe.most == max_in_flight
    probe.join_threads()


def test_an_infinite_input_is_read_lazily_and_closing_early_stops_the_pool():
    probe, source = Probe(), Pulled(itertools.count())

    def fn(i):
        probe.enter(i)
        probe.leave()
        return i

    stream = ordered_map(fn, source, 4)
    assert source.count == 0
    assert next(stream) == 0 and source.count <= 1 + 4
    taken = [next(stream) for _ in range(9)]
    assert taken == list(range(1, 10)) and source.count <= 10 + 4
    stream.close()
    read, started = source.count, len(probe.started)
    probe.join_threads()
    assert (source.count, len(probe.started)) == (read, started)  # nothing read or started after close
    assert started <= read <= 10 + 4


def test_breaking_out_of_a_for_loop_stops_the_pool_too():
    probe, source = Probe(), Pulled(itertools.count())

    def fn(i):
        probe.enter(i)
        probe.leave()
        return i

    for i in ordered_map(fn, source, 3):
        if i == 5:
            break  # the generator is dropped here, which closes it
    probe.join_threads()
    assert source.count <= 6 + 3


def test_a_failure_is_raised_at_once_even_while_an_earlier_call_still_runs():
    # Item 0 hangs until the test releases it; item 2 fails. The error must not wait for item 0,
    # and nothing more may be read or started once it is seen.
    release = threading.Event()
    probe, source = Probe(), Pulled(range(1000))
    seen_in_time: list[bool] = []

    def fn(i):
        probe.enter(i)
        try:
            if i == 0:
                seen_in_time.append(release.wait(WAIT))
            if i == 2:
                raise KeyError("<b>item 2</b> 'failed'")
            return i
        finally:
            probe.leave()

    stream = ordered_map(fn, source, 4)
    with pytest.raises(KeyError, match="item 2"):
        next(stream)
    release.set()
    probe.join_threads()
    assert seen_in_time == [True], "the error waited for the slow call before it was raised"
    # Read items may be cancelled before a thread takes them, never started out of the input.
    assert source.count <= 4 and {0, 1, 2} <= set(probe.started) <= set(range(source.count))
    with pytest.raises(StopIteration):
        next(stream)  # the stream is over


def test_results_before_a_failure_are_yielded_in_order_then_the_error():
    def fn(i):
        if i == 7:
            raise RuntimeError("boom at 7")
        return i

    got = []
    with pytest.raises(RuntimeError, match="boom at 7"):
        for result in ordered_map(fn, range(100), 1):
            got.append(result)
    assert got == list(range(7))  # the plain loop

    got = []
    with pytest.raises(RuntimeError, match="boom at 7"):
        for result in ordered_map(fn, range(100), 4):
            got.append(result)
    assert got == list(range(len(got))) and len(got) <= 7  # a prefix, in order, never past the failure


def test_an_error_reading_the_input_ends_the_stream_and_stops_the_pool():
    probe = Probe()

    def source():
        yield from range(6)
        raise OSError("listing failed")

    def fn(i):
        probe.enter(i)
        probe.leave()
        return i

    got = []
    with pytest.raises(OSError, match="listing failed"):
        for result in ordered_map(fn, source(), 3):
            got.append(result)
    assert got == list(range(len(got)))
    probe.join_threads()
    assert set(got) <= set(probe.started) <= set(range(6))


def test_an_empty_input_yields_nothing_and_a_normal_end_leaves_no_thread():
    probe = Probe()

    def fn(i):
        probe.enter(i)
        probe.leave()
        return i

    assert list(ordered_map(fn, [], 4)) == []
    assert list(ordered_map(fn, iter(range(3)), 8)) == [0, 1, 2]
    probe.join_threads()
