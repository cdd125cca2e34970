#!/usr/bin/env bash
# One prepared device check for a lent GPU machine (no .NET there): the CUDA tests, the benches, PyTorch side by side
# and compute-sanitizer, from artifacts/gpu-bundle (built here by `dotnet tool restore && dotnet pwsh ./build.ps1
# gpu-bundle` and carried). Every stage has its own time limit, and all of them share one deadline (TOTAL_LIMIT, 530 s
# by default: a stage that would not fit is shortened or skipped, saying so), so one hang cannot eat the lease.
# Results go to $OUT (default ./results): env.log, cuda-tests.log, bench.jsonl (+ bench.log), torch.jsonl (+ torch.log),
# side-by-side.md (the ratio table against the issue's targets), sanitize.log, summary.txt.
# Usage: bash tools/gpu-bundle/gpu-check.sh [stages...]
#   default stages: env tests bench torch ratio sanitize    (issue 19's device call)
#   more: train (a short CUDA training run), full, ablate, cub448, torchcompile (the torch.compile rows, slow to compile)
#   DRY_RUN=cpu: the same stages on the CPU with tiny shapes (CUDA tests skip with their reason; bench and the PyTorch
#   script run their --tiny / CPU forms), to check the script and the bundle on a machine without a GPU.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bundle="$root/artifacts/gpu-bundle"
out="${OUT:-$root/results}"
mkdir -p "$out"
stages=("$@"); (( ${#stages[@]} )) || stages=(env tests bench torch ratio sanitize)
: "${TOTAL_LIMIT:=530}" "${TEST_LIMIT:=150}" "${TRAIN_LIMIT:=150}" "${BENCH_LIMIT:=60}" "${SANITIZE_LIMIT:=100}" "${TORCH_LIMIT:=130}"
: "${TEST_FILTER:=TestCategory=Cuda|FullyQualifiedName~CudaHeaderTests|FullyQualifiedName~CudaKernelNameTests}"
: "${SANITIZE_FILTER:=FullyQualifiedName~CudaBf16Parity|FullyQualifiedName~CudaFusedGating|FullyQualifiedName~CudaGraph|FullyQualifiedName~CudaChannelsLast}"
: "${BENCH_LINES:=}" "${TORCH_MODES:=fp32,tf32,amp_bf16}" "${DRY_RUN:=}"
deadline=$((SECONDS + TOTAL_LIMIT))

# The seconds a stage may take: its own limit, cut to what is left of the deadline (0: skip it).
limit() {
  local want=$1 left=$((deadline - SECONDS - 5))
  (( left < want )) && want=$left
  (( want < 15 )) && want=0
  echo "$want"
}
note() { echo "$*" | tee -a "$out/summary.txt"; }
: >"$out/summary.txt"

cd "$bundle" || { echo "gpu-check: no $bundle (build it with build.ps1 gpu-bundle and carry it)"; exit 1; }
if [[ ! -x .dotnet/dotnet ]]; then
  mkdir -p .dotnet && tar -C .dotnet -xJf dotnet-runtime.tar.xz || { echo "gpu-check: cannot unpack the runtime"; exit 1; }
fi
export DOTNET_ROOT="$bundle/.dotnet" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_gcServer=0
dotnet="$DOTNET_ROOT/dotnet"
# cuBLAS/cuDNN from the Python venv's pip wheels: they load their sibling libraries through LD_LIBRARY_PATH.
libdirs=$(ls -d /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib 2>/dev/null | paste -sd:)
export LD_LIBRARY_PATH="${libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The device's own python3 with PyTorch (the venv when present), for the side-by-side.
py=/opt/torch/.venv/bin/python3; [[ -x $py ]] || py=python3
[[ $DRY_RUN == cpu && -x /usr/bin/python3 ]] && py=/usr/bin/python3
dev=cuda; [[ $DRY_RUN == cpu ]] && dev=cpu

stage_env() {
  { date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.mem --format=csv,noheader 2>&1
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    ls /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib 2>/dev/null | grep -E 'cublas|cudnn\.so|cudart' | head -20
    "$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>&1
    command -v compute-sanitizer ncu 2>&1; nproc; } 2>&1 | tee "$out/env.log"
}

stage_tests() {
  local t; t=$(limit "$TEST_LIMIT"); (( t )) || { note "tests: skipped (deadline)"; return; }
  echo "== CUDA tests: parity incl. bf16, fused gating, graphs, channels-last, headers (limit ${t}s)"
  timeout -k 5 "$t" "$dotnet" tests/MtlMoe.Engine.Tests.dll --filter "$TEST_FILTER" --output Detailed >"$out/cuda-tests.log" 2>&1
  note "tests exit code $?"
  grep -E '^(failed|skipped) ' "$out/cuda-tests.log" | head -60
  grep -A8 '^Test run summary' "$out/cuda-tests.log" | tee -a "$out/summary.txt" || tail -20 "$out/cuda-tests.log"
}

bench_lines() {
  if [[ -n $BENCH_LINES ]]; then IFS=';' read -r -a lines <<<"$BENCH_LINES"; return; fi
  if [[ $DRY_RUN == cpu ]]; then lines=(   # the torch --tiny shapes, so that the ratio table has pairs to join
    "resnet18-step --batch 2 --res 64 --runs 1"
    "resnet18-step --batch 2 --res 64 --runs 1 --amp bf16"
    "resnet50-step --batch 1 --res 64 --runs 1 --amp bf16"
    "gating --batch 1024 --experts 16,64 --k 2 --scope op --path fused,primitive,composed --runs 3"
  ); return; fi
  lines=(
    "resnet18-step --device cuda --batch 64 --res 224"
    "resnet18-step --device cuda --batch 64 --res 224 --amp bf16 --channels-last"
    "resnet50-step --device cuda --batch 16 --res 448"
    "resnet50-step --device cuda --batch 16 --res 448 --amp bf16 --channels-last"
    "gating --device cuda --batch 65536 --experts 16,64 --k 2 --scope op --path fused,primitive,composed"
    "resnet50-step --device cuda --batch 16 --res 448 --amp bf16 --channels-last --graph"
    "conv-layers --device cuda --depth 50 --batch 16 --res 448 --dtype bf16 --runs 3"
    "resnet50-step --device cuda --batch 16 --res 448 --amp bf16"
  )
}

stage_bench() {
  echo "== benches (limit ${BENCH_LIMIT}s each)"
  : >"$out/bench.jsonl"
  local lines=() l t
  bench_lines
  for l in "${lines[@]}"; do
    t=$(limit "$BENCH_LIMIT"); (( t )) || { note "bench: skipped '$l' (deadline)"; continue; }
    echo "-- bench $l (limit ${t}s)"
    # shellcheck disable=SC2086
    timeout -k 5 "$t" "$dotnet" bench/Bench.dll $l 2>>"$out/bench.log" | tee -a "$out/bench.jsonl"
    local rc=${PIPESTATUS[0]}; (( rc )) && note "bench '$l' exit code $rc (see bench.log)"
  done
}

stage_torch() {
  local t; t=$(limit "$TORCH_LIMIT"); (( t )) || { note "torch: skipped (deadline)"; return; }
  echo "== PyTorch side by side with $py (modes $TORCH_MODES, limit ${t}s)"
  local extra=(); [[ $DRY_RUN == cpu ]] && extra=(--tiny --device cpu --threads 2)
  timeout -k 5 "$t" "$py" "$root/tools/gpu-bundle/torch_side_by_side.py" --modes "$TORCH_MODES" "${extra[@]}" \
    >"$out/torch.jsonl" 2>"$out/torch.log"
  note "torch exit code $? ($(grep -c '^{' "$out/torch.jsonl") lines)"
}

stage_torchcompile() {
  local t; t=$(limit "$TORCH_LIMIT"); (( t )) || { note "torch.compile: skipped (deadline)"; return; }
  echo "== PyTorch torch.compile rows (limit ${t}s)"
  timeout -k 5 "$t" "$py" "$root/tools/gpu-bundle/torch_side_by_side.py" --modes compile >>"$out/torch.jsonl" 2>>"$out/torch.log"
  note "torch.compile exit code $?"
}

stage_ratio() {
  [[ -s $out/torch.jsonl && -s $out/bench.jsonl ]] || { note "ratio: no bench or torch lines"; return; }
  python3 "$root/tools/gpu-bundle/ratio_table.py" "$out/bench.jsonl" --torch "$out/torch.jsonl" --out "$out/side-by-side.md"
  note "ratio table exit code $? → side-by-side.md"
}

stage_sanitize() {
  local cs t
  cs=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
  [[ -n $cs ]] || { note "sanitize: compute-sanitizer not found"; return; }
  t=$(limit "$SANITIZE_LIMIT"); (( t )) || { note "sanitize: skipped (deadline)"; return; }
  echo "== compute-sanitizer memcheck over the new CUDA tests (limit ${t}s)"
  timeout -k 5 "$t" "$cs" --tool memcheck --leak-check no --target-processes all \
    "$dotnet" tests/MtlMoe.Engine.Tests.dll --filter "$SANITIZE_FILTER" >"$out/sanitize.log" 2>&1
  note "memcheck exit code $?"
  grep -E 'ERROR SUMMARY|total: |failed: |succeeded: ' "$out/sanitize.log" | head -8 | tee -a "$out/summary.txt"
  grep -A12 -E '^========= (Invalid|Program hit|Error|Address|Out-of-range|Misaligned)' "$out/sanitize.log" | head -60
  [[ ${SANITIZE_RACECHECK:-1} == 1 ]] || return 0
  t=$(limit $((SANITIZE_LIMIT / 2))); (( t )) || { note "racecheck: skipped (deadline)"; return; }
  echo "== racecheck over the fused gating tests (limit ${t}s)"
  timeout -k 5 "$t" "$cs" --tool racecheck --target-processes all \
    "$dotnet" tests/MtlMoe.Engine.Tests.dll --filter "FullyQualifiedName~CudaFusedGating" >>"$out/sanitize.log" 2>&1
  note "racecheck exit code $?"
  grep -E 'RACECHECK SUMMARY|ERROR SUMMARY|hazard' "$out/sanitize.log" | tail -4 | tee -a "$out/summary.txt"
}

stage_train() {
  local t; t=$(limit "$TRAIN_LIMIT"); (( t )) || { note "train: skipped (deadline)"; return; }
  echo "== short CUDA training run, bf16 autocast (limit ${t}s)"
  local run=/tmp/gpu-run
  rm -rf "$run"
  ( cd "$root" && timeout -k 5 "$t" "$dotnet" "$bundle/train/MtlMoe.Train.dll" --device "$dev" --epochs 4 --amp bf16 \
      --plain --workers 8 --out "$run" ) >"$out/train.log" 2>&1
  note "train exit code $?"
  tail -25 "$out/train.log"
  [[ -f $run/metrics.csv ]] && cp "$run/metrics.csv" "$out/metrics.csv"
}

stage_full() {
  local t; t=$(limit "$TRAIN_LIMIT"); (( t )) || { note "full: skipped (deadline)"; return; }
  echo "== the default training command on the GPU (limit ${t}s)"
  local run=/tmp/gpu-full
  rm -rf "$run"
  local t0=$SECONDS
  ( cd "$root" && timeout -k 5 "$t" "$dotnet" \
      "$bundle/train/MtlMoe.Train.dll" --device cuda --plain --workers 12 --out "$run" ) >"$out/full.log" 2>&1
  note "full run exit code $?, wall $((SECONDS - t0)) s (synthetic data generated in this run)"
  grep -E '^epoch [0-9]+/[0-9]+ done|^done in|^wall' "$out/full.log" | tail -8
  for f in report.md metrics.csv gallery/expert_1.png; do [[ -f $run/$f ]] && cp "$run/$f" "$out/full-$(basename "$f")"; done
}

stage_cub448() {
  local t; t=$(limit "$TRAIN_LIMIT"); (( t )) || { note "cub448: skipped (deadline)"; return; }
  echo "== ResNet-50 448-px throughput (batch 16) on synthetic 500-px birds, limit ${t}s per run"
  local common=(--device cuda --plain --workers 14 --epochs 1 --max-batches "${CUB_BATCHES:-60}" --synthetic-size 500)
  ( cd "$root" && timeout -k 5 "$t" "$dotnet" "$bundle/train/MtlMoe.Train.dll" --preset cub448 "${common[@]}" \
      --out /tmp/gpu-cub448-tf32 ) >"$out/cub448.log" 2>&1
  note "cub448 (TF32) exit code $?"; grep -E '^device|batch [0-9]+/|done in' "$out/cub448.log" | tail -4
  t=$(limit "$TRAIN_LIMIT"); (( t )) || return 0
  ( cd "$root" && timeout -k 5 "$t" "$dotnet" "$bundle/train/MtlMoe.Train.dll" --preset cub448 --amp bf16 "${common[@]}" \
      --out /tmp/gpu-cub448-bf16 ) >>"$out/cub448.log" 2>&1
  note "cub448 with --amp bf16 exit code $?"; grep -E 'batch [0-9]+/|done in' "$out/cub448.log" | tail -3
}

stage_ablate() {
  local t; t=$(limit "${ABLATE_LIMIT:-400}"); (( t )) || { note "ablate: skipped (deadline)"; return; }
  echo "== ablate on the GPU (limit ${t}s)"
  local t0=$SECONDS
  ( cd "$root" && timeout -k 5 "$t" "$dotnet" "$bundle/train/MtlMoe.Train.dll" ablate --device cuda --plain \
      --workers 12 --out /tmp/gpu-ablate ) >"$out/ablate.log" 2>&1
  note "ablate exit code $?, wall $((SECONDS - t0)) s"
  grep -E '^done in|ablate:' "$out/ablate.log" | tail -8
  [[ -f /tmp/gpu-ablate/ablation.md ]] && cp /tmp/gpu-ablate/ablation.md "$out/ablation.md" && cat "$out/ablation.md"
  [[ -f /tmp/gpu-ablate/ablation.png ]] && cp /tmp/gpu-ablate/ablation.png "$out/ablation.png"
}

for s in "${stages[@]}"; do
  declare -F "stage_$s" >/dev/null || { echo "gpu-check: unknown stage '$s'"; exit 2; }
  "stage_$s"
done
note "gpu-check: done in $SECONDS s"
[[ -f $out/side-by-side.md ]] && cat "$out/side-by-side.md"
exit 0
