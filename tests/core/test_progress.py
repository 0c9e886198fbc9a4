"""The ``verbose=True`` progress line: what it prints and when.

The clock is a fake (``time.perf_counter`` of the module replaced by a
counter the test moves), so the throttling is tested without timing.
"""

import pytest

from segqual_fo.core import _progress
from segqual_fo.core._progress import Progress


@pytest.fixture
def clock(monkeypatch):
    now = {"t": 0.0625}  # perf_counter's zero is arbitrary: it may be just now
    monkeypatch.setattr(_progress.time, "perf_counter", lambda: now["t"])
    return now


def test_prints_done_total_and_rate_then_a_newline(clock, capsys):
    with Progress(4, "scanning") as bar:  # enabled by default
        clock["t"] += 0.5
        bar.update()  # the first update: printed
        clock["t"] += 0.1
        bar.update(3)  # within 0.25 s, but the last step: printed
    err = capsys.readouterr().err
    # rates: 1 step in 0.5 s, then 4 steps in 0.6 s
    assert err == "\rscanning: 1/4 (2.0/s)\rscanning: 4/4 (6.7/s)\n"


def test_at_most_every_quarter_second_until_the_end(clock, capsys):
    bar = Progress(10, "x")
    bar.update()  # printed (the first)
    for dt in (0.125, 0.0625, 0.0625):  # (binary-exact steps) 0.25 s after it: printed again
        clock["t"] += dt
        bar.update()
    clock["t"] += 0.1875
    bar.update()  # 0.1875 s after the last print: not printed
    clock["t"] += 0.0625
    bar.update()  # 0.25 s: printed
    lines = capsys.readouterr().err.split("\r")[1:]
    assert [line.split(" ")[1] for line in lines] == ["1/10", "4/10", "6/10"]


def test_disabled_prints_nothing_but_counts(clock, capsys):
    with Progress(3, "x", enabled=False) as bar:
        bar.update(3)
    assert bar.done == 3
    assert capsys.readouterr().err == ""
