#!/usr/bin/env bash
# Quality per quantization level on held-out text, ours and llama.cpp's, in one run.
#   Benchmarks/quality.sh [MODEL] [LLAMA_BIN_DIR] [F16_GGUF]
# Ours: `quantserve perplexity --compare fp16` for each level (llama.cpp's method: ctx 512, second halves scored).
# llama.cpp (when its tools are given): llama-perplexity on F16, Q8_0 and Q4_0 requantizations of the same weights,
# with --kl-divergence against F16 for the same-top-1 and KLD figures.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}
LLAMA=${2:-}
F16=${3:-}
TEXT=Benchmarks/data/heldout.txt
BIN=${BIN:-.build/release/quantserve}

for level in int8 int4 int4-rtn nf4; do
  "$BIN" perplexity --model "$MODEL" --quant "$level" --compare fp16 --file "$TEXT" --ctx-size 512
done

if [ -n "$LLAMA" ] && [ -n "$F16" ]; then
  dir=$(dirname "$F16")
  for t in Q8_0 Q4_0; do
    [ -f "$dir/$t.gguf" ] || "$LLAMA/llama-quantize" --allow-requantize "$F16" "$dir/$t.gguf" "$t" 2 > /dev/null 2>&1
  done
  "$LLAMA/llama-perplexity" -m "$F16" -f "$TEXT" -c 512 -t 2 --kl-divergence-base "$dir/f16.kld" 2>&1 \
    | grep -E "Final estimate" | sed 's/^.*Final/llama.cpp F16: Final/'
  for t in Q8_0 Q4_0; do
    "$LLAMA/llama-perplexity" -m "$dir/$t.gguf" -f "$TEXT" -c 512 -t 2 --kl-divergence-base "$dir/f16.kld" \
      --kl-divergence 2>&1 | grep -E "Mean PPL|Mean +KLD|Same top p" | sed "s/^/llama.cpp $t: /"
  done
fi
