"""What a training run shows: held-out figures beside the grey baseline, the design's failure
watch, the sample sheet and the training curves. Reads models, never trains them."""

from __future__ import annotations

import math
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from .lab import denormalize_ab, denormalize_l, lab_to_srgb_torch
from .metrics import colourfulness, psnr, ssim
from .files import atomic_write_bytes

D_COLLAPSE_LOSS = 0.1  # mean D loss below this: D separates perfectly, G learns nothing from it
CHROMA_COLLAPSE_RATIO = 0.3  # predicted ab std below this fraction of the truth's: mode collapse


def load_validation(val_set, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The validation crops, decoded once for the whole run: decoding them again every epoch in
    the main process left a fast GPU idle for seconds at each epoch's end."""
    return list(DataLoader(val_set, batch_size=batch_size, shuffle=False, num_workers=0))


@torch.no_grad()
def validate(generator, val_batches, device, amp_dtype=None, channels_last=False) -> dict:
    """Held-out figures in RGB: PSNR, SSIM, colourfulness, and the grey (ab = 0) baseline beside
    them; computed on the training device, from the batches load_validation gave."""
    was_training = generator.training
    generator.eval()
    totals = {"psnr": 0.0, "ssim": 0.0, "colourfulness": 0.0, "grey_psnr": 0.0, "grey_ssim": 0.0, "truth_colourfulness": 0.0}
    pred_var, truth_var, n = 0.0, 0.0, 0
    for l_net, ab_real in val_batches:
        l_net, ab_real = l_net.to(device), ab_real.to(device)
        l_in = l_net.contiguous(memory_format=torch.channels_last) if channels_last else l_net
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            ab_pred = generator(l_in)
        ab_pred = ab_pred.float().contiguous()
        L = denormalize_l(l_net)
        truth = lab_to_srgb_torch(torch.cat([L, denormalize_ab(ab_real)], 1))
        pred = lab_to_srgb_torch(torch.cat([L, denormalize_ab(ab_pred)], 1))
        grey = lab_to_srgb_torch(torch.cat([L, torch.zeros_like(ab_real)], 1))
        totals["psnr"] += psnr(pred, truth).sum().item()
        totals["ssim"] += ssim(pred, truth).sum().item()
        totals["colourfulness"] += colourfulness(pred).sum().item()
        totals["grey_psnr"] += psnr(grey, truth).sum().item()
        totals["grey_ssim"] += ssim(grey, truth).sum().item()
        totals["truth_colourfulness"] += colourfulness(truth).sum().item()
        pred_var += ab_pred.var(dim=(2, 3)).mean(1).sum().item()
        truth_var += ab_real.var(dim=(2, 3)).mean(1).sum().item()
        n += l_net.shape[0]
    generator.train(was_training)
    result = {k: v / max(n, 1) for k, v in totals.items()}
    result["chroma_std_ratio"] = math.sqrt(pred_var / truth_var) if truth_var > 0 else 0.0
    result["images"] = n
    return result


def failure_watch(record: dict, adversarial: bool) -> list[str]:
    """The design's 'expected challenges', detected: D collapse and chroma (mode) collapse."""
    warnings = []
    if adversarial and record.get("d", 1.0) < D_COLLAPSE_LOSS:
        warnings.append(
            f"discriminator loss fell to {record['d']:.3f}: D wins outright and G gets no useful gradient "
            "(mode-collapse risk). Remedy: lower D's learning rate (--lr-d 1e-4) or raise --l1-weight."
        )
    ratio = record.get("val", {}).get("chroma_std_ratio")
    if adversarial and ratio is not None and ratio < CHROMA_COLLAPSE_RATIO:
        warnings.append(
            f"predicted colour variance is {ratio:.2f}× the truth's: the generator is collapsing to few colours "
            "(mode collapse). Remedy: monitor D's loss; adjust learning rates (--lr-d) or raise --gan-weight."
        )
    return warnings


@torch.no_grad()
def write_sample_sheet(path: Path, generator, val_batches, rows: int, device) -> None:
    """PNG with one row per validation image (the first `rows` of load_validation's crops):
    grey input | prediction | truth."""
    import cv2

    crops = list(islice(((l, ab) for l_batch, ab_batch in val_batches for l, ab in zip(l_batch, ab_batch)), rows))
    if not crops:
        return
    was_training = generator.training
    generator.eval()
    tiles = []
    for l_net, ab_real in crops:
        ab_pred = generator(l_net[None].to(device)).float().cpu()[0]
        L = denormalize_l(l_net)
        row = [
            torch.cat([L, torch.zeros_like(ab_real)], 0),
            torch.cat([L, denormalize_ab(ab_pred)], 0),
            torch.cat([L, denormalize_ab(ab_real)], 0),
        ]
        rgb = lab_to_srgb_torch(torch.stack(row))  # (3, 3, H, W)
        tiles.append(torch.cat(list(rgb), dim=2))  # side by side: (3, H, 3W)
    generator.train(was_training)
    sheet = torch.cat(tiles, dim=1).permute(1, 2, 0).numpy()
    sheet = (np.clip(sheet, 0, 1) * 255 + 0.5).astype(np.uint8)
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if ok:
        atomic_write_bytes(path, png.tobytes())


def write_curves(path: Path, log: list[dict]) -> None:
    """Training curves PNG: losses per step; per epoch, validation PSNR against the grey baseline and
    colourfulness against the truth's (a model can gain PSNR by turning greyer)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r for r in log if r.get("kind") == "step"]
    epochs = [r for r in log if r.get("kind") == "epoch" and "val" in r]
    fig, axes = plt.subplots(1, 4, figsize=(20, 4))
    ax = axes[0]
    if steps:
        ax.plot([r["global_step"] for r in steps], [r["l1"] for r in steps], lw=0.8, label="L1 (train)")
        ax.legend(loc="upper right")
    ax.set_xlabel("step")
    ax.set_ylabel("L1 (network units)")
    ax.set_title("Generator L1")
    ax = axes[1]
    gan_steps = [r for r in steps if r.get("d") is not None]
    if gan_steps:
        ax.plot([r["global_step"] for r in gan_steps], [r["gan"] for r in gan_steps], lw=0.8, label="G adversarial")
        ax.plot([r["global_step"] for r in gan_steps], [r["d"] for r in gan_steps], lw=0.8, label="D")
        ax.legend(loc="upper right")
    else:
        ax.text(0.5, 0.5, "L1 alone so far\n(no adversarial term)", ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xlabel("step")
    ax.set_title("Adversarial losses (BCE)")
    ax = axes[2]
    if epochs:
        x = [r["epoch"] for r in epochs]
        ax.plot(x, [r["val"]["psnr"] for r in epochs], marker="o", label="model")
        ax.plot(x, [r["val"]["grey_psnr"] for r in epochs], ls="--", label="grey baseline")
        ax.legend(loc="lower right")
    ax.set_xlabel("epoch")
    ax.set_ylabel("dB")
    ax.set_title("Validation PSNR")
    ax = axes[3]  # PSNR alone rewards grey: a muted model scores well with wrong or no colours
    if epochs:
        ax.plot(x, [r["val"]["colourfulness"] for r in epochs], marker="o", label="model")
        ax.plot(x, [r["val"]["truth_colourfulness"] for r in epochs], ls="--", label="truth")
        ax.legend(loc="lower right")
    ax.set_xlabel("epoch")
    ax.set_title("Validation colourfulness (Hasler & Süsstrunk)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
