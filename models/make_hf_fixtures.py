#!/usr/bin/env python3
"""Hugging Face folder fixtures for QuantServe's loader tests, made by peer libraries and by an independent packer.

Run from anywhere, after models/make_fixtures.py (it reads the tiny GGUFs and their llama.cpp references):

    /root/qsvenv/bin/python models/make_hf_fixtures.py

Python packages: torch (CPU), transformers, accelerate, safetensors, numpy (pip install into the venv).

Outputs (Tests/QuantServeTests/Fixtures/hf/):
  tiny-llama/                 transformers' own GGUF -> HF conversion of tiny-llama.gguf (from_pretrained(gguf_file=)
                              + save_pretrained): config.json, tokenizer.json, tokenizer_config.json, F32
                              model.safetensors with Q/K un-permuted by transformers (Hugging Face layout, NEOX RoPE).
  tiny-qwen2-bf16/            the same for tiny-qwen2.gguf, saved as BF16 in shards (model.safetensors.index.json).
  tiny-qwen2-awq/             AutoAWQ GEMM layout packed here with numpy from tiny-qwen2's weights (group 32):
  tiny-llama-awq/               qweight/qzeros/scales per linear, everything else F16, config quantization_config awq.
  tiny-qwen2-nf4/             bitsandbytes NF4 layout packed here with numpy (blocks of 64; qwen2 without, llama with
  tiny-llama-nf4/               double quantization of absmax), config quantization_config as transformers writes it.
  <name>.dequantized.safetensors   this script's own dequantization of every packed linear (F32, HF names).
  references.json             transformers' logits (float32, eager attention) for every folder at the tiny models'
                              reference prompts (prompt_ids from tiny-*.json, i.e. llama.cpp's tokenization). For the
                              packed folders the logits are those of the float model with the linears replaced by the
                              dequantized weights above.

The packing follows shared/FORMATS.md only (no AutoAWQ or bitsandbytes code is used), so a loader that reads these
folders reads the published layouts, not QuantServe's own writer. Deterministic: a second run writes the same files.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from safetensors.torch import load_file as load_torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "Tests" / "QuantServeTests" / "Fixtures"
OUT = FIX / "hf"

NF4_CODE = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                     -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                     0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                     0.7229568362236023, 1.0], dtype=np.float32)
AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]  # packing order: nibble i of a word holds column 8c + AWQ_ORDER[i]
LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def f6(x) -> float:
    return float(f"{float(x):.6g}")


# ---------------------------------------------------------------------------------------------- peer conversion

def convert(name: str, out: Path, dtype: torch.dtype, shard: str | None) -> None:
    """transformers' GGUF loader (dequantizes and, for llama, un-permutes Q/K), then save_pretrained."""
    tok = AutoTokenizer.from_pretrained(FIX, gguf_file=f"{name}.gguf")
    model = AutoModelForCausalLM.from_pretrained(FIX, gguf_file=f"{name}.gguf", dtype=torch.float32)
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # transformers 5 marks GGUF-loaded models as not serializable
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict())
    plain = plain.to(dtype)
    if out.exists():
        shutil.rmtree(out)
    kwargs = {"max_shard_size": shard} if shard else {}
    plain.save_pretrained(out, **kwargs)
    tok.save_pretrained(out)


def load_float_state(folder: Path) -> dict[str, np.ndarray]:
    state = {}
    index = folder / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else ["model.safetensors"]
    for f in files:
        for k, v in load_torch(folder / f).items():
            state[k] = v.to(torch.float32).numpy()
    return state


# ------------------------------------------------------------------------------------------------ AWQ (GEMM)

def awq_quantize(w: np.ndarray, group: int):
    """W [N, K] -> (q [K, N] codes, z [K/G, N], s fp16 [K/G, N]) by FORMATS.md's asymmetric min/max rule."""
    n, k = w.shape
    g = w.reshape(n, k // group, group)
    lo, hi = g.min(axis=2), g.max(axis=2)
    s = np.maximum(hi - lo, 1e-5) / 15.0
    z = np.clip(-np.round(lo / s), 0, 15)
    q = np.clip(np.round(g / s[:, :, None]) + z[:, :, None], 0, 15).astype(np.uint32).reshape(n, k)
    return q.T.copy(), z.astype(np.uint32).T.copy(), s.astype(np.float16).T.copy()


def awq_pack(codes: np.ndarray) -> np.ndarray:
    """[R, N] codes -> i32 [R, N/8]: nibble i of word c holds column 8c + AWQ_ORDER[i]."""
    r, n = codes.shape
    words = np.zeros((r, n // 8), dtype=np.uint32)
    for i, j in enumerate(AWQ_ORDER):
        words |= codes[:, j::8] << np.uint32(4 * i)
    return words.view(np.int32)


def awq_unpack(words: np.ndarray) -> np.ndarray:
    w = words.view(np.uint32)
    r, c = w.shape
    codes = np.zeros((r, c * 8), dtype=np.uint32)
    for i, j in enumerate(AWQ_ORDER):
        codes[:, j::8] = (w >> np.uint32(4 * i)) & 0xF
    return codes


def awq_dequantize(qweight, qzeros, scales, group) -> np.ndarray:
    """W [N, K] = (q[k, n] - z[k/G, n]) * s[k/G, n], transposed back."""
    q = awq_unpack(qweight).astype(np.float32)
    z = np.repeat(awq_unpack(qzeros).astype(np.float32), group, axis=0)
    s = np.repeat(scales.astype(np.float32), group, axis=0)
    return ((q - z) * s).T.copy()


# ------------------------------------------------------------------------------------------------ NF4 (bnb)

def dynamic_map_signed() -> np.ndarray:
    """bitsandbytes' signed dynamic 8-bit map (create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8))."""
    data = []
    for i in range(7):
        boundaries = np.linspace(0.1, 1, 2 ** i + 1, dtype=np.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += list((10 ** (-6 + i)) * means)
        data += list(-(10 ** (-6 + i)) * means)
    data += [0.0, 1.0]
    assert len(data) == 256
    return np.array(sorted(data), dtype=np.float32)


def nf4_quantize(w: np.ndarray, double: bool):
    flat = w.astype(np.float32).ravel()
    assert flat.size % 64 == 0
    blocks = flat.reshape(-1, 64)
    absmax = np.abs(blocks).max(axis=1).astype(np.float32)
    scaled = blocks / np.where(absmax == 0, 1, absmax)[:, None]
    idx = np.abs(scaled[:, :, None] - NF4_CODE[None, None, :]).argmin(axis=2).astype(np.uint8).ravel()
    packed = ((idx[0::2] << 4) | idx[1::2]).astype(np.uint8).reshape(-1, 1)
    parts = {"weight": packed, "weight.quant_map": NF4_CODE.copy()}
    state = {"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": list(w.shape)}
    if double:
        offset = float(absmax.mean())
        centred = absmax - offset
        nblocks = math.ceil(centred.size / 256)
        padded = np.zeros(nblocks * 256, dtype=np.float32)
        padded[:centred.size] = centred
        nested = np.abs(padded.reshape(nblocks, 256)).max(axis=1).astype(np.float32)
        dmap = dynamic_map_signed()
        norm = padded.reshape(nblocks, 256) / np.where(nested == 0, 1, nested)[:, None]
        codes = np.abs(norm[:, :, None] - dmap[None, None, :]).argmin(axis=2).astype(np.uint8).ravel()[:centred.size]
        parts.update({"weight.absmax": codes, "weight.nested_absmax": nested, "weight.nested_quant_map": dmap})
        state.update({"nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": offset})
        absmax_used = dmap[codes] * np.repeat(nested, 256)[:centred.size] + np.float32(offset)
    else:
        parts["weight.absmax"] = absmax
        absmax_used = absmax
    parts["weight.quant_state.bitsandbytes__nf4"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8).copy()
    # This script's dequantization: code[nibble] * absmax[block], nibble of element 2i high, 2i+1 low.
    codes = np.empty(flat.size, dtype=np.uint8)
    codes[0::2], codes[1::2] = packed.ravel() >> 4, packed.ravel() & 0xF
    deq = (NF4_CODE[codes] * np.repeat(absmax_used.astype(np.float32), 64)).reshape(w.shape)
    return parts, deq


# ---------------------------------------------------------------------------------------------- packed folders

def packed_folder(source: Path, out: Path, method: str, double: bool = False) -> dict[str, np.ndarray]:
    state = load_float_state(source)
    config = json.loads((source / "config.json").read_text())
    tensors, dequantized = {}, {}
    for name, w in state.items():
        base = name[: -len(".weight")] if name.endswith(".weight") else None
        if base and any(base.endswith(l) for l in LINEARS):
            if method == "awq":
                group = 32
                q, z, s = awq_quantize(w, group)
                tensors[base + ".qweight"], tensors[base + ".qzeros"], tensors[base + ".scales"] = awq_pack(q), awq_pack(z), s
                dequantized[name] = awq_dequantize(tensors[base + ".qweight"], tensors[base + ".qzeros"], s, group)
            else:
                parts, deq = nf4_quantize(w, double)
                for suffix, t in parts.items():
                    tensors[f"{base}.{suffix}"] = t
                dequantized[name] = deq.astype(np.float32)
        else:
            tensors[name] = w.astype(np.float16)  # embeddings, lm_head, norms, biases: F16 as the peers keep them
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    if method == "awq":
        config["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": 32, "zero_point": True,
                                         "version": "gemm", "modules_to_not_convert": None}
    else:
        config["quantization_config"] = {
            "_load_in_4bit": True, "_load_in_8bit": False, "bnb_4bit_compute_dtype": "float16",
            "bnb_4bit_quant_storage": "uint8", "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": double,
            "llm_int8_enable_fp32_cpu_offload": False, "llm_int8_has_fp16_weight": False,
            "llm_int8_skip_modules": None, "llm_int8_threshold": 6.0, "load_in_4bit": True, "load_in_8bit": False,
            "quant_method": "bitsandbytes"}
    config["dtype"] = "float16"
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for f in source.iterdir():
        if f.name.startswith("tokenizer") or f.name == "chat_template.jinja":
            shutil.copy(f, out / f.name)
    save_file(dequantized, str(OUT / f"{out.name}.dequantized.safetensors"))
    return dequantized


# ----------------------------------------------------------------------------------------------- references

def logits(folder: Path, prompts: list[list[int]], replace: dict[str, np.ndarray] | None = None) -> list:
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    if replace:
        with torch.no_grad():
            params = dict(model.named_parameters())
            for name, w in replace.items():
                params[name].copy_(torch.from_numpy(w))
    model.eval()
    out = []
    with torch.no_grad():
        for ids in prompts:
            row = model(torch.tensor([ids])).logits[0].numpy()
            out.append({"prompt_ids": ids, "logits": [[f6(x) for x in r] for r in row]})
    return out


def main() -> None:
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    convert("tiny-llama", OUT / "tiny-llama", torch.float32, None)
    convert("tiny-qwen2", OUT / "tiny-qwen2-bf16", torch.bfloat16, "150KB")
    prompts = {n: [g["prompt_ids"] for g in json.loads((FIX / f"{n}.json").read_text())["generate"]]
               for n in ["tiny-llama", "tiny-qwen2"]}
    refs = {"tiny-llama": logits(OUT / "tiny-llama", prompts["tiny-llama"]),
            "tiny-qwen2-bf16": logits(OUT / "tiny-qwen2-bf16", prompts["tiny-qwen2"])}
    for model, source in [("tiny-qwen2", OUT / "tiny-qwen2-bf16"), ("tiny-llama", OUT / "tiny-llama")]:
        for method, double in [("awq", False), ("nf4", model == "tiny-llama")]:
            folder = OUT / f"{model}-{method}"
            deq = packed_folder(source, folder, method, double)
            # The float model (F16 non-linear tensors, as in the packed folder) with the dequantized linears.
            refs[folder.name] = logits(folder_float_twin(folder, source), prompts[model], deq)
    (OUT / "references.json").write_text(json.dumps(refs, separators=(",", ":")) + "\n")
    for p in sorted(OUT.rglob("*")):
        if p.is_file():
            print(f"{p.relative_to(ROOT)}: {p.stat().st_size:,} bytes")


def folder_float_twin(folder: Path, source: Path) -> Path:
    """A float copy of a packed folder (its F16 tensors, the source's linears) for transformers to run."""
    twin = Path("/tmp/quantserve-hf-fixtures") / folder.name
    if twin.exists():
        shutil.rmtree(twin)
    twin.mkdir(parents=True)
    packed = load_file(folder / "model.safetensors")
    state = {k: v for k, v in load_float_state(source).items()}
    for k in list(state):
        if k in packed and packed[k].shape == state[k].shape:  # F16 tensors the packed folder holds as such
            state[k] = packed[k].astype(np.float32)
    save_file(state, str(twin / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    del config["quantization_config"]
    config["dtype"] = "float32"
    (twin / "config.json").write_text(json.dumps(config))
    return twin


if __name__ == "__main__":
    main()
