# syntax=docker/dockerfile:1
# The reference phone: cloudphone-simulator publishes stamped frames into the shared framebuffer the way a
# phone's compositor does (for trying the operator without Android, and for tests). It needs only libc.
# Build from the repository root:  docker build -f images/simulator.Dockerfile -t cloudphone/simulator:0.1.0 .
# scripts/check-images.ts checks this file without a Docker engine (npm test runs it).

ARG DEBIAN_IMAGE=debian:12.12-slim

FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc make libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY native/ native/
RUN make -C native build/cloudphone-simulator

FROM ${DEBIAN_IMAGE} AS runtime
COPY --from=build /src/native/build/cloudphone-simulator /usr/local/bin/cloudphone-simulator
USER 1000:1000
ENTRYPOINT ["/usr/local/bin/cloudphone-simulator"]
