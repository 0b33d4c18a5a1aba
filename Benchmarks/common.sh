# Sourced (after `cd` to the repository root and setting MODEL) by the scripts that measure QuantServe beside
# llama.cpp: the peer's tools, the work folder, our binary, the threads, and the helpers they share.
LLAMA=$(Benchmarks/setup_llamacpp.sh)
WORK=${QUANTSERVE_BENCH_DIR:-$HOME/.cache/quantserve/bench}
BIN=${BIN:-.build/release/quantserve}
THREADS=$(nproc)
mkdir -p "$WORK"

# The llama.cpp type a level is compared with: fp16 -> F16, int8 -> Q8_0, the 4-bit levels -> Q4_0.
peer_type() { case $1 in fp16) echo F16 ;; int8) echo Q8_0 ;; *) echo Q4_0 ;; esac; }

# Makes $WORK/TYPE.gguf, llama-quantize's requantization of $MODEL, once (for each TYPE given).
make_peer_ggufs() {
  local t
  for t in "$@"; do
    [ -f "$WORK/$t.gguf" ] || "$LLAMA/llama-quantize" --allow-requantize "$MODEL" "$WORK/$t.gguf" "$t" 2 \
      > "$WORK/quantize-$t.log" 2>&1
  done
}

# Waits until the server on loopback port $1 answers /health with 200 (two minutes at most), else exits.
wait_healthy() {
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$1/health" > /dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "$(basename "$0"): the server on port $1 did not become healthy" >&2; exit 1
}
