#!/usr/bin/env bash
# Restarts one process of the running local control plane with the same command line, and waits until the
# cluster answers again: restart.sh kube-apiserver. Tests use it to show that clients survive an apiserver restart.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir="$root/.cache/cluster"
source "$here/pid.sh"
name=${1:?usage: restart.sh NAME}
[ -f "$dir/cmd/$name" ] || { echo "restart: no recorded command for $name" >&2; exit 1; }

if pid=$(cluster_pid "$dir" "$name"); then
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
fi
bash -c "exec setsid $(cat "$dir/cmd/$name")" >>"$dir/logs/$name.log" 2>&1 </dev/null &
echo $! >"$dir/pids/$name.pid"
for _ in $(seq 1 240); do
  if "$root/.cache/bin/kubectl" --kubeconfig "$dir/admin.kubeconfig" get --raw /readyz >/dev/null 2>&1; then
    echo "restart: $name is back"
    exit 0
  fi
  sleep 0.5
done
echo "restart: the cluster did not come back after restarting $name" >&2
exit 1
