#!/usr/bin/env python3
"""Generate the llama.cpp reference fixtures for QuantServe's Gemma 3 tests.

Run from anywhere, after models/fetch gemma:

    /root/qsvenv/bin/python models/make_gemma_fixtures.py

Same Python packages and JSON conventions as models/make_fixtures.py (whose helpers this imports). Every reference
value comes from llama.cpp (llama-cpp-python 0.3.36 and the llama.cpp tools built from its vendor/ tree), never from
QuantServe's own code.

Inputs:
  models/gemma-3-270m-q4_k_m.gguf        the real Gemma 3 270M (Q4_K_M; fetched by `models/fetch gemma`)
  models/fixture-text/bpe-training.txt   text the tiny model's SentencePiece-style vocabulary is trained on
  Benchmarks/data/heldout.txt            held-out text for tokenization and perplexity references
  llama-quantize, llama-perplexity       from LLAMA_BIN (default: the llama-cpp-python source build below)

Outputs (Tests/QuantServeTests/Fixtures/):
  tiny-gemma3.gguf, tiny-gemma3.json   random-weight gemma3 (F32, tied output, 6 layers of which layer 5 is global,
                                       sliding window 8, key_length 32 != n_embd / n_head, rope.freq_base_swa set),
                                       SentencePiece vocabulary without space prefix; llama.cpp's full prompt logits
                                       and greedy ids (the harness of TinyModelTests)
  gemma-3-270m.json                    references of the real model: tokenization (many strings, the whole held-out
                                       text), llama.cpp's end-of-generation ids, greedy continuations and top logits
                                       on the F16 requantization (one prompt of ~870 tokens, past the 512 window),
                                       and llama-perplexity on the F16 file (ctx 1024, 2 chunks: scored positions
                                       512..1022 all have keys outside the window of the local layers)

The F16 requantization (`llama-quantize --allow-requantize SRC OUT F16`, ~540 MB) is kept in /tmp/quantserve-fixtures/
and reused while current. Tests never need it: QuantServe's fp16 level dequantizes the Q4_K_M file itself, which is
what llama-quantize does (the same F32 values rounded to F16).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402  (helpers: JSON writer, llama.cpp runs, the tiny SPM trainer)

import gguf  # noqa: E402

ROOT = mf.ROOT
FIX = mf.FIX
REAL = ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"
REAL_F16 = mf.SCRATCH / "gemma-3-270m-f16.gguf"
HELDOUT = ROOT / "Benchmarks" / "data" / "heldout.txt"
LLAMA_BIN = Path(os.environ.get("LLAMA_BIN", "/root/llamacpp-src/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin"))
log = mf.log

# ------------------------------------------------------------------------------------------------- tiny gemma3

T_EMBD, T_LAYER, T_HEAD, T_HEAD_KV, T_HEAD_DIM, T_FF, T_CTX, T_WINDOW = 64, 6, 4, 2, 32, 160, 256, 8
# Post-norm gain (1: plain 1 + w). The output matrix is untied: tied random weights make greedy decoding repeat one
# token (the input embedding, scaled by sqrt(64) = 8, dominates); the real model covers the tied output.
POST_GAIN = 1.0


def tiny_gemma_weights(seed: int, n_vocab: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def lin(n_out, n_in, gain=1.0):
        return (rng.standard_normal((n_out, n_in)) * (gain / np.sqrt(n_in))).astype(np.float32)

    def norm(n, gain=1.0):  # GGUF gemma norms hold 1 + w
        return (gain * (1.0 + 0.2 * rng.standard_normal(n))).astype(np.float32)

    q, kv = T_HEAD * T_HEAD_DIM, T_HEAD_KV * T_HEAD_DIM
    w = {"token_embd.weight": (0.3 * rng.standard_normal((n_vocab, T_EMBD))).astype(np.float32),
         "output_norm.weight": norm(T_EMBD), "output.weight": lin(n_vocab, T_EMBD, 2.4)}
    for i in range(T_LAYER):
        p = f"blk.{i}."
        w[p + "attn_norm.weight"] = norm(T_EMBD)
        w[p + "attn_q.weight"] = lin(q, T_EMBD, 1.5)
        w[p + "attn_k.weight"] = lin(kv, T_EMBD, 1.5)
        w[p + "attn_v.weight"] = lin(kv, T_EMBD)
        w[p + "attn_q_norm.weight"] = norm(T_HEAD_DIM)
        w[p + "attn_k_norm.weight"] = norm(T_HEAD_DIM)
        w[p + "attn_output.weight"] = lin(T_EMBD, q)
        w[p + "post_attention_norm.weight"] = norm(T_EMBD, POST_GAIN)
        w[p + "ffn_norm.weight"] = norm(T_EMBD)
        w[p + "ffn_gate.weight"] = lin(T_FF, T_EMBD, 2.0)
        w[p + "ffn_up.weight"] = lin(T_FF, T_EMBD)
        w[p + "ffn_down.weight"] = lin(T_EMBD, T_FF)
        w[p + "post_ffw_norm.weight"] = norm(T_EMBD, POST_GAIN)
    return w


def build_tiny_gemma3() -> Path:
    pieces = mf.train_spm_bpe(mf.TEXT.read_text(encoding="utf-8"), 500)
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>"] + [f"<0x{b:02X}>" for b in range(256)] + pieces \
        + ["<start_of_turn>", "<end_of_turn>", "\n\n"]
    types = [3, 3, 3, 2] + [6] * 256 + [1] * len(pieces) + [3, 3, 4]
    scores = [0.0] * 260 + [float(-i) for i in range(len(pieces))] + [0.0] * 3
    assert len(set(tokens)) == len(tokens)
    n_vocab = len(tokens)
    weights = tiny_gemma_weights(4321, n_vocab)

    def make(tmp):
        w = gguf.GGUFWriter(str(tmp), "gemma3")
        w.add_name("tiny-gemma3 (random weights; QuantServe test fixture)")
        w.add_file_type(0)  # all F32
        w.add_context_length(T_CTX)
        w.add_embedding_length(T_EMBD)
        w.add_block_count(T_LAYER)
        w.add_feed_forward_length(T_FF)
        w.add_head_count(T_HEAD)
        w.add_head_count_kv(T_HEAD_KV)
        w.add_key_length(T_HEAD_DIM)
        w.add_value_length(T_HEAD_DIM)
        w.add_layer_norm_rms_eps(1e-6)
        w.add_rope_freq_base(1000000.0)
        w.add_rope_freq_base_swa(20000.0)
        w.add_sliding_window(T_WINDOW)
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        w.add_token_list(tokens)
        w.add_token_scores(scores)
        w.add_token_types(types)
        w.add_bos_token_id(2)
        w.add_eos_token_id(1)
        w.add_unk_token_id(3)
        w.add_pad_token_id(0)
        w.add_add_bos_token(True)
        w.add_add_eos_token(False)
        w.add_add_space_prefix(False)
        for name, t in weights.items():
            w.add_tensor(name, t)
        return w

    path = FIX / "tiny-gemma3.gguf"
    mf.write_gguf(path, make)
    return path


TINY_GEMMA_TOKENIZE = [
    ("Hello world", False, False),
    ("Hello world", True, False),
    (" leading space", False, False),
    ("The keeper climbed the stairs to light the lamp.", True, False),
    ("", True, False),
    ("a\n\nb", False, False),
    ("Unicode: café, 中文 🦙", False, False),
    ("<start_of_turn>user\nhi<end_of_turn>", False, False),
    ("<start_of_turn>user\nhi<end_of_turn>", False, True),
]
TINY_GEMMA_PROMPTS = [
    ("The keeper climbed the stairs", False),
    ("The keeper climbed the stairs to light the lamp, and the light went out over the water", False),
    ("<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n", True),
]

# ------------------------------------------------------------------------------------------------- real model

def make_real_f16() -> Path:
    """llama-quantize --allow-requantize to F16 (2-D weights F16, norms stay F32), cached by the source's identity."""
    st = REAL.stat()
    stamp = {"source_size": st.st_size, "source_mtime_ns": st.st_mtime_ns, "recipe": "llama-quantize F16"}
    stamp_path = REAL_F16.with_suffix(".stamp.json")
    if REAL_F16.exists() and stamp_path.exists() and json.loads(stamp_path.read_text()) == stamp:
        log(f"reusing {REAL_F16}")
        return REAL_F16
    mf.SCRATCH.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(LLAMA_BIN / "llama-quantize"), "--allow-requantize", str(REAL), str(REAL_F16), "F16"],
                   check=True, capture_output=True)
    stamp_path.write_text(json.dumps(stamp))
    log(f"wrote {REAL_F16} ({REAL_F16.stat().st_size:,} bytes)")
    return REAL_F16


def real_tokenize_cases():
    T = [(s, False, False) for s in [
        "", "Hello, world!", "hello world", " leading space", "trailing space ", "multiple   spaces    here",
        "tabs\tand\ttabs\t\t\tend", "line one\nline two\n\n\nline five\r\nwindows", "   \n\t  \n", "\n", "  ", "a",
        "1234567 and 3.14159 and 1,000,000 and 0x1F and 2024-01-15",
        "I'm sure you don't know what THEY'RE doing; we'll see, I'd say you've, she's, it'll",
        "Café déjà vu, naïve coöperation, Ærø, façade, Ünïcödé", "combining accents: e\u0301 a\u0300 n\u0303",
        "中文测试：你好，世界！这是一个分词器的测试。", "日本語のテキストとカタカナ、ひらがな", "한국어 텍스트입니다",
        "مرحبا بالعالم، كيف حالك؟", "नमस्ते दुनिया, आप कैसे हैं?", "Привет, мир! Ёлка.", "Γειά σου Κόσμε",
        "Family: 👨\u200d👩\u200d👧\u200d👦, flags 🇺🇸🇯🇵, skin tone 👍🏽, heart ❤️, rainbow 🏳️\u200d🌈",
        "def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n",
        "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}, \"s\": \"\\u00e9\"}",
        "    indented with four spaces\n        and eight\n\t\ttwo tabs",
        "https://example.com/path?query=1&x=y#frag", "∑_{i=1}^{n} x_i² ≤ ∞ — α β γ … “quoted” ‘single’",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "!!!!!!!!!!!!???...,,,;;;",
        # byte fallback: characters outside the vocabulary
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𓀀𓀁 \U0001FAE8 \u0378 \x00\x01\x7f",
        # a literal U+2581 (SentencePiece's space mark) and a no-break space
        "a\u2581b \u2581 c\u00a0d",
        "<s> </s> <unk> [INST] <<SYS>> <|im_start|>",
    ]]
    T += [("", True, False), ("Hello, world!", True, False), ("  two leading spaces", True, False)]
    for s in ["<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n", "<bos><eos><pad><unk><mask>",
              "text<end_of_turn>more", "<unused0> and <unused6241>", "<start_of_image>x<end_of_image>",
              "[multimodal] and <start_of_turn>", "<0x41><0xFF> as text"]:
        T.append((s, False, False))
        T.append((s, False, True))
    T.append(("<start_of_turn>user\nHi<end_of_turn>", True, True))
    return T


# (prompt, parse_special). The 270M GGUF is the pretrained model: it never ends a turn by itself, so no prompt here
# stops at an end-of-generation token (the end-of-generation set is checked against llama.cpp's separately).
REAL_PROMPTS = [
    ("def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n", False),
    ("// Swift: sum an array of integers\nfunc sum(_ xs: [Int]) -> Int {\n", False),
    ("The capital of France is", False),
    ("Once upon a time, in a small village by the sea, there lived", False),
    ("{\"name\": \"QuantServe\", \"language\": \"Swift\", \"version\":", False),
    ("<start_of_turn>user\nWrite a Python function that reverses a string.<end_of_turn>\n<start_of_turn>model\n", True),
    # ~870 tokens: the continuation depends on keys outside the 512-token window of the local layers
    (HELDOUT.read_text(encoding="utf-8")[:4000], False),
]
PPL_CTX, PPL_CHUNKS = 1024, 2


def eog_ids(llm) -> list[int]:
    import llama_cpp
    vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
    return [i for i in range(llama_cpp.llama_vocab_n_tokens(vocab)) if llama_cpp.llama_vocab_is_eog(vocab, i)]


def llama_perplexity(model: Path, ctx: int, chunks: int | None) -> float:
    args = [str(LLAMA_BIN / "llama-perplexity"), "-m", str(model), "-f", str(HELDOUT), "-c", str(ctx), "-b", str(ctx),
            "-t", str(mf.N_THREADS)]
    if chunks:
        args += ["--chunks", str(chunks)]
    r = subprocess.run(args, check=True, capture_output=True, text=True)
    m = re.search(r"Final estimate: PPL = ([0-9.]+)", r.stdout + r.stderr)
    assert m, r.stderr[-2000:]
    return float(m.group(1))


def real_references() -> dict:
    f16 = make_real_f16()
    llm = mf.load_llama(f16, 1024)
    heldout = HELDOUT.read_text(encoding="utf-8")
    ref = {"model": REAL.name, "weights": "F16 (llama-quantize --allow-requantize)",
           "tokenize": mf.tokenize_cases(llm, real_tokenize_cases()),
           "heldout_ids": [int(i) for i in llm.tokenize(heldout.encode("utf-8"), add_bos=True, special=False)],
           "end_of_generation_ids": eog_ids(llm), "generate": []}
    stop = tuple(ref["end_of_generation_ids"])
    for prompt, parse_special in REAL_PROMPTS:
        ids, logits, greedy, margins, stopped = mf.run_prompt(llm, prompt, parse_special, 32, stop)
        last = logits[-1]
        top = np.argsort(-last, kind="stable")[:40]
        text = llm.detokenize(greedy[:-1] if stopped else greedy).decode("utf-8", errors="replace")
        ref["generate"].append({"prompt": prompt, "parse_special": parse_special, "prompt_ids": ids,
                                "greedy_ids": greedy, "greedy_margins": [mf.f6(m) for m in margins],
                                "stopped_at_eos": stopped, "greedy_text": text,
                                "top_logits": [[int(i), mf.f6(last[i])] for i in top]})
        log(f"gemma: {len(ids)} prompt tokens, {len(greedy)} generated (eos={stopped}), min margin "
            f"{min(margins):.4f}: {text[:60]!r}")
    del llm
    ppl = llama_perplexity(f16, PPL_CTX, PPL_CHUNKS)
    ref["perplexity"] = {"source": f"llama-perplexity -m F16 -f Benchmarks/data/heldout.txt -c {PPL_CTX} "
                                   f"-b {PPL_CTX} --chunks {PPL_CHUNKS} -t {mf.N_THREADS}: the final estimate",
                         "ctx_size": PPL_CTX, "chunks": PPL_CHUNKS, "ppl": ppl}
    log(f"gemma: llama-perplexity F16 ctx {PPL_CTX} chunks {PPL_CHUNKS}: {ppl}")
    return ref


def main() -> int:
    if not REAL.exists():
        print(f"missing {REAL}: run models/fetch gemma first", file=sys.stderr)
        return 1
    tiny = build_tiny_gemma3()
    mf.write_json(FIX / "tiny-gemma3.json", mf.tiny_references(tiny, TINY_GEMMA_TOKENIZE, TINY_GEMMA_PROMPTS))
    mf.write_json(FIX / "gemma-3-270m.json", real_references())
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
