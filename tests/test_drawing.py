"""Figures drawn in a child process (``recipe_keras.drawing``): same bytes, no figure lost."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from recipe_keras import drawing, figures
from recipe_keras.drawing import deferrable, in_background


@deferrable
def write_pid(text: str, path: str | os.PathLike[str]) -> Path:
    """A plot stand-in that says which process drew it."""
    Path(path).write_text(f"{os.getpid()} {text}")
    return Path(path)


@deferrable
def planted_failure(path: str | os.PathLike[str]) -> Path:
    raise ValueError(f"planted failure drawing {Path(path).name}")


def suite_figures(rng: np.random.Generator) -> list[tuple]:
    """The three figures `make check` draws, with arguments shaped as it passes them."""
    probabilities = rng.dirichlet(np.ones(10), size=8)
    images = rng.random((32, 8, 8, 1))
    titles = [str(i % 10) for i in range(32)]
    steps = list(range(0, 25, 5))
    return [
        (figures.plot_overfit, (probabilities, rng.integers(0, 10, 8)), "check_overfit.png"),
        (figures.plot_image_grid, (images, titles), "check_inputs.png"),
        (figures.plot_dynamics, (steps, rng.random((5, 8)), rng.integers(0, 10, 8)), "dyn.png"),
    ]


def test_figures_drawn_in_the_child_are_byte_identical(tmp_path):
    jobs = suite_figures(np.random.default_rng(0))
    for plot, args, name in jobs:
        assert plot(*args, tmp_path / "here" / name) == tmp_path / "here" / name
    with in_background():
        for plot, args, name in jobs:
            path = plot(*args, path=tmp_path / "child" / name)
            assert path == tmp_path / "child" / name  # returned at once, drawn meanwhile
    for _, _, name in jobs:
        here = (tmp_path / "here" / name).read_bytes()
        assert here[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / "child" / name).read_bytes() == here


def test_the_child_draws_and_leaving_the_block_waits_for_it(tmp_path):
    assert write_pid("here", tmp_path / "a.txt").read_text() == f"{os.getpid()} here"
    with in_background():
        for i in range(3):
            write_pid(f"job {i}", tmp_path / f"{i}.txt")
    texts = [(tmp_path / f"{i}.txt").read_text().split() for i in range(3)]
    pids = {int(pid) for pid, _, _ in texts}
    assert len(pids) == 1 and os.getpid() not in pids  # one other process drew them all
    assert [int(n) for _, _, n in texts] == [0, 1, 2]


def test_a_plot_that_raises_in_the_child_raises_here_on_leaving(tmp_path):
    with pytest.raises(ValueError, match=r"planted failure drawing bad\.png"), in_background():
        planted_failure(tmp_path / "bad.png")
        write_pid("after", tmp_path / "after.txt")
    # The child went on after the failure: the later figure is not lost.
    assert (tmp_path / "after.txt").read_text().endswith(" after")


def test_arguments_that_cannot_travel_are_drawn_here(tmp_path):
    class Local(str):  # a local class cannot be pickled
        pass

    with in_background():
        write_pid(Local("local"), tmp_path / "local.txt")
        write_pid("plain", tmp_path / "plain.txt")
    assert (tmp_path / "local.txt").read_text() == f"{os.getpid()} local"
    assert int((tmp_path / "plain.txt").read_text().split()[0]) != os.getpid()


def test_no_child_means_everything_is_drawn_here(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    with in_background():
        write_pid("x", tmp_path / "x.txt")
    assert (tmp_path / "x.txt").read_text() == f"{os.getpid()} x"


def test_a_child_that_dies_loses_nothing(tmp_path, monkeypatch):
    # A child that exits at once, as one killed would: the pipe breaks or it answers nothing.
    monkeypatch.setattr(drawing, "_CHILD_CODE", "import sys; sys.exit(3)")
    with in_background():
        for i in range(2):
            write_pid(f"{i}", tmp_path / f"{i}.txt")
    assert [(tmp_path / f"{i}.txt").read_text() for i in range(2)] == [
        f"{os.getpid()} 0",
        f"{os.getpid()} 1",
    ]


def test_an_error_in_the_block_draws_nothing_more_here(tmp_path):
    with pytest.raises(KeyError), in_background():
        write_pid("before", tmp_path / "before.txt")
        planted_failure(tmp_path / "bad.png")
        raise KeyError("the job failed")
    # What the child had is drawn; the failed figure is not retried here.
    assert int((tmp_path / "before.txt").read_text().split()[0]) != os.getpid()
    assert not (tmp_path / "bad.png").exists()


def test_ctrl_c_does_not_stop_the_child_drawing_what_it_was_asked(tmp_path):
    with in_background():
        child = drawing._DRAWER.get().child
        write_pid("first", tmp_path / "first.txt")
        for _ in range(600):  # the child is ready once it has drawn one
            if (tmp_path / "first.txt").exists():
                break
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)  # as Ctrl-C reaches the whole process group
        write_pid("kept", tmp_path / "kept.txt")
    for name in ("first", "kept"):
        assert (tmp_path / f"{name}.txt").read_text() == f"{child.pid} {name}"
