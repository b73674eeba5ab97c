"""The command line: list, info, help, version, error handling."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cnnzoo.cli import main


def test_list_with_pattern(capsys):
    assert main(["list", "lenet*"]) == 0
    out = capsys.readouterr().out
    assert "lenet5" in out and "60,000" in out and "1998" in out and "1x32x32" in out


def test_list_unknown_pattern_suggests(capsys):
    assert main(["list", "lenat5"]) == 2
    assert "Did you mean" in capsys.readouterr().err


def test_info_shows_config_and_tree(capsys):
    assert main(["info", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert "min_input_size" in out and "PartialConv2d" in out and "60,000" in out
    assert main(["info", "lenet5", "--json"]) == 0
    assert '"min_input_size": 32' in capsys.readouterr().out


def test_python_dash_m_and_version():
    r = subprocess.run(
        [sys.executable, "-m", "cnnzoo", "--version"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and r.stdout.startswith("cnnzoo ")


def test_no_command_prints_help(capsys):
    assert main([]) == 1
    assert "usage" in capsys.readouterr().out


def test_debug_env_shows_traceback(monkeypatch):
    from cnnzoo.registry import UnknownModelError

    monkeypatch.setenv("CNNZOO_DEBUG", "1")
    with pytest.raises(UnknownModelError):
        main(["info", "nope"])
