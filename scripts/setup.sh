#!/usr/bin/env bash
# Installs everything cloudphone needs on a fresh Debian bookworm machine, and does nothing when it is all
# there already: Debian packages, npm dependencies (Node.js 24 among them), and the control-plane tools
# built from their Go modules (test/cluster/build-tools.sh).
#
#   scripts/setup.sh            everything
#   scripts/setup.sh --no-tools packages and npm dependencies only
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# flatc and the FlatBuffers headers for the generated protocol code; a C++ toolchain for native code;
# openssl for the local control plane's certificates; iproute2 (ss) to check nothing is left listening.
# The media path: libx264, libyuv, libavformat (its mpegts muxer) and libsrt in the GnuTLS flavour that
# libavformat itself links, so one libsrt lives in the sidecar. ffmpeg is the SRT receiver in tests.
# clang and its runtime libraries build the libFuzzer target. Chromium is the browser the player page is tested
# in (driven by playwright-core, which never downloads a browser of its own). nftables makes real packet loss
# on a sidecar's UDP port in the loss test (this kernel has no tc netem). coturn is the TURN server viewers relay
# through in the TURN REST test, started by the test on loopback (Debian's service stays off: /etc/default/coturn).
# The local cluster's real node: podman builds the images from images/*.Dockerfile (no Docker engine here) on a
# Debian base that mmdebstrap makes; Debian's runc runs the containers under containerd; the CNI plugins wire the
# pods to the node's bridge; iptables and conntrack are what the kubelet and kube-proxy call.
# GStreamer with its x264enc (plugins-ugly), srtsink and mpegtsmux (plugins-bad) is a peer in `npm run bench`.
apt_packages=(flatbuffers-compiler libflatbuffers-dev g++ make pkg-config openssl curl iproute2 ca-certificates
  libx264-dev libyuv-dev libsrt-gnutls-dev libavformat-dev libavcodec-dev libavutil-dev ffmpeg
  clang libclang-rt-14-dev chromium nftables coturn
  podman mmdebstrap runc containernetworking-plugins iptables conntrack
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly)

missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci only when package.json or the lockfile changed since the last install.
stamp=node_modules/.cloudphone-setup
wanted=$(cat package.json package-lock.json | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  command -v npm >/dev/null || { echo "setup: npm is required (any Node.js with npm; Node.js 24 itself comes from npm)" >&2; exit 1; }
  echo "setup: installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$wanted" >"$stamp"
fi
node_version=$(node_modules/.bin/node --version)
case "$node_version" in v24.*) ;; *) echo "setup: expected Node.js 24 in node_modules/.bin, found $node_version" >&2; exit 1 ;; esac

# The native addon, the producer library, the simulator and the fuzz target (make rebuilds only what changed).
make -s -C native -j"$(nproc)" all fuzz

if [ "${1:-}" != "--no-tools" ]; then
  bash test/cluster/build-tools.sh
fi
echo "setup: ready (Node.js $node_version)"
