#!/usr/bin/env bash
# Loads the images build-images.sh made into the real node's containerd (namespace k8s.io, where the kubelet looks),
# replacing the ones of the same names: the node never pulls. After changing code while the cluster runs:
#   test/cluster/build-images.sh && test/cluster/load-images.sh
# then delete the pods that run the old image (the chart's and the phones') so that they start again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$here/ports.env"
source "$here/images.env"
source "$here/podman.sh"
archive="$root/.cache/images/node-images.tar"
mkdir -p "$(dirname "$archive")"
podman save --quiet -m --format docker-archive -o "$archive.tmp" "$PAUSE_IMAGE" "$OPERATOR_IMAGE" "$SIDECAR_IMAGE" "$SIMULATOR_IMAGE"
mv "$archive.tmp" "$archive"
# ctr warns on every call that cgroup v1 is deprecated: only its errors are worth showing.
if ! "$root/.cache/bin/ctr" --address "$NODE_STATE_DIR/containerd/containerd.sock" --namespace k8s.io \
  images import "$archive" >"$archive.log" 2>&1; then
  grep -v 'cgroup v1 is deprecated' "$archive.log" >&2
  rm -f "$archive" "$archive.log"
  exit 1
fi
rm -f "$archive" "$archive.log"
