#!/usr/bin/python3
"""Writes the PyTorch fixtures of the .pth importer's tests (tests/MtlMoe.Model.Tests/Transfer/Fixtures).

Run with Debian's PyTorch (python3-torch; torch 1.13 / torchvision 0.14 were used):
    /usr/bin/python3 tools/torch-fixtures/make_fixtures.py [OUT_DIR]

Files (all small; together well under 2 MB):
  tensors.pth, tensors_legacy.pth   a dict exercising every storage feature: float32, float16, bfloat16 and int64
                                    storages, two tensors on one storage at different offsets, a transposed and a
                                    channels-last (non-contiguous) tensor, a stride-0 broadcast, a 0-d scalar, an
                                    nn.Parameter; the zip format and the legacy (non-zip) format
  nested.pth                        {"epoch": 3, "state_dict": {...}}: a training checkpoint around a state dict
  tensors_expected.safetensors      the same tensors, contiguous, float32/int64 (what the importer must produce)
  resnet18_narrow.pth               a torchvision-named ResNet-18 state dict at width 1/16 (channels 4..32, 5 classes),
                                    random weights and batch-norm statistics, some tensors float16/bfloat16, two on a
                                    shared storage, fc.weight transposed in memory
  resnet18_narrow_ref.safetensors   input x [2, 3, 32, 32], its eval-mode logits, the parameter gradients of
                                    sum(logits * r) for a fixed r, and the train-mode logits (batch statistics)
  resnet50_narrow.pth               a torchvision-named ResNet-50 state dict at width 1/16 (bottlenecks, channels
                                    4..32, ×4 expansion), float16 throughout
  resnet50_narrow_ref.safetensors   input x [1, 3, 32, 32] and its eval-mode logits

The blocks are torchvision's own BasicBlock and Bottleneck; only the stage widths are narrowed (torchvision's
ResNet class fixes them at 64..512), in the layout torchvision's ResNet uses, so every name is torchvision's.
With --full DIR it instead writes full-size torchvision resnet18/resnet50 state dicts (random weights) and their
reference logits into DIR for the tests that run only where PyTorch is installed (never commit those).
"""
import json
import os
import struct
import sys
from collections import OrderedDict

import torch
import torch.nn as nn
from torchvision.models import resnet as tvr


def save_safetensors(path, tensors):
    """Minimal safetensors writer (F32/I64, sorted names, 8-byte aligned header)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        if t.dtype == torch.int64:
            code, data = "I64", t.numpy().tobytes()
        else:
            code, data = "F32", t.float().numpy().tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def atomic_save(obj, path, legacy=False):
    tmp = path + ".tmp"
    torch.save(obj, tmp, _use_new_zipfile_serialization=not legacy)
    os.replace(tmp, path)


class NarrowResNet(nn.Module):
    """torchvision's ResNet layout (and names) with chosen stage widths."""

    def __init__(self, block, layers, widths, num_classes):
        super().__init__()
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3] * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(tvr.conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def randomise_norms(model, gen):
    """Non-trivial batch-norm affine and running statistics, so that a mapping error shows in the outputs."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                m.num_batches_tracked.fill_(7)


def round_through(t, dtype):
    """t rounded to dtype and back, so that the stored half-precision value is exactly what the reference used."""
    return t.to(dtype).float()


def tensors_fixture(out):
    g = torch.Generator().manual_seed(1)
    base = torch.randn(10, generator=g)
    shared = torch.arange(12, dtype=torch.float32) * 0.5           # one storage, two views
    weight = torch.randn(2, 3, 2, 2, generator=g)
    d = OrderedDict()
    d["f32"] = torch.randn(2, 3, generator=g)
    d["f16"] = torch.randn(4, generator=g).half()
    d["bf16"] = torch.randn(3, generator=g).bfloat16()
    d["i64"] = torch.tensor([3, -1, 1 << 40], dtype=torch.int64)
    d["shared_a"] = shared[2:6]                                     # offset 2
    d["shared_b"] = shared[6:12].view(2, 3)                         # offset 6
    d["transposed"] = base[:6].view(2, 3).t()                       # strides (1, 3)
    d["channels_last"] = weight.to(memory_format=torch.channels_last)
    d["broadcast"] = torch.tensor([1.0, 2.0, 3.0]).expand(2, 3)     # stride 0
    d["scalar"] = torch.tensor(2.5)
    d["param"] = nn.Parameter(torch.tensor([0.25, -0.75]))
    atomic_save(d, os.path.join(out, "tensors.pth"))
    atomic_save(d, os.path.join(out, "tensors_legacy.pth"), legacy=True)
    atomic_save({"epoch": 3, "state_dict": OrderedDict([("w", d["f32"]), ("n", d["i64"])])}, os.path.join(out, "nested.pth"))
    expected = {k: (v.detach().float() if v.dtype != torch.int64 else v) for k, v in d.items()}
    save_safetensors(os.path.join(out, "tensors_expected.safetensors"), expected)


def resnet18_fixture(out):
    torch.manual_seed(18)
    gen = torch.Generator().manual_seed(180)
    model = NarrowResNet(tvr.BasicBlock, [2, 2, 2, 2], [4, 8, 16, 32], num_classes=5)
    randomise_norms(model, gen)
    # Mixed dtypes: layer3's convs are stored as float16, layer4.0's as bfloat16 (rounded first, so the
    # reference computes with exactly the stored values).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("layer3.") and name.endswith("conv1.weight"):
                p.copy_(round_through(p, torch.float16))
            if name.startswith("layer4.0.") and p.dim() == 4:
                p.copy_(round_through(p, torch.bfloat16))
    sd = OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items())
    for k in list(sd):
        if k.startswith("layer3.") and k.endswith("conv1.weight"):
            sd[k] = sd[k].half()
        if k.startswith("layer4.0.") and sd[k].dim() == 4:
            sd[k] = sd[k].bfloat16()
    # Two tensors on one storage, and fc.weight transposed in memory (strides (1, out)).
    a, b = sd["bn1.weight"], sd["bn1.bias"]
    flat = torch.cat([a, b])
    sd["bn1.weight"], sd["bn1.bias"] = flat[: a.numel()], flat[a.numel():]
    sd["fc.weight"] = sd["fc.weight"].t().contiguous().t()
    atomic_save(sd, os.path.join(out, "resnet18_narrow.pth"))

    x = torch.randn(2, 3, 32, 32, generator=gen)
    r = torch.randn(2, 5, generator=gen)
    model.eval()
    logits = model(x)
    model.zero_grad()
    (logits * r).sum().backward()
    ref = {"x": x, "r": r, "logits_eval": logits.detach()}
    for name, p in model.named_parameters():
        ref["grad." + name] = p.grad.detach().clone()
    model.train()
    with torch.no_grad():
        ref["logits_train"] = model(x)
    save_safetensors(os.path.join(out, "resnet18_narrow_ref.safetensors"), ref)


def resnet50_fixture(out):
    torch.manual_seed(50)
    gen = torch.Generator().manual_seed(500)
    model = NarrowResNet(tvr.Bottleneck, [3, 4, 6, 3], [4, 8, 16, 32], num_classes=7)
    randomise_norms(model, gen)
    with torch.no_grad():
        for p in list(model.parameters()) + [b for b in model.buffers() if b.dtype == torch.float32]:
            p.copy_(round_through(p, torch.float16))
    sd = OrderedDict((k, v.detach().half() if v.dtype == torch.float32 else v) for k, v in model.state_dict().items())
    atomic_save(sd, os.path.join(out, "resnet50_narrow.pth"))
    x = torch.randn(1, 3, 32, 32, generator=gen)
    model.eval()
    with torch.no_grad():
        save_safetensors(os.path.join(out, "resnet50_narrow_ref.safetensors"), {"x": x, "logits_eval": model(x)})


def full_size(out):
    """Full torchvision networks with random weights: the real names and shapes, for local checks only."""
    os.makedirs(out, exist_ok=True)
    for name, ctor, classes in [("resnet18", tvr.resnet18, 1000), ("resnet50", tvr.resnet50, 1000)]:
        torch.manual_seed(7)
        model = ctor(num_classes=classes)
        randomise_norms(model, torch.Generator().manual_seed(70))
        atomic_save(model.state_dict(), os.path.join(out, name + ".pth"))
        x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(71))
        model.eval()
        with torch.no_grad():
            save_safetensors(os.path.join(out, name + "_ref.safetensors"), {"x": x, "logits_eval": model(x)})


def main():
    args = sys.argv[1:]
    if args[:1] == ["--full"]:
        full_size(args[1])
        return
    here = os.path.dirname(os.path.abspath(__file__))
    out = args[0] if args else os.path.join(here, "..", "..", "tests", "MtlMoe.Model.Tests", "Transfer", "Fixtures")
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    tensors_fixture(out)
    resnet18_fixture(out)
    resnet50_fixture(out)
    print("fixtures written to", os.path.normpath(out))


if __name__ == "__main__":
    main()
