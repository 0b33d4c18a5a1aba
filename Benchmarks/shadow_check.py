#!/usr/bin/env python3
"""Shadow measurement on live traffic against the offline measurement of the same two levels.

Starts `quantserve serve --config` with MODEL at TOP and LOW levels and a shadow TOP -> LOW at rate 1, sends a mix of
chat and code requests (greedy and sampled) to TOP one at a time, waits for the shadow's comparisons, and prints the
shadow's same-top-1 and mean KLD next to `quantserve perplexity --quant LOW --compare TOP` on held-out text.

usage: Benchmarks/shadow_check.py BINARY MODEL [TOP] [LOW]
  TEMPERATURE=T: every request at T (default: greedy and 0.8 in turn); SKIP_OFFLINE=1: the live part only
"""
import json, os, re, subprocess, sys, tempfile, time, urllib.request

binary, model = sys.argv[1], os.path.abspath(sys.argv[2])
top = sys.argv[3] if len(sys.argv) > 3 else "int8"
low = sys.argv[4] if len(sys.argv) > 4 else "int4"
name = "m"
N = int(os.environ.get("TOKENS", "16"))
config = {"models": [{"name": name, "path": model, "levels": [top, low]}],
          "shadow": [{"from": f"{name}:{top}", "to": f"{name}:{low}", "rate": 1.0, "tokens": N}]}
prompts = [
    "Write a Python function that checks whether a string is a palindrome.",
    "Explain the difference between a process and a thread.",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "What causes the seasons on Earth?",
    "Write a SQL query that returns the ten most recent orders.",
    "Translate 'good morning, how are you?' into Spanish.",
    "Summarize the plot of Romeo and Juliet in two sentences.",
    "Write a bash one-liner that counts the lines of every .py file in a folder.",
    "def merge_sorted(a, b):\n    \"\"\"Merge two sorted lists into one sorted list.\"\"\"\n",
    "Why is the sky blue?",
    "Write a JavaScript function that debounces another function.",
    "List three uses of a hash map.",
    "How do I reverse a linked list in C?",
    "What is the time complexity of binary search, and why?",
    "Write a haiku about compilers.",
    "def is_prime(n: int) -> bool:\n",
    "Give me a regular expression that matches an email address.",
    "What does the Python GIL do?",
    "Write a Rust function that returns the largest element of a slice.",
    "Explain what a mutex is to a new programmer.",
]

with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    json.dump(config, f)
server = subprocess.Popen([binary, "serve", "--config", f.name, "--port", "0", "--no-access-log"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
port, ready = None, 0
while ready < 2:
    line = server.stderr.readline()
    if not line:
        sys.exit("the server stopped: " + line)
    m = re.search(r"listening on http://127.0.0.1:(\d+)", line)
    port = int(m.group(1)) if m else port
    ready += line.startswith("quantserve: ready:")
base = f"http://127.0.0.1:{port}"

def post(path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=300))

def metric(name):
    text = urllib.request.urlopen(base + "/metrics").read().decode()
    m = re.search(re.escape(name) + r"\{[^}]*\} (\S+)", text)
    return float(m.group(1)) if m else None

try:
    for i, p in enumerate(prompts):
        body = {"model": f"{name}:{top}", "max_tokens": N, "ignore_eos": True,
                "temperature": float(os.environ.get("TEMPERATURE", "-1")) if os.environ.get("TEMPERATURE") else (0 if i % 2 == 0 else 0.8), "seed": i}
        if p.startswith("def "):
            post("/v1/completions", dict(body, prompt=p))
        else:
            post("/v1/chat/completions", dict(body, messages=[{"role": "user", "content": p}]))
        # One at a time: the shadow replays only while its engine is idle.
        deadline = time.time() + 60
        while time.time() < deadline and (metric("quantserve:shadow_tokens_compared_total") or 0) < N * (i + 1):
            time.sleep(0.1)
    tokens = metric("quantserve:shadow_tokens_compared_total")
    same = metric("quantserve:shadow_same_top1_ratio")
    served = metric("quantserve:shadow_same_as_served_total") / tokens
    kld = metric("quantserve:shadow_kld_mean")
    print(f"shadow on live traffic ({len(prompts)} requests, {int(tokens)} tokens): same top-1 {same * 100:.1f}%, "
          f"shadow top-1 = token served {served * 100:.1f}%, mean KLD {kld:.4f}")
finally:
    server.terminate()
    server.wait()

if os.environ.get("SKIP_OFFLINE"):
    sys.exit(0)
heldout = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "heldout.txt")
out = subprocess.run([binary, "perplexity", "--model", model, "--quant", low, "--compare", top, "--file", heldout,
                      "--chunks", "8"], capture_output=True, text=True)
line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr
print(f"offline, perplexity --quant {low} --compare {top} (held-out text, 8 chunks of 512): {line}")
