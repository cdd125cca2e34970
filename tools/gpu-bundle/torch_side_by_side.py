#!/usr/bin/env python3
"""PyTorch's side of the GPU side-by-side (issue 19): the same workloads as our tools/Bench, timed the same way
(median of timed runs after warm-up), one JSON object per line on stdout (progress on stderr).

  resnet rows   ResNet-18 batch 64 @ 224², ResNet-50 batch 16 @ 448² training steps (torchvision, 200 classes,
                SGD lr 0.01 momentum 0.9 weight decay 5e-4, cross-entropy), in modes
                  fp32      NCHW, float32, TF32 off (cuDNN and matmul)
                  tf32      NCHW, float32 with TF32 allowed (PyTorch's default for convolutions)
                  amp_bf16  bf16 autocast + channels-last, eager (the usual PyTorch AMP recipe)
                  compile   amp_bf16 through torch.compile (a row saying "skipped" where it is missing or fails)
  gating rows   our MoE gating maths as a torch composite (softplus noise, topk k+1, softmax over the top k,
                scatter, importance, load by Φ with the (k+1)-th/k-th thresholds, CV² aux loss), float32,
                B = 65536, E ∈ {16, 64}, k = 2: forward (no grad) and forward+backward of Σ ½·gates² + aux,
                backward_ms = median(fwd+bwd) − median(fwd) as GatingBench does; eager and torch.compile.

Timing: CUDA events around each run, torch.cuda.synchronize() after it; on the CPU perf_counter.
Keys follow tools/Bench (workload, batch, res, classes, device, ms, images_per_s; gating: scope, path, batch,
experts, k, dtype, forward_ms, backward_ms, forward_gbps, backward_gbps); workload names end in "-torch" and every
line has "mode". tools/gpu-bundle/ratio_table.py joins these lines with ours.

Usage: python3 tools/gpu-bundle/torch_side_by_side.py [--device cuda|cpu] [--tiny] [--runs 10] [--warmup 3]
       [--only resnet,gating] [--modes fp32,tf32,amp_bf16,compile]
  --tiny: small shapes for a CPU smoke run (ResNet-18 b2@64², ResNet-50 b1@64², gating B = 1024).
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
p.add_argument("--tiny", action="store_true")
p.add_argument("--runs", type=int, default=None)
p.add_argument("--warmup", type=int, default=None)
p.add_argument("--only", default="resnet,gating")
p.add_argument("--modes", default="fp32,tf32,amp_bf16,compile")
p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
args = p.parse_args()
dev = torch.device(args.device)
cuda = dev.type == "cuda"
runs = args.runs or (3 if args.tiny else 10)
warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 3)
if args.threads:
    torch.set_num_threads(args.threads)
parts = set(args.only.split(","))
modes = args.modes.split(",")
torch.manual_seed(1)
if cuda:
    torch.backends.cudnn.benchmark = True   # what a PyTorch user turns on for fixed shapes


def emit(fields):
    print(json.dumps(fields), flush=True)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sync():
    if cuda:
        torch.cuda.synchronize()


def median_ms(body, n=runs, w=warmup):
    """Median wall time of body() over n runs after w warm-up runs, each run ended by a device synchronisation."""
    for _ in range(w):
        body()
    sync()
    times = []
    for _ in range(n):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            body()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            body()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def compile_or_none(fn, what):
    """torch.compile(fn), or None with the reason when this torch has no compiler or compiling fails."""
    if not hasattr(torch, "compile"):
        return None, f"torch.compile not available in torch {torch.__version__}"
    try:
        return torch.compile(fn), None
    except Exception as e:  # noqa: BLE001 - any failure makes the row "skipped", never the script
        return None, f"torch.compile({what}) failed: {type(e).__name__}: {e}"[:300]


env = {"workload": "env-torch", "torch": torch.__version__, "device": str(dev), "tiny": args.tiny,
       "runs": runs, "warmup": warmup, "threads": torch.get_num_threads()}
if cuda:
    env["gpu"] = torch.cuda.get_device_name(0)
    env["cudnn"] = torch.backends.cudnn.version()
emit(env)

# ---------------------------------------------------------------- ResNet training steps
if "resnet" in parts:
    import torchvision

    classes = 200
    shapes = [(18, 2, 64), (50, 1, 64)] if args.tiny else [(18, 64, 224), (50, 16, 448)]
    for depth, batch, res in shapes:
        for mode in modes:
            name = f"resnet{depth}-step-torch"
            row = {"workload": name, "mode": mode, "batch": batch, "res": res, "classes": classes, "device": str(dev)}
            torch.manual_seed(1)
            tf32 = mode == "tf32"
            if cuda:
                torch.backends.cudnn.allow_tf32 = tf32
                torch.backends.cuda.matmul.allow_tf32 = tf32
            elif tf32:
                emit({**row, "skipped": "TF32 is a CUDA mode"})
                continue
            amp = mode in ("amp_bf16", "compile")
            fmt = torch.channels_last if amp else torch.contiguous_format
            model = getattr(torchvision.models, f"resnet{depth}")(num_classes=classes).to(dev, memory_format=fmt)
            model.train()
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
            x = torch.randn(batch, 3, res, res, device=dev).contiguous(memory_format=fmt)
            y = torch.arange(batch, device=dev) % classes
            forward = model
            if mode == "compile":
                forward, why = compile_or_none(model, f"resnet{depth}")
                if forward is None:
                    emit({**row, "skipped": why})
                    continue

            def step():
                opt.zero_grad(set_to_none=True)
                with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
                    loss = F.cross_entropy(forward(x), y)
                loss.backward()
                opt.step()

            log(f"{name} {mode}: batch {batch}, {res}×{res}")
            try:
                # torch.compile compiles lazily on the first call: give it extra warm-up runs.
                ms = median_ms(step, w=warmup + (2 if mode == "compile" else 0))
            except Exception as e:  # noqa: BLE001
                if mode != "compile":
                    raise
                emit({**row, "skipped": f"compiled step failed: {type(e).__name__}: {e}"[:300]})
                continue
            emit({**row, "memory_format": "channels_last" if amp else "nchw", "amp": "bf16" if amp else None,
                  "tf32": tf32, "ms": round(ms, 3), "images_per_s": round(batch * 1000.0 / ms, 1)})
            del model, opt, x, y, forward
            if cuda:
                torch.cuda.empty_cache()

# ---------------------------------------------------------------- MoE gating composite
if "gating" in parts:
    SQRT1_2 = 1.0 / math.sqrt(2.0)

    def gating_loss(clean, raw, eps, k, w_imp=0.01, w_load=0.01, floor=1e-2):
        """Our gating maths (engine/MoE, ARCHITECTURE.md) from torch ops; returns Σ ½·gates² + aux like GatingBench."""
        e = clean.shape[1]
        sigma = F.softplus(raw) + floor
        noisy = clean + eps * sigma
        m = min(k + 1, e)
        top_v, top_i = noisy.topk(m, dim=1)
        g = torch.softmax(top_v[:, :k], dim=1)
        gates = torch.zeros_like(clean).scatter(1, top_i[:, :k], g)
        in_top = torch.zeros_like(clean, dtype=torch.bool).scatter(1, top_i[:, :k], True)
        importance = gates.sum(0)
        if k < e:
            thr = torch.where(in_top, top_v[:, k:k + 1], top_v[:, k - 1:k])
            load = (0.5 * torch.erfc(-(clean - thr) / sigma * SQRT1_2)).sum(0)
        else:
            load = in_top.to(clean.dtype).sum(0)

        def cv2(v):
            return v.var(unbiased=False) / (v.mean() ** 2 + 1e-10)

        aux = w_imp * cv2(importance) + w_load * cv2(load)
        return (0.5 * gates * gates).sum() + aux

    batch = 1024 if args.tiny else 65536
    k = 2
    # Eager rows with any eager mode asked for, compiled rows with "compile" (so a compile-only call adds only those).
    gating_modes = [m for m in ("eager", "compile") if (m == "eager" and any(x != "compile" for x in modes)) or (m == "compile" and "compile" in modes)]
    for e in (16, 64):
        gen = torch.Generator(device="cpu").manual_seed(1)
        clean = torch.randn(batch, e, generator=gen).to(dev)
        raw = torch.randn(batch, e, generator=gen).to(dev)
        eps = torch.randn(batch, e, generator=gen).to(dev)
        fwd_bytes = 4.0 * (3 * batch * e + (batch + 2) * e + batch * k)   # GatingBench's essential traffic
        bwd_bytes = 4.0 * (3 * batch * e + (batch + 2) * e + 2 * batch * e)
        for mode in gating_modes:
            row = {"workload": "gating-torch", "mode": mode, "scope": "op", "path": "torch-composite", "batch": batch,
                   "dim": None, "experts": e, "k": k, "dtype": "float32", "device": str(dev), "runs": runs}
            fn = gating_loss
            if mode == "compile":
                fn, why = compile_or_none(gating_loss, "gating")
                if fn is None:
                    emit({**row, "skipped": why})
                    continue

            def forward_only():
                with torch.no_grad():
                    fn(clean, raw, eps, k)

            def forward_backward():
                c = clean.detach().requires_grad_(True)
                r = raw.detach().requires_grad_(True)
                fn(c, r, eps, k).backward()

            log(f"gating-torch {mode}: B={batch} E={e} k={k}")
            try:
                fwd = median_ms(forward_only, w=warmup + (2 if mode == "compile" else 0))
                both = median_ms(forward_backward, w=warmup + (2 if mode == "compile" else 0))
            except Exception as ex:  # noqa: BLE001
                if mode != "compile":
                    raise
                emit({**row, "skipped": f"compiled gating failed: {type(ex).__name__}: {ex}"[:300]})
                continue
            bwd = max(both - fwd, 0.0)
            emit({**row, "forward_ms": round(fwd, 4), "backward_ms": round(bwd, 4),
                  "forward_gbps": round(fwd_bytes / (fwd * 1e6), 3),
                  "backward_gbps": round(bwd_bytes / (bwd * 1e6), 3) if bwd > 0 else None})
