"""dplib.run.cli: each verb takes only its own flags; a user's mistake is one line (exit 2), a bug
its traceback and a line saying it is one (exit 3)."""

import subprocess
import sys
from pathlib import Path

import pytest

from dplib.errors import InputError
from dplib.run import cli

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("command,flag", [
    (["grid", "status", "params/b1.yaml", "--workers", "4"], "--workers 4"),
    (["grid", "collect", "params/b1.yaml", "--executor", "slurm"], "--executor slurm"),
    (["grid", "check", "params/b1.yaml", "--retry-failed"], "--retry-failed"),
    (["grid", "status", "params/b1.yaml", "--out", "x.csv"], "--out x.csv"),
    (["data", "verify", "bapps", "--all"], "--all"),
    (["data", "download", "bapps", "--quick"], "--quick"),
    (["benchmark", "list", "--workers", "2"], "--workers 2"),
])
def test_a_flag_of_another_verb_is_refused(command, flag, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(command)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and f"unrecognized arguments: {flag}" in err
    assert f"dplib {' '.join(command[:2] if command[0] != 'benchmark' else command[:2])}" in err  # the verb's usage


def test_each_verbs_help_lists_only_what_applies(capsys):
    for command, present, absent in ((["grid", "status"], ["--smoke", "--runs-dir", "--grid"],
                                      ["--workers", "--executor", "--out", "--only", "--retry-failed"]),
                                     (["grid", "collect"], ["--out"], ["--workers", "--slurm"]),
                                     (["grid", "run"], ["--workers", "--retry-failed", "--skip-check", "--slurm"],
                                      ["--out", "--claim-token"]),
                                     (["data", "fixtures"], ["--root"], ["--for", "--all", "--quick"])):
        with pytest.raises(SystemExit):
            cli.main([*command, "--help"])
        text = capsys.readouterr().out
        assert all(flag in text for flag in present) and not any(flag in text for flag in absent), command
    with pytest.raises(SystemExit):
        cli.main(["grid", "--help"])
    assert "execute" not in capsys.readouterr().out  # internal, listed nowhere


def test_a_users_mistake_is_one_line_and_a_bug_its_traceback(monkeypatch, capsys):
    def mistaken(args):
        raise InputError("weights 'imagnet' is not a weight name; give imagenet")

    monkeypatch.setattr(cli, "_new_benchmark", mistaken)
    assert cli.main(["new-benchmark", "anything"]) == 2
    err = capsys.readouterr().err
    assert err == "dplib: error: weights 'imagnet' is not a weight name; give imagenet\n"

    def broken(args):
        return {}["a key dplib forgot"]  # a bug: KeyError is no user's mistake

    monkeypatch.setattr(cli, "_new_benchmark", broken)
    assert cli.main(["new-benchmark", "anything"]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyError: 'a key dplib forgot'" in err
    assert err.rstrip().endswith(cli.BUG) and "a bug in dplib" in cli.BUG

    def value_error_inside(args):
        import torch

        torch.zeros(2) @ torch.zeros(3)  # torch's own RuntimeError: a bug, not a mistake of the user's

    monkeypatch.setattr(cli, "_new_benchmark", value_error_inside)
    assert cli.main(["new-benchmark", "anything"]) == 3
    assert "Traceback" in capsys.readouterr().err


def test_a_full_disk_is_the_machines_error_in_one_line(monkeypatch, capsys):
    import errno

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "runs/b2/x/checkpoint.pt")

    monkeypatch.setattr(cli, "_new_benchmark", full)
    assert cli.main(["new-benchmark", "anything"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "Traceback" not in err


def test_the_command_line_refuses_a_flag_in_a_real_process():
    result = subprocess.run([sys.executable, "-m", "dplib", "grid", "status", "params/b1.yaml", "--workers", "4"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 2 and "dplib grid status: error: unrecognized arguments: --workers 4" in result.stderr
