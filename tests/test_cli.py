"""The ``interp`` console script."""

from __future__ import annotations

import subprocess
import sys

import pytest

from interp.app.cli import build_parser, main


def test_zoo_list_names_every_registered_model(capsys):
    from interp import zoo

    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    for name in zoo.names():
        assert name in out


def test_unknown_zoo_model_is_a_clear_error(capsys):
    assert main(["zoo", "card", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert "No zoo artefact named 'no-such-model'" in err and "toy-lm" in err


def test_train_needs_a_name_or_all(capsys):
    assert main(["zoo", "train"]) == 2


def test_parser_requires_a_command():
    with pytest.raises(SystemExit):
        build_parser().parse_args([])


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "interp.app.cli", "zoo", "list"], capture_output=True, text=True)
    assert result.returncode == 0 and "toy-lm" in result.stdout


def test_zoo_experiments_command_line_parses_each_experiment():
    """The planted-structure experiments' command line lives in the app layer (the zoo modules only compute)."""
    from interp.app.zoo_experiments import _parser, card_target

    p = _parser()
    assert p.parse_args(["pivot-time", "20", "40"]).long == 40
    assert p.parse_args(["pivot-try", "F-implicit-target", "--no-record"]).no_record
    args = p.parse_args(["recovery", "thr", "--seeds", "0", "1", "--record"])
    assert (args.method, args.seeds, args.record) == ("thr", [0, 1], True)
    assert card_target(args) == ("toy-lm-planted", "thr_grpo")  # the section the card's THR figures live in
    assert card_target(p.parse_args(["recovery", "corrsteer"])) == ("toy-mode", "corrsteer")
    with pytest.raises(SystemExit):
        p.parse_args(["recovery", "nothing"])
