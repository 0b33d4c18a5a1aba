# QuantServe: `make run` sets up everything and starts the default model; `make test` sets up and runs the tests.

SWIFT        ?= swift
MODEL        ?= models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
QUANT        ?= int8
BIN          := .build/release/quantserve
APT_PACKAGES := libopenblas-dev libmicrohttpd-dev pkg-config python3 python3-pip unzip
SUDO         := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The test suite runs optimised: debug builds are far too slow for real-model tests.
TEST_FLAGS   := -c release -Xswiftc -enable-testing

.PHONY: run test build deps install-packages model gemma-model chat bench clean

run: deps model build chat

test: deps model gemma-model
	$(SWIFT) build $(TEST_FLAGS) --build-tests
	$(SWIFT) test $(TEST_FLAGS) --skip-build

build: deps
	$(SWIFT) build -c release

# Installs the Debian packages that are missing (apt-get; sudo when not root).
deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(APT_PACKAGES)"

install-packages:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

model:
	@models/fetch

# The second real model (Gemma 3 270M, Q4_K_M): its tests need it; `make run` does not.
gemma-model:
	@models/fetch gemma

# The main job until the HTTP server lands: an interactive prompt loop over `quantserve generate --chat`.
chat:
	@echo "QuantServe: $(MODEL) at $(QUANT). Type a prompt and press enter; Ctrl-D quits."
	@while printf '> ' && IFS= read -r prompt; do \
	  [ -n "$$prompt" ] || continue; \
	  $(BIN) generate --model "$(MODEL)" --quant $(QUANT) --chat --max-tokens 256 --prompt "$$prompt"; \
	done; echo

# Side by side with llama.cpp (builds its tools once, ~10 min): speed per level, batched decode, quality per level.
bench: deps model build
	@$(MAKE) --no-print-directory install-packages PACKAGES="cmake g++"
	Benchmarks/compare_speed.sh $(MODEL)
	Benchmarks/compare_batched.sh $(MODEL) 16
	Benchmarks/quality.sh $(MODEL) "$$(Benchmarks/setup_llamacpp.sh)" "$$HOME/.cache/quantserve/bench/F16.gguf"

clean:
	$(SWIFT) package clean
