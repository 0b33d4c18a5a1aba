#!/usr/bin/env bash
# Single-stream speed side by side with llama.cpp, in one run on this machine:
# llama-bench (pp128, tg64, 2 threads) on F16, Q8_0 and Q4_0 requantizations of the model, and `quantserve bench`
# at the matching levels (fp16, int8, int4) plus nf4 (against Q4_0), and llama-bench on the model file itself beside
# `quantserve bench --quant native` (the file at its own quantization).
# This machine's speed drifts by tens of percent over minutes, so each level is measured right after its peer, in
# ROUNDS rounds (default 3); the table gives the median of each engine's figures and of the per-round ratios, and
# the ratios' range.
#   [ROUNDS=3] [LEVELS="fp16 int8 int4 nf4 native"] Benchmarks/compare_speed.sh [MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}
ROUNDS=${ROUNDS:-3}
LEVELS=${LEVELS:-fp16 int8 int4 nf4 native}
. Benchmarks/common.sh
make_peer_ggufs F16 Q8_0 Q4_0
# A first load of each level outside the rounds (int4's AWQ search, if not cached yet; the page cache).
"$BIN" bench --model "$MODEL" --quant "$(echo $LEVELS | tr ' ' ,)" --threads "$THREADS" --repetitions 1 --json > /dev/null
RESULTS="$WORK/compare_speed.jsonl"
: > "$RESULTS"
for round in $(seq "$ROUNDS"); do
  for level in $LEVELS; do
    case $level in fp16) peer=F16 ;; int8) peer=Q8_0 ;; native) peer=file ;; *) peer=Q4_0 ;; esac
    peer_model="$WORK/$peer.gguf"
    [ "$level" = native ] && peer_model="$MODEL"
    "$LLAMA/llama-bench" -m "$peer_model" -p 128 -n 64 -t "$THREADS" -o json > "$WORK/llama-bench.json"
    "$BIN" bench --model "$MODEL" --quant "$level" --threads "$THREADS" --json > "$WORK/quantserve-bench.json"
    python3 - "$round" "$level" "$peer" "$WORK/llama-bench.json" "$WORK/quantserve-bench.json" >> "$RESULTS" <<'PY'
import json, sys
round_, level, peer, peer_file, ours_file = sys.argv[1:]
peer_rows = json.load(open(peer_file))
ours = json.load(open(ours_file))[0]
pp = next(r["avg_ts"] for r in peer_rows if r["n_prompt"] > 0)
tg = next(r["avg_ts"] for r in peer_rows if r["n_gen"] > 0)
print(json.dumps({"round": int(round_), "level": level, "peer": peer, "ours": ours, "peer_pp": pp, "peer_tg": tg}))
PY
  done
done
python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print("| level | weights MiB | load s | prefill tok/s (pp128) | llama.cpp pp128 | ratio (range) | decode tok/s (tg64) | llama.cpp tg64 | ratio (range) |")
print("|---|---|---|---|---|---|---|---|---|")
for level in ["fp16", "int8", "int4", "nf4", "native"]:
    rs = [r for r in rows if r["level"] == level]
    if not rs: continue
    med = lambda f: statistics.median(f(r) for r in rs)
    span = lambda f: f"{min(f(r) for r in rs):.2f}-{max(f(r) for r in rs):.2f}"
    pp_ratio = lambda r: r["ours"]["prefill_tok_s"] / r["peer_pp"]
    tg_ratio = lambda r: r["ours"]["decode_tok_s"] / r["peer_tg"]
    print(f"| {level} (vs {rs[0]['peer']}) | {rs[0]['ours']['weights_bytes'] / 2**20:.0f} | {med(lambda r: r['ours']['load_s']):.2f} | "
          f"{med(lambda r: r['ours']['prefill_tok_s']):.1f} | {med(lambda r: r['peer_pp']):.1f} | {med(pp_ratio):.2f} ({span(pp_ratio)}) | "
          f"{med(lambda r: r['ours']['decode_tok_s']):.1f} | {med(lambda r: r['peer_tg']):.1f} | {med(tg_ratio):.2f} ({span(tg_ratio)}) |")
print(f"\n{max(r['round'] for r in rows)} rounds; medians over rounds, the ratio's range in brackets.")
PY
