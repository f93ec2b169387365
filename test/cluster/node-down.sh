#!/usr/bin/env bash
# Removes the real node and everything it made, whether node-up.sh finished, failed halfway or its processes
# crashed, and whichever checkout started it: processes by pid file and by what they run (the node's fixed
# state paths are on their command lines), every container process by its cgroup, containers and sandboxes,
# mounts, network namespaces, kube-proxy's and the kubelet's rules, the bridge and the guard, the sysctls, the
# directories. Only containerd's image store is kept (in $NODE_DATA_DIR/containerd), as a cache, when containerd
# could still say which containers to remove; otherwise it goes too.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$here/ports.env"
bin="$root/.cache/bin"
dir="$root/.cache/cluster"
state="$NODE_STATE_DIR"
data="$NODE_DATA_DIR"
[ "$(id -u)" -eq 0 ] || exit 0 # a node needs root to exist

# Processes of the node: ours by pid file, and any other checkout's by their command line.
node_pids() {
  local pid exe
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
    case "${exe##*/}" in
      kubelet | kube-proxy | containerd | containerd-shim-runc-v2 | coredns)
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE "$state|$dir/(kubelet|kube-proxy|coredns)" &&
          echo "$pid"
        ;;
    esac
  done
}
stop_pid() { # pid name
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 1 30); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}
# The kubelet first, so that it restarts nothing while the rest goes.
for name in kubelet kube-proxy coredns; do
  pid=$(cat "$dir/pids/$name.pid" 2>/dev/null) && stop_pid "$pid" "$name"
  rm -f "$dir/pids/$name.pid"
done
for pid in $(node_pids); do
  case "$(readlink "/proc/$pid/exe" 2>/dev/null)" in */kubelet | */kube-proxy | */coredns) stop_pid "$pid" ;; esac
done

# Every container's processes: they live in the kubelet's cgroups (cgroupfs driver, under kubepods).
for round in 1 2 3; do
  left=0
  for procs in /sys/fs/cgroup/*/kubepods/cgroup.procs /sys/fs/cgroup/*/kubepods/*/cgroup.procs \
    /sys/fs/cgroup/*/kubepods/*/*/cgroup.procs /sys/fs/cgroup/*/kubepods/*/*/*/cgroup.procs; do
    [ -f "$procs" ] || continue
    for pid in $(cat "$procs" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null && left=1; done
  done
  [ "$left" -eq 0 ] && break
  sleep 0.5
  [ "$round" -lt 3 ] || echo "node: container processes still running after SIGKILL" >&2
done
# The containers' and sandboxes' records and file systems go; the images stay (unpacking them again costs a
# minute and a half per start). Without a containerd that answers, its whole store goes instead (below).
keep_images=0
ctr=(timeout 20 "$bin/ctr" --address "$state/containerd/containerd.sock" --namespace k8s.io)
if [ -x "$bin/ctr" ] && "${ctr[@]}" version >/dev/null 2>&1; then
  keep_images=1
  for task in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
    "${ctr[@]}" tasks delete --force "$task" >/dev/null 2>&1 || keep_images=0
  done
  for container in $("${ctr[@]}" containers ls -q 2>/dev/null); do
    "${ctr[@]}" containers delete "$container" >/dev/null 2>&1 || keep_images=0
  done
fi
# containerd, then the shims (they exit once their containers are gone).
pid=$(cat "$dir/pids/containerd.pid" 2>/dev/null) && stop_pid "$pid"
rm -f "$dir/pids/containerd.pid"
for pid in $(node_pids); do stop_pid "$pid"; done
if [ -n "$(node_pids)" ]; then
  echo "node: processes left: $(node_pids | tr '\n' ' ')" >&2
fi

# The kubelet's cgroups, deepest first.
for controller in /sys/fs/cgroup/*/; do
  [ -d "$controller/kubepods" ] || continue
  find "$controller/kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done

# Mounts under the node's directories (volumes, overlay roots, shm), deepest first; then the pods' network
# namespaces (their veths go with them).
for base in "$data" "$state"; do
  awk -v base="$base" '$5 == base || index($5, base "/") == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r mountpoint; do umount -l "$mountpoint" 2>/dev/null || true; done || true
done
for netns in /run/netns/cni-*; do
  [ -e "$netns" ] || continue
  ip netns delete "${netns##*/}" 2>/dev/null || { umount -l "$netns" 2>/dev/null; rm -f "$netns"; }
done

# kube-proxy's nftables tables, and the chains the kubelet adds through iptables (KUBE-FIREWALL and friends).
nft delete table ip kube-proxy 2>/dev/null || true
nft delete table ip6 kube-proxy 2>/dev/null || true
for family in iptables ip6tables; do
  for table in filter nat mangle; do
    command -v "$family" >/dev/null || continue
    # Rules that jump to a KUBE- chain, then the chains themselves.
    "$family-save" -t "$table" 2>/dev/null | grep -E '^-A [A-Z-]+ .*-j KUBE-' | grep -vE '^-A KUBE-' |
      sed 's/^-A /-D /' | while read -r rule; do eval "$family -t $table $rule" 2>/dev/null || true; done || true
    for chain in $("$family-save" -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[A-Z0-9-]*\) .*/\1/p'); do
      "$family" -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $("$family-save" -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[A-Z0-9-]*\) .*/\1/p'); do
      "$family" -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
done

bash "$here/node-network.sh" down
# The kubelet writes pod logs to fixed paths: removed when node-up.sh found them absent.
[ -f "$state/made-dirs" ] && xargs -r rm -rf <"$state/made-dirs"
rm -rf "$state" "$data/kubelet" "$data/kubelet-pki"
[ "$keep_images" -eq 1 ] || rm -rf "$data"
echo "node: down"
