import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from archivecolor.data import ColorizationDataset, scan_folder, split_train_val
from archivecolor.train import TrainConfig, discriminator_loss, failure_watch, generator_loss, train
from archivecolor.weights import load_generator

from conftest import write_rgb

TINY = TrainConfig(epochs=2, batch_size=4, crop=32, width=4, depth=4, d_width=4, workers=0, samples=2, log_every=1, val_fraction=0.25)


def test_discriminator_loss_on_hand_made_logits():
    real = torch.tensor([0.0, 2.0])
    fake = torch.tensor([0.0, -1.0])
    # BCE(x, 1) = log(1 + e^-x); BCE(x, 0) = log(1 + e^x)
    expected_real = (np.log(2) + np.log(1 + np.exp(-2))) / 2
    expected_fake = (np.log(2) + np.log(1 + np.exp(-1))) / 2
    assert discriminator_loss(real, fake).item() == pytest.approx(0.5 * (expected_real + expected_fake), rel=1e-6)


def test_generator_loss_on_hand_made_values():
    ab_fake = torch.zeros(1, 2, 2, 2)
    ab_real = torch.full((1, 2, 2, 2), 0.1)
    pred = torch.tensor([1.0])
    total, gan, l1 = generator_loss(ab_fake, ab_real, pred, l1_weight=100.0)
    assert l1.item() == pytest.approx(0.1)
    assert gan.item() == pytest.approx(np.log(1 + np.exp(-1.0)), rel=1e-6)
    assert total.item() == pytest.approx(gan.item() + 10.0, rel=1e-6)
    total_l1, gan0, _ = generator_loss(ab_fake, ab_real, None)
    assert gan0.item() == 0 and total_l1.item() == pytest.approx(10.0)


def test_scan_skips_grey_and_reports_unreadable(colour_folder):
    grey = np.full((40, 40, 3), 120, np.uint8)
    grey[10:20] = 30
    write_rgb(colour_folder / "grey.png", grey)
    (colour_folder / "empty.jpg").write_bytes(b"")
    (colour_folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    scan = scan_folder(colour_folder)
    assert scan.grey == ["grey.png"]
    assert set(scan.failed) == {"empty.jpg", "corrupt.png"}
    assert "0 bytes" in scan.failed["empty.jpg"]
    assert len(scan.usable) == 16


def test_validation_split_is_disjoint_and_stable():
    files = [f"f{i}.jpg" for i in range(100)]
    tr, va = split_train_val(files, 0.1, 50, seed=0)
    assert len(va) == 10 and not set(tr) & set(va) and len(tr) + len(va) == 100
    assert split_train_val(files, 0.1, 50, seed=0) == (tr, va)
    assert split_train_val(files + ["new.jpg"], 0.1, 50, seed=0)[1][:5] != []


def test_a_photo_linked_several_times_is_validated_once_and_not_trained_on(tmp_path):
    from archivecolor.data import linked_photo

    photos, mix = tmp_path / "photos", tmp_path / "mix"
    photos.mkdir()
    mix.mkdir()
    files = []
    for i in range(40):
        (photos / f"p{i}.jpg").write_bytes(b"jpeg")
        for r in range(3):  # as train/balanced_mix.py links a rare class's photos
            (mix / f"p{i}__r{r}.jpg").symlink_to(photos / f"p{i}.jpg")
            files.append(f"p{i}__r{r}.jpg")
    (mix / "plain.jpg").write_bytes(b"jpeg")
    files.append("plain.jpg")
    tr, va = split_train_val(files, 0.1, 50, seed=0, photo_of=linked_photo(mix))
    stem = lambda name: name.split("__")[0]  # noqa: E731
    assert len(va) == 12 and len({stem(v) for v in va}) == len(va)  # 12 photos, each once
    assert not {stem(t) for t in tr} & {stem(v) for v in va}  # none of them trained on under another name
    assert len(tr) == len(files) - sum(3 if v != "plain.jpg" else 1 for v in va)
    plain = [f"f{i}.jpg" for i in range(100)]  # no links: the split it always was
    assert split_train_val(plain, 0.1, 50, seed=0, photo_of=linked_photo(tmp_path)) == split_train_val(plain, 0.1, 50, seed=0)


def test_dataset_crops_are_reproducible_per_epoch(colour_folder):
    scan = scan_folder(colour_folder)
    ds = ColorizationDataset(colour_folder, scan.usable, crop=32, resize=None, train=True, seed=1)
    a = ds[3]
    b = ds[3]
    assert torch.equal(a[0], b[0]) and a[0].shape == (1, 32, 32) and a[1].shape == (2, 32, 32)
    assert a[0].min() >= -1 and a[0].max() <= 1 and a[1].abs().max() <= 1


def test_a_resize_range_crops_each_sample_from_a_scale_of_its_own(colour_folder):
    scan = scan_folder(colour_folder)
    ds = ColorizationDataset(colour_folder, scan.usable, crop=32, resize=40, train=True, seed=1, resize_max=96)
    sides = [ds.short_side(i, 0) for i in range(len(ds))] + [ds.short_side(i, 1) for i in range(len(ds))]
    assert all(40 <= s <= 96 for s in sides) and max(sides) - min(sides) >= 30  # drawn over the range
    assert sides == [ds.short_side(i, 0) for i in range(len(ds))] + [ds.short_side(i, 1) for i in range(len(ds))]  # reproducible
    for i in range(4):  # the crop is the fixed-size dataset's crop at the drawn scale: the range changes the scale alone
        fixed = ColorizationDataset(colour_folder, scan.usable, crop=32, resize=ds.short_side(i, 0), train=True, seed=1)
        assert torch.equal(ds[i][0], fixed[i][0]) and torch.equal(ds[i][1], fixed[i][1])
    assert len({ds[i][0].sum().item() for i in range(4)} | {ColorizationDataset(colour_folder, scan.usable, crop=32, resize=40, train=True,
                                                                                seed=1)[i][0].sum().item() for i in range(4)}) == 8
    val = ColorizationDataset(colour_folder, scan.usable, crop=32, resize=40, train=False, resize_max=96)
    assert {val.short_side(i, 0) for i in range(len(val))} == {68}  # validation at one scale, the range's middle
    plain = ColorizationDataset(colour_folder, scan.usable, crop=32, resize=40, train=True, seed=1)
    assert plain.short_side(0, 0) == 40


def test_an_epoch_longer_than_one_pass_reshuffles_and_crops_anew(colour_folder):
    from torch.utils.data.distributed import DistributedSampler

    from archivecolor.train import _epoch_order

    scan = scan_folder(colour_folder)
    ds = ColorizationDataset(colour_folder, scan.usable, crop=32, resize=None, train=True, seed=1)
    n = len(ds)
    sampler = DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=1, drop_last=True)
    sampler.set_epoch(4)
    one_pass = list(sampler)
    order = _epoch_order(sampler, 4, n, 2 * n + 3)
    assert len(order) == 2 * n + 3
    assert order[:n] == one_pass  # the first pass as before: older runs resume alike
    second = [i - n for i in order[n : 2 * n]]
    assert sorted(second) == sorted(one_pass) and second != one_pass  # every image again, in another order
    assert order == _epoch_order(sampler, 4, n, 2 * n + 3)  # reproducible, for --resume
    again, first = ds[n + 3], ds[3]  # the same image in the second pass: same picture, another crop or flip
    assert again[0].shape == first[0].shape and not torch.equal(again[0], first[0])


def test_a_run_with_long_epochs_validates_once_per_epoch(colour_folder, tmp_path):
    run = tmp_path / "run"
    train(colour_folder, run, replace(TINY, epochs=1, steps_per_epoch=9), show_progress=False)  # 12 training photos, batch 4: 3 per pass
    epochs = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines() if '"kind": "epoch"' in l]
    assert [e["steps"] for e in epochs] == [9]


def test_one_training_step_reduces_l1_on_a_fixed_batch(colour_folder):
    from archivecolor.nets import GeneratorConfig, UNetGenerator

    torch.manual_seed(0)
    scan = scan_folder(colour_folder)
    ds = ColorizationDataset(colour_folder, scan.usable[:4], crop=32, resize=None, train=False)
    l_net = torch.stack([ds[i][0] for i in range(4)])
    ab = torch.stack([ds[i][1] for i in range(4)])
    g = UNetGenerator(GeneratorConfig(width=8, depth=4, dropout=0.0))
    opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    before = torch.nn.functional.l1_loss(g(l_net), ab).item()
    for _ in range(5):
        loss, _, _ = generator_loss(g(l_net), ab, None)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = torch.nn.functional.l1_loss(g(l_net), ab).item()
    assert after < before


def test_train_writes_checkpoint_log_sheet_curves_and_weights(colour_folder, tmp_path):
    run = tmp_path / "run"
    result = train(colour_folder, run, replace(TINY, l1_only_epochs=1), show_progress=False)
    assert result.epochs_done == 2 and not result.interrupted
    for name in ["checkpoint.pt", "config.json", "dataset.json", "log.jsonl", "samples.png", "curves.png", "generator.safetensors", "generator-best.safetensors"]:
        assert (run / name).stat().st_size > 0, name
    epochs = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines() if '"epoch"' in l and '"kind": "epoch"' in l]
    assert [e["phase"] for e in epochs] == ["L1", "GAN"]
    for e in epochs:
        assert {"psnr", "ssim", "colourfulness", "grey_psnr", "truth_colourfulness"} <= set(e["val"])
    timings = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines() if '"kind": "timing"' in l]
    assert [t["epoch"] for t in timings] == [1, 2]
    assert all(t[k] >= 0 for t in timings for k in ("steps_s", "first_batch_s", "validate_s", "save_s", "sheets_s"))
    sheet = cv2.imread(str(run / "samples.png"))
    assert sheet.shape[1] == 3 * 32 and sheet.shape[0] == 2 * 32  # grey | predicted | truth, 2 rows
    g = load_generator(run / "generator.safetensors")
    assert g.config.width == 4 and g.config.depth == 4


def test_resume_equals_uninterrupted_run(colour_folder, tmp_path):
    straight = tmp_path / "straight"
    train(colour_folder, straight, TINY, show_progress=False)
    halves = tmp_path / "halves"
    train(colour_folder, halves, replace(TINY, epochs=1), show_progress=False)
    train(colour_folder, halves, TINY, resume=True, show_progress=False)
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(halves / "checkpoint.pt", weights_only=True)
    for key in ("generator", "discriminator"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name}"


def test_a_run_stopped_mid_epoch_by_ctrl_c_resumes_to_the_uninterrupted_run(colour_folder, tmp_path, monkeypatch):
    """SIGINT in the middle of an epoch (what Ctrl-C sends) saves where the epoch stopped; the
    resumed run skips exactly the batches done and ends equal to a run never stopped. A signal
    that does not stop the run fails this test (the run would end uninterrupted)."""
    import signal

    import archivecolor.train as training

    straight = tmp_path / "straight"
    train(colour_folder, straight, TINY, show_progress=False)
    real_loss, calls = training.generator_loss, []

    def interrupted_at_the_second_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)  # Python's handler raises KeyboardInterrupt here
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(training, "generator_loss", interrupted_at_the_second_step)
    stopped = tmp_path / "stopped"
    first = train(colour_folder, stopped, TINY, show_progress=False)
    assert first.interrupted and first.stop_signal == signal.SIGINT
    saved = torch.load(stopped / "checkpoint.pt", weights_only=True)
    assert (saved["epoch"], saved["step"], saved["global_step"]) == (0, 2, 2)  # mid-epoch, at the end of the step it came in: two of three
    monkeypatch.setattr(training, "generator_loss", real_loss)
    train(colour_folder, stopped, TINY, resume=True, show_progress=False)
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(stopped / "checkpoint.pt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 6
    for key in ("generator", "discriminator"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name}"


@pytest.mark.parametrize("lost", [ConnectionResetError(104, "Connection reset by peer"), EOFError()])
def test_a_worker_lost_mid_transfer_saves_the_state_like_a_worker_seen_dead(lost, colour_folder, tmp_path, monkeypatch):
    """A data-loading worker killed while it hands over a batch can surface as ConnectionResetError
    or EOFError rather than torch's "DataLoader worker exited" (it did once, on busy cores): the run
    must still save where it was and say --resume, not crash with a traceback and lose the epoch."""
    import archivecolor.train as training

    real_loader = training._epoch_loader

    def loader_that_loses_its_worker(*args, **kwargs):
        def batches():
            yield from list(real_loader(*args, **kwargs))[:2]
            raise lost
        return batches()

    monkeypatch.setattr(training, "_epoch_loader", loader_that_loses_its_worker)
    result = train(colour_folder, tmp_path / "run", TINY, show_progress=False)
    assert result.interrupted and "a data-loading worker died" in result.failure and "--resume" in result.failure
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 2
    monkeypatch.setattr(training, "_epoch_loader", real_loader)
    assert train(colour_folder, tmp_path / "run", TINY, resume=True, show_progress=False).failure is None


def test_the_loop_weighs_l1_by_lambda_and_the_adversarial_term_by_its_weight(colour_folder, tmp_path, monkeypatch):
    """The training loop's G loss is generator_loss(fake, real, D(fake), λ, gan weight), L1 alone
    (no D output) during the NoGAN epochs; swapping λ and the GAN weight in the loop fails here."""
    import archivecolor.train as training

    real_loss, seen = training.generator_loss, []

    def recorded(ab_fake, ab_real, pred_fake, l1_weight, gan_weight, weights=None):
        assert weights is None  # no hints in this run, so no near-hint weighting
        total, gan, l1 = real_loss(ab_fake, ab_real, pred_fake, l1_weight, gan_weight)
        seen.append((l1_weight, gan_weight, pred_fake is None, float(total), float(l1), float(gan)))
        return total, gan, l1

    monkeypatch.setattr(training, "generator_loss", recorded)
    train(colour_folder, tmp_path / "run", replace(TINY, l1_weight=37.0, gan_weight=0.5, l1_only_epochs=1), show_progress=False)
    assert [s[:3] for s in seen] == [(37.0, 0.5, True)] * 3 + [(37.0, 0.5, False)] * 3
    for _, _, no_gan, total, l1, gan in seen:
        assert total == pytest.approx(37.0 * l1 + (0.0 if no_gan else 0.5 * gan), rel=1e-5)


def test_the_loop_weighs_the_error_near_hints_on_hinted_batches_only(colour_folder, tmp_path, monkeypatch):
    """--hint-loss-weight: the loop hands generator_loss near-hint weights exactly on the batches
    that carry hints, heavier where a hint is; batches without hints are weighed evenly."""
    import archivecolor.train as training

    real_loss, seen = training.generator_loss, []

    def recorded(ab_fake, ab_real, pred_fake, l1_weight, gan_weight, weights=None):
        seen.append(None if weights is None else (float(weights.max()), float(weights.min())))
        return real_loss(ab_fake, ab_real, pred_fake, l1_weight, gan_weight, weights)

    monkeypatch.setattr(training, "generator_loss", recorded)
    config = replace(TINY, hint_fraction=0.5, hint_loss_weight=4.0, epochs=2, gan_weight=0.0)
    train(colour_folder, tmp_path / "run", config, show_progress=False)
    hinted = [training._batch_hints(config, step, torch.zeros(2, 2, 32, 32), lambda x: x) is not None for step in range(len(seen))]
    assert any(hinted) and not all(hinted)
    assert [s is not None for s in seen] == hinted
    assert all(high / low == pytest.approx(5.0) for high, low in filter(None, seen))


def test_a_run_folder_in_use_is_refused_naming_its_holder(colour_folder, tmp_path):
    """Two trainers on one folder (a job started twice, --resume while the first still runs)
    would interleave their checkpoints and logs: the second is refused before it writes."""
    import os

    from archivecolor.run_folder import RunFolder

    run = tmp_path / "run"
    first = RunFolder(run)
    first.hold()
    with pytest.raises(ValueError, match=f"in use by another archivecolor train \\(PID {os.getpid()}\\)"):
        train(colour_folder, run, TINY, show_progress=False)
    assert not (run / "config.json").exists()
    first._held.close()  # the first run ends
    assert train(colour_folder, run, replace(TINY, epochs=1), show_progress=False).epochs_done == 1


def test_a_timed_run_decays_its_learning_rate_over_its_last_minutes():
    timed = replace(TINY, time_limit_minutes=10, decay_minutes=2)
    assert [timed.time_factor(minutes * 60) for minutes in (0, 8, 9, 10, 11)] == [1.0, 1.0, 0.5, 0.0, 0.0]
    assert replace(timed, decay_minutes=0).time_factor(599) == 1.0 and TINY.time_factor(10**6) == 1.0
    assert timed.out_of_time(600) and not timed.out_of_time(599.9) and not TINY.out_of_time(10**9)


def test_a_timed_run_ends_validated_and_saved_and_a_longer_limit_resumes_it(colour_folder, tmp_path, monkeypatch):
    """--time-limit: a run sized in minutes (a scheduler's window, a lent GPU) ends at a step,
    with its generator validated and exported, and --resume with a longer limit goes on from there."""
    import archivecolor.train as training

    clock = iter(range(0, 10**6, 1))  # every look at the clock is one second later: deterministic
    monkeypatch.setattr(training.time, "perf_counter", lambda: float(next(clock)))
    run = tmp_path / "run"
    cap = replace(TINY, epochs=500, time_limit_minutes=0.5)  # 30 "seconds"
    first = train(colour_folder, run, cap, show_progress=False)
    assert first.out_of_time and not first.interrupted and first.epochs_done < 500
    log = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]
    epochs = [e for e in log if e["kind"] == "epoch"]
    assert epochs and all("val" in e and e["steps"] > 0 for e in epochs)  # no empty epoch at the end
    assert (run / "generator.safetensors").exists() and (run / "generator-best.safetensors").exists()
    saved = torch.load(run / "checkpoint.pt", weights_only=True)
    assert 20 <= saved["trained_seconds"] < 60  # at the last save, at most an epoch before the limit
    steps_before = saved["global_step"]
    assert steps_before == sum(e["steps"] for e in epochs)  # the checkpoint is where the log stops: nothing lost or redone

    second = train(colour_folder, run, replace(cap, time_limit_minutes=1.0), resume=True, show_progress=False)
    assert second.out_of_time
    resumed = torch.load(run / "checkpoint.pt", weights_only=True)
    assert resumed["global_step"] > steps_before and saved["trained_seconds"] + 10 < resumed["trained_seconds"] < 90  # the clock went on
    assert json.loads((run / "config.json").read_text())["time_limit_minutes"] == 1.0


def test_failure_watch_names_the_remedy():
    warnings = failure_watch({"d": 0.01, "val": {"chroma_std_ratio": 0.1}}, adversarial=True)
    assert any("--lr-d" in w for w in warnings) and any("mode collapse" in w for w in warnings)
    assert failure_watch({"d": 0.6, "val": {"chroma_std_ratio": 0.9}}, adversarial=True) == []


def train_on_two_gloo_processes(data: Path, run: Path, port: int, *options: str) -> subprocess.CompletedProcess:
    """`archivecolor train` under torchrun: two CPU processes (DDP on gloo), a tiny network."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "archivecolor", "train", str(data), "--out", str(run), "--crop", "32", "--width", "4", "--depth", "4",
           "--d-width", "4", "--workers", "0", "--no-progress", "--device", "cpu", *options]
    # a bound for a hang (ranks waiting on each other), not for speed: two processes starting torch
    # and gloo on a loaded 2-core machine took most of the old 240 s
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_ddp_on_gloo_with_two_processes(colour_folder, tmp_path):
    run = tmp_path / "ddp"
    train_on_two_gloo_processes(colour_folder, run, 29533, "--epochs", "1", "--batch-size", "2")
    epochs = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines() if '"kind": "epoch"' in l]
    assert len(epochs) == 1  # rank 0 alone writes
    # 16 images - 1 held out (5 %) = 15; DistributedSampler(drop_last) gives each rank 7; batch 2 -> 3 steps
    assert epochs[0]["steps"] == 3
    assert (run / "generator.safetensors").exists()


@pytest.mark.slow
def test_ddp_ranks_end_a_timed_run_at_the_same_step(colour_folder, tmp_path):
    """Each rank reads rank 0's clock: were they to stop at different steps, the others would wait for ever."""
    run = tmp_path / "ddp-timed"
    proc = train_on_two_gloo_processes(colour_folder, run, 29534, "--epochs", "1000", "--batch-size", "1", "--steps-per-epoch", "5",
                                       "--time-limit", "0.1", "--decay-minutes", "0.05")
    assert "time limit (0.1 min) reached" in proc.stderr
    assert proc.stderr.count("colour with `--weights") == 1  # rank 0 speaks for all
    epochs = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines() if '"kind": "epoch"' in l]
    assert 1 <= len(epochs) < 1000 and epochs[-1]["lr"] < 2e-4  # decayed towards the end


def test_fine_tuning_starts_from_the_given_weights_with_their_shape(colour_folder, tiny_weights, tmp_path):
    """--init-weights: G begins as the file (width 8, depth 4), whatever --width says; lr 0 keeps it."""
    config = replace(TINY, epochs=1, steps_per_epoch=1, lr=0.0, width=64, depth=6, init_generator=str(tiny_weights))
    result = train(colour_folder, tmp_path / "run", config, show_progress=False)
    assert not result.interrupted
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["width"], saved["depth"], saved["init_generator"]) == (8, 4, str(tiny_weights))
    start, after = load_generator(tiny_weights), load_generator(tmp_path / "run" / "generator.safetensors")
    assert after.config.width == 8
    params = dict(after.named_parameters())
    assert all(torch.equal(p, params[name]) for name, p in start.named_parameters())


def test_the_decoder_kind_reaches_the_network_and_a_fine_tune_keeps_the_start_s(tmp_path):
    from archivecolor.nets import build_generator
    from archivecolor.train import _initial_generator
    from archivecolor.weights import save_generator

    lite = replace(TINY, encoder="efficientnet-lite0", width=4, depth=5, decoder="separable")
    assert lite.generator_config().decoder == "separable"
    assert replace(TINY, decoder="separable").generator_config().decoder == "conv"  # the design's U-Net has its own decoder
    start = tmp_path / "separable.safetensors"
    save_generator(start, build_generator(lite.generator_config()).eval())
    tuned, _ = _initial_generator(replace(lite, decoder="conv", init_generator=str(start)))
    assert tuned.decoder == "separable"
    classifying = tmp_path / "classify.safetensors"
    save_generator(classifying, build_generator(replace(lite, head="classify").generator_config()).eval())
    assert _initial_generator(replace(lite, init_generator=str(classifying)))[0].head == "classify"  # and its head
    scene = tmp_path / "global.safetensors"
    save_generator(scene, build_generator(replace(lite, global_context=True).generator_config()).eval())
    assert _initial_generator(replace(lite, init_generator=str(scene)))[0].generator_config().global_context  # and its global context
    assert _initial_generator(replace(lite, global_context=True, init_generator=str(start)))[0].global_context  # or gains one
    assert not replace(TINY, global_context=True).generator_config().global_context  # the design's U-Net has none


def test_fine_tuning_a_hint_taking_generator_without_hint_batches_keeps_its_hints(colour_folder, tmp_path):
    """`train --init-weights default` with no --hint-batches: the shipped model takes hints, so its
    stem has hint channels. Built without them the fine-tune died on a size mismatch; it now keeps
    them and trains them on the shipped recipe's share of batches."""
    from archivecolor.nets import build_generator
    from archivecolor.train import FINE_TUNE_HINT_FRACTION
    from archivecolor.weights import save_generator

    hinted = replace(TINY, hint_fraction=0.3)
    start = tmp_path / "hinted.safetensors"
    save_generator(start, build_generator(hinted.generator_config()).eval())
    config = replace(TINY, epochs=1, steps_per_epoch=2, init_generator=str(start))
    assert config.hint_fraction == 0
    result = train(colour_folder, tmp_path / "run", config, show_progress=False)
    assert not result.interrupted and result.failure is None
    tuned = load_generator(tmp_path / "run" / "generator.safetensors")
    assert tuned.config.hint_channels == build_generator(hinted.generator_config()).config.hint_channels > 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["hint_fraction"] == FINE_TUNE_HINT_FRACTION


def test_fine_tuning_from_a_missing_file_is_a_clear_error(colour_folder, tmp_path):
    with pytest.raises(ValueError, match="--init-weights"):
        train(colour_folder, tmp_path / "run", replace(TINY, init_generator=str(tmp_path / "nope.safetensors")), show_progress=False)


LEFT_WORKERS_SCRIPT = """
import sys
import torch
from torch.utils.data import DataLoader, Dataset
from archivecolor import stopping

class Numbers(Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, index):
        return torch.tensor(index)

if sys.argv[1] == "guarded":
    stopping.kill_workers_left_at_exit()
left = iter(DataLoader(Numbers(), batch_size=2, num_workers=2, worker_init_fn=stopping.ignore_sigterm))
next(left)  # workers running, and the iterator still referenced when the interpreter exits
print("exiting", flush=True)
"""


def test_data_workers_left_running_do_not_hold_the_exit(tmp_path):
    """Our workers ignore SIGTERM (a scheduler's signal is the main process's to handle), and at
    exit multiprocessing ends leftover workers with SIGTERM and waits: a worker never shut down
    (after another was killed) held the exit forever. The guard kills them before that wait."""
    script = tmp_path / "left_workers.py"
    script.write_text(LEFT_WORKERS_SCRIPT)
    done = subprocess.run([sys.executable, str(script), "guarded"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "exiting" in done.stdout, done.stderr
    unguarded = subprocess.Popen([sys.executable, str(script), "unguarded"], stdout=subprocess.PIPE, text=True)
    try:
        assert unguarded.stdout.readline().strip() == "exiting"
        with pytest.raises(subprocess.TimeoutExpired):  # the hang the guard prevents
            unguarded.wait(timeout=10)
    finally:
        for pid in [unguarded.pid, *_children(unguarded.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        unguarded.wait()


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(proc.name))
        except (OSError, IndexError, ValueError):
            pass
    return found


def test_a_fine_tune_that_adds_global_context_starts_exactly_as_the_model_it_tunes(colour_folder, tmp_path):
    """--init-weights W --global-context: W's network gains the branch at zero, so the first step starts from W's colours."""
    from archivecolor.nets import build_generator
    from archivecolor.weights import save_generator

    lite = replace(TINY, encoder="efficientnet-lite0", width=4, depth=5, gan_weight=0.0, epochs=1, steps_per_epoch=1, lr=1e-12)
    torch.manual_seed(1)
    start = build_generator(lite.generator_config()).eval()
    save_generator(tmp_path / "start.safetensors", start)
    run = tmp_path / "run"
    train(colour_folder, run, replace(lite, global_context=True, init_generator=str(tmp_path / "start.safetensors")), show_progress=False)
    tuned_generator = load_generator(run / "generator.safetensors")
    assert tuned_generator.config.global_context and not start.config.global_context
    tuned = tuned_generator.state_dict()
    for name, tensor in start.state_dict().items():  # one step at a rate of 1e-12 moved only BatchNorm's running statistics
        if not name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            torch.testing.assert_close(tuned[name], tensor, atol=1e-6, rtol=0)
    assert tuned["global_context.2.weight"].abs().max() < 1e-6  # the branch joins at zero: the start's colours


def test_an_encoder_run_starts_from_imagenet_and_fine_tunes_the_encoder_at_its_own_rate(colour_folder, tmp_path):
    """--encoder: the encoder's convolutions start as the ImageNet classifier's; with --encoder-lr 0 they
    stay exactly so while the decoder learns; the generator file names the encoder and its hint channels."""
    from archivecolor.encoders import imagenet_weights_file

    config = replace(TINY, encoder="efficientnet-lite0", encoder_lr_mult=0.0, hint_fraction=0.5, epochs=1, gan_weight=0.0,
                     global_context=True)
    run = tmp_path / "run"
    train(colour_folder, run, config, show_progress=False)
    g = load_generator(run / "generator.safetensors")
    assert (g.config.encoder, g.config.hint_channels, g.config.depth, g.config.global_context) == ("efficientnet-lite0", 3, 5, True)
    imagenet = torch.load(imagenet_weights_file("efficientnet-lite0"), weights_only=True)
    ours = g.encoder.state_dict()
    assert torch.equal(ours["_blocks.7._project_conv.weight"], imagenet["_blocks.7._project_conv.weight"])
    from archivecolor.nets import build_generator

    torch.manual_seed(config.seed)  # the generator as the run built it, before its first step
    fresh = build_generator(g.config)
    assert not torch.equal(g.head[0].weight, fresh.head[0].weight)  # while the decoder learnt
    assert not torch.equal(g.global_context[2].weight, fresh.global_context[2].weight)  # and the scene branch, at its rate
    groups = torch.load(run / "checkpoint.pt", weights_only=True)["opt_g"]["param_groups"]
    assert [group["lr_mult"] for group in groups] == [0.0, 1.0, 5.0]  # the global context starts at zero: faster
    # the stem (it holds the hint channels) learns at the decoder's rate; the rest of the encoder not at all here
    assert not torch.equal(ours["_conv_stem.conv.weight"][:, 1:], torch.zeros_like(ours["_conv_stem.conv.weight"][:, 1:]))


def test_a_classifying_run_learns_by_the_class_loss_and_a_resume_keeps_its_colour_counts(colour_folder, tmp_path):
    """--head classify: with λ·L1 off the cross-entropy alone moves the head; it is logged; the colours it
    rebalanced by (one count per stride-2 pixel of every crop) go into the checkpoint and a resume adds to them."""
    config = replace(TINY, encoder="efficientnet-lite0", width=4, depth=5, head="classify", l1_weight=0.0, gan_weight=0.0,
                     epochs=1, steps_per_epoch=2)
    run = tmp_path / "run"
    train(colour_folder, run, config, show_progress=False)
    g = load_generator(run / "generator.safetensors")
    assert g.config.head == "classify"
    from archivecolor.nets import build_generator

    torch.manual_seed(config.seed)
    assert not torch.equal(g.head.weight, build_generator(g.config).head.weight)
    steps = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if '"step"' in line]
    assert steps and all(record["ce"] > 0 for record in steps if record["kind"] == "step")
    per_step = config.batch_size * (config.crop // 2) ** 2
    counts = torch.load(run / "checkpoint.pt", weights_only=True)["colour_counts"]
    assert counts.sum().item() == 2 * per_step
    train(colour_folder, run, replace(config, epochs=2), resume=True, show_progress=False)
    assert torch.load(run / "checkpoint.pt", weights_only=True)["colour_counts"].sum().item() == 4 * per_step


def test_training_follows_links_to_folders_once_each(tmp_path):
    """../shared/tools/training-photos.sh links photo sets into its tree: train reads them (folder never
    follows such links); a folder linked twice, or a link back up the tree, is read once."""
    from archivecolor.data import find_images

    from conftest import synthetic_photo, write_rgb

    store = tmp_path / "store"
    write_rgb(store / "set" / "a.png", synthetic_photo(np.random.default_rng(0), 16))
    tree = tmp_path / "tree"
    write_rgb(tree / "own" / "b.png", synthetic_photo(np.random.default_rng(1), 16))
    (tree / "linked").symlink_to(store / "set")
    (tree / "again").symlink_to(store / "set")
    (tree / "own" / "up").symlink_to(tree)
    found = [p.relative_to(tree).as_posix() for p in find_images(tree)]
    assert found == ["again/a.png", "own/b.png"]


def test_a_validation_folder_is_validated_on_and_its_photos_are_not_trained_on(colour_folder, tmp_path, monkeypatch):
    """--val-dir: scenes held out elsewhere are the validation set; one also linked into DATA_DIR is not trained on."""
    import archivecolor.train as training

    from conftest import synthetic_photo

    scenes = tmp_path / "scenes"
    rng = np.random.default_rng(5)
    for i in range(3):
        write_rgb(scenes / f"v{i}.png", synthetic_photo(rng, 48))
    (colour_folder / "also-a-scene.png").symlink_to(scenes / "v1.png")
    datasets = []

    class Recorded(ColorizationDataset):
        def __init__(self, root, files, *args, train, **kwargs):
            datasets.append((Path(root), list(files), train))
            super().__init__(root, files, *args, train=train, **kwargs)

    monkeypatch.setattr(training, "ColorizationDataset", Recorded)
    run = tmp_path / "run"
    train(colour_folder, run, replace(TINY, epochs=1, val_dir=str(scenes)), show_progress=False)
    (train_root, train_files, _), (val_root, val_files, _) = [d for d in datasets if d[2]][:1] + [d for d in datasets if not d[2]][:1]
    assert val_root == scenes and val_files == ["v0.png", "v1.png", "v2.png"]
    assert train_root == colour_folder and "also-a-scene.png" not in train_files
    assert len(train_files) == len(scan_folder(colour_folder).usable) - 1  # everything else trains: no share held out
    assert json.loads((run / "validation.json").read_text())["usable"] == val_files
    epoch = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines() if '"kind": "epoch"' in l][-1]
    assert epoch["val"]["psnr"] > 0


def test_a_large_validation_folder_is_sampled_evenly():
    from archivecolor.train import validation_photos

    names = [f"{section}/{i:02d}.jpg" for section in ("a", "b", "c", "d") for i in range(25)]
    picked = validation_photos(list(reversed(names)), 8)
    assert len(picked) == 8 and picked == sorted(picked)
    assert {p.split("/")[0] for p in picked} == {"a", "b", "c", "d"}
    assert validation_photos(names[:5], 8) == names[:5]


def test_a_student_starts_from_its_teacher_s_encoder_and_learns_its_colours(colour_folder, tmp_path):
    """--teacher: a separable-decoder student begins with the teacher's encoder (kept exactly at --encoder-lr 0)
    and is pulled towards the teacher's colours; at --teacher-weight 0 it is not. The teacher here colours every
    pixel a = +0.5, b = -0.3 (network scale), which the truth never asks for."""
    import math

    from archivecolor.nets import build_generator
    from archivecolor.weights import save_generator

    lite = replace(TINY, encoder="efficientnet-lite0", width=4, depth=5, gan_weight=0.0, epochs=1, steps_per_epoch=6, lr=3e-3,
                   encoder_lr_mult=0.0)
    torch.manual_seed(3)
    teacher = build_generator(lite.generator_config()).eval()
    with torch.no_grad():
        teacher.head[0].weight.zero_()
        teacher.head[0].bias.copy_(torch.tensor([math.atanh(0.5), math.atanh(-0.3)]))
    teacher_file = tmp_path / "teacher.safetensors"
    save_generator(teacher_file, teacher)
    student = replace(lite, decoder="separable", teacher=str(teacher_file))
    means = {}
    for weight in (0.0, 20.0):
        run = tmp_path / f"run-{weight:g}"
        train(colour_folder, run, replace(student, teacher_weight=weight), show_progress=False)
        g = load_generator(run / "generator.safetensors")
        assert g.config.decoder == "separable"
        taught = dict(teacher.encoder.named_parameters())  # parameters: BatchNorm's running statistics move in training
        assert all(torch.equal(p, taught[name]) for name, p in g.encoder.named_parameters())
        assert json.loads((run / "config.json").read_text())["teacher"] == str(teacher_file.resolve())
        crops = torch.stack([ColorizationDataset(colour_folder, scan_folder(colour_folder).usable, 32, None, train=False)[i][0] for i in range(8)])
        with torch.no_grad():
            means[weight] = g(crops).mean(dim=(0, 2, 3))
        epochs = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines() if '"kind": "epoch"' in l]
        assert epochs[-1]["teacher_l1"] > 0
    pulled, free = means[20.0], means[0.0]
    assert pulled[0] > free[0] + 0.02 and pulled[1] < free[1] - 0.02, (pulled, free)


def test_a_teacher_that_is_not_a_generator_is_one_clear_error(colour_folder, tmp_path):
    bad = tmp_path / "not-weights.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="--teacher"):
        train(colour_folder, tmp_path / "run", replace(TINY, teacher=str(bad)), show_progress=False)
