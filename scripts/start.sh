#!/usr/bin/env bash
# The main job, locally: a real Kubernetes control plane on this machine with cloudphone's CRDs and an example
# fleet of phones and its CloudPhoneStream (examples/quickstart.yaml). Ctrl-C stops everything it started.
#
# What runs grows with the project: the operator, the phone simulator and the sidecar join here as they land.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
bash test/cluster/up.sh
trap 'echo; bash test/cluster/down.sh' EXIT
trap 'exit 0' INT TERM

kubeconfig="$root/.cache/cluster/kubeconfig"
kubectl() { "$root/.cache/bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
kubectl apply --server-side --field-manager cloudphone-start -f crds/ >/dev/null
kubectl wait --for condition=Established --timeout 60s -f crds/ >/dev/null
kubectl create namespace phones --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n phones create secret generic phones-viewer-tokens \
  --from-literal=view="$(openssl rand -hex 24)" --from-literal=control="$(openssl rand -hex 24)" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -f examples/quickstart.yaml >/dev/null
kubectl -n phones rollout status statefulset/redroid --timeout 120s >/dev/null

echo
kubectl -n phones get cloudphonestreams,pods -o wide
echo
echo "The local control plane is up. Try:"
echo "  export KUBECONFIG=$kubeconfig PATH=$root/.cache/bin:\$PATH"
echo "  kubectl -n phones describe cloudphonestream redroid"
echo "  kubectl explain cloudphonestream.spec --recursive"
echo "Ctrl-C stops it."
while true; do sleep 3600; done
