#!/usr/bin/env bash
# `quantserve bench serve` checked against an independent load generator (../shared/bench/loadgen.py, or LOADGEN),
# on the same server right before and after, for `quantserve serve` and for llama-server: the same 48 streaming
# completions (loadgen's four prompts, "(variant i)"), 64 tokens each with ignore_eos, 16 clients. Prints each
# run's figures and bench serve's output tok/s and median TTFT as ratios to each loadgen run (before, after).
#   [LEVEL=int8] Benchmarks/compare_loadgen.sh [MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}
LEVEL=${LEVEL:-int8}
LOADGEN=${LOADGEN:-../shared/bench/loadgen.py}
. Benchmarks/common.sh
PEER=$(peer_type "$LEVEL")
make_peer_ggufs "$PEER"
DATASET="$WORK/loadgen-prompts.jsonl"
python3 - "$LOADGEN" "$DATASET" <<'PY'
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("loadgen", sys.argv[1]); m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
with open(sys.argv[2], "w") as f:
    for i in range(48):
        f.write(json.dumps({"prompt": m.PROMPTS[i % len(m.PROMPTS)] + f" (variant {i})"}) + "\n")
PY
PORT=18191
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; }
trap cleanup EXIT

measure() {  # name model
  local url="http://127.0.0.1:$PORT"
  python3 "$LOADGEN" --url "$url" --model "$2" --concurrency 4 --requests 4 > /dev/null  # warm-up
  local before ours after
  before=$(python3 "$LOADGEN" --url "$url" --model "$2" --concurrency 16 --requests 48 --max-tokens 64)
  ours=$("$BIN" bench serve --url "$url" --model "$2" --dataset "$DATASET" --num-prompts 48 --output-len 64 \
         --concurrency 16 --json)
  after=$(python3 "$LOADGEN" --url "$url" --model "$2" --concurrency 16 --requests 48 --max-tokens 64)
  python3 - "$1" "$before" "$ours" "$after" <<'PY'
import json, sys
name, before, ours, after = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])[0], json.loads(sys.argv[4])
tps = [ours["output_throughput"] / r["output_tok_per_s"] for r in (before, after)]
ttft = [ours["median_ttft_ms"] / r["ttft_p50_ms"] for r in (before, after)]
print(f"{name}: loadgen {before['output_tok_per_s']} / {after['output_tok_per_s']} tok/s, TTFT p50 {before['ttft_p50_ms']} / "
      f"{after['ttft_p50_ms']} ms; bench serve {ours['output_throughput']:.1f} tok/s, TTFT median {ours['median_ttft_ms']:.0f} ms "
      f"({ours['completed']} ok, {ours['failed']} failed); bench serve / loadgen before, after: throughput "
      f"{tps[0]:.3f}, {tps[1]:.3f}; TTFT {ttft[0]:.3f}, {ttft[1]:.3f}")
PY
}

"$BIN" serve --model "$MODEL" --quant "$LEVEL" --threads "$THREADS" --max-seqs 16 --ctx-size 1024 --port "$PORT" \
  > "$WORK/quantserve-serve.log" 2>&1 &
PID=$!
wait_healthy "$PORT"
measure "quantserve $LEVEL" "$(basename "$MODEL" .gguf)"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""

"$LLAMA/llama-server" -m "$WORK/$PEER.gguf" -t "$THREADS" -np 16 -c $((1024 * 16)) --host 127.0.0.1 --port "$PORT" \
  > "$WORK/llama-server.log" 2>&1 &
PID=$!
wait_healthy "$PORT"
measure "llama-server $PEER" "$PEER"
