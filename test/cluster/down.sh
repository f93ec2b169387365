#!/usr/bin/env bash
# Stops every process test/cluster/up.sh started, by pid, removes the real node (node-down.sh), and checks that
# nothing is left listening.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir="$root/.cache/cluster"
source "$here/pid.sh"
source "$here/ports.env"

bash "$here/node-down.sh"
# Reverse start order: nothing writes to etcd while it stops.
for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  if pid=$(cluster_pid "$dir" "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    echo "cluster: stopped $name (pid $pid)"
  fi
  rm -f "$dir/pids/$name.pid"
done
rm -f "$dir/kubeconfig"

ports="$ETCD_PORT|$ETCD_PEER_PORT|$ETCD_METRICS_PORT|$APISERVER_PORT|$CONTROLLER_MANAGER_PORT|$SCHEDULER_PORT|$KWOK_PORT"
ports+="|$KUBELET_PORT|$KUBELET_HEALTHZ_PORT|$KUBE_PROXY_HEALTHZ_PORT|$KUBE_PROXY_METRICS_PORT|$COREDNS_READY_PORT"
if ss -ltnH 2>/dev/null | awk '{print $4}' | grep -Eq ":($ports)\$"; then
  echo "cluster: something still listens on a control-plane port:" >&2
  ss -ltnp | grep -E ":($ports) " >&2
  exit 1
fi
echo "cluster: down"
