#!/usr/bin/env bash
# Aggregate decode throughput across concurrent sequences, side by side with llama.cpp in one run:
# llama-batched-bench's S_TG on the Q8_0 requantization (128-token prompts, 64 generated, N sequences, 2 threads),
# and `quantserve bench --quant int8 --concurrency N` (aggregate_tok_s: the same shape, prefill time excluded).
#   Benchmarks/compare_batched.sh [MODEL] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}
N=${2:-16}
. Benchmarks/common.sh
make_peer_ggufs Q8_0
"$LLAMA/llama-batched-bench" -m "$WORK/Q8_0.gguf" -c $((N * 192 + 256)) -b 2048 -ub 512 -npp 128 -ntg 64 -npl "$N" \
  -t "$THREADS" --output-format jsonl 2>/dev/null | grep '^{' > "$WORK/llama-batched-bench.jsonl"
.build/release/quantserve bench --model "$MODEL" --quant int8 --threads "$THREADS" --concurrency "$N" --json \
  > "$WORK/quantserve-batched.json"
python3 - "$WORK/llama-batched-bench.jsonl" "$WORK/quantserve-batched.json" "$N" <<'PY'
import json, sys
peer = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
ours = json.load(open(sys.argv[2]))[0]
n = sys.argv[3]
print(f"| sequences | quantserve int8 aggregate tok/s | llama.cpp Q8_0 S_TG | ratio |")
print("|---|---|---|---|")
print(f"| {n} | {ours['aggregate_tok_s']:.1f} | {peer['speed_tg']:.1f} | {ours['aggregate_tok_s'] / peer['speed_tg']:.2f} |")
PY
