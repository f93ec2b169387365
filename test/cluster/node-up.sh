#!/usr/bin/env bash
# Adds one real node to the local control plane (after up.sh made the certificates and the bridge): containerd
# with Debian's runc, the CNI bridge, the kubelet, kube-proxy (nftables) and CoreDNS, all on this machine.
# cloudphone's images are built with podman (build-images.sh) and imported into containerd: the node never pulls.
#
# The node is tainted $NODE_TAINT_KEY=true:NoSchedule and labelled $NODE_LABEL: only pods that tolerate the taint
# land on it (kwok's nodes keep everything else). node-down.sh removes all of it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$here/ports.env"
source "$here/images.env"
bin="$root/.cache/bin"
dir="$root/.cache/cluster"
pki="$dir/pki"
state="$NODE_STATE_DIR"
data="$NODE_DATA_DIR"
started=$SECONDS
say() { echo "node: [$((SECONDS - started))s] $*"; }
fail() {
  echo "node: $*" >&2
  tail -n 25 "$dir/logs/"{containerd,kubelet,kube-proxy,coredns}.log >&2 2>/dev/null || true
  exit 1
}
kubectl() { "$bin/kubectl" --kubeconfig "$dir/admin.kubeconfig" "$@"; }
ctr() { "$bin/ctr" --address "$state/containerd/containerd.sock" --namespace k8s.io "$@"; }

[ "$(id -u)" -eq 0 ] || fail "the real node needs root (containers, mounts, network namespaces)"
for need in /usr/sbin/runc /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback /usr/lib/cni/portmap; do
  [ -x "$need" ] || fail "$need is missing: run scripts/setup.sh"
done
mkdir -p "$state"/{containerd,cni/net.d,cni/ipam,kubelet} "$data"/{containerd,kubelet,kubelet-pki}

source "$here/background.sh"
gave_up() { fail "$1 did not come up"; }

# --- containerd ----------------------------------------------------------------------------------------------
# containerd's own limits: no CAP_SYS_RESOURCE in this VM, so it may not raise a container's OOM score
# adjustment above its own; the shim it starts is found on PATH.
cat >"$state/cni/net.d/10-cloudphone.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "cloudphone-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$state/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$NODE_IP" }]],
        "routes": [{ "dst": "$SERVICE_CIDR", "gw": "$NODE_IP" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
cat >"$state/containerd/config.toml" <<EOF
version = 3
root = "$data/containerd"
state = "$state/containerd/state"
[grpc]
  address = "$state/containerd/containerd.sock"
[ttrpc]
  address = "$state/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$PAUSE_IMAGE"
[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      BinaryName = "/usr/sbin/runc"
      SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$state/cni/net.d"
EOF
PATH="$bin:$PATH" start containerd "$bin/containerd" --config "$state/containerd/config.toml" --log-level warn
wait_for containerd ctr version
say "containerd ready"

# --- images ---------------------------------------------------------------------------------------------------
bash "$here/build-images.sh"
bash "$here/load-images.sh"
say "images imported into containerd"

# --- kubelet --------------------------------------------------------------------------------------------------
cat >"$state/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This VM has cgroup v1 only and no systemd.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$state/containerd/containerd.sock
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $pki/kubelet.crt
tlsPrivateKeyFile: $pki/kubelet.key
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $pki/ca.crt }
authorization: { mode: Webhook }
clusterDNS: [$NODE_IP]
clusterDomain: $CLUSTER_DNS_DOMAIN
# The host's resolver is not for pods: names outside the cluster are not theirs to look up.
resolvConf: $state/kubelet/resolv.conf
podCIDR: $POD_CIDR
maxPods: 60
# No CAP_SYS_RESOURCE here: the kubelet may not lower its own OOM score.
oomScoreAdj: 0
failSwapOn: false
serializeImagePulls: false
registerWithTaints:
  - { key: $NODE_TAINT_KEY, value: "true", effect: NoSchedule }
# Tests fill and empty this node quickly; a nearly full disk of the machine must not evict the phones.
evictionHard: { memory.available: 200Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1% }
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
EOF
: >"$state/kubelet/resolv.conf"
for made in /var/log/pods /var/log/containers; do [ -e "$made" ] || echo "$made" >>"$state/made-dirs"; done
node_label=${NODE_LABEL%%=*}
start kubelet "$bin/kubelet" --config "$state/kubelet/config.yaml" --kubeconfig "$dir/kubelet.kubeconfig" \
  --root-dir "$data/kubelet" --cert-dir "$data/kubelet-pki" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
  --node-labels "$NODE_LABEL" --v 1
wait_for "node $NODE_NAME" kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
[ "$(kubectl get node "$NODE_NAME" -o jsonpath="{.metadata.labels.${node_label//./\\.}}")" = true ] ||
  fail "node $NODE_NAME lacks its label"
say "kubelet ready: node $NODE_NAME"

# --- kube-proxy -----------------------------------------------------------------------------------------------
cat >"$state/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
hostnameOverride: $NODE_NAME
clientConnection: { kubeconfig: $dir/kube-proxy.kubeconfig }
clusterCIDR: $POD_CIDR
healthzBindAddress: 127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$KUBE_PROXY_METRICS_PORT
# NodePorts only on the bridge's address: never on the machine's own network.
nodePortAddresses: [$NODE_IP/32]
# conntrack's table is the machine's: leave its sysctls alone.
conntrack: { maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
EOF
start kube-proxy "$bin/kube-proxy" --config "$state/kube-proxy.yaml" --v 1
wait_for kube-proxy curl -sf "http://127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT/healthz"
say "kube-proxy ready"

# --- CoreDNS: cluster names only, nothing forwarded off the machine ------------------------------------------
cat >"$state/Corefile" <<EOF
$CLUSTER_DNS_DOMAIN:53 {
  bind $NODE_IP
  errors
  health 127.0.0.1:$COREDNS_HEALTH_PORT
  ready 127.0.0.1:$COREDNS_READY_PORT
  kubernetes $CLUSTER_DNS_DOMAIN {
    kubeconfig $dir/coredns.kubeconfig local
  }
  cache 5
}
.:53 {
  bind $NODE_IP
  errors
  template ANY ANY {
    rcode NXDOMAIN
  }
}
EOF
start coredns "$bin/coredns" -conf "$state/Corefile"
wait_for coredns curl -sf "http://127.0.0.1:$COREDNS_READY_PORT/ready"
say "coredns ready on $NODE_IP:53"
