#!/usr/bin/env bash
# The real node's network, made before the apiserver starts (it listens on the bridge's address so that pods
# reach it) and removed by node-down.sh:
#   - a bridge $NODE_BRIDGE with $NODE_IP; the CNI bridge plugin plugs each pod's veth into it;
#   - routes: the Service range goes to the bridge, so a packet to a ClusterIP that kube-proxy did not rewrite
#     dies on the bridge instead of following the default route off the machine;
#   - forwarding on (kube-proxy sends a pod's packet for a Service back out to the backend pod), guarded by an
#     nftables table that drops every forwarded packet entering or leaving the bridge through any other
#     interface: nothing from a pod leaves the machine, nothing from outside reaches a pod;
#   - sysctls this script and the kubelet change, saved first so that node-down.sh puts them back.
#
#   node-network.sh up | down
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/ports.env"
state="$NODE_STATE_DIR"
saved="$state/sysctl.saved"
guard_table=cloudphone_node_guard

# The kubelet sets the last three (kernel defaults it insists on); we set the first two.
sysctls=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables vm.overcommit_memory kernel.panic kernel.panic_on_oops)

up() {
  mkdir -p "$state"
  if [ ! -f "$saved" ]; then
    for key in "${sysctls[@]}"; do echo "$key=$(sysctl -n "$key")"; done >"$saved.tmp"
    mv "$saved.tmp" "$saved"
  fi
  if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link add "$NODE_BRIDGE" type bridge
  fi
  ip addr replace "$NODE_IP/${POD_CIDR#*/}" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  ip route replace "$SERVICE_CIDR" dev "$NODE_BRIDGE"

  nft delete table inet "$guard_table" 2>/dev/null || true
  nft -f - <<EOF
table inet $guard_table {
  chain forward {
    type filter hook forward priority -300; policy accept;
    iifname "$NODE_BRIDGE" oifname "$NODE_BRIDGE" accept
    iifname "$NODE_BRIDGE" counter drop comment "a pod's packet may not leave the machine"
    oifname "$NODE_BRIDGE" counter drop comment "nothing from outside the machine reaches a pod"
  }
}
EOF
  # Bridged pod-to-pod packets must pass conntrack, so that a Service's reply is rewritten back.
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
  sysctl -qw net.ipv4.ip_forward=1
}

down() {
  nft delete table inet "$guard_table" 2>/dev/null || true
  ip route del "$SERVICE_CIDR" dev "$NODE_BRIDGE" 2>/dev/null || true
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
  if [ -f "$saved" ]; then
    while IFS='=' read -r key value; do sysctl -qw "$key=$value" || true; done <"$saved"
    rm -f "$saved"
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
