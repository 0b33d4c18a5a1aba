# QuantServe in a container: the Swift build on Debian, then a slim Debian runtime with only the C libraries the
# binary links (OpenBLAS, libmicrohttpd). The runtime's package list is the Makefile's RUNTIME_PACKAGES, checked
# against the binary's own dependencies by `make docker-lint` (in make test).
#   docker build -t quantserve .
#   docker run -p 8080:8080 -v $PWD/models:/models:ro quantserve serve --model /models/MODEL.gguf --host 0.0.0.0

ARG SWIFT_IMAGE=swift:6.3-bookworm

FROM ${SWIFT_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libopenblas-dev libmicrohttpd-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources Sources
RUN swift build -c release --static-swift-stdlib \
 && mkdir -p /out \
 && cp .build/release/quantserve /out/ \
 && cp -r .build/release/*.resources /out/

FROM debian:bookworm-slim AS runtime
ARG RUNTIME_PACKAGES="libopenblas0-pthread libmicrohttpd12"
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${RUNTIME_PACKAGES} \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --home-dir /tmp --no-create-home quantserve
COPY --from=build /out/ /opt/quantserve/
USER 10001
ENV HOME=/tmp
EXPOSE 8080
ENTRYPOINT ["/opt/quantserve/quantserve"]
CMD ["serve", "--model", "/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "--host", "0.0.0.0", "--port", "8080"]
