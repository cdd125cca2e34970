#!/usr/bin/env python3
"""Joins our Bench JSON lines with torch_side_by_side.py's lines into markdown ratio tables (issue 19's targets).

Usage: python3 tools/gpu-bundle/ratio_table.py OURS.jsonl [OURS2.jsonl ...] --torch TORCH.jsonl [--out table.md]
Lines that are not JSON objects are skipped, so whole logs can be passed.

Matching (a ratio is PyTorch's time / ours: above 1 means ours is faster):
  ResNet   ours {"workload": "resnet18-step" | "resnet50-step", "batch", "res", "ms", "amp": null | "bf16",
           "channels_last"?, "graph"?, "tf32"?} (shown in the row's label; a "depth" field names the depth) against torch
           "resnet<depth>-step-torch" lines of the same batch and res: our float32 line against torch fp32 and tf32,
           our "amp": "bf16" line against torch amp_bf16 (+ channels-last) and compile.
  gating   ours {"workload": "gating", "scope": "op", "path": "fused" | "composed", "batch", "experts", "k",
           "forward_ms", "backward_ms", "forward_bw_fraction"?} against "gating-torch" (eager, compile) of the same
           batch, experts and k.
Targets printed beside the rows: ResNet-50 @ 448² with bf16 ≥ 1.0× torch amp_bf16 (aim 1.2×); gating forward
≥ 5× the torch composite and ≥ 50 % of HBM bandwidth at B = 65536, E = 64.
"""
import argparse
import json
import sys


def read_lines(paths):
    rows = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    print(f"ratio_table: {path}: skipped a line that is not JSON: {line[:80]}", file=sys.stderr)
    return rows


def resnet_depth(row):
    w = row.get("workload", "")
    for d in (18, 34, 50, 101):
        if w.startswith(f"resnet{d}-step"):
            return row.get("depth", d)
    return None


def fmt(v, digits=3):
    return "—" if v is None else f"{v:.{digits}f}"


def times(v):
    return "—" if v is None else f"{v:.2f}×"


def ratio(theirs, ours):
    return None if not theirs or not ours else theirs / ours


def resnet_table(ours, torch_rows):
    out = ["| model | batch @ res | ours | ours ms | PyTorch | PyTorch ms | PyTorch / ours | target |",
           "|---|---|---|---|---|---|---|---|"]
    pairs = {None: ("fp32", "tf32"), "bf16": ("amp_bf16", "compile")}
    found = False
    for o in ours:
        depth = resnet_depth(o)
        if depth is None or "ms" not in o or o.get("workload", "").endswith("-torch"):
            continue
        amp = o.get("amp") or None
        for t in torch_rows:
            if resnet_depth(t) != depth or t.get("batch") != o.get("batch") or t.get("res") != o.get("res"):
                continue
            if t.get("mode") not in pairs.get(amp, ()):
                continue
            found = True
            r = ratio(t.get("ms"), o["ms"])
            target = ""
            # The target holds for the shape on a GPU only (a CPU rehearsal with tiny shapes judges nothing).
            if depth == 50 and amp == "bf16" and t.get("mode") == "amp_bf16" and (o["batch"], o["res"]) == (16, 448) \
                    and str(t.get("device", "")).startswith("cuda"):
                target = "≥ 1.0 (aim 1.2): " + ("met" if r is not None and r >= 1.0 else "NOT met")
            torch_ms = fmt(t.get("ms")) if "ms" in t else f"skipped ({t.get('skipped', '?')[:60]})"
            label = ("bf16 AMP" if amp else "float32") + (" + channels-last" if o.get("channels_last") else "") \
                + (" + CUDA graph" if o.get("graph") else "") + (" + TF32" if o.get("tf32") else "")
            out.append(f"| ResNet-{depth} | {o['batch']} @ {o['res']}² | {label} | {fmt(o['ms'])} "
                       f"| {t['mode']} | {torch_ms} | {times(r)} | {target} |")
    return out if found else []


def gating_table(ours, torch_rows):
    out = ["| B | E | k | ours path | fwd ms | bwd ms | fwd HBM | PyTorch | fwd ms | bwd ms | fwd ratio | bwd ratio | target |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    found = False
    for o in ours:
        if o.get("workload") != "gating" or o.get("scope") != "op":
            continue
        for t in torch_rows:
            if t.get("workload") != "gating-torch":
                continue
            if (t.get("batch"), t.get("experts"), t.get("k")) != (o.get("batch"), o.get("experts"), o.get("k")):
                continue
            found = True
            if "forward_ms" not in t:
                out.append(f"| {o['batch']} | {o['experts']} | {o['k']} | {o.get('path')} | {fmt(o.get('forward_ms'))} "
                           f"| {fmt(o.get('backward_ms'))} | | {t.get('mode')} | skipped | | | | |")
                continue
            rf = ratio(t.get("forward_ms"), o.get("forward_ms"))
            rb = ratio(t.get("backward_ms"), o.get("backward_ms"))
            bw = o.get("forward_bw_fraction")
            target = ""
            if o.get("path") == "fused" and o.get("experts") == 64 and o.get("batch") == 65536 and t.get("mode") == "eager" \
                    and str(t.get("device", "")).startswith("cuda"):
                ok = rf is not None and rf >= 5 and bw is not None and bw >= 0.5
                target = "≥ 5× and ≥ 50 % HBM: " + ("met" if ok else "NOT met")
            out.append(f"| {o['batch']} | {o['experts']} | {o['k']} | {o.get('path')} | {fmt(o.get('forward_ms'))} "
                       f"| {fmt(o.get('backward_ms'))} | {fmt(bw * 100 if bw is not None else None, 1)} % | {t.get('mode')} "
                       f"| {fmt(t.get('forward_ms'))} | {fmt(t.get('backward_ms'))} | {times(rf)} | {times(rb)} | {target} |")
    return out if found else []


def main():
    p = argparse.ArgumentParser()
    p.add_argument("ours", nargs="+")
    p.add_argument("--torch", required=True, action="append")
    p.add_argument("--out")
    a = p.parse_args()
    ours = read_lines(a.ours)
    theirs = read_lines(a.torch)
    env = next((t for t in theirs if t.get("workload") == "env-torch"), {})
    lines = [f"# Side by side with PyTorch {env.get('torch', '?')} on {env.get('gpu', env.get('device', '?'))}", ""]
    r = resnet_table(ours, theirs)
    g = gating_table(ours, theirs)
    if r:
        lines += ["## Training steps (PyTorch / ours: above 1 means ours is faster)", ""] + r + [""]
    if g:
        lines += ["## MoE gating op, float32 (PyTorch composite / ours)", ""] + g + [""]
    if not r and not g:
        lines += ["No matching pairs: check that both files hold lines of the same shapes (see this script's doc)."]
    text = "\n".join(lines) + "\n"
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text)
    sys.stdout.write(text)
    return 0 if (r or g) else 1


if __name__ == "__main__":
    sys.exit(main())
