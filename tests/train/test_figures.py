"""The report's figures: one job description, drawn here or by the helper process, same bytes."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from cnnzoo.train import figures as F
from cnnzoo.train.figures import FigureJob, FigureWorker, draw

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMES = (F.CONFUSION_PNG, F.MISCLASSIFIED_PNG, F.CURVES_PNG)


def _job(out, *, wrong: int = 12, epochs: int = 2) -> FigureJob:
    rng = np.random.default_rng(3)
    rows = [
        {
            "epoch": e,
            "train_loss": 1.0 / e,
            "test_loss": 0.9 / e,
            "train_top1": 60.0 + e,
            "val_loss": math.nan,
        }
        for e in range(1, epochs + 1)
    ]
    return FigureJob(
        out=str(out),
        cm=rng.integers(0, 30, (4, 4)),
        classes=["cat", "dog", "emu", "yak"],
        history=rows,
        wrong_images=rng.integers(0, 256, (wrong, 3, 10, 12), dtype=np.uint8) if wrong else None,
        wrong_true=rng.integers(0, 4, wrong) if wrong else None,
        wrong_pred=rng.integers(0, 4, wrong) if wrong else None,
    )


def _bytes(out) -> dict[str, bytes]:
    return {n: (out / n).read_bytes() for n in NAMES if (out / n).exists()}


def test_a_job_survives_its_json_line_exactly(tmp_path):
    job = _job(tmp_path)
    back = FigureJob.from_json(job.to_json())
    assert "\n" not in job.to_json()  # one line on the helper's stdin
    assert back.out == job.out and back.classes == job.classes
    np.testing.assert_array_equal(back.cm, job.cm)
    np.testing.assert_array_equal(back.wrong_images, job.wrong_images)
    assert back.wrong_images.dtype == np.uint8 and back.wrong_images.shape == (12, 3, 10, 12)
    np.testing.assert_array_equal(back.wrong_pred, job.wrong_pred)
    assert back.history[0]["train_loss"] == 1.0 and math.isnan(back.history[0]["val_loss"])
    empty = FigureJob.from_json(_job(tmp_path, wrong=0).to_json())
    assert empty.wrong_images is None and empty.wrong_true is None


def test_draw_writes_only_the_figures_it_has_data_for(tmp_path):
    paths = draw(_job(tmp_path / "all"))
    assert [p.name for p in paths] == list(NAMES)
    for data in _bytes(tmp_path / "all").values():
        assert data[:8] == PNG_MAGIC and len(data) > 2_000
    assert [p.name for p in draw(_job(tmp_path / "some", wrong=0, epochs=0))] == [F.CONFUSION_PNG]
    assert not list((tmp_path / "some").glob(".*.tmp"))  # atomic writes leave no temporaries


def test_the_helper_draws_the_same_bytes_as_this_process(tmp_path):
    draw(_job(tmp_path / "here"))
    with FigureWorker.start() as worker:
        assert os.getsid(worker.proc.pid) != os.getsid(0)  # Ctrl-C at the terminal does not reach it
        paths = worker.draw(_job(tmp_path / "helper"))
        assert worker.proc.returncode == 0  # it drew the job (no fallback)
    assert [p.name for p in paths] == list(NAMES)
    assert _bytes(tmp_path / "helper") == _bytes(tmp_path / "here")


def test_a_dead_helper_means_the_figures_are_drawn_here(tmp_path):
    worker = FigureWorker.start()
    worker.proc.kill()
    worker.proc.wait()
    paths = worker.draw(_job(tmp_path))
    assert [p.name for p in paths] == list(NAMES) and all(p.stat().st_size > 2_000 for p in paths)


def test_a_job_that_cannot_travel_as_json_is_drawn_here(tmp_path):
    job = _job(tmp_path)
    job.history[0]["note"] = {"a set"}  # no JSON for it; the curves never read it
    with FigureWorker.start() as worker:
        paths = worker.draw(job)
    assert [p.name for p in paths] == list(NAMES)


def test_a_failing_job_fails_here_too_with_the_real_error(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(OSError):
        draw(_job(tmp_path / "file"))
    with FigureWorker.start() as worker, pytest.raises(OSError):
        worker.draw(_job(tmp_path / "file"))
    assert worker.proc.returncode not in (None, 0)  # the helper failed first, then this process did


def test_an_unused_helper_is_stopped_and_reaped(tmp_path):
    with FigureWorker.start() as worker:
        pid = worker.proc.pid
    assert worker.proc.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_helper_exits_by_itself_when_its_input_closes():
    worker = FigureWorker.start()
    worker.proc.stdin.close()  # what a crashed training process leaves it with
    assert worker.proc.wait(timeout=60) == 0
    worker.close()


def test_the_environment_switch_keeps_the_figures_here(monkeypatch):
    monkeypatch.setenv(F.WORKER_ENV, "0")
    assert FigureWorker.start() is None


def test_the_figures_module_is_torch_free():
    code = "import sys, cnnzoo.train.figures; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
