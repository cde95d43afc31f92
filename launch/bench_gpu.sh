#!/usr/bin/env bash
# The GPU benchmark recorded in the README: gpt2-small, bfloat16, seq 1024, one GPU.
# Runs from a source checkout with jax[cuda], flax and optax installed (no tfds/grain needed).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
OUT=${OUT:-/tmp}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
JAX_PLATFORMS=cuda python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -3
common=(--set model.dtype=bfloat16 --set model.dropout=0 --set model.attn_dropout=0 --set mesh.fsdp=1 --set train.seq_len=1024 --steps 20 --warmup 3)
bench() { timeout 150 python3 -m scaling.cli bench train --config gpt2-small "${common[@]}" "$@" 2>&1 \
  | grep -v "^W\|^I" | tee -a "$OUT/bench_gpu.txt"; }
bench --set train.global_batch=16 --set model.attention=xla
bench --set train.global_batch=16 --set model.attention=cudnn
bench --set train.global_batch=16 --set model.attention=cudnn --set model.scan_layers=false
bench --set train.global_batch=32 --set model.attention=cudnn --set model.scan_layers=false \
  --set model.remat=dots_no_batch
