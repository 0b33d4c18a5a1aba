#!/usr/bin/env bash
# Serving throughput over HTTP side by side with llama.cpp's server, in one run on this machine:
# 16 concurrent streaming clients (../shared/bench/loadgen.py, or LOADGEN) against `quantserve serve --quant int8`
# and against `llama-server -np 16` on the Q8_0 requantization of the same GGUF, both at all cores, each on its own
# loopback port, in ROUNDS alternating rounds (default 3). Prints each run's JSON and the medians and ratios.
#   [ROUNDS=3] [CONCURRENCY=16] [REQUESTS=48] [LEVEL=int8] Benchmarks/compare_server.sh [MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-16}
REQUESTS=${REQUESTS:-48}
LEVEL=${LEVEL:-int8}
LOADGEN=${LOADGEN:-../shared/bench/loadgen.py}
. Benchmarks/common.sh
PEER=$(peer_type "$LEVEL")
make_peer_ggufs "$PEER"
OURS_PORT=18181
PEER_PORT=18182
RESULTS="$WORK/compare_server.jsonl"
: > "$RESULTS"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; }
trap cleanup EXIT

measure() {  # engine port model-name
  python3 "$LOADGEN" --url "http://127.0.0.1:$2" --model "$3" --concurrency 4 --requests 4 > /dev/null  # warm-up
  python3 "$LOADGEN" --url "http://127.0.0.1:$2" --model "$3" --concurrency "$CONCURRENCY" --requests "$REQUESTS"
}

for round in $(seq "$ROUNDS"); do
  "$LLAMA/llama-server" -m "$WORK/$PEER.gguf" -t "$THREADS" -np "$CONCURRENCY" -c $((1024 * CONCURRENCY)) \
    --host 127.0.0.1 --port "$PEER_PORT" > "$WORK/llama-server.log" 2>&1 &
  PID=$!
  wait_healthy "$PEER_PORT"
  peer=$(measure llama-server "$PEER_PORT" "$PEER")
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  "$BIN" serve --model "$MODEL" --quant "$LEVEL" --threads "$THREADS" --max-seqs "$CONCURRENCY" --ctx-size 1024 \
    --port "$OURS_PORT" --no-access-log > /dev/null 2> "$WORK/quantserve-serve.log" &
  PID=$!
  wait_healthy "$OURS_PORT"
  ours=$(measure quantserve "$OURS_PORT" "$(basename "$MODEL" .gguf)")
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  echo "{\"round\": $round, \"level\": \"$LEVEL\", \"peer\": $peer, \"ours\": $ours}" | tee -a "$RESULTS"
done

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = lambda xs: statistics.median(xs)
def col(side, key): return [r[side][key] for r in rows]
ratios = [r["ours"]["output_tok_per_s"] / r["peer"]["output_tok_per_s"] for r in rows]
print(f"\n{'':28}{'quantserve':>12}{'llama-server':>14}")
for key in ["output_tok_per_s", "ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms", "tpot_p99_ms", "errors"]:
    print(f"{key + ' (median)':28}{med(col('ours', key)):>12}{med(col('peer', key)):>14}")
print(f"throughput ratio ours/peer: median {med(ratios):.2f}, range {min(ratios):.2f}-{max(ratios):.2f} over {len(rows)} rounds")
PY
