#!/usr/bin/python3
"""Writes the safetensors fixture of SafetensorsBf16Tests: tensors converted by PyTorch (Debian's 1.13, whose
bfloat16/float16 casts round to nearest even), framed by hand in the safetensors layout because the `safetensors`
Python package is not installed here: 8-byte little-endian header length, JSON header, raw little-endian data.
Prints the file as base64 (paste it into SafetensorsBf16Tests.TorchFile).
Usage: /usr/bin/python3 tests/MtlMoe.Engine.Tests/NnOptim/make_torch_bf16_fixture.py
"""
import base64, json, struct
import torch

# The same literals as SafetensorsBf16Tests.Source: ties, a subnormal, beyond float16's range, ±0, ±Inf, NaN.
values = [1.0, -2.5, 3.14159265, 1.00390625, 1.01171875, 65504.0, 70000.0, 1e-40,
          -0.0, float("inf"), float("-inf"), float("nan"), 3.3895e38, 1e-8, 0.1, 12345.678]
src = torch.tensor(values, dtype=torch.float32)
tensors = {
    "act.bf16": src.reshape(4, 4).to(torch.bfloat16),
    "act.f16": src.reshape(2, 8).to(torch.float16),
    "w.f32": src[:6].reshape(2, 3).clone(),
    "step.i64": torch.tensor([7], dtype=torch.int64),
}
codes = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32", torch.int64: "I64"}
header, blobs, offset = {}, [], 0
for name in sorted(tensors):
    t = tensors[name].contiguous()
    # Raw bytes through an integer view of the same width (numpy has no bfloat16).
    view = {2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
    data = t.view(view).numpy().tobytes()
    header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
    blobs.append(data)
    offset += len(data)
header["__metadata__"] = {"producer": f"torch {torch.__version__}"}
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
blob = struct.pack("<Q", len(h)) + h + b"".join(blobs)
print(base64.b64encode(blob).decode())
