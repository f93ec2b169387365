#!/usr/bin/env bash
# The main job, locally and for real: a Kubernetes cluster on this machine with a real node
# (test/cluster/up.sh: control plane, kwok nodes, and a kubelet with containerd that runs cloudphone's images,
# built here from images/*.Dockerfile), the Helm chart installed on it (two operator replicas as pods), and a
# pool of simulated phones (examples/simulated-phones.yaml) whose pods get the sidecar injected and stream.
# It prints a player URL and an SRT command for each phone. Ctrl-C or SIGTERM stops and removes everything.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
stopping=0
sleeper=""
stop_all() {
  # Whatever else failed (a Ctrl-C also ends a pipe this script's output went through): the cluster goes.
  set +e
  [ "$stopping" -eq 1 ] && return
  stopping=1
  [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
  printf '\nstopping the cluster\n' 2>/dev/null
  bash test/cluster/down.sh >/dev/null 2>&1 || echo "cluster:down reported a problem: run npm run cluster:down" >&2
}
trap stop_all EXIT
trap 'exit 0' INT TERM

bash test/cluster/up.sh
source test/cluster/images.env
source test/cluster/ports.env
kubeconfig="$root/.cache/cluster/kubeconfig"
kubectl() { "$root/.cache/bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
helm() { "$root/.cache/bin/helm" --kubeconfig "$kubeconfig" "$@"; }

# --- the chart: the operator as pods on the real node --------------------------------------------------------
placement_key=${NODE_LABEL%%=*}
helm upgrade --install cloudphone charts/cloudphone-operator --namespace cloudphone-system --create-namespace \
  --set image.repository="${OPERATOR_IMAGE%:*}" --set image.tag="${OPERATOR_IMAGE##*:}" --set image.pullPolicy=Never \
  --set sidecar.image="$SIDECAR_IMAGE" --set sidecar.imagePullPolicy=Never \
  --set-json "nodeSelector={\"$placement_key\":\"true\"}" \
  --set-json "tolerations=[{\"key\":\"$NODE_TAINT_KEY\",\"operator\":\"Equal\",\"value\":\"true\",\"effect\":\"NoSchedule\"}]" \
  --wait --timeout 5m >/dev/null
echo "operator: two replicas running (kubectl -n cloudphone-system get pods)"
# The leader fills the webhooks' caBundle; until then the apiserver cannot call them. A stream naming a missing
# Secret is refused by the validating webhook only once it answers (a dry run, so nothing is made).
kubectl create namespace phones --dry-run=client -o yaml | kubectl apply -f - >/dev/null
probe='{"apiVersion":"cloudphone.io/v1alpha1","kind":"CloudPhoneStream","metadata":{"name":"probe","namespace":"phones"},
  "spec":{"selector":{"matchLabels":{"probe":"x"}},"phoneContainer":"android","webrtc":{"whep":{"authSecretRef":{"name":"no-such-secret"}}}}}'
for _ in $(seq 1 120); do
  # Into a variable first: with pipefail, grep -q closing the pipe early would fail the whole pipeline.
  answer=$(echo "$probe" | kubectl create --dry-run=server -f - 2>&1 || true)
  [[ "$answer" == *'no-such-secret does not exist'* ]] && break
  sleep 0.5
done

# --- simulated phones ------------------------------------------------------------------------------------------
view_token=$(openssl rand -hex 24)
control_token=$(openssl rand -hex 24)
kubectl -n phones create secret generic phones-viewer-tokens \
  --from-literal=view="$view_token" --from-literal=control="$control_token" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
srt_passphrase=$(openssl rand -hex 16)
kubectl -n phones create secret generic phones-srt-passphrase --from-literal=passphrase="$srt_passphrase" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -f examples/simulated-phones.yaml >/dev/null
echo "phones: waiting for the pool's phones to stream"
for _ in $(seq 1 240); do
  streaming=$(kubectl -n phones get cloudphonestream simulated -o jsonpath='{.status.streaming}' 2>/dev/null || true)
  [ "${streaming:-0}" -ge 2 ] && break
  sleep 0.5
done

echo
kubectl get nodes -o wide
echo
kubectl -n phones get cloudphonestreams,cloudphonepools,pods -o wide
echo
echo "Each phone pod streams (pod addresses are reachable from this machine only):"
for pod in $(kubectl -n phones get pods -l app=simulated-phone -o jsonpath='{range .items[*]}{.metadata.name}={.status.podIP}{"\n"}{end}'); do
  name=${pod%%=*}
  ip=${pod#*=}
  echo "  $name"
  echo "    player (touch, keys): http://$ip:8443/#token=$control_token"
  echo "    player (view only):   http://$ip:8443/#token=$view_token"
  echo "    SRT:                  ffplay -fflags nobuffer -flags low_delay 'srt://$ip:9000?latency=20000&passphrase=$srt_passphrase'"
done
echo
echo "From another machine: kubectl port-forward -n phones pod/NAME 8443:8443 (then http://127.0.0.1:8443/#token=...)."
echo "Talk to the cluster:"
echo "  export KUBECONFIG=$kubeconfig PATH=$root/.cache/bin:\$PATH"
echo "  kubectl -n phones get cps                                  # STREAMING counts the phones"
echo "  kubectl -n phones scale cloudphonepool simulated --replicas 3"
echo "Ctrl-C stops everything."
# wait on a background sleep: a signal ends the wait at once (a foreground sleep would hold SIGTERM until it ends).
while true; do
  sleep 3600 &
  sleeper=$!
  wait "$sleeper" || true
done
