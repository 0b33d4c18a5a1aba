#!/usr/bin/env python3
"""Loads a folder written by `quantserve quantize --quant fp16` (or f32) with Hugging Face transformers and compares
its tokenizer and logits with llama.cpp's references for the same tiny model (Tests/QuantServeTests/Fixtures/*.json).
A peer check of the writer: config.json, tokenizer.json / tokenizer_config.json and the un-permuted llama Q/K.

    quantserve quantize --model Tests/QuantServeTests/Fixtures/tiny-llama.gguf --quant fp16 --out /tmp/tiny-llama-fp16
    /root/qsvenv/bin/python models/check_folder_with_transformers.py /tmp/tiny-llama-fp16 tiny-llama

Result when written (transformers 5.23): tiny-qwen2 0 of 20 tokenizations differ, logits within 2.1e-3 of llama.cpp's
(F16 weights); tiny-llama logits within 2.5e-3, and 7 of 21 tokenizations differ, all around spaces next to special
tokens or runs of spaces: transformers' own GGUF conversion of the same model (Fixtures/hf/tiny-llama) gives the same
7, so they are the tokenizers library's SentencePiece handling against llama.cpp's, not the writer's.
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

folder, name = sys.argv[1], sys.argv[2]
ref = json.loads((Path(__file__).resolve().parent.parent / "Tests/QuantServeTests/Fixtures" / f"{name}.json").read_text())
tok = AutoTokenizer.from_pretrained(folder)
model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()

mismatches = 0
for c in ref["tokenize"]:
    if c["parse_special"] is False and any(t in c["text"] for t in ["<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"]):
        continue  # transformers always parses special tokens in text
    ids = tok(c["text"], add_special_tokens=c["add_special"])["input_ids"]
    if ids != c["ids"]:
        mismatches += 1
        print("tokenize differs:", repr(c["text"]), c["add_special"], ids, c["ids"])
worst = 0.0
for g in ref["generate"]:
    with torch.no_grad():
        logits = model(torch.tensor([g["prompt_ids"]])).logits[0].numpy()
    expected = np.array(g["logits"], dtype=np.float32)
    worst = max(worst, float((np.abs(logits - expected) / np.abs(expected).max(axis=1, keepdims=True)).max()))
print(f"{name}: {len(ref['tokenize'])} tokenize cases, {mismatches} differ; logits vs llama.cpp: worst relative error {worst:.2e}")
sys.exit(1 if mismatches or worst > 1e-2 else 0)
