#!/usr/bin/env bash
# HumanEval pass@1 per level, ours and llama.cpp's, in one run (greedy; completion style unless STYLE=chat or
# STYLE=completion,chat): our levels through `quantserve generate --prompts-file`, then llama-server on the Q8_0 and
# Q4_0 requantizations of the same GGUF and on the Q4_K_M file itself, all through Benchmarks/eval.py.
# Writes $OUT (default Benchmarks/results/humaneval.json) and prints the Markdown table.
#   [LEVELS=fp16,int8,int4,nf4] [STYLE=completion] [LIMIT=N] Benchmarks/eval_llamacpp.sh [MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}
LEVELS=${LEVELS:-fp16,int8,int4,nf4}
STYLE=${STYLE:-completion}
OUT=${OUT:-Benchmarks/results/humaneval.json}
PY=${PY:-.venv/bin/python}
. Benchmarks/common.sh
PORT=18192
LIMIT_ARGS=()
[ -n "${LIMIT:-}" ] && LIMIT_ARGS=(--limit "$LIMIT")
mkdir -p "$(dirname "$OUT")"
make_peer_ggufs Q8_0 Q4_0
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; }
trap cleanup EXIT
parts=()
"$PY" Benchmarks/eval.py --binary "$BIN" --model "$MODEL" --quant "$LEVELS" --style "$STYLE" "${LIMIT_ARGS[@]}" \
  --out "$WORK/eval-ours.json" > /dev/null
parts+=("$WORK/eval-ours.json")
for file in "$WORK/Q8_0.gguf" "$WORK/Q4_0.gguf" "$MODEL"; do
  name=$(basename "$file" .gguf)
  [ "$file" = "$MODEL" ] && name="Q4_K_M file"
  "$LLAMA/llama-server" -m "$file" -t "$THREADS" -np 8 -c 16384 --host 127.0.0.1 --port "$PORT" > "$WORK/llama-server-eval.log" 2>&1 &
  PID=$!
  wait_healthy "$PORT"
  "$PY" Benchmarks/eval.py --url "http://127.0.0.1:$PORT" --served-model "$name" --label "llama.cpp $name" \
    --style "$STYLE" --concurrency 8 "${LIMIT_ARGS[@]}" --out "$WORK/eval-$name.json" > /dev/null
  parts+=("$WORK/eval-$name.json")
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
done
"$PY" - "$OUT" "${parts[@]}" <<'PY'
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("ev", "Benchmarks/eval.py"); ev = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ev)
rows = [r for path in sys.argv[2:] for r in json.load(open(path))]
json.dump(rows, open(sys.argv[1], "w"), indent=1)
print(ev.markdown(rows))
PY
