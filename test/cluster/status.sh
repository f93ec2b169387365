#!/usr/bin/env bash
# Exits 0 when every process of the local control plane runs and the apiserver is ready.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir="$root/.cache/cluster"
source "$here/pid.sh"
for name in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do
  pid=$(cluster_pid "$dir" "$name") || { echo "$name: not running"; exit 1; }
  echo "$name: running (pid $pid)"
done
[ -f "$dir/kubeconfig" ] || { echo "no kubeconfig"; exit 1; }
"$root/.cache/bin/kubectl" --kubeconfig "$dir/kubeconfig" get --raw /readyz >/dev/null || { echo "apiserver not ready"; exit 1; }
echo "apiserver: ready"
source "$here/ports.env"
if [ "${CLOUDPHONE_NO_NODE:-}" != 1 ]; then
  for name in containerd kubelet kube-proxy coredns; do
    pid=$(cat "$dir/pids/$name.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null || { echo "$name: not running"; exit 1; }
  done
  "$root/.cache/bin/kubectl" --kubeconfig "$dir/kubeconfig" get node "$NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True || { echo "node: not ready"; exit 1; }
  echo "node $NODE_NAME: ready"
fi
