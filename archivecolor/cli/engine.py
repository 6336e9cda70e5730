"""`archivecolor build-engine`: the ONNX export and the TensorRT FP16 engine."""

from __future__ import annotations

from pathlib import Path

import click

from .common import GroupedCommand


@click.command("build-engine", cls=GroupedCommand, examples=(
    ("archivecolor build-engine", "ONNX of the default model (and, with TensorRT, an FP16 engine for this GPU)"),
), short_help="Export the model to ONNX and build a TensorRT FP16 engine for this GPU.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Generator weights (.safetensors). Default: the model shipped inside archivecolor.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("engines"), show_default=True,
              help="Folder for the ONNX files, the engine, its JSON sidecar and the timing cache.")
@click.option("--render-size", type=click.IntRange(32), default=256, show_default=True, help="Render size the engine is tuned for (its optimal shape).")
@click.option("--opt-batch", type=click.IntRange(1), default=8, show_default=True, help="Batch size the engine is tuned for.")
@click.option("--max-batch", type=click.IntRange(1), default=32, show_default=True, help="Largest batch the engine accepts.")
@click.option("--max-aspect", type=click.FloatRange(1, 8), default=2.75, show_default=True, help="Widest aspect ratio the engine accepts at the render size.")
@click.option("--workspace-gb", type=click.FloatRange(0.25), default=4.0, show_default=True, help="TensorRT builder workspace limit (GiB).")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Run the built engine on sample inputs and compare with PyTorch fp32 (ΔE2000, max |Δab|); a failed check fails the build.")
def build_engine_command(weights, out, render_size, opt_batch, max_batch, max_aspect, workspace_gb, verify):
    """Export the generator to ONNX and build a TensorRT FP16 engine from it.

    Always writes the fp32 ONNX (dynamic batch, height, width; checked with onnx.checker and
    against PyTorch in onnxruntime), which the `onnx` backend runs, and an FP16 ONNX for
    strongly typed TensorRT. Where TensorRT and a CUDA GPU are present it builds the engine
    with an optimization profile, a reused timing cache and a JSON sidecar (weights hash,
    TensorRT version, GPU, profile, parity). Without them it stops after the ONNX, saying so.
    """
    from .. import console
    from ..engine import (EngineError, EngineProfile, build_engine, engine_name, export_for_engine, gpu_identity, parity,
                         parity_passes, sample_inputs, sidecar_facts, tensorrt_version, write_sidecar, TIMING_CACHE_NAME)
    from ..export import onnx_parity
    from ..files import file_sha256
    from ..weights import WeightsError, resolve_weights

    try:
        weights = resolve_weights(weights)
        fp32, fp16, meta = export_for_engine(weights, out)
    except (WeightsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    figures32, figures16 = onnx_parity(weights, fp32), onnx_parity(weights, fp16)
    console.info(f"ONNX fp32: {fp32} (max |Δab| vs PyTorch {figures32['max_abs_ab_lab']:.2e} Lab units over {', '.join(figures32['shapes'])})")
    console.info(f"ONNX fp16: {fp16} (max |Δab| vs PyTorch fp32 {figures16['max_abs_ab_lab']:.3f} Lab units)")
    if figures32["max_abs_ab"] > 1e-4:
        raise click.ClickException(f"the fp32 ONNX disagrees with PyTorch by {figures32['max_abs_ab']:.2e}: export is broken")

    version, gpu = tensorrt_version(), gpu_identity()
    if version is None or gpu is None:
        missing = "TensorRT (pip install \"archivecolor[tensorrt]\")" if version is None else "a CUDA GPU"
        console.warn(f"engine not built: it needs {missing}. The ONNX files above are optional: `--backend auto` already "
                     "runs onnxruntime on a CPU (exporting the model itself). A TensorRT engine would add FP16 inference "
                     "compiled for one NVIDIA GPU, the fastest way to colour there.")
        return
    config = __import__("json").loads(meta["generator_config"])
    multiple = 2 ** int(config["depth"])
    profile = EngineProfile.for_render_size(render_size, multiple, opt_batch, max_batch, max_aspect)
    engine_path = out / engine_name(file_sha256(weights), gpu[0], version)
    try:
        build = build_engine(fp32, engine_path, profile, fp16_onnx_path=fp16, workspace_bytes=int(workspace_gb * (1 << 30)),
                             timing_cache=out / TIMING_CACHE_NAME)
    except EngineError as exc:
        raise click.ClickException(str(exc)) from None
    figures = None
    write_sidecar(engine_path, sidecar_facts(weights, profile, gpu, version, build, None))
    if verify:
        from ..backends.tensorrt_backend import TensorRTBackend
        from ..backends.torch_backend import TorchBackend

        figures = parity(TensorRTBackend(weights, engine_path), TorchBackend(weights, device="cuda", precision="fp32"), sample_inputs(profile))
        if not parity_passes(figures):
            engine_path.unlink(missing_ok=True)
            Path(str(engine_path) + ".json").unlink(missing_ok=True)
            raise click.ClickException(f"engine parity failed: mean ΔE2000 {figures['mean_delta_e2000']:.3f}, max |Δab| {figures['max_abs_ab']:.2f}")
        console.info(f"parity vs PyTorch fp32: mean ΔE2000 {figures['mean_delta_e2000']:.3f}, max |Δab| {figures['max_abs_ab']:.2f} Lab units")
    write_sidecar(engine_path, sidecar_facts(weights, profile, gpu, version, build, figures))
    console.info(f"engine: {engine_path} (TensorRT {version}, {gpu[0]}, built in {build['build_seconds']} s)")
