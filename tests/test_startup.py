"""The collector during the program's start-up and shutdown (cnnzoo._startup, cnnzoo.cli.console_main)."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from cnnzoo import _startup, cli


@pytest.fixture
def collector():
    """Leave the interpreter's collector as the test found it."""
    was = gc.isenabled()
    yield
    _startup._deferred = False
    gc.unfreeze()
    (gc.enable if was else gc.disable)()


def test_defer_then_settle_freezes_and_turns_collection_back_on(collector):
    gc.enable()
    _startup.defer()
    assert not gc.isenabled()
    _startup.settle()
    assert gc.isenabled() and gc.get_freeze_count() > 0
    frozen = gc.get_freeze_count()
    _startup.settle()  # once: a second call changes nothing
    assert gc.get_freeze_count() == frozen


def test_settle_without_defer_leaves_a_programs_collector_alone(collector):
    gc.disable()  # a program that runs fit() with its own collector policy
    _startup.settle()
    assert not gc.isenabled() and gc.get_freeze_count() == 0


def test_console_main_exits_with_mains_code_and_collection_on(collector, monkeypatch):
    seen = {}

    def fake_main():
        seen["collecting"] = gc.isenabled()  # off while the command starts
        return 3

    monkeypatch.setattr(cli, "main", fake_main)
    with pytest.raises(SystemExit) as exit_:
        cli.console_main()
    assert exit_.value.code == 3 and seen == {"collecting": False} and gc.isenabled()


def test_the_optimizer_import_is_prewarmed_in_a_fresh_process():
    code = (
        "import sys\n"
        "from cnnzoo.train.setup import prewarm_optimizer_import\n"
        "t = prewarm_optimizer_import()\n"
        "t.join()\n"
        "assert 'torch._dynamo' in sys.modules\n"
        "assert prewarm_optimizer_import() is None\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
