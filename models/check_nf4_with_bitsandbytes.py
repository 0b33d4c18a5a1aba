#!/usr/bin/env python3
"""Loads an NF4 folder written by `quantserve quantize --quant nf4` with transformers + bitsandbytes (pip install
bitsandbytes), checks that bitsandbytes' own dequantization of each NF4 linear equals the layout's definition in
shared/FORMATS.md (code[nibble] * absmax, first element in the high nibble), and runs the model.

    quantserve quantize --model Tests/QuantServeTests/Fixtures/tiny-qwen2.gguf --quant nf4 --out /tmp/tiny-qwen2-nf4
    /root/qsvenv/bin/python models/check_nf4_with_bitsandbytes.py /tmp/tiny-qwen2-nf4 tiny-qwen2

Result when written (transformers 5.23, bitsandbytes 0.50.2, CPU): both tiny models load (Linear4bit layers);
bitsandbytes' dequantization matches the definition within 4.7e-4 (its output is F16) on all 12 NF4 linears of each;
top-1 agreement with llama.cpp's FP32 logits 18/31 (qwen2) and 21/34 (llama), NF4 weights with F16 compute.
"""
import json
import sys
from pathlib import Path

import bitsandbytes.functional as F
import numpy as np
import torch
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM

CODE = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                 -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                 0.7229568362236023, 1.0], dtype=np.float32)

folder, name = sys.argv[1], sys.argv[2]
model = AutoModelForCausalLM.from_pretrained(folder, device_map="cpu")
raw = load_file(str(Path(folder) / "model.safetensors"))
worst, checked = 0.0, 0
for module_name, module in model.named_modules():
    weight = getattr(module, "weight", None)
    if weight is None or not hasattr(weight, "quant_state") or weight.quant_state is None:
        continue
    bnb = F.dequantize_4bit(weight.data, weight.quant_state).float().numpy()
    packed = raw[module_name + ".weight"].ravel()
    codes = np.empty(packed.size * 2, np.uint8)
    codes[0::2], codes[1::2] = packed >> 4, packed & 0xF
    spec = (CODE[codes] * np.repeat(raw[module_name + ".weight.absmax"], 64)).reshape(bnb.shape)
    worst = max(worst, float(np.abs(bnb - spec).max()))
    checked += 1
print(f"{name}: {checked} NF4 linears; bitsandbytes dequantization vs the layout's definition: max |diff| {worst:.2e}")

ref = json.loads((Path(__file__).resolve().parent.parent / "Tests/QuantServeTests/Fixtures" / f"{name}.json").read_text())
same = total = 0
for g in ref["generate"]:
    with torch.no_grad():
        logits = model(torch.tensor([g["prompt_ids"]])).logits[0].float().numpy()
    expected = np.array(g["logits"], dtype=np.float32)
    same += int((logits.argmax(1) == expected.argmax(1)).sum())
    total += len(expected)
print(f"{name}: runs; top-1 agreement with llama.cpp's FP32 logits {same}/{total} (NF4 weights, F16 compute)")
sys.exit(0 if checked and worst < 1e-3 else 1)
