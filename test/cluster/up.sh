#!/usr/bin/env bash
# Starts a real Kubernetes cluster on this machine, in the background: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok with fake nodes that run pods without containers (for scale), and
# one real node (node-up.sh: containerd, kubelet, kube-proxy, CoreDNS) whose pods run cloudphone's images.
# The apiserver listens on the node's bridge address, where both this machine and the pods reach it.
# Writes the admin kubeconfig to .cache/cluster/kubeconfig. Starting it again while it runs is harmless;
# a half-started or dead cluster is stopped and started afresh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin="$root/.cache/bin"
dir="$root/.cache/cluster"
pki="$dir/pki"
source "$here/ports.env"
export PATH="$bin:$PATH"
started=$SECONDS
say() { echo "cluster: [$((SECONDS - started))s] $*"; }

bash "$here/build-tools.sh"

kubeconfig="$dir/kubeconfig"
if bash "$here/status.sh" >/dev/null 2>&1; then
  say "already running (kubeconfig: $kubeconfig)"
  exit 0
fi
if { [ -d "$dir/pids" ] && [ -n "$(ls -A "$dir/pids" 2>/dev/null)" ]; } || [ -e "$NODE_STATE_DIR" ]; then
  say "a previous cluster is half up or dead: stopping it"
  bash "$here/down.sh"
fi
# Each start is a new, empty cluster: state from an earlier run would make tests depend on each other.
rm -rf "$dir/etcd" "$dir/logs" "$dir/pids" "$dir/cmd"
mkdir -p "$dir/logs" "$dir/pids" "$dir/cmd" "$pki"

# --- certificates -------------------------------------------------------------------------------
issue() { # name subject subjectAltName extendedKeyUsage
  local name=$1 subject=$2 san=$3 eku=$4
  [ -f "$pki/$name.crt" ] && return 0
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$pki/$name.key" \
    -out "$pki/$name.csr" -subj "$subject" 2>/dev/null
  local ext
  ext="keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=$eku"
  [ -n "$san" ] && ext="$ext\nsubjectAltName=$san"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 3650 \
    -out "$pki/$name.crt" -extfile <(printf "%b\n" "$ext") 2>/dev/null
  rm -f "$pki/$name.csr"
}
if [ ! -f "$pki/ca.crt" ]; then
  rm -f "$pki"/*
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$pki/ca.key" \
    -out "$pki/ca.crt" -days 3650 -subj "/CN=cloudphone-local-cluster-ca" 2>/dev/null
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
fi
issue apiserver "/CN=kube-apiserver" \
  "IP:$NODE_IP,IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc" serverAuth
issue admin "/O=system:masters/CN=cloudphone-admin" "" clientAuth
issue controller-manager "/CN=system:kube-controller-manager" "" clientAuth
issue scheduler "/CN=system:kube-scheduler" "" clientAuth
issue kwok "/O=system:masters/CN=kwok-controller" "" clientAuth
# The real node: the kubelet's client (the Node authorizer knows it by this name) and serving certificates, the
# apiserver's client certificate for the kubelet (logs, exec, port-forward), kube-proxy, CoreDNS.
issue kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" "" clientAuth
issue kubelet "/CN=$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME" serverAuth
issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "" clientAuth
issue kube-proxy "/CN=system:kube-proxy" "" clientAuth
issue coredns "/CN=cloudphone:coredns" "" clientAuth

write_kubeconfig() { # file user [certificate]
  local file=$1 user=$2 cert=${3:-$2}
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://$NODE_IP:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$pki/$cert.crt")
    client-key-data: $(base64 -w0 <"$pki/$cert.key")
contexts:
- name: local
  context: {cluster: local, user: $user}
current-context: local
EOF
}
for user in admin controller-manager scheduler kwok kube-proxy coredns; do
  write_kubeconfig "$dir/$user.kubeconfig" "$user"
done
write_kubeconfig "$dir/kubelet.kubeconfig" kubelet kubelet-client

# --- processes ----------------------------------------------------------------------------------
source "$here/background.sh"
gave_up() {
  say "$1 did not come up; last log lines:" >&2
  tail -n 30 "$dir/logs/"*.log >&2 || true
  bash "$here/down.sh" >&2 || true
  exit 1
}

bash "$here/node-network.sh" up

start etcd "$bin/etcd" --name local --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "local=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "http://127.0.0.1:$ETCD_METRICS_PORT" \
  --unsafe-no-fsync --quota-backend-bytes 8589934592 --log-level warn
wait_for etcd curl -sf "http://127.0.0.1:$ETCD_METRICS_PORT/health"
say "etcd ready"

start kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$APISERVER_PORT" \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --api-audiences https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --authorization-mode Node,RBAC \
  --enable-admission-plugins NodeRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
  --allow-privileged=true \
  --max-requests-inflight 1000 --max-mutating-requests-inflight 500 \
  --profiling=false --v 1
wait_for kube-apiserver kubectl --kubeconfig "$dir/admin.kubeconfig" get --raw /readyz
say "kube-apiserver ready"

start kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$dir/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" --use-service-account-credentials \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs=false \
  --leader-elect=false --kube-api-qps 200 --kube-api-burst 400 \
  --concurrent-deployment-syncs 10 --concurrent-replicaset-syncs 10 --concurrent-gc-syncs 30 \
  --profiling=false --v 1
start kube-scheduler "$bin/kube-scheduler" \
  --kubeconfig "$dir/scheduler.kubeconfig" \
  --authentication-kubeconfig "$dir/scheduler.kubeconfig" \
  --authorization-kubeconfig "$dir/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" \
  --leader-elect=false --kube-api-qps 200 --kube-api-burst 400 --profiling=false --v 1
start kwok "$bin/kwok" --kubeconfig "$dir/kwok.kubeconfig" --config "$bin/kwok-stages.yaml" \
  --manage-all-nodes=false --manage-nodes-with-label-selector type=kwok \
  --cidr 10.244.0.0/16 --node-ip 10.243.0.1 --server-address "127.0.0.1:$KWOK_PORT"

# --- fake nodes ---------------------------------------------------------------------------------
for i in $(seq 0 $((NODES - 1))); do
  cat <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  labels:
    type: kwok
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
status:
  allocatable: {cpu: "1000", memory: 4Ti, pods: "$PODS_PER_NODE"}
  capacity: {cpu: "1000", memory: 4Ti, pods: "$PODS_PER_NODE"}
---
EOF
done | kubectl --kubeconfig "$dir/admin.kubeconfig" apply -f - >/dev/null
wait_for "kwok nodes" kubectl --kubeconfig "$dir/admin.kubeconfig" wait --for=condition=Ready node -l type=kwok --timeout=5s
# Pods need their namespace's default ServiceAccount, which the controller-manager creates.
wait_for "service accounts" kubectl --kubeconfig "$dir/admin.kubeconfig" -n default get serviceaccount default

# CoreDNS reads Services and their endpoints, nothing else.
kubectl --kubeconfig "$dir/admin.kubeconfig" apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: "cloudphone:coredns" }
rules:
  - { apiGroups: [""], resources: [services, namespaces, pods], verbs: [list, watch] }
  - { apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: "cloudphone:coredns" }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "cloudphone:coredns" }
subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: User, name: "cloudphone:coredns" }]
EOF
if [ "${CLOUDPHONE_NO_NODE:-}" = 1 ]; then
  say "CLOUDPHONE_NO_NODE=1: no real node"
else
  bash "$here/node-up.sh" || { bash "$here/down.sh" >&2 || true; exit 1; }
fi

cp "$dir/admin.kubeconfig" "$kubeconfig"
say "up: $NODES kwok nodes and the real node $NODE_NAME ready; kubectl --kubeconfig $kubeconfig get nodes"
