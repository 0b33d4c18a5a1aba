#!/usr/bin/env python3
"""Generate the llama.cpp reference fixtures for QuantServe's Swift tests.

Run from the repository root (any working directory works):

    /root/qsvenv/bin/python models/make_fixtures.py
    /root/qsvenv/bin/python models/make_fixtures.py --dequant-blocks-only   # just dequant-blocks.json (gguf, numpy)

Python packages needed (install into a venv, never the system):

    pip install llama-cpp-python==0.3.36 gguf numpy jinja2

Every reference value here comes from llama.cpp (through llama-cpp-python), from the `gguf` package, or from
jinja2 rendering the way transformers does: never from QuantServe's own code.

Inputs:
  models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf   the real default model (fetched by models/fetch)
  models/fixture-text/bpe-training.txt             English text the tiny SentencePiece-style vocabulary is trained on

Outputs (Tests/QuantServeTests/Fixtures/):
  tiny-llama.gguf, tiny-llama.json     random-weight llama (F32, untied output, SPM/llama tokenizer) + references
  tiny-qwen2.gguf, tiny-qwen2.json     random-weight qwen2 (F16, tied output, QKV bias, truncated Qwen BPE vocab)
  qwen2.5-coder-0.5b.json              references of the real model, run with all its weights dequantized to F16
  dequant-blocks.json                  known blocks of Q8_0 Q4_0 Q5_0 Q4_K Q6_K F16 BF16 with their f32 values, and
                                       random ones of Q4_1 Q5_1 Q2_K Q3_K Q5_K (sane and extreme scales)
  chat-templates.json                  official chat templates rendered with jinja2 (ChatML/Qwen2.5, Llama 3, 3.1,
                                       Llama 2, Gemma 2, Gemma 3)
A scratch F16 copy of the real model (~1 GB) is kept in /tmp/quantserve-fixtures/ and reused while it is current.

JSON conventions:
  * logits are rounded to 6 significant digits;
  * dequant-blocks.json holds exact float32 values (printed as the shortest decimal of the f32 value taken as a
    double, so it parses back to the same f32 whatever the parser); non-finite values are the strings "inf", "-inf"
    (Swift: JSONDecoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf",
    negativeInfinity: "-inf", nan: "nan")); each entry also has "f32_bits", the values' IEEE bit patterns;
  * "tokenize" entries: ids = Llama.tokenize(text.encode(), add_bos=add_special, special=parse_special);
  * "generate" entries: prompt_ids are exactly the tokens fed (tokenized with add_special=True, so BOS is added only
    where the model's metadata says so, and with the entry's parse_special); greedy_ids are argmax picks taken here
    from llama.cpp's logits, one token evaluated at a time after the prompt's single batch; greedy_margins[k] is the
    gap between the best and second-best logit at step k (a test can stop comparing ids at a near-tie, where another
    engine's rounding may legitimately pick the other token). For the real model a run stops at an EOS/EOT token
    (151643 or 151645); that token is then the last of greedy_ids, "stopped_at_eos" is true, and greedy_text
    (llama.cpp's detokenization) leaves it out.

  Each "generate" entry also records its "parse_special". The real model has 7 prompts (code, prose, two ChatML
  chats written out literally and tokenized with parse_special=True; the last one ends with <|im_end|>).

The script is deterministic (fixed seeds, greedy decoding, fixed inputs) and idempotent: a second run rewrites
byte-identical files. It takes well under 2 minutes on 2 cores (about 30 s when the F16 scratch copy is cached).
"""
from __future__ import annotations

import datetime
import json
import math
import os
import sys
import time
from collections import Counter
from importlib.metadata import version as pkg_version
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

T0 = time.time()
ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "Tests" / "QuantServeTests" / "Fixtures"
REAL = ROOT / "models" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
TEXT = ROOT / "models" / "fixture-text" / "bpe-training.txt"
SCRATCH = Path("/tmp/quantserve-fixtures")
REAL_F16 = SCRATCH / "qwen2.5-coder-0.5b-instruct-f16.gguf"
N_THREADS = 2


def log(msg: str) -> None:
    print(f"[{time.time() - T0:7.1f}s] {msg}", flush=True)


# ----------------------------------------------------------------------------------------------------------- JSON

def f6(x) -> float:
    """A float rounded to 6 significant digits."""
    return float(f"{float(x):.6g}")


def exact(x):
    """An f32 value as a JSON-safe number (exact) or one of the strings inf/-inf/nan."""
    v = float(np.float32(x))
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _enc(o, ind: int) -> str:
    pad, pad1 = " " * ind, " " * (ind + 1)
    if isinstance(o, dict):
        if not o:
            return "{}"
        items = [f"{pad1}{json.dumps(k, ensure_ascii=False)}: {_enc(v, ind + 1)}" for k, v in o.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(o, list):
        if all(not isinstance(e, (dict, list)) for e in o) or all(
                isinstance(e, list) and all(not isinstance(x, (dict, list)) for x in e) and len(e) <= 2 for e in o):
            return json.dumps(o, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        if not o:
            return "[]"
        return "[\n" + ",\n".join(pad1 + _enc(e, ind + 1) for e in o) + "\n" + pad + "]"
    return json.dumps(o, ensure_ascii=False, allow_nan=False)


def write_json(path: Path, obj) -> None:
    """Readable JSON: objects indented, lists of scalars (a logits row, an id list) on one line."""
    text = _enc(obj, 0) + "\n"
    json.loads(text)  # must be valid, standard JSON
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    log(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size:,} bytes)")


# ----------------------------------------------------------------------------------------------------- llama.cpp

def load_llama(path: Path, n_ctx: int):
    from llama_cpp import Llama
    return Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, n_threads=N_THREADS, n_threads_batch=N_THREADS,
                 logits_all=True, verbose=False, seed=0)


def tokenize_cases(llm, cases):
    out = []
    for text, add_special, parse_special in cases:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=parse_special)
        out.append({"text": text, "add_special": add_special, "parse_special": parse_special,
                    "ids": [int(i) for i in ids]})
    return out


def run_prompt(llm, prompt: str, parse_special: bool, n_gen: int, stop_ids=()):
    """Evaluate the prompt in one batch; return prompt ids, all prompt logits, greedy ids, the top-1/top-2 logit margin
    at each greedy step (how close a tie came) and whether an EOS stopped the run."""
    llm.reset()
    ids = [int(i) for i in llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=parse_special)]
    assert 0 < len(ids) < llm.n_ctx() - n_gen, (prompt, len(ids))
    llm.eval(ids)
    prompt_logits = np.array(llm.scores[: len(ids)], dtype=np.float32, copy=True)
    cur = prompt_logits[-1]
    greedy, margins, stopped = [], [], False
    for step in range(n_gen):
        top2 = np.sort(cur)[-2:]
        margins.append(float(top2[1] - top2[0]))
        tok = int(np.argmax(cur))
        greedy.append(tok)
        if tok in stop_ids:
            stopped = True
            break
        if step + 1 < n_gen:
            llm.eval([tok])
            cur = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32, copy=True)
    return ids, prompt_logits, greedy, margins, stopped


# ------------------------------------------------------------------------------------------------- tiny models

N_EMBD, N_LAYER, N_HEAD, N_HEAD_KV, N_FF, N_CTX = 64, 2, 4, 2, 160, 256
OUT_GAIN_QWEN = 3.0
HEAD_DIM = N_EMBD // N_HEAD


def random_weights(seed: int, n_vocab: int, untied: bool, qkv_bias: bool, out_gain: float) -> dict[str, np.ndarray]:
    """Random float32 weights, numpy shape [out, in] (= GGUF ne [in, out]). Scales chosen so that the logits are far
    from flat (std ~2) and every layer changes the residual stream noticeably. `out_gain` scales attn_output and
    ffn_down: with tied embeddings it must be large, or the input token's own embedding dominates the final state and
    greedy decoding just repeats the last token."""
    rng = np.random.default_rng(seed)

    def lin(n_out, n_in, gain=1.0):
        return (rng.standard_normal((n_out, n_in)) * (gain / math.sqrt(n_in))).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    kv = N_HEAD_KV * HEAD_DIM
    w = {"token_embd.weight": (0.3 * rng.standard_normal((n_vocab, N_EMBD))).astype(np.float32),
         "output_norm.weight": norm(N_EMBD)}
    if untied:
        w["output.weight"] = lin(n_vocab, N_EMBD, 2.4)
    for i in range(N_LAYER):
        p = f"blk.{i}."
        w[p + "attn_norm.weight"] = norm(N_EMBD)
        w[p + "attn_q.weight"] = lin(N_EMBD, N_EMBD, 1.5)
        w[p + "attn_k.weight"] = lin(kv, N_EMBD, 1.5)
        w[p + "attn_v.weight"] = lin(kv, N_EMBD)
        if qkv_bias:
            w[p + "attn_q.bias"] = (0.2 * rng.standard_normal(N_EMBD)).astype(np.float32)
            w[p + "attn_k.bias"] = (0.2 * rng.standard_normal(kv)).astype(np.float32)
            w[p + "attn_v.bias"] = (0.2 * rng.standard_normal(kv)).astype(np.float32)
        w[p + "attn_output.weight"] = lin(N_EMBD, N_EMBD, out_gain)
        w[p + "ffn_norm.weight"] = norm(N_EMBD)
        w[p + "ffn_gate.weight"] = lin(N_FF, N_EMBD)
        w[p + "ffn_up.weight"] = lin(N_FF, N_EMBD)
        w[p + "ffn_down.weight"] = lin(N_EMBD, N_FF, out_gain)
    return w


def write_gguf(path: Path, writer_fn) -> None:
    tmp = path.with_suffix(".gguf.tmp")
    w = writer_fn(tmp)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, path)
    log(f"wrote {path.relative_to(ROOT) if ROOT in path.parents else path} ({path.stat().st_size:,} bytes)")


def add_tiny_hparams(w, eps: float, rope_base: float) -> None:
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_layer_norm_rms_eps(eps)
    w.add_rope_freq_base(rope_base)


# --- tiny-llama: SentencePiece-style BPE vocabulary trained here ------------------------------------------------

SPM_SPACE = "\u2581"


def train_spm_bpe(text: str, n_pieces: int) -> list[str]:
    """A small SentencePiece-style BPE: words are split at whitespace and get a leading U+2581; merges are taken by
    frequency (ties by the pair's text, so the result is fixed). Returns the pieces: merged pieces in merge order, then
    the single characters (most frequent first)."""
    words = Counter(tuple(SPM_SPACE + w) for w in text.split())
    char_freq = Counter()
    for word, n in words.items():
        for c in word:
            char_freq[c] += n
    chars = [c for c, _ in sorted(char_freq.items(), key=lambda kv: (-kv[1], kv[0]))]
    merged: list[str] = []
    seen = set(chars)
    while len(merged) + len(chars) < n_pieces:
        pairs = Counter()
        for word, n in words.items():
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        piece = best[0] + best[1]
        if piece not in seen:
            seen.add(piece)
            merged.append(piece)
        new = Counter()
        for word, n in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(piece)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new[tuple(out)] += n
        words = new
    return merged + chars


def build_tiny_llama():
    pieces = train_spm_bpe(TEXT.read_text(encoding="utf-8"), 500)
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + pieces + ["<tool>"]
    types = [2, 3, 3] + [6] * 256 + [1] * len(pieces) + [4]
    scores = [0.0] * 259 + [float(-i) for i in range(len(pieces))] + [0.0]
    assert len(set(tokens)) == len(tokens)
    n_vocab = len(tokens)
    weights = random_weights(1234, n_vocab, untied=True, qkv_bias=False, out_gain=0.5)

    def make(tmp):
        w = gguf.GGUFWriter(str(tmp), "llama")
        w.add_name("tiny-llama (random weights; QuantServe test fixture)")
        w.add_file_type(0)  # LLAMA_FTYPE_ALL_F32
        add_tiny_hparams(w, 1e-5, 10000.0)
        w.add_rope_dimension_count(HEAD_DIM)
        w.add_vocab_size(n_vocab)
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_scores(scores)
        w.add_token_types(types)
        w.add_unk_token_id(0)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_add_bos_token(True)
        w.add_add_eos_token(False)
        # tokenizer.ggml.add_space_prefix deliberately absent: llama.cpp then defaults it to true for SPM.
        for name, t in weights.items():
            w.add_tensor(name, t)  # all F32
        return w

    path = FIX / "tiny-llama.gguf"
    write_gguf(path, make)
    log(f"tiny-llama: {n_vocab} tokens ({len(pieces)} BPE pieces), e.g. {pieces[:8]}")
    return path


# --- tiny-qwen2: the real Qwen vocabulary truncated -------------------------------------------------------------

def gpt2_bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def read_real_vocab(reader):
    f = reader.fields
    tokens = f["tokenizer.ggml.tokens"].contents()
    types = [int(t) for t in f["tokenizer.ggml.token_type"].contents()]
    merges = f["tokenizer.ggml.merges"].contents()
    return tokens, types, merges


def split_merge(m: str) -> tuple[str, str]:
    i = m.index(" ", 1)
    return m[:i], m[i + 1:]


def check_qwen_vocab_order(tokens, merges) -> dict:
    """Facts about the ordering of the real vocabulary (reported, and relied upon for the truncation)."""
    b2u = gpt2_bytes_to_unicode()
    facts = {}
    facts["first_256_are_byte_symbols"] = set(tokens[:256]) == set(b2u.values())
    facts["first_256_in_gpt2_table_order"] = tokens[:256] == [b2u[b] for b in b2u]  # dict keeps insertion order
    facts["token_i_is_byte_i"] = all(tokens[i] == b2u[i] for i in range(256))
    index = {t: i for i, t in enumerate(tokens)}
    bad_result, bad_parts = [], []
    for r, m in enumerate(merges):
        a, b = split_merge(m)
        if index.get(a + b) != 256 + r:
            bad_result.append(r)
        if not (index.get(a, 1 << 30) < 256 + r and index.get(b, 1 << 30) < 256 + r):
            bad_parts.append(r)
    facts["n_merges"] = len(merges)
    facts["n_normal_tokens"] = 256 + len(merges)
    facts["merge_r_makes_token_256_plus_r_violations"] = len(bad_result)
    facts["merge_parts_precede_result_violations"] = len(bad_parts)
    return facts


def build_tiny_qwen2(real_reader):
    tokens, types, merges = read_real_vocab(real_reader)
    facts = check_qwen_vocab_order(tokens, merges)
    log(f"qwen vocab facts: {facts}")
    N = 1500
    kept = tokens[:N]
    kept_set = set(kept)
    kept_merges = []
    for m in merges:
        a, b = split_merge(m)
        if a in kept_set and b in kept_set and (a + b) in kept_set:
            kept_merges.append(m)
    assert all(t == 1 for t in types[:N])
    specials = [("<|endoftext|>", 3), ("<|im_start|>", 3), ("<|im_end|>", 3), ("<tool_call>", 4)]
    vocab = kept + [s for s, _ in specials]
    vtypes = types[:N] + [t for _, t in specials]
    ids = {s: N + i for i, (s, _) in enumerate(specials)}
    log(f"tiny-qwen2: kept {N} tokens and {len(kept_merges)} merges (of {len(merges)}); "
        f"first merge dropped: {merges[len(kept_merges)]!r}")
    assert kept_merges == merges[: len(kept_merges)], "kept merges are not a prefix"
    n_vocab = len(vocab)
    weights = random_weights(5678, n_vocab, untied=False, qkv_bias=True, out_gain=OUT_GAIN_QWEN)
    template = real_reader.fields["tokenizer.chat_template"].contents()

    def make(tmp):
        w = gguf.GGUFWriter(str(tmp), "qwen2")
        w.add_name("tiny-qwen2 (random weights; QuantServe test fixture)")
        w.add_file_type(1)  # LLAMA_FTYPE_MOSTLY_F16
        add_tiny_hparams(w, 1e-6, 1000000.0)
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("qwen2")
        w.add_token_list(vocab)
        w.add_token_types(vtypes)
        w.add_token_merges(kept_merges)
        w.add_eos_token_id(ids["<|im_end|>"])
        w.add_pad_token_id(ids["<|endoftext|>"])
        w.add_bos_token_id(ids["<|endoftext|>"])
        w.add_add_bos_token(False)
        w.add_chat_template(template)
        for name, t in weights.items():
            w.add_tensor(name, t.astype(np.float16) if t.ndim == 2 else t)  # no output.weight: tied
        return w

    path = FIX / "tiny-qwen2.gguf"
    write_gguf(path, make)
    return path, facts, len(kept_merges)


# Tokenizer test strings shared by both tiny models: (text, add_special, parse_special).
TINY_COMMON = [
    ("Hello world", False, False),
    ("Hello world", True, False),
    ("The keeper climbed the stairs to light the lamp.", True, False),
    ("", False, False),
    ("", True, False),
    (" ", False, False),
    ("  two leading spaces and trailing  ", False, False),
    ("tabs\tand\nnewlines\n\n end", False, False),
    ("Unicode: café, naïve, Ærø, 中文, Привет", False, False),
    ("emoji 🦙 and a family 👨\u200d👩\u200d👧", False, False),
    ("digits 1234567 and 3.14159", False, False),
    ("I'm sure you don't know, THEY'RE here, we'll see", False, False),
    ("lighthouse lighthouses lightkeeper unknownwordzqx", False, False),
]
TINY_LLAMA_TOKENIZE = TINY_COMMON + [
    ("<s>", False, False),
    ("<s>", False, True),
    ("</s> after eos", False, True),
    ("<unk> token text", False, True),
    ("call <tool> now", False, False),
    ("call <tool> now", True, True),
    ("x<tool>y<s>z</s>", False, True),
    ("x<tool>y<s>z</s>", False, False),
]
TINY_QWEN_TOKENIZE = TINY_COMMON + [
    ("def add(a, b):\n    return a + b\n", False, False),
    ("<|im_start|>user\nhi<|im_end|>", False, False),
    ("<|im_start|>user\nhi<|im_end|>", False, True),
    ("<|endoftext|>", False, True),
    ("<tool_call>{\"name\": \"f\"}</tool_call>", False, False),
    ("<tool_call>{\"name\": \"f\"}</tool_call>", True, True),
    ("a<|im_end|>b", False, True),
]
TINY_LLAMA_PROMPTS = [("The keeper climbed the stairs", False),
                      ("Hello, world! 123", False),
                      ("café ☕ and\ttabs\n", False)]
TINY_QWEN_PROMPTS = [("def add(a, b):", False),
                     ("Hello, world! 123", False),
                     ("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", True)]


def tiny_references(gguf_path: Path, tokenize, prompts) -> dict:
    llm = load_llama(gguf_path, N_CTX)
    ref = {"model": gguf_path.name, "tokenize": tokenize_cases(llm, tokenize), "generate": []}
    for prompt, parse_special in prompts:
        ids, logits, greedy, margins, _ = run_prompt(llm, prompt, parse_special, 16)
        ref["generate"].append({"prompt": prompt, "parse_special": parse_special, "prompt_ids": ids,
                                "greedy_ids": greedy, "greedy_margins": [f6(m) for m in margins],
                                "logits": [[f6(x) for x in row] for row in logits]})
        log(f"{gguf_path.name}: {len(ids)} prompt tokens, logits std {logits.std():.2f}, greedy {greedy}, "
            f"smallest greedy top-1/top-2 margin {min(margins):.4f}")
    del llm
    return ref


# ------------------------------------------------------------------------------------------------- real model

def make_real_f16(reader) -> Path:
    """Dequantize every tensor of the Q4_K_M file with gguf.quants.dequantize and write a GGUF in which 2-D weights are
    F16 and 1-D tensors F32, with every metadata KV copied (general.file_type = 1). Cached in /tmp."""
    st = REAL.stat()
    stamp = {"source_size": st.st_size, "source_mtime_ns": st.st_mtime_ns, "gguf": pkg_version("gguf"), "recipe": 1}
    stamp_path = REAL_F16.with_suffix(".stamp.json")
    if REAL_F16.exists() and stamp_path.exists() and json.loads(stamp_path.read_text()) == stamp:
        log(f"reusing {REAL_F16}")
        return REAL_F16
    SCRATCH.mkdir(parents=True, exist_ok=True)
    arch = reader.fields["general.architecture"].contents()

    def make(tmp):
        w = gguf.GGUFWriter(str(tmp), arch)  # writes general.architecture itself
        for key, field in reader.fields.items():
            if key.startswith("GGUF.") or key == "general.architecture":
                continue
            if key == "general.file_type":
                w.add_uint32(key, 1)  # LLAMA_FTYPE_MOSTLY_F16
                continue
            if key == "general.alignment":
                w.data_alignment = int(field.contents())
            vtype = field.types[0]
            w.add_key_value(key, field.contents(), vtype, field.types[-1] if vtype == VT.ARRAY else None)
        for t in reader.tensors:
            shape = tuple(int(x) for x in reversed(t.shape.tolist()))
            values = gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape)
            w.add_tensor(t.name, values.astype(np.float16) if len(shape) >= 2 else values.astype(np.float32))
        return w

    write_gguf(REAL_F16, make)
    stamp_path.write_text(json.dumps(stamp))
    return REAL_F16


def real_tokenize_cases():
    T = []
    plain = [
        "",
        "Hello, world!",
        "hello world",
        " leading space",
        "trailing space ",
        "multiple   spaces    here",
        "tabs\tand\ttabs\t\t\tend",
        "line one\nline two\n\n\nline five\r\nwindows",
        "   \n\t  \n",
        "\n",
        "  ",
        "a",
        "1234567 and 3.14159 and 1,000,000 and 0x1F and 2024-01-15",
        "I'm sure you don't know what THEY'RE doing; we'll see, I'd say you've, she's, it'll",
        "don't DON'T Don't dOn'T",
        "Café déjà vu, naïve coöperation, Ærø, façade, Ünïcödé",
        "combining accents: e\u0301 a\u0300 n\u0303",
        "中文测试：你好，世界！这是一个分词器的测试。",
        "日本語のテキストとカタカナ、ひらがな",
        "한국어 텍스트입니다",
        "مرحبا بالعالم، كيف حالك؟",
        "नमस्ते दुनिया, आप कैसे हैं?",
        "Привет, мир! Ёлка.",
        "Γειά σου Κόσμε",
        "I love 🦙 and 🚀!!",
        "Family: 👨\u200d👩\u200d👧\u200d👦, flags 🇺🇸🇯🇵, skin tone 👍🏽, heart ❤️, rainbow 🏳️\u200d🌈",
        "def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n",
        "struct Point {\n    var x: Double\n    var y: Double\n}\nlet p = Point(x: 1.5, y: -2)\n",
        "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}, \"s\": \"\\u00e9\"}",
        "    indented with four spaces\n        and eight\n\t\ttwo tabs",
        "https://example.com/path?query=1&x=y#frag",
        "$ ls -la | grep '.swift' > out.txt 2>&1",
        "∑_{i=1}^{n} x_i² ≤ ∞ — α β γ … “quoted” ‘single’",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "!!!!!!!!!!!!???...,,,;;;",
        "<s> </s> <unk> [INST] <<SYS>>",
    ]
    for s in plain:
        T.append((s, False, False))
    T += [
        ("", True, False),
        ("Hello, world!", True, False),
    ]
    for s in ["<|im_start|>user\nHello<|im_end|>", "<|endoftext|>", "text<|im_end|>more",
              "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>",
              "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>", "<|im_start|>system\n<|im_start|>"]:
        T.append((s, False, False))
        T.append((s, False, True))
    return T


REAL_PROMPTS = [
    ("def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n", False),
    ("// Swift: sum an array of integers\nfunc sum(_ xs: [Int]) -> Int {\n", False),
    ("The capital of France is", False),
    ("Once upon a time, in a small village by the sea, there lived", False),
    ("{\"name\": \"QuantServe\", \"language\": \"Swift\", \"version\":", False),
    ("<|im_start|>user\nWrite a Python function that reverses a string.<|im_end|>\n<|im_start|>assistant\n", True),
    # a 7th prompt whose answer ends with <|im_end|> well within 32 tokens, so the EOS stop is covered
    ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2 + 2? Reply with just the "
     "number.<|im_end|>\n<|im_start|>assistant\n", True),
]
EOS_IDS = (151643, 151645)


def real_references(reader) -> dict:
    f16 = make_real_f16(reader)
    llm = load_llama(f16, 512)
    ref = {"model": REAL.name, "weights": "F16", "tokenize": tokenize_cases(llm, real_tokenize_cases()),
           "generate": []}
    for prompt, parse_special in REAL_PROMPTS:
        ids, logits, greedy, margins, stopped = run_prompt(llm, prompt, parse_special, 32, EOS_IDS)
        last = logits[-1]
        top = np.argsort(-last, kind="stable")[:40]
        text_ids = greedy[:-1] if stopped else greedy
        text = llm.detokenize(text_ids).decode("utf-8", errors="replace")
        ref["generate"].append({"prompt": prompt, "parse_special": parse_special, "prompt_ids": ids,
                                "greedy_ids": greedy, "greedy_margins": [f6(m) for m in margins],
                                "stopped_at_eos": stopped, "greedy_text": text,
                                "top_logits": [[int(i), f6(last[i])] for i in top]})
        log(f"real: {len(ids)} prompt tokens, {len(greedy)} generated (eos={stopped}), min margin {min(margins):.4f}: "
            f"{text[:60]!r}")
    del llm
    return ref


# ------------------------------------------------------------------------------------------------ dequant blocks

def f16_at(b: bytes, off: int) -> np.float32:
    return np.frombuffer(b[off:off + 2], dtype="<f2")[0].astype(np.float32)


def hand_dequant(qtype: QT, b: bytes) -> np.ndarray:
    """Straight from the formulas in shared/FORMATS.md (a cross-check of both FORMATS.md and gguf)."""
    out = []
    if qtype == QT.Q8_0:
        for k in range(0, len(b), 34):
            d = f16_at(b, k)
            out += [d * np.float32(q) for q in np.frombuffer(b[k + 2:k + 34], dtype=np.int8)]
    elif qtype == QT.Q4_0:
        for k in range(0, len(b), 18):
            d, qs = f16_at(b, k), b[k + 2:k + 18]
            y = [np.float32(0)] * 32
            for j in range(16):
                y[j] = np.float32((qs[j] & 0xF) - 8) * d
                y[j + 16] = np.float32((qs[j] >> 4) - 8) * d
            out += y
    elif qtype == QT.Q5_0:
        for k in range(0, len(b), 22):
            d = f16_at(b, k)
            qh = int.from_bytes(b[k + 2:k + 6], "little")
            qs = b[k + 6:k + 22]
            y = [np.float32(0)] * 32
            for j in range(16):
                xh0 = ((qh >> j) << 4) & 0x10
                xh1 = (qh >> (j + 12)) & 0x10
                y[j] = np.float32(((qs[j] & 0xF) | xh0) - 16) * d
                y[j + 16] = np.float32(((qs[j] >> 4) | xh1) - 16) * d
            out += y
    elif qtype == QT.Q4_K:
        for k in range(0, len(b), 144):
            d, dmin = f16_at(b, k), f16_at(b, k + 2)
            sc_b, q = b[k + 4:k + 16], b[k + 16:k + 144]

            def scm(j):
                if j < 4:
                    return sc_b[j] & 63, sc_b[j + 4] & 63
                return (sc_b[j + 4] & 0xF) | ((sc_b[j - 4] >> 6) << 4), (sc_b[j + 4] >> 4) | ((sc_b[j] >> 6) << 4)
            y = [np.float32(0)] * 256
            for c in range(4):
                s1, m1 = scm(2 * c)
                s2, m2 = scm(2 * c + 1)
                qq = q[32 * c:32 * c + 32]
                for l in range(32):
                    y[64 * c + l] = d * np.float32(s1) * np.float32(qq[l] & 0xF) - dmin * np.float32(m1)
                    y[64 * c + 32 + l] = d * np.float32(s2) * np.float32(qq[l] >> 4) - dmin * np.float32(m2)
            out += y
    elif qtype == QT.Q6_K:
        for k in range(0, len(b), 210):
            blk = b[k:k + 210]
            ql, qh = blk[0:128], blk[128:192]
            sc = np.frombuffer(blk[192:208], dtype=np.int8)
            d = f16_at(blk, 208)
            y = [np.float32(0)] * 256
            for half in range(2):
                o, lo, ho, so = 128 * half, 64 * half, 32 * half, 8 * half
                for l in range(32):
                    is_ = l // 16
                    q1 = ((ql[lo + l] & 0xF) | (((qh[ho + l] >> 0) & 3) << 4)) - 32
                    q2 = ((ql[lo + l + 32] & 0xF) | (((qh[ho + l] >> 2) & 3) << 4)) - 32
                    q3 = ((ql[lo + l] >> 4) | (((qh[ho + l] >> 4) & 3) << 4)) - 32
                    q4 = ((ql[lo + l + 32] >> 4) | (((qh[ho + l] >> 6) & 3) << 4)) - 32
                    y[o + l] = d * np.float32(sc[so + is_]) * np.float32(q1)
                    y[o + l + 32] = d * np.float32(sc[so + is_ + 2]) * np.float32(q2)
                    y[o + l + 64] = d * np.float32(sc[so + is_ + 4]) * np.float32(q3)
                    y[o + l + 96] = d * np.float32(sc[so + is_ + 6]) * np.float32(q4)
            out += y
    # The types below are not in FORMATS.md: these follow llama.cpp's dequantize_row_* (ggml-quants.c) loop by loop.
    elif qtype in (QT.Q4_1, QT.Q5_1):
        size = 20 if qtype == QT.Q4_1 else 24
        for k in range(0, len(b), size):
            d, m = f16_at(b, k), f16_at(b, k + 2)
            qh = int.from_bytes(b[k + 4:k + 8], "little") if qtype == QT.Q5_1 else 0
            qs = b[k + size - 16:k + size]
            y = [np.float32(0)] * 32
            for j in range(16):
                xh0 = ((qh >> j) << 4) & 0x10
                xh1 = (qh >> (j + 12)) & 0x10
                y[j] = np.float32((qs[j] & 0xF) | xh0) * d + m
                y[j + 16] = np.float32((qs[j] >> 4) | xh1) * d + m
            out += y
    elif qtype == QT.Q2_K:
        for k in range(0, len(b), 84):
            blk = b[k:k + 84]
            d, dmin = f16_at(blk, 80), f16_at(blk, 82)
            for n in range(2):
                q = blk[16 + 32 * n:16 + 32 * n + 32]
                for j in range(4):
                    for h in range(2):
                        sc = blk[8 * n + 2 * j + h]
                        dl, ml = d * np.float32(sc & 0xF), dmin * np.float32(sc >> 4)
                        out += [dl * np.float32((q[16 * h + l] >> (2 * j)) & 3) - ml for l in range(16)]
    elif qtype == QT.Q3_K:
        for k in range(0, len(b), 110):
            blk = b[k:k + 110]
            hm, sb, d = blk[0:32], blk[96:108], f16_at(blk, 108)
            # ggml unpacks the 12 scale bytes with 32-bit masks (kmask1/kmask2); the same bits, one scale at a time
            scales = [((sb[j] & 0xF if j < 8 else sb[j - 8] >> 4) | (((sb[8 + j % 4] >> (2 * (j // 4))) & 3) << 4)) - 32
                      for j in range(16)]
            m, is_ = 1, 0
            for n in range(2):
                q = blk[32 + 32 * n:32 + 32 * n + 32]
                for j in range(4):
                    for h in range(2):
                        dl = d * np.float32(scales[is_])
                        is_ += 1
                        out += [dl * np.float32(((q[16 * h + l] >> (2 * j)) & 3) - (0 if hm[16 * h + l] & m else 4))
                                for l in range(16)]
                    m <<= 1
    elif qtype == QT.Q5_K:
        for k in range(0, len(b), 176):
            blk = b[k:k + 176]
            d, dmin = f16_at(blk, 0), f16_at(blk, 2)
            sc_b, qh = blk[4:16], blk[16:48]

            def scm5(j):
                if j < 4:
                    return sc_b[j] & 63, sc_b[j + 4] & 63
                return (sc_b[j + 4] & 0xF) | ((sc_b[j - 4] >> 6) << 4), (sc_b[j + 4] >> 4) | ((sc_b[j] >> 6) << 4)
            u1, u2 = 1, 2
            for c in range(4):
                ql = blk[48 + 32 * c:48 + 32 * c + 32]
                s1, m1 = scm5(2 * c)
                s2, m2 = scm5(2 * c + 1)
                d1, dm1, d2, dm2 = d * np.float32(s1), dmin * np.float32(m1), d * np.float32(s2), dmin * np.float32(m2)
                out += [d1 * np.float32((ql[l] & 0xF) + (16 if qh[l] & u1 else 0)) - dm1 for l in range(32)]
                out += [d2 * np.float32((ql[l] >> 4) + (16 if qh[l] & u2 else 0)) - dm2 for l in range(32)]
                u1, u2 = u1 << 2, u2 << 2
    return np.array(out, dtype=np.float32)


def block_entry(name: str, qtype: QT, raw: bytes, source: str, note: list) -> dict:
    values = gguf.quants.dequantize(np.frombuffer(raw, dtype=np.uint8).reshape(1, -1), qtype).reshape(-1)
    values = values.astype(np.float32)
    if qtype not in (QT.F16, QT.BF16):
        hand = hand_dequant(qtype, raw)
        same = np.array_equal(hand.view(np.uint32), values.view(np.uint32))
        close = np.allclose(hand, values, rtol=1e-6, atol=1e-7)
        formulas = "llama.cpp formulas" if qtype in (QT.Q4_1, QT.Q5_1, QT.Q2_K, QT.Q3_K, QT.Q5_K) else "FORMATS.md formulas"
        note.append(f"{name}: {formulas} vs gguf: {'bit-exact' if same else 'close' if close else 'DIFFERENT'}")
        assert close, name
    return {"type": name, "ggml_type": int(qtype), "source": source, "bytes_hex": raw.hex(),
            "values": [exact(v) for v in values], "f32_bits": [int(u) for u in values.view(np.uint32)]}


def dequant_blocks(reader) -> tuple[list, list]:
    note: list[str] = []
    by_type: dict[QT, gguf.ReaderTensor] = {}
    for t in reader.tensors:
        by_type.setdefault(t.tensor_type, t)
    entries = []
    prefer = {QT.Q6_K: "blk.0.ffn_down.weight"}
    for name, qtype in [("Q8_0", QT.Q8_0), ("Q5_0", QT.Q5_0), ("Q4_K", QT.Q4_K), ("Q6_K", QT.Q6_K)]:
        t = next((x for x in reader.tensors if x.name == prefer.get(qtype)), None) or by_type[qtype]
        assert t.tensor_type == qtype
        _, type_size = gguf.GGML_QUANT_SIZES[qtype]
        raw = t.data.reshape(-1)[: 2 * type_size].tobytes()
        entries.append(block_entry(name, qtype, raw, f"{t.name}, first 2 blocks of row 0 ({REAL.name})", note))
    # Q4_0: quantize random data with gguf (no Q4_0 tensor in the real file); 2nd block has a wider range
    rng = np.random.default_rng(42)
    data = np.concatenate([rng.standard_normal(32) * 0.05, rng.standard_normal(32) * 3.0]).astype(np.float32)
    raw = gguf.quants.quantize(data.reshape(1, 64), QT.Q4_0).tobytes()
    assert len(raw) == 36
    entries.insert(1, block_entry("Q4_0", QT.Q4_0, raw, "gguf.quants.quantize of seeded random data", note))
    # F16 / BF16: chosen values incl. negatives, subnormals, infinities, extremes, signed zero, rounding cases
    special32 = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -2.75, 3.14159265, -1e-3, 65504.0, -65504.0,
                          6.1035156e-05, 5.9604645e-08, -5.9604645e-08, 3.0e-06, -1.2e-05, np.inf, -np.inf,
                          1e38, -3.0e38, 1.0e-39, -9.2e-41, 1.00390625, 0.1, 1.0 / 3.0], dtype=np.float32)
    rnd = (rng.standard_normal(40) * np.exp(rng.uniform(-12, 8, 40))).astype(np.float32)
    f16_src = np.concatenate([special32[:17], rnd[:15]]).astype(np.float32)  # 32 values; f16 max is 65504
    f16_bits = f16_src.astype(np.float16)
    f16_bits[31] = np.frombuffer(bytes.fromhex("0180"), dtype="<f2")[0]  # -min subnormal by bits (0x8001)
    entries.append(block_entry("F16", QT.F16, f16_bits.astype("<f2").tobytes(),
                               "chosen and random values converted to f16 by numpy", note))
    bf_src = np.concatenate([special32, rnd[:8]]).astype(np.float32)  # 32 values
    bf_raw = gguf.quants.quantize(bf_src.reshape(1, -1), QT.BF16).tobytes()
    entries.append(block_entry("BF16", QT.BF16, bf_raw,
                               "chosen and random values converted with gguf.quants.quantize (round to nearest even)",
                               note))
    for e in entries:
        if e["type"] in ("F16", "BF16"):  # cross-check the exact values against the bit recipe
            u16 = np.frombuffer(bytes.fromhex(e["bytes_hex"]), dtype="<u2")
            if e["type"] == "BF16":
                want = (u16.astype(np.uint32) << 16)
            else:
                want = u16.view("<f2").astype(np.float32).view(np.uint32)
            assert [int(x) for x in want] == e["f32_bits"], e["type"]
    entries += random_blocks(note)
    return entries, note


# (name, type, block bytes, offset of d, offset of dmin / m or None) of the types that get random blocks
RANDOM_BLOCK_TYPES = [("Q4_1", QT.Q4_1, 20, 0, 2), ("Q5_1", QT.Q5_1, 24, 0, 2), ("Q2_K", QT.Q2_K, 84, 80, 82),
                      ("Q3_K", QT.Q3_K, 110, 108, None), ("Q5_K", QT.Q5_K, 176, 0, 2)]


def random_blocks(note: list) -> list:
    """Random bytes with the fp16 scale fields set: 3 blocks with sane d/dmin (or d/m) per type, then 2 blocks with
    extreme but finite ones (f16 max with opposite signs; the smallest subnormal and a normal negative one)."""
    rng = np.random.default_rng(20241127)  # its own generator, so the entries above stay as they were
    gv = pkg_version("gguf")
    entries = []

    def put(raw: bytearray, off: int, value: float) -> None:
        raw[off:off + 2] = np.array([value], dtype="<f2").tobytes()

    for name, qtype, size, d_off, m_off in RANDOM_BLOCK_TYPES:
        assert gguf.GGML_QUANT_SIZES[qtype][1] == size, name
        raw = bytearray(rng.integers(0, 256, size=3 * size, dtype=np.uint8).tobytes())
        for i in range(3):
            d = float(rng.uniform(0.002, 0.05))
            put(raw, i * size + d_off, d)
            if m_off is not None:  # Q4_1/Q5_1 store the min itself (y = d*q + m); the K types a positive scale of mins
                put(raw, i * size + m_off, -d * float(rng.uniform(4, 16)) if qtype in (QT.Q4_1, QT.Q5_1)
                    else float(rng.uniform(0.001, 0.02)))
        entries.append(block_entry(name, qtype, bytes(raw),
                                   f"3 blocks of seeded random bytes with sane fp16 scales, dequantized by gguf {gv}",
                                   note))
        raw = bytearray(rng.integers(0, 256, size=2 * size, dtype=np.uint8).tobytes())
        put(raw, d_off, 65504.0)
        put(raw, size + d_off, 2.0 ** -24)  # smallest f16 subnormal
        if m_off is not None:
            put(raw, m_off, -65504.0)
            put(raw, size + m_off, -3.5)
        entries.append(block_entry(name, qtype, bytes(raw),
                                   "2 blocks of seeded random bytes with extreme finite fp16 scales (65504 and "
                                   f"-65504; 2^-24 and -3.5), dequantized by gguf {gv}", note))
        assert all(isinstance(v, float) for v in entries[-1]["values"]), name  # every value finite
    return entries


# ------------------------------------------------------------------------------------------------ chat templates
# Sources of the official template strings:
#  * chatml (Qwen2.5): tokenizer.chat_template of models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf (read at run time).
#  * llama3 (Meta-Llama-3-8B-Instruct, tokenizer_config.json): the same string is quoted in llama.cpp's
#    tests/test-chat-template.cpp (there without the add_generation_prompt condition of the later HF revision used here)
#    and in several public projects' template tables.
#  * llama3 (Llama 3.1 / 3.3 Instruct): llama.cpp models/templates/meta-llama-Llama-3.3-70B-Instruct.jinja, which is
#    the template Meta ships with Llama-3.1-8B-Instruct and Llama-3.3-70B-Instruct (date_string default "26 Jul 2024").
#  * llama2 (meta-llama/Llama-2-7b-chat-hf, tokenizer_config.json): as quoted in llama.cpp's test-chat-template
#    documentation (llama2 section) and public template tables.
#  * gemma (google/gemma-2-2b-it): llama.cpp models/templates/google-gemma-2-2b-it.jinja (no system role: raises).
#  * gemma (google/gemma-3-4b-it, tokenizer_config.json): as copied in public projects; the '\n\n' and '\n' inside
#    its Jinja string literals are real newline characters in the official JSON-decoded template.

LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

LLAMA31_TEMPLATE = """{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\\n\\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\\n\\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""

LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)

GEMMA2_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)

GEMMA3_TEMPLATE = (
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    "        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n"
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\n'}}\n"
    "{%- endif -%}\n"
)


def jinja_env():
    """The environment transformers' apply_chat_template compiles templates in."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):  # transformers uses the current date; fixed here for determinism (unused by these)
        return datetime.datetime(2024, 7, 26).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def chat_templates(reader) -> list:
    qwen = reader.fields["tokenizer.chat_template"].contents()
    families = [
        ("chatml", "Qwen2.5 (from the real GGUF)", qwen, "<|endoftext|>", "<|im_end|>", "<|im_end|>", True),
        ("llama3", "Llama 3 Instruct", LLAMA3_TEMPLATE, "<|begin_of_text|>", "<|eot_id|>", "<|eot_id|>", True),
        ("llama3", "Llama 3.1 / 3.3 Instruct", LLAMA31_TEMPLATE, "<|begin_of_text|>", "<|eot_id|>", "<|eot_id|>",
         True),
        ("llama2", "Llama 2 Chat", LLAMA2_TEMPLATE, "<s>", "</s>", "</s>", True),
        ("gemma", "Gemma 2 Instruct", GEMMA2_TEMPLATE, "<bos>", "<eos>", "<end_of_turn>", False),
        ("gemma", "Gemma 3 Instruct", GEMMA3_TEMPLATE, "<bos>", "<eos>", "<end_of_turn>", True),
    ]
    env = jinja_env()
    out = []
    for family, name, template, bos, eos, special, system_ok in families:
        cases = []
        if system_ok:
            cases.append(([{"role": "system", "content": "You are a concise assistant."},
                           {"role": "user", "content": "What is 2 + 2?"}], True))
        cases.append(([{"role": "user", "content": "Hello! Who are you?"}], True))
        multi = [{"role": "user", "content": "Write a haiku about Swift."},
                 {"role": "assistant", "content": "  Types click into place\nOptionals guard the unknown\nCode compiles at dawn  "},
                 {"role": "user", "content": "Now one about Python."},
                 {"role": "assistant", "content": "Indented and clean."}]
        if system_ok:
            multi = [{"role": "system", "content": "  Answer in verse.  "}] + multi
        cases.append((multi, False))
        tricky = [{"role": "user", "content": f"Print the literal {special} and <|im_end|>, then\n\tstop.  "}]
        if not system_ok:
            cases.append(([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
                           {"role": "user", "content": "Bye"}], True))
        cases.append((tricky, False if family != "llama2" else True))
        compiled = env.from_string(template)
        for messages, agp in cases:
            rendered = compiled.render(messages=messages, tools=None, documents=None, add_generation_prompt=agp,
                                       bos_token=bos, eos_token=eos)
            out.append({"family": family, "name": name, "template": template, "bos_token": bos, "eos_token": eos,
                        "messages": messages, "add_generation_prompt": agp, "rendered": rendered})
    return out


# ------------------------------------------------------------------------------------------------------- main

def main() -> int:
    args = sys.argv[1:]
    if args not in ([], ["--dequant-blocks-only"]):
        print(f"usage: {sys.argv[0]} [--dequant-blocks-only]", file=sys.stderr)
        return 2
    if not REAL.exists():
        print(f"missing {REAL}: run models/fetch first", file=sys.stderr)
        return 1
    FIX.mkdir(parents=True, exist_ok=True)
    if args:  # only gguf and numpy needed
        log(f"gguf {pkg_version('gguf')}, numpy {np.__version__}")
        blocks, notes = dequant_blocks(gguf.GGUFReader(str(REAL)))
        for n in notes:
            log(n)
        write_json(FIX / "dequant-blocks.json", blocks)
        log("done")
        return 0
    log(f"llama-cpp-python {pkg_version('llama_cpp_python')}, gguf {pkg_version('gguf')}, numpy {np.__version__}, "
        f"jinja2 {pkg_version('jinja2')}")
    reader = gguf.GGUFReader(str(REAL))

    blocks, notes = dequant_blocks(reader)
    for n in notes:
        log(n)
    write_json(FIX / "dequant-blocks.json", blocks)
    write_json(FIX / "chat-templates.json", chat_templates(reader))

    tiny_llama = build_tiny_llama()
    write_json(FIX / "tiny-llama.json", tiny_references(tiny_llama, TINY_LLAMA_TOKENIZE, TINY_LLAMA_PROMPTS))
    tiny_qwen, _, _ = build_tiny_qwen2(reader)
    write_json(FIX / "tiny-qwen2.json", tiny_references(tiny_qwen, TINY_QWEN_TOKENIZE, TINY_QWEN_PROMPTS))

    write_json(FIX / "qwen2.5-coder-0.5b.json", real_references(reader))
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
