#!/usr/bin/env bash
# The GPU benchmark for the README's "Performance" table, in one call, on one GPU (an H200
# takes about 6-7 minutes): gpt2-small (seq 1024) and gpt3-1.3b (seq 2048), bfloat16,
# XLA vs the default attention (auto: cuDNN's fused kernel on GPU), scanned vs unrolled stack, remat none vs dots; each line prints
# tokens/s, MFU in our FLOP convention and PaLM's, and peak device memory; then the GPU test
# file's results. Fails loudly: no GPU, a CPU fallback, a failed benchmark or a failed GPU
# test ends with a non-zero exit and a FAILED line, never a silent fallback.
# Runs from a source checkout with jax[cuda], flax and optax installed (no tfds/grain needed).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92 JAX_PLATFORMS=cuda
OUT=${OUT:-/tmp}
LOG=$OUT/bench_gpu.txt
: > "$LOG"
die() { echo "bench_gpu.sh: FAILED: $*" | tee -a "$LOG" >&2; exit 1; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$LOG" \
  || die "nvidia-smi found no GPU"
python3 - <<'EOF' 2>&1 | tee -a "$LOG" || die "JAX sees no GPU (jax[cuda] installed?)"
import jax, sys
d = jax.devices()
print("jax", jax.__version__, d)
sys.exit(0 if d and d[0].platform == "gpu" else 1)
EOF

failures=0
run() {  # run LABEL PRESET SEQ BATCH ATTENTION UNROLL REMAT
  local label=$1 preset=$2 seq=$3 batch=$4 attn=$5 unroll=$6 remat=$7
  echo "== $label: $preset seq $seq batch $batch attention $attn scan_unroll $unroll remat $remat" \
    | tee -a "$LOG"
  local out=$OUT/bench_gpu_run.txt
  timeout 110 python3 -m scaling.cli bench train --config "$preset" \
      --set model.dtype=bfloat16 --set model.dropout=0 --set model.attn_dropout=0 \
      --set mesh.data=1 --set mesh.fsdp=1 --set mesh.tensor=1 \
      --set train.seq_len="$seq" --set train.global_batch="$batch" \
      --set model.attention="$attn" --set model.scan_unroll="$unroll" \
      --set model.remat="$remat" --steps 10 --warmup 2 > "$out" 2>&1 || true
  grep -v "^[WI][0-9]" "$out" | tail -8 | tee -a "$LOG"
  if ! grep -q "tokens/s" "$out" || ! grep -q " on 1 x .*\(H[0-9]\|A100\|GPU\|NVIDIA\)" "$out"; then
    echo "FAILED: $label (no result, or not on the GPU)" | tee -a "$LOG"
    failures=$((failures + 1))
  elif [ "$attn" = auto ] && ! grep -q "^attention: cudnn" "$out"; then
    echo "FAILED: $label (auto did not take the cuDNN kernel: see its attention line)" \
      | tee -a "$LOG"
    failures=$((failures + 1))
  fi
}

#   label                preset      seq  batch attention scan_unroll remat
run "small xla scan"     gpt2-small 1024 16 xla   1  none
run "small auto scan"    gpt2-small 1024 16 auto  1  none
run "small auto unroll"  gpt2-small 1024 16 auto  12 none
run "small auto dots"    gpt2-small 1024 32 auto  1  dots
run "1.3b xla scan dots" gpt3-1.3b  2048 8  xla   1  dots
run "1.3b auto scan"     gpt3-1.3b  2048 8  auto  1  none
run "1.3b auto dots"     gpt3-1.3b  2048 8  auto  1  dots
run "1.3b auto unroll"   gpt3-1.3b  2048 8  auto  24 dots

echo "== tests/test_gpu.py" | tee -a "$LOG"
if ! timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py \
    > "$OUT/bench_gpu_tests.txt" 2>&1; then
  echo "FAILED: tests/test_gpu.py" | tee -a "$LOG"
  failures=$((failures + 1))
fi
tail -5 "$OUT/bench_gpu_tests.txt" | tee -a "$LOG"
[ "$failures" -eq 0 ] || die "$failures of the runs above failed (see $LOG)"
echo "bench_gpu.sh: all runs done; table in $LOG"
