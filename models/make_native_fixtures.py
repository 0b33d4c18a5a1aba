#!/usr/bin/env python3
"""Generate llama.cpp's references for running the Q4_K_M GGUF files at their own quantization.

Run from anywhere (python3, standard library only; about 5-10 minutes on 2 cores):

    python3 models/make_native_fixtures.py

Every reference value comes from llama.cpp, never from QuantServe's own code: the tools built from the vendored
llama.cpp of llama-cpp-python 0.3.36 (Benchmarks/setup_llamacpp.sh builds them and prints their directory; set
LLAMA_BIN to use another directory).

Inputs:
  models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf, models/gemma-3-270m-q4_k_m.gguf   (models/fetch)
  Benchmarks/data/heldout.txt                                                        held-out text for perplexity

Output: Tests/QuantServeTests/Fixtures/native-references.json, per model:
  perplexity   llama-perplexity -m FILE -f Benchmarks/data/heldout.txt -c 512 --chunks N -t 2, for N = 4 and 16,
               the "Final estimate: PPL = X" line
  generate     for each of PROMPTS below, through llama-server (started here on 127.0.0.1 at a free port with
               -t 2 -np 1 -c 2048, stopped at the end):
                 prompt_ids  POST /tokenize {"content": PROMPT, "add_special": true}  (BOS exactly as llama.cpp adds it;
                             parse_special is left at its default, true, as /completion does for text prompts)
                 greedy_ids  POST /completion {"prompt": prompt_ids, "n_predict": 24, "temperature": 0,
                             "cache_prompt": false, "n_probs": 10, "return_tokens": true}, its "tokens" field; no stop
                             strings, so generation ends after 24 tokens or at an end-of-generation token, which is
                             then the last id
                 top         the first generated position's "top_logprobs" (10 entries) as [id, exp(logprob)]. With
                             post_sampling_probs left false, llama-server reports the softmax of the raw logits over the
                             whole vocabulary (get_token_probabilities), independent of the temperature, as logprobs
               Every request is made twice and must give identical answers (the script fails otherwise).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "gemma-3-270m-q4_k_m.gguf"]
HELDOUT = ROOT / "Benchmarks" / "data" / "heldout.txt"
OUT = ROOT / "Tests" / "QuantServeTests" / "Fixtures" / "native-references.json"
THREADS = 2
CTX_SIZE = 512
CHUNKS = [4, 16]
N_PREDICT = 24
N_PROBS = 10

# Plain text, not chat-formatted, written for this fixture (not taken from heldout.txt or any training text here).
PROMPTS = [
    'def merge_sorted_lists(a, b):\n    """Merge two sorted lists into one sorted list."""\n',
    "The Treaty of Westphalia, signed in 1648, ended the Thirty Years' War and",
    "Shopping list for the weekend:\n1. Eggs\n2. Whole wheat bread\n3.",
    "To make a simple tomato sauce, heat two tablespoons of olive oil in a pan, then add",
    '{"id": 4821, "name": "Ada Lovelace", "born": 1815, "fields": [',
]

PERPLEXITY_TIMEOUT_S = 900
SERVER_START_TIMEOUT_S = 180
REQUEST_TIMEOUT_S = 300


def llama_bin() -> Path:
    if os.environ.get("LLAMA_BIN"):
        return Path(os.environ["LLAMA_BIN"])
    out = subprocess.run(["bash", str(ROOT / "Benchmarks" / "setup_llamacpp.sh")], check=True, capture_output=True,
                         text=True, timeout=3600)
    return Path(out.stdout.strip().splitlines()[-1])


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def perplexity(bin_dir: Path, model: Path, chunks: int, flash_attn: str = "auto") -> float:
    cmd = [str(bin_dir / "llama-perplexity"), "-m", str(model), "-f", str(HELDOUT), "-c", str(CTX_SIZE),
           "--chunks", str(chunks), "-t", str(THREADS), "-fa", flash_attn]
    print("  $", " ".join(cmd), flush=True)
    t0 = time.time()
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=PERPLEXITY_TIMEOUT_S)
    log = run.stdout + run.stderr
    m = re.search(r"Final estimate: PPL = ([0-9.]+)", log)
    if run.returncode != 0 or not m:
        sys.exit(f"llama-perplexity failed (rc {run.returncode}):\n{log[-3000:]}")
    if f"calculating perplexity over {chunks} chunks" not in log:
        sys.exit(f"llama-perplexity did not use {chunks} chunks (held-out text too short?):\n{log[-3000:]}")
    print(f"    PPL = {m.group(1)}  ({time.time() - t0:.0f} s)", flush=True)
    return float(m.group(1))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """llama-server on one model, on 127.0.0.1 at a free port; a context manager that always stops it."""

    def __init__(self, bin_dir: Path, model: Path, flash_attn: str = "auto"):
        self.port = free_port()
        self.cmd = [str(bin_dir / "llama-server"), "-m", str(model), "-t", str(THREADS), "-np", "1", "-c", "2048",
                    "--host", "127.0.0.1", "--port", str(self.port), "-fa", flash_attn]
        self.log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)

    def __enter__(self):
        print("  $", " ".join(self.cmd), flush=True)
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + SERVER_START_TIMEOUT_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.fail(f"llama-server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as r:
                    if r.status == 200 and json.load(r).get("status") == "ok":
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        self.fail("llama-server did not become healthy")

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.log.close()
        os.unlink(self.log.name)

    def fail(self, why: str):
        self.log.flush()
        tail = Path(self.log.name).read_text(errors="replace")[-3000:]
        self.__exit__()
        sys.exit(f"{why}:\n{tail}")

    def post(self, path: str, body: dict) -> dict:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as r:
            return json.load(r)


def completion_request(prompt_ids: list[int]) -> dict:
    return {"prompt": prompt_ids, "n_predict": N_PREDICT, "temperature": 0, "cache_prompt": False,
            "n_probs": N_PROBS, "return_tokens": True}


def generate(server: Server, prompt: str) -> dict:
    prompt_ids = server.post("/tokenize", {"content": prompt, "add_special": True})["tokens"]
    answer = server.post("/completion", completion_request(prompt_ids))
    ids = answer["tokens"]
    probs = answer["completion_probabilities"]
    # Consistency of llama-server's own answer: the ids from "tokens" and from the per-token probabilities agree,
    # the prompt was evaluated as given, and greedy picked the most probable token at every step.
    assert ids == [p["id"] for p in probs], (ids, [p["id"] for p in probs])
    assert answer["tokens_evaluated"] == len(prompt_ids), (answer["tokens_evaluated"], len(prompt_ids))
    assert len(ids) == N_PREDICT or answer["stop_type"] == "eos", (len(ids), answer["stop_type"])
    for p in probs:
        assert p["top_logprobs"][0]["id"] == p["id"], ("greedy token is not the top-1", p)
    top = [[t["id"], math.exp(t["logprob"])] for t in probs[0]["top_logprobs"]]
    assert len(top) == N_PROBS, top
    return {"prompt": prompt, "prompt_ids": prompt_ids, "greedy_ids": ids, "top": top,
            "stop_type": answer["stop_type"], "text": answer["content"]}


def main():
    bin_dir = llama_bin()
    version = subprocess.run([str(bin_dir / "llama-server"), "--version"], capture_output=True, text=True,
                             timeout=60)
    version = " ".join((version.stdout + version.stderr).split())
    print("llama.cpp:", bin_dir, version, flush=True)
    models = []
    for name in MODELS:
        path = ROOT / "models" / name
        if not path.exists():
            sys.exit(f"missing {path} (models/fetch)")
        print(name, flush=True)
        entry = {"model": name, "sha256": sha256(path), "perplexity": [], "generate": []}
        for chunks in CHUNKS:
            entry["perplexity"].append({"ctx_size": CTX_SIZE, "chunks": chunks, "ppl": perplexity(bin_dir, path, chunks),
                                        "ppl_flash_attn_off": perplexity(bin_dir, path, chunks, "off")})
        with Server(bin_dir, path) as server:
            first = [generate(server, p) for p in PROMPTS]
            second = [generate(server, p) for p in PROMPTS]
        if first != second:
            for a, b in zip(first, second):
                if a != b:
                    print("  run 1:", a, "\n  run 2:", b)
            sys.exit(f"{name}: llama-server greedy decoding is not deterministic")
        print("  two runs of all prompts identical (ids and top-10 probabilities)", flush=True)
        for g in first:
            print(f"  {g['prompt'][:40]!r}: {len(g['prompt_ids'])} prompt ids, {len(g['greedy_ids'])} generated "
                  f"({g['stop_type']}) {g['text']!r}", flush=True)
            del g["stop_type"], g["text"]
        # The same greedy continuations with flash attention off (llama.cpp's default accumulates V in F16, which
        # alone changes several continuations on these files).
        with Server(bin_dir, path, "off") as server:
            for g in first:
                g["greedy_ids_flash_attn_off"] = generate(server, g["prompt"])["greedy_ids"]
        entry["generate"] = first
        models.append(entry)

    source = (
        "llama.cpp (the tools built from the vendored vendor/llama.cpp of llama-cpp-python 0.3.36 by "
        f"Benchmarks/setup_llamacpp.sh; {version}), by models/make_native_fixtures.py, at the files' own Q4_K_M "
        "quantization. perplexity: llama-perplexity -m models/MODEL -f Benchmarks/data/heldout.txt "
        f"-c {CTX_SIZE} --chunks N -t {THREADS} -fa auto (ppl: llama.cpp's default, which on this CPU turns flash "
        "attention on, accumulating V in F16) and -fa off (ppl_flash_attn_off), its 'Final estimate: PPL'. generate: llama-server -m models/MODEL "
        f"-t {THREADS} -np 1 -c 2048 --host 127.0.0.1 --port PORT -fa auto (greedy_ids) and -fa off "
        "(greedy_ids_flash_attn_off); prompt_ids = POST /tokenize "
        "{\"content\": prompt, \"add_special\": true} (llama.cpp's own BOS handling); then POST /completion "
        f"{json.dumps(completion_request(['PROMPT_IDS']))} with prompt_ids as the prompt; greedy_ids = its 'tokens' "
        "(no stop strings: ends after n_predict or at an end-of-generation token, kept last); top = the first "
        "generated position's top_logprobs as [id, exp(logprob)]: with post_sampling_probs false llama-server "
        "reports the softmax of the raw logits over the whole vocabulary (not the temperature-0 sampler's "
        "one-hot), so temperature 0 already gives the true probabilities. Every request was made twice with "
        "identical answers; sha256 is the GGUF file's."
    ).replace('["PROMPT_IDS"]', "PROMPT_IDS")
    doc = {"source": source, "models": models}
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print("wrote", OUT.relative_to(ROOT))


if __name__ == "__main__":
    main()
