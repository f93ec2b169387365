#!/usr/bin/env bash
# The main job, locally: a real Kubernetes control plane on this machine, cloudphone's CRDs, the operator (out of
# the cluster, in development mode), and an example fleet of phones with its CloudPhoneStream
# (examples/quickstart.yaml), whose pods the operator injects. Ctrl-C stops everything it started.
#
# What runs grows with the project: the phone simulator and the sidecar's media path join here as they land.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
bash test/cluster/up.sh
operator_pid=""
stop_all() {
  echo
  if [ -n "$operator_pid" ] && kill -0 "$operator_pid" 2>/dev/null; then
    kill -TERM "$operator_pid" && wait "$operator_pid" 2>/dev/null || true
    echo "operator: stopped"
  fi
  bash test/cluster/down.sh
}
trap stop_all EXIT
trap 'exit 0' INT TERM

kubeconfig="$root/.cache/cluster/kubeconfig"
kubectl() { "$root/.cache/bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
kubectl apply --server-side --field-manager cloudphone-start -f crds/ >/dev/null
kubectl wait --for condition=Established --timeout 60s -f crds/ >/dev/null
mkdir -p .cache/logs
KUBECONFIG="$kubeconfig" node_modules/.bin/node operator/src/main.ts --dev >.cache/logs/operator.log 2>&1 &
operator_pid=$!
for _ in $(seq 1 120); do
  grep -q '"msg":"became leader"' .cache/logs/operator.log 2>/dev/null && break
  kill -0 "$operator_pid" 2>/dev/null || { echo "the operator exited; see .cache/logs/operator.log" >&2; exit 1; }
  sleep 0.5
done
kubectl create namespace phones --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# The leader points the webhooks at itself, and the apiserver takes a moment to notice: wait until a stream naming
# a missing Secret is refused by our validating webhook (a dry run), so that no phone is admitted before.
probe='{"apiVersion":"cloudphone.io/v1alpha1","kind":"CloudPhoneStream","metadata":{"name":"probe","namespace":"phones"},
  "spec":{"selector":{"matchLabels":{"probe":"x"}},"phoneContainer":"android","webrtc":{"whep":{"authSecretRef":{"name":"no-such-secret"}}}}}'
for _ in $(seq 1 120); do
  echo "$probe" | kubectl create --dry-run=server -f - 2>&1 | grep -q 'no-such-secret does not exist' && break
  sleep 0.5
done
echo "operator: running, webhooks answering (log: .cache/logs/operator.log)"
kubectl -n phones create secret generic phones-viewer-tokens \
  --from-literal=view="$(openssl rand -hex 24)" --from-literal=control="$(openssl rand -hex 24)" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -f examples/quickstart.yaml >/dev/null
kubectl -n phones rollout status statefulset/redroid --timeout 120s >/dev/null
sleep 2

echo
kubectl -n phones get cloudphonestreams,pods,services
echo
echo "Containers of redroid-0 (the sidecar is injected as a native sidecar, an init container):"
kubectl -n phones get pod redroid-0 -o jsonpath='{range .spec.initContainers[*]}  init: {.name}{"\n"}{end}{range .spec.containers[*]}  main: {.name}{"\n"}{end}'
echo
echo "The local control plane is up. Try:"
echo "  export KUBECONFIG=$kubeconfig PATH=$root/.cache/bin:\$PATH"
echo "  kubectl -n phones describe cloudphonestream redroid   # conditions and Events"
echo "  kubectl explain cloudphonestream.spec --recursive"
echo "Ctrl-C stops it."
while true; do sleep 3600; done
