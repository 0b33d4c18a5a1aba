#!/usr/bin/env python3
"""Held-out batching check: each prompt's greedy output alone must equal its output in one batch with all the
others, also with a KV pool small enough to force preemption.

    Benchmarks/check_batching.py [--model PATH] [--quant int8] [--max-tokens 48] [--kv-blocks 48]

The prompts below are not used by any test. Prints a summary line per mode and exits 1 on a mismatch."""
import argparse, json, os, subprocess, sys, tempfile

PROMPTS = [
    "def merge_sorted(a, b):\n    \"\"\"Merge two sorted lists into one sorted list.\"\"\"\n",
    "The Treaty of Westphalia in 1648",
    "Explain the difference between a process and a thread.",
    "package main\n\nimport \"fmt\"\n\nfunc main() {\n",
    "A recipe for lentil soup needs",
    "SELECT customer_id, SUM(amount) AS total\nFROM payments\n",
    "In 1969 the Apollo 11 mission",
    "<html>\n<head>\n<title>",
    "Photosynthesis converts",
    "def is_palindrome(s: str) -> bool:\n",
    "The best way to learn a new language is",
    "#!/bin/bash\n# Back up every .conf file in /etc\n",
    "Newton's second law states that",
    "struct Point { double x, y; };\n\ndouble distance(struct Point a, struct Point b) {\n",
    "Three tips for writing clear documentation:\n1.",
    "Once the rain stopped, the children",
    "const express = require('express');\nconst app = express();\n",
    "The mitochondria is",
    "class LRUCache:\n    def __init__(self, capacity: int):\n",
    "Water boils at a lower temperature at high altitude because",
]


def run(binary, model, quant, lines, extra):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
        path = f.name
    try:
        out = subprocess.run([binary, "generate", "--model", model, "--quant", quant, "--prompts-file", path] + extra,
                             check=True, capture_output=True, text=True)
    finally:
        os.unlink(path)
    results = {}
    for l in out.stdout.splitlines():
        r = json.loads(l)
        results[r["index"]] = r["text"]
    return results, out.stderr.strip().splitlines()[-1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
    p.add_argument("--quant", default="int8")
    p.add_argument("--max-tokens", type=int, default=48)
    p.add_argument("--kv-blocks", type=int, default=48)
    p.add_argument("--binary", default=".build/release/quantserve")
    a = p.parse_args()
    lines = [{"prompt": t, "max_tokens": a.max_tokens, "temperature": 0} for t in PROMPTS]
    alone = {}
    for i, line in enumerate(lines):
        r, _ = run(a.binary, a.model, a.quant, [line], [])
        alone[i] = r[0]
    failed = False
    for name, extra in [("batch of %d" % len(lines), []),
                        ("batch, %d KV blocks (preemption)" % a.kv_blocks, ["--kv-blocks", str(a.kv_blocks)])]:
        batched, log = run(a.binary, a.model, a.quant, lines, extra)
        same = sum(1 for i in alone if batched.get(i) == alone[i])
        print(f"{name}: {same}/{len(lines)} identical to alone; {log}")
        for i in alone:
            if batched.get(i) != alone[i]:
                print(f"  prompt {i}: alone {alone[i]!r}\n            batch {batched.get(i)!r}")
        failed |= same < len(lines)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
