"""``cnnzoo list`` reads a generated index; it must match the live registry exactly."""

from __future__ import annotations

import subprocess
import sys

from cnnzoo.model_index import build_index, load_index


def test_index_is_current():
    stored = load_index()
    live = build_index()
    assert stored is not None, "run: python -m cnnzoo.model_index"
    stale = sorted(set(stored) ^ set(live)) + sorted(
        k for k in live.keys() & stored.keys() if live[k] != stored[k]
    )
    assert not stale, f"model_index.json is stale for {stale[:10]}; run: python -m cnnzoo.model_index"


def test_cli_list_does_not_import_torch():
    code = (
        "import sys; from cnnzoo.cli import main; rc = main(['list', 'lenet*']); "
        "assert 'torch' not in sys.modules, 'cnnzoo list imported torch'; sys.exit(rc)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "lenet5_relu" in r.stdout and "61,706" in r.stdout
