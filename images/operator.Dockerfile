# syntax=docker/dockerfile:1
# The operator: Node.js 24 running operator/src/main.ts (no native code).
# Build from the repository root:  docker build -f images/operator.Dockerfile -t cloudphone/operator:0.1.0 .
# scripts/check-images.ts checks this file without a Docker engine (npm test runs it).

ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
COPY package.json ./
COPY --from=build /src/node_modules/ node_modules/
COPY common/ common/
COPY schemas/runtime/ schemas/runtime/
COPY generated/ts/ generated/ts/
COPY operator/src/ operator/src/
USER 1000:1000
ENV NODE_ENV=production
# V8 sizes its young generation from the machine's memory (here 128 MB of it on a 24 GiB node); an operator's
# garbage is small and short-lived, and 16 MB semi-spaces took 100 MB off its peak resident set at 10 000 pods
# (bench/operator.ts) for no loss of webhook latency inside the process.
ENTRYPOINT ["node", "--max-semi-space-size=16", "operator/src/main.ts"]
