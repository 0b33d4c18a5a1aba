#!/usr/bin/env bash
# Single-stream speed side by side with llama.cpp, in one run on this machine:
# llama-bench (pp128, tg64, 2 threads) on F16, Q8_0 and Q4_0 requantizations of the model, and `quantserve bench`
# at the matching levels (fp16, int8, int4) plus nf4. Prints both tables and the ratios.
#   Benchmarks/compare_speed.sh [MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}
LLAMA=$(Benchmarks/setup_llamacpp.sh)
WORK=${QUANTSERVE_BENCH_DIR:-$HOME/.cache/quantserve/bench}
mkdir -p "$WORK"
for t in F16 Q8_0 Q4_0; do
  [ -f "$WORK/$t.gguf" ] || "$LLAMA/llama-quantize" --allow-requantize "$MODEL" "$WORK/$t.gguf" "$t" 2 > "$WORK/quantize-$t.log" 2>&1
done
THREADS=$(nproc)
"$LLAMA/llama-bench" -m "$WORK/F16.gguf,$WORK/Q8_0.gguf,$WORK/Q4_0.gguf" -p 128 -n 64 -t "$THREADS" -o json > "$WORK/llama-bench.json"
.build/release/quantserve bench --model "$MODEL" --quant fp16,int8,int4,nf4 --threads "$THREADS" --json > "$WORK/quantserve-bench.json"
python3 - "$WORK/llama-bench.json" "$WORK/quantserve-bench.json" <<'PY'
import json, sys
peer = json.load(open(sys.argv[1]))
ours = {r["quant"]: r for r in json.load(open(sys.argv[2]))}
def peer_speed(kind, path_part, key):
    for r in peer:
        if path_part in r["model_filename"] and ((kind == "pp" and r["n_prompt"] > 0) or (kind == "tg" and r["n_gen"] > 0)):
            return r["avg_ts"]
pairs = [("fp16", "F16"), ("int8", "Q8_0"), ("int4", "Q4_0"), ("nf4", "Q4_0")]
print("| level | weights MiB | load s | prefill tok/s (pp128) | llama.cpp pp128 | ratio | decode tok/s (tg64) | llama.cpp tg64 | ratio |")
print("|---|---|---|---|---|---|---|---|---|")
for level, t in pairs:
    if level not in ours: continue
    o = ours[level]
    pp, tg = peer_speed("pp", t + ".gguf", "avg_ts"), peer_speed("tg", t + ".gguf", "avg_ts")
    print(f"| {level} (vs {t}) | {o['weights_bytes']/2**20:.0f} | {o['load_s']:.2f} | {o['prefill_tok_s']:.1f} | {pp:.1f} | "
          f"{o['prefill_tok_s']/pp:.2f} | {o['decode_tok_s']:.1f} | {tg:.1f} | {o['decode_tok_s']/tg:.2f} |")
PY
