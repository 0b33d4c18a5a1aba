#!/usr/bin/env python3
"""Writes Tests/QuantServeTests/Fixtures/peer.safetensors with the `safetensors` package (the peer implementation)
and peer.safetensors.json with every tensor's dtype, shape and values, for the Swift reader's tests.

Run: /root/qsvenv/bin/python models/make_safetensors_fixture.py   (pip install safetensors numpy)
"""
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

OUT = Path(__file__).resolve().parent.parent / "Tests/QuantServeTests/Fixtures"
rng = np.random.default_rng(11)
tensors = {
    "model.embed_tokens.weight": rng.standard_normal((5, 8)).astype(np.float32),
    "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((4, 8)).astype(np.float16),
    "model.layers.0.mlp.up_proj.qweight": rng.integers(-2**31, 2**31 - 1, size=(8, 2), dtype=np.int32),
    "model.layers.0.mlp.up_proj.weight": rng.integers(0, 255, size=(16, 1), dtype=np.uint8),
    "model.layers.0.int8.weight": rng.integers(-128, 127, size=(3, 4), dtype=np.int8),
    "model.norm.weight": np.linspace(-2, 2, 7).astype(np.float32),
}
bf16_source = rng.standard_normal((2, 3)).astype(np.float32)
# numpy has no bfloat16: store the top halves as uint16 and relabel the dtype in the header afterwards.
bf16_bits = (bf16_source.view(np.uint32) >> 16).astype(np.uint16)
tensors["model.layers.0.bf16.weight"] = bf16_bits
path = OUT / "peer.safetensors"
save_file(tensors, str(path), metadata={"format": "pt", "source": "make_safetensors_fixture.py"})

# Relabel the uint16 tensor as BF16 in the JSON header (same length: "U16" -> "BF16" would change it, so rewrite).
raw = path.read_bytes()
n = int.from_bytes(raw[:8], "little")
header = json.loads(raw[8:8 + n])
header["model.layers.0.bf16.weight"]["dtype"] = "BF16"
encoded = json.dumps(header, separators=(",", ":")).encode()
encoded += b" " * ((8 - (len(encoded) % 8)) % 8)
path.write_bytes(len(encoded).to_bytes(8, "little") + encoded + raw[8 + n:])

def values(name, array):
    if name == "model.layers.0.bf16.weight":
        return [float(x) for x in (bf16_bits.astype(np.uint32) << 16).view(np.float32).ravel()]
    return [x.item() if array.dtype.kind in "iu" else float(x) for x in array.ravel()]

dtypes = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int32): "I32",
          np.dtype(np.uint8): "U8", np.dtype(np.int8): "I8"}
expected = {
    "metadata": {"format": "pt", "source": "make_safetensors_fixture.py"},
    "tensors": {name: {"dtype": "BF16" if name.endswith("bf16.weight") else dtypes[a.dtype],
                       "shape": list(a.shape), "values": values(name, a)} for name, a in tensors.items()},
}
(OUT / "peer.safetensors.json").write_text(json.dumps(expected, indent=1))
print("wrote", path, "and", OUT / "peer.safetensors.json")
