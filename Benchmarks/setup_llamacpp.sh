#!/usr/bin/env bash
# Builds llama.cpp's command-line tools (the peer for every side-by-side figure) from the source distribution of
# llama-cpp-python on PyPI, once, into $CACHE (default ~/.cache/quantserve/llama.cpp). Prints the bin directory.
# About 10 minutes on 2 cores the first time; instant afterwards.
set -euo pipefail
VERSION=0.3.36
CACHE=${QUANTSERVE_LLAMACPP:-$HOME/.cache/quantserve/llama.cpp}
BIN="$CACHE/src/llama_cpp_python-$VERSION/vendor/llama.cpp/build/bin"
TOOLS="llama-quantize llama-bench llama-perplexity llama-batched-bench llama-server"
if [ -x "$BIN/llama-bench" ] && [ -x "$BIN/llama-quantize" ] && [ -x "$BIN/llama-perplexity" ]; then echo "$BIN"; exit 0; fi
command -v cmake >/dev/null || { echo "setup_llamacpp: cmake is missing (apt-get install cmake)" >&2; exit 1; }
mkdir -p "$CACHE/src"
cd "$CACHE/src"
[ -f "llama_cpp_python-$VERSION.tar.gz" ] || python3 -m pip download --no-deps --no-binary :all: -d . "llama-cpp-python==$VERSION" >&2
[ -d "llama_cpp_python-$VERSION" ] || tar xzf "llama_cpp_python-$VERSION.tar.gz"
cd "llama_cpp_python-$VERSION/vendor/llama.cpp"
cmake -B build -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DGGML_NATIVE=ON >&2
# shellcheck disable=SC2086
cmake --build build -j"$(nproc)" --target $TOOLS >&2
echo "$BIN"
