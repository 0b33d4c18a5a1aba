#!/usr/bin/env python3
"""Side-by-side check of quantserve against llama.cpp on the same GGUF, in one run.

  - tokenization of each string: `quantserve tokenize` vs llama.cpp's tokenizer (exact ids);
  - greedy continuations: `quantserve generate --quant fp16 --temperature 0` vs llama.cpp on the F16 requantization
    of the same file (made by models/make_fixtures.py, or pass --f16);
  - single-stream speed: prefill of a 128-token prompt and decode of 64 tokens, both engines, 2 threads.

Needs llama-cpp-python (see models/make_fixtures.py for the venv):
  /root/qsvenv/bin/python Benchmarks/compare_llamacpp.py --model models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf \
      --f16 /tmp/quantserve-fixtures/qwen2.5-coder-0.5b-instruct-f16.gguf
  /root/qsvenv/bin/python Benchmarks/compare_llamacpp.py --model models/gemma-3-270m-q4_k_m.gguf \
      --f16 /tmp/quantserve-fixtures/gemma-3-270m-f16.gguf --skip-speed
(the Gemma F16 file is made by models/make_gemma_fixtures.py, or `llama-quantize --allow-requantize SRC OUT F16`).
The strings and prompts are held out: none of them is in the tests' fixtures. The set is chosen by the model's
general.architecture (gemma3, or the ChatML set for the others).
"""
import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from llama_cpp import Llama

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".build/release/quantserve"

STRINGS = [
    "Grüße aus Zürich — naïve café", "東京タワーの高さは333メートルです。", "مرحبا بالعالم", "नमस्ते दुनिया",
    "👩🏽‍💻 codes 🚀🚀 all night 🌙", "for (int i = 0; i < n; ++i) { sum += a[i]; }", "x\t\ty\n\n\n   z    ",
    "SHE'LL Won't we'd They've", "pi ≈ 3.14159265358979, e ≈ 2.71828, 1e-9, 0x1F", "<|im_start|>system<|im_end|>",
    "<|endoftext|> and <tool_call> inside", "    indented\r\n\tline", "ÅÆØ åæø ÿ ß ẞ", "", " ", "a" * 300,
]

GEMMA_STRINGS = [
    "Grüße aus Zürich — naïve café", "東京タワーの高さは333メートルです。", "مرحبا بالعالم", "नमस्ते दुनिया",
    "👩🏽‍💻 codes 🚀🚀 all night 🌙", "for (int i = 0; i < n; ++i) { sum += a[i]; }", "x\t\ty\n\n\n   z    ",
    "SHE'LL Won't we'd They've", "pi ≈ 3.14159265358979, e ≈ 2.71828, 1e-9, 0x1F", "    indented\r\n\tline",
    "ÅÆØ åæø ÿ ß ẞ", "", " ", "a" * 300, "▁▁ double mark ▁", "\u200b zero width \ufeff bom", "𝕏 𝔸 🀄 \U0010FFFD",
    "<start_of_turn>model\nSure.<end_of_turn>", "<end_of_turn><eos>", "<unused17> <start_of_image>",
    "<pad> <mask> <unk> [multimodal]", "\n\n\n\n\n\n\t\t\t\t        ", "<b>bold</b> <div class=\"x\">",
]

GEMMA_PROMPTS = [
    "import numpy as np\n\ndef softmax(x):",
    "The three primary colors are",
    "SELECT name, COUNT(*) FROM orders",
    "In 1969, Neil Armstrong",
    "# Rust\nfn main() {\n    let v = vec![3, 1, 2];",
    "Water boils at",
    "A haiku about autumn:\n",
    # What `--chat` renders for this user message (Gemma 3's template; the file has none, so the architecture's).
    "<start_of_turn>user\nExplain recursion in one sentence.<end_of_turn>\n<start_of_turn>model\n",
]

PROMPTS = [
    "import numpy as np\n\ndef softmax(x):",
    "The three primary colors are",
    "SELECT name, COUNT(*) FROM orders",
    "In 1969, Neil Armstrong",
    "# Rust\nfn main() {\n    let v = vec![3, 1, 2];",
    "Water boils at",
    "A haiku about autumn:\n",
    # What `--chat` renders for this user message (Qwen's template adds its default system prompt).
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\nExplain recursion in one sentence.<|im_end|>\n<|im_start|>assistant\n",
]


def eog_ids(llm):
    """Every token llama.cpp treats as end of generation."""
    import llama_cpp
    vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
    return [i for i in range(llama_cpp.llama_vocab_n_tokens(vocab)) if llama_cpp.llama_vocab_is_eog(vocab, i)]


def run(args):
    return subprocess.run([str(BIN)] + args, capture_output=True, text=True, check=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--f16", required=True, help="the F16 requantization of --model for llama.cpp")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--skip-speed", action="store_true", help="leave out the speed comparison (shared machines)")
    a = p.parse_args()

    vocab_only = Llama(model_path=a.model, vocab_only=True, verbose=False)
    gemma = vocab_only.metadata.get("general.architecture") == "gemma3"
    strings, prompts = (GEMMA_STRINGS, GEMMA_PROMPTS) if gemma else (STRINGS, PROMPTS)
    chat_start, chat_end = ("<start_of_turn>", "<end_of_turn>") if gemma else ("<|im_start|>", "<|im_end|>")
    token_mismatches = 0
    for s in strings:
        for special in (False, True):
            ours = json.loads(run(["tokenize", "--model", a.model, "--text", s] + (["--special"] if special else [])).stdout)
            theirs = vocab_only.tokenize(s.encode(), add_bos=False, special=special)
            if ours != theirs:
                token_mismatches += 1
                print(f"tokenize mismatch {s!r} special={special}: ours {ours} llama.cpp {theirs}")
    print(f"tokenize: {2 * len(strings) - token_mismatches}/{2 * len(strings)} identical")

    llm = Llama(model_path=a.f16, n_ctx=512, n_threads=2, logits_all=True, verbose=False)
    eog = set(eog_ids(llm))
    greedy_failures = 0
    for prompt in prompts:
        special = prompt.startswith(chat_start)
        # BOS where the model adds one, as quantserve generate does.
        ids = llm.tokenize(prompt.encode(), add_bos=True, special=special)
        llm.reset()
        llm.eval(ids)
        out = []
        for _ in range(a.max_tokens):
            t = int(llm.scores[llm.n_tokens - 1].argmax())
            if t in eog:
                break
            out.append(t)
            llm.eval([t])
        theirs = llm.detokenize(out).decode("utf-8", errors="replace")
        if special:
            # quantserve parses special tokens only through --chat; render the same text that way.
            user = re.search(re.escape(chat_start) + r"user\n(.*?)" + re.escape(chat_end), prompt, re.S).group(1)
            r = run(["generate", "--model", a.model, "--quant", "fp16", "--temperature", "0", "--max-tokens",
                     str(a.max_tokens), "--chat", "--prompt", user])
        else:
            r = run(["generate", "--model", a.model, "--quant", "fp16", "--temperature", "0", "--max-tokens",
                     str(a.max_tokens), "--prompt", prompt])
        ours = r.stdout[:-1] if r.stdout.endswith("\n") else r.stdout
        half = theirs[: len(theirs) // 2]
        ok = ours.startswith(half)
        greedy_failures += not ok
        print(f"{'same' if ok else 'DIFF'} {prompt[:40]!r}\n  ours:  {ours!r}\n  llama: {theirs!r}")
    print(f"greedy: {len(prompts) - greedy_failures}/{len(prompts)} reproduce at least the first half")
    if a.skip_speed:
        sys.exit(1 if token_mismatches or greedy_failures > 1 else 0)

    # Speed: both engines, same prompt length and output length (llama.cpp computing last-position logits only).
    del llm
    llm = Llama(model_path=a.f16, n_ctx=512, n_threads=2, verbose=False)
    prompt = ("The quick brown fox jumps over the lazy dog. " * 20)
    ids = llm.tokenize(prompt.encode(), add_bos=False)[:128]
    llm.reset()
    t0 = time.time(); llm.eval(ids); pp = 128 / (time.time() - t0)
    t0 = time.time()
    for i in range(64):
        llm.eval([ids[i]])
    tg = 64 / (time.time() - t0)
    text = vocab_only.detokenize(ids).decode()
    r = run(["generate", "--model", a.model, "--quant", "fp16", "--temperature", "0", "--max-tokens", "64",
             "--prompt", text])
    ours_pp = float(re.search(r"prefill: \d+ tokens, ([\d.]+) tok/s", r.stderr).group(1))
    ours_tg = float(re.search(r"decode: \d+ tokens, ([\d.]+) tok/s", r.stderr).group(1))
    print(json.dumps({"llamacpp_f16_prefill_tok_s": round(pp, 1), "llamacpp_f16_decode_tok_s": round(tg, 1),
                      "quantserve_fp16_prefill_tok_s": ours_pp, "quantserve_fp16_decode_tok_s": ours_tg,
                      "decode_ratio": round(ours_tg / tg, 2), "prefill_ratio": round(ours_pp / pp, 2)}))
    sys.exit(1 if token_mismatches or greedy_failures > 1 else 0)


if __name__ == "__main__":
    main()
