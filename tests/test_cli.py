import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from archivecolor.cli import main


def option_names(command):
    return [p.opts[-1] for p in command.params if isinstance(p, __import__("click").Option)]


@pytest.mark.parametrize("name", ["train", "folder", "video", "build-engine", "evaluate"])
def test_every_option_is_explained_in_help(name):
    command = main.commands[name]
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0
    for param in command.params:
        if hasattr(param, "help") and param.opts[0].startswith("--") and param.name != "help":
            assert param.help, f"{name} {param.opts[0]} has no help text"
            assert param.opts[-1] in result.output


def test_top_level_help_lists_commands_without_importing_torch():
    proc = subprocess.run([sys.executable, "-m", "archivecolor", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for name in ["train", "folder", "video", "build-engine", "evaluate"]:
        assert name in proc.stdout
    code = "import sys, archivecolor.cli; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_a_killed_data_worker_saves_the_state_and_resume_finishes(colour_folder, tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "archivecolor", "train", str(colour_folder), "--out", str(run), "--epochs", "1",
            "--crop", "32", "--width", "4", "--depth", "4", "--d-width", "4", "--workers", "2", "--no-progress",
            "--batch-size", "1", "--log-every", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not ((run / "log.jsonl").exists() and (run / "log.jsonl").read_text().count("\n") >= 2):
        time.sleep(0.005)
    children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent_of(p) == proc.pid]
    if not children:
        proc.kill()
        pytest.skip("no data-loading worker was running to kill")
    os.kill(children[0], signal.SIGKILL)  # as the OOM killer would
    _, err = proc.communicate(timeout=60)
    log = (run / "log.jsonl").read_text()
    epoch_ended = '"kind": "epoch"' in log or log.count('"kind": "step"') >= 14  # 15 training images at batch 1
    if proc.returncode == 0 or ("a data-loading worker died" not in err and epoch_ended):
        pytest.skip("the epoch's data was all loaded before the worker was killed")
    assert proc.returncode == 1, err
    assert "a data-loading worker died" in err and "continue with --resume" in err
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] >= 2
    done = subprocess.run(args + ["--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _parent_of(proc_dir) -> int | None:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_train_without_out_makes_a_run_folder(colour_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["train", str(colour_folder), "--epochs", "1", "--crop", "32", "--width", "4", "--depth", "4",
                                       "--d-width", "4", "--workers", "0", "--no-progress", "--max-val", "2"])
    assert result.exit_code == 0, result.output
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "generator.safetensors").exists()


def test_train_decay_minutes_needs_a_time_limit(colour_folder, tmp_path):
    result = CliRunner().invoke(main, ["train", str(colour_folder), "--out", str(tmp_path / "run"), "--decay-minutes", "5"])
    assert result.exit_code == 2 and "give both" in result.output
    assert not (tmp_path / "run").exists()


def test_train_resize_takes_a_range_and_refuses_a_backward_one(colour_folder, tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", str(colour_folder), "--out", str(run), "--epochs", "1", "--crop", "32", "--resize", "40-64",
                                       "--width", "4", "--depth", "4", "--d-width", "4", "--workers", "0", "--no-progress", "--max-val", "2"])
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "config.json").read_text())
    assert (saved["resize"], saved["resize_max"]) == (40, 64)
    backward = CliRunner().invoke(main, ["train", str(colour_folder), "--out", str(tmp_path / "other"), "--resize", "320-192"])
    assert backward.exit_code == 2 and "smallest to largest" in backward.output and not (tmp_path / "other").exists()


def test_train_bf16_on_a_cpu_without_bf16_instructions_warns(colour_folder, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    result = CliRunner().invoke(main, ["train", str(colour_folder), "--out", str(tmp_path / "run"), "--epochs", "1", "--crop", "32",
                                       "--width", "4", "--depth", "4", "--d-width", "4", "--workers", "0", "--no-progress",
                                       "--max-val", "2", "--bf16"])
    assert result.exit_code == 0, result.output
    assert "--bf16: this CPU has no bfloat16 instructions" in result.output


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm-to-the-job", "sigterm-to-the-main-process"])
def test_a_stop_signal_saves_a_checkpoint_and_resume_finishes(colour_folder, tmp_path, how):
    """Ctrl-C reaches the foreground job's whole process group; a scheduler's SIGTERM may reach
    every process of the job or only the main one (kill PID); each must save and exit."""
    run = tmp_path / "run"
    args = [sys.executable, "-m", "archivecolor", "train", str(colour_folder), "--out", str(run), "--epochs", "1",
            "--crop", "32", "--width", "4", "--depth", "4", "--d-width", "4", "--workers", "2", "--no-progress",
            "--batch-size", "1", "--log-every", "1"]
    # 15 training images at batch 1 is 15 steps; the signal must land inside the epoch
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not ((run / "log.jsonl").exists() and (run / "log.jsonl").read_text().count("\n") >= 2):
        time.sleep(0.005)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)
    elif how == "sigterm-to-the-job":
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the epoch finished before the signal arrived")
    assert proc.returncode == 128 + (signal.SIGINT if how == "ctrl-c" else signal.SIGTERM), err
    assert "continue with --resume" in err
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 0 and checkpoint["step"] >= 2
    done = subprocess.run(args + ["--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 1


def test_the_everyday_commands_come_first_in_help():
    result = CliRunner().invoke(main, ["--help"], terminal_width=120)
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.startswith("  ") and line.split()]
    assert listed[:5] == ["folder", "video", "evaluate", "train", "build-engine"]


@pytest.mark.parametrize("name", ["folder", "video", "evaluate", "train", "build-engine", "hints", "average-weights"])
def test_every_command_takes_dash_o_for_out(name):
    command = main.commands[name]
    out = next(p for p in command.params if "--out" in p.opts)
    assert "-o" in out.opts


@pytest.mark.parametrize("name, headings", [
    ("folder", ["Input and output:", "Look:", "Model and speed:", "Cluster:", "Examples:"]),
    ("video", ["Input and output:", "Look:", "Model and speed:", "Cluster:", "Examples:"]),
    ("train", ["Run:", "Network:", "Recipe:", "Speed:", "Examples:"]),
])
def test_help_groups_the_options_and_ends_with_examples(name, headings):
    result = CliRunner().invoke(main, [name, "--help"], terminal_width=120)
    positions = [result.output.index(h) for h in headings]
    assert positions == sorted(positions)
    assert f"$ archivecolor {name} " in result.output
    assert "H100" not in result.output  # help says what an option does, not how it was measured


def test_train_on_a_folder_that_holds_a_run_is_refused_without_resume_or_overwrite(colour_folder, tmp_path):
    run = tmp_path / "run"
    args = ["train", str(colour_folder), "--out", str(run), "--epochs", "1", "--crop", "32", "--width", "4", "--depth", "4",
            "--d-width", "4", "--workers", "0", "--no-progress", "--max-val", "2"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert f"model: {run / 'generator.safetensors'}; colour with `--weights {run / 'generator.safetensors'}`" in first.output
    log = (run / "log.jsonl").read_text()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "holds a run: --resume to continue it, --overwrite to start over" in again.output
    assert (run / "log.jsonl").read_text() == log  # never appended to
    (run / "notes.txt").write_text("mine")
    over = CliRunner().invoke(main, args + ["--overwrite"])
    assert over.exit_code == 0, over.output
    assert (run / "log.jsonl").read_text().count('"kind": "epoch"') == 1 and (run / "notes.txt").read_text() == "mine"


def test_dry_run_and_the_onnxruntime_path_start_without_torch(tmp_path, tiny_weights):
    """torch is imported only where a torch model runs: `folder --dry-run` loads no model, and once
    the ONNX export is cached, colouring on onnxruntime needs no torch either (seconds saved per run)."""
    import cv2
    import numpy as np

    src = tmp_path / "scans"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.full((40, 60), 90, np.uint8))
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    probe = ("import sys; from archivecolor.cli import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print('torch imported:', 'torch' in sys.modules, file=sys.stderr)")
    dry = subprocess.run([sys.executable, "-c", probe, "folder", str(src), "--dry-run"], capture_output=True, text=True, env=env)
    assert "torch imported: False" in dry.stderr, dry.stderr
    args = ["folder", str(src), "-o", str(tmp_path / "out"), "--weights", str(tiny_weights), "--backend", "onnx", "--overwrite"]
    first = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env=env)
    assert "torch imported: True" in first.stderr  # the first run exports the model (torch), and caches it
    second = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env=env)
    assert "torch imported: False" in second.stderr, second.stderr
    assert (tmp_path / "out" / "a.png").exists()


def test_folder_lists_its_source_once(tmp_path, tiny_weights, monkeypatch):
    """The CLI's "no pictures" check and the run share one listing of SOURCE: an archive on a
    network share is walked once, and the two can never disagree about what is there."""
    import cv2
    import numpy as np

    from archivecolor import folder as folder_module, listing as listing_module

    src = tmp_path / "scans"
    (src / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png"):
        cv2.imwrite(str(src / name), np.full((40, 60), 90, np.uint8))
    walks = []
    real = listing_module.archive_files
    for module in (folder_module, listing_module):  # wherever a caller takes it from
        monkeypatch.setattr(module, "archive_files", lambda *a, **k: walks.append(a) or real(*a, **k))
    result = CliRunner().invoke(main, ["folder", str(src), "-o", str(tmp_path / "out"), "--weights", str(tiny_weights)])
    assert result.exit_code == 0, result.output
    assert len(walks) == 1 and (tmp_path / "out" / "sub" / "b.png").exists()


def test_a_bar_in_megapixels_shows_fractions_and_one_in_files_whole_numbers():
    """Four small scans are 0.69 megapixels: the bar said 0/0 (rich's column rounds to whole numbers)."""
    from rich.progress import Progress

    from archivecolor.console import DoneOfTotalColumn

    with Progress(DoneOfTotalColumn(), disable=True) as progress:
        small = progress.add_task("mp", total=0.69, completed=0.3)
        files = progress.add_task("files", total=20, completed=14)
        unknown = progress.add_task("frames", total=None, completed=7)
        column = DoneOfTotalColumn()
        shown = {name: column.render(progress.tasks[task]).plain for name, task in (("mp", small), ("files", files), ("frames", unknown))}
    assert shown == {"mp": "0.30/0.69", "files": "14/20", "frames": "7/?"}
