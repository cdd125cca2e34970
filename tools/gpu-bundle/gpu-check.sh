#!/usr/bin/env bash
# One prepared device check for a lent GPU machine (no .NET there): the CUDA tests, a short CUDA training run and
# the CUDA benches from artifacts/gpu-bundle (built here by `dotnet pwsh ./build.ps1 gpu-bundle` and carried).
# Each stage has its own time limit so one hang cannot eat the lease; logs go to $OUT (or ./results).
# Usage: bash tools/gpu-bundle/gpu-check.sh [stages...]
#   stages: env tests train bench (the default), sanitize (memcheck + racecheck over the CUDA tests),
#           full (the default training command on the GPU, report and gallery kept), ablate (the four variants at the
#           default budget), cub448 (ResNet-50 448-px throughput, TF32 as the preset sets it, then full FP32)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bundle="$root/artifacts/gpu-bundle"
out="${OUT:-$root/results}"
mkdir -p "$out"
stages=("$@"); (( ${#stages[@]} )) || stages=(env tests train bench)
: "${TEST_LIMIT:=200}" "${TRAIN_LIMIT:=150}" "${BENCH_LIMIT:=45}" "${TEST_FILTER:=TestCategory=Cuda}" "${SANITIZE_LIMIT:=150}"
: "${BENCH_LINES:=}"

cd "$bundle" || { echo "gpu-check: no $bundle (build it with build.ps1 gpu-bundle and carry it)"; exit 1; }
if [[ ! -x .dotnet/dotnet ]]; then
  mkdir -p .dotnet && tar -C .dotnet -xJf dotnet-runtime.tar.xz || { echo "gpu-check: cannot unpack the runtime"; exit 1; }
fi
export DOTNET_ROOT="$bundle/.dotnet" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_gcServer=0
dotnet="$DOTNET_ROOT/dotnet"
# cuBLAS/cuDNN from the Python venv's pip wheels: they load their sibling libraries through LD_LIBRARY_PATH.
libdirs=$(ls -d /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib 2>/dev/null | paste -sd:)
export LD_LIBRARY_PATH="${libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

stage_env() {
  { date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    ls /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib 2>/dev/null | grep -E 'cublas|cudnn\.so|cudart' | head -20
    nproc; } 2>&1 | tee "$out/env.log"
}

stage_tests() {
  echo "== CUDA tests (filter $TEST_FILTER, limit ${TEST_LIMIT}s)"
  timeout -k 5 "$TEST_LIMIT" "$dotnet" tests/MtlMoe.Engine.Tests.dll --filter "$TEST_FILTER" --output Detailed \
    >"$out/cuda-tests.log" 2>&1
  echo "tests exit code $?"
  # The log is long: show failures and the summary here; everything is in cuda-tests.log.
  grep -E '^(failed|skipped) ' "$out/cuda-tests.log" | head -60
  grep -A8 '^Test run summary' "$out/cuda-tests.log" || tail -20 "$out/cuda-tests.log"
}

stage_train() {
  echo "== short CUDA training run (limit ${TRAIN_LIMIT}s)"
  local run=/tmp/gpu-run
  rm -rf "$run"
  ( cd "$root" && timeout -k 5 "$TRAIN_LIMIT" "$dotnet" "$bundle/train/MtlMoe.Train.dll" --device cuda --epochs 4 \
      --plain --workers 8 --out "$run" ) >"$out/train.log" 2>&1
  echo "train exit code $?"
  tail -25 "$out/train.log"
  [[ -f $run/metrics.csv ]] && cp "$run/metrics.csv" "$out/metrics.csv"
}

stage_bench() {
  echo "== CUDA benches (limit ${BENCH_LIMIT}s each)"
  : >"$out/bench.jsonl"
  local lines=()
  if [[ -n $BENCH_LINES ]]; then IFS=';' read -r -a lines <<<"$BENCH_LINES"; else lines=(
    "gemm --sizes 1024,4096 --device cuda"
    "gemm --sizes 4096 --device cuda --tf32"
    "conv --device cuda"
    "resnet18-step --device cuda"
    "resnet18-step --device cuda --batch 64 --res 224"
    "gating --device cuda --batch 4096,65536 --dim 2048 --experts 16,64 --k 2 --scope op --path fused,composed"
  ); fi
  for l in "${lines[@]}"; do
    echo "-- bench $l"
    # shellcheck disable=SC2086
    timeout -k 5 "$BENCH_LIMIT" "$dotnet" bench/Bench.dll $l 2>>"$out/bench.log" | tee -a "$out/bench.jsonl"
  done
}

stage_sanitize() {
  local cs
  cs=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
  [[ -n $cs ]] || { echo "gpu-check: compute-sanitizer not found"; return; }
  echo "== compute-sanitizer memcheck over the CUDA tests (limit ${SANITIZE_LIMIT}s)"
  timeout -k 5 "$SANITIZE_LIMIT" "$cs" --tool memcheck --leak-check no --target-processes all \
    "$dotnet" tests/MtlMoe.Engine.Tests.dll --filter "$TEST_FILTER" >"$out/sanitize.log" 2>&1
  echo "memcheck exit code $?"
  grep -E 'ERROR SUMMARY|total: |failed: |succeeded: ' "$out/sanitize.log" | head -8
  # Each reported error with its first lines (kernel or API call, and the host frames naming the test).
  grep -A12 -E '^========= (Invalid|Program hit|Error|Address|Out-of-range|Misaligned)' "$out/sanitize.log" | head -60
  [[ ${SANITIZE_RACECHECK:-1} == 1 ]] || return 0
  echo "== racecheck over the MoE and reduction tests"
  timeout -k 5 "$((SANITIZE_LIMIT / 2))" "$cs" --tool racecheck --target-processes all \
    "$dotnet" tests/MtlMoe.Engine.Tests.dll --filter "FullyQualifiedName~CudaMoe|FullyQualifiedName~Parity_sum|FullyQualifiedName~Parity_softmax" \
    >>"$out/sanitize.log" 2>&1
  echo "racecheck exit code $?"
  grep -E 'RACECHECK SUMMARY|ERROR SUMMARY|hazard|total: |failed: ' "$out/sanitize.log" | tail -8
}

stage_full() {
  echo "== the default training command on the GPU (limit ${TRAIN_LIMIT}s)"
  local run=/tmp/gpu-full
  rm -rf "$run"
  local t0=$SECONDS
  ( cd "$root" && timeout -k 5 "$TRAIN_LIMIT" "$dotnet" \
      "$bundle/train/MtlMoe.Train.dll" --device cuda --plain --workers 12 --out "$run" ) >"$out/full.log" 2>&1
  echo "full run exit code $?, wall $((SECONDS - t0)) s (synthetic data generated in this run)"
  grep -E '^epoch [0-9]+/[0-9]+ done|^done in|^wall' "$out/full.log" | tail -8
  for f in report.md metrics.csv gallery/expert_1.png; do [[ -f $run/$f ]] && cp "$run/$f" "$out/full-$(basename "$f")"; done
}

stage_cub448() {
  echo "== ResNet-50 448-px throughput (batch 16) on synthetic 500-px birds, limit ${TRAIN_LIMIT}s per run"
  local common=(--device cuda --plain --workers 14 --epochs 1 --max-batches "${CUB_BATCHES:-60}" --synthetic-size 500)
  ( cd "$root" && timeout -k 5 "$TRAIN_LIMIT" "$dotnet" "$bundle/train/MtlMoe.Train.dll" --preset cub448 "${common[@]}" \
      --out /tmp/gpu-cub448-tf32 ) >"$out/cub448.log" 2>&1
  echo "cub448 (TF32) exit code $?"; grep -E '^device|batch [0-9]+/|done in' "$out/cub448.log" | tail -4
  [[ ${CUB_FP32:-1} == 1 ]] || return 0
  ( cd "$root" && timeout -k 5 "$TRAIN_LIMIT" "$dotnet" "$bundle/train/MtlMoe.Train.dll" --backbone resnet50 --width 1 \
      --res 448 --resize 512 --lr 0.01 --batch 16 "${common[@]}" --out /tmp/gpu-cub448-fp32 ) >>"$out/cub448.log" 2>&1
  echo "cub448 settings in FP32 exit code $?"; grep -E 'batch [0-9]+/|done in' "$out/cub448.log" | tail -3
}

stage_ablate() {
  echo "== ablate on the GPU (limit ${ABLATE_LIMIT:-400}s)"
  local t0=$SECONDS
  ( cd "$root" && timeout -k 5 "${ABLATE_LIMIT:-400}" "$dotnet" "$bundle/train/MtlMoe.Train.dll" ablate --device cuda --plain \
      --workers 12 --out /tmp/gpu-ablate ) >"$out/ablate.log" 2>&1
  echo "ablate exit code $?, wall $((SECONDS - t0)) s"
  grep -E '^done in|ablate:' "$out/ablate.log" | tail -8
  [[ -f /tmp/gpu-ablate/ablation.md ]] && cp /tmp/gpu-ablate/ablation.md "$out/ablation.md" && cat "$out/ablation.md"
  [[ -f /tmp/gpu-ablate/ablation.png ]] && cp /tmp/gpu-ablate/ablation.png "$out/ablation.png"
}

for s in "${stages[@]}"; do "stage_$s"; done
