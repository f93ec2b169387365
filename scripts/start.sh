#!/usr/bin/env bash
# The main job, locally: a real Kubernetes control plane on this machine, cloudphone's CRDs, the operator (out of
# the cluster, in development mode), and an example fleet of phones with its CloudPhoneStream
# (examples/quickstart.yaml), whose pods the operator injects. Ctrl-C stops everything it started.
#
# Beside it, a simulated phone streams for real: the reference producer and a sidecar on this machine, serving
# the player page (WebRTC, WHEP) and an SRT listener; the URLs to open are printed at the end.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
bash test/cluster/up.sh
operator_pid=""
phone_pid=""
sidecar_pid=""
stop_one() { # pid name
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1" && wait "$1" 2>/dev/null || true
    echo "$2: stopped"
  fi
}
stop_all() {
  echo
  stop_one "$sidecar_pid" sidecar
  stop_one "$phone_pid" "simulated phone"
  stop_one "$operator_pid" operator
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
  # Into a variable first: with pipefail, grep -q closing the pipe early would fail the whole pipeline.
  answer=$(echo "$probe" | kubectl create --dry-run=server -f - 2>&1 || true)
  [[ "$answer" == *'no-such-secret does not exist'* ]] && break
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
# A simulated phone streaming for real, on this machine: the reference producer publishes 720x1280 frames into
# shared memory, the sidecar encodes them once and serves WebRTC viewers and an SRT receiver.
demo="$root/.cache/demo"
rm -rf "$demo" && mkdir -p "$demo/shared" "$demo/tokens" && chmod 700 "$demo/tokens"
openssl rand -hex 24 >"$demo/tokens/view"
openssl rand -hex 24 >"$demo/tokens/control"
whep_port=${CLOUDPHONE_WHEP_PORT:-8443}
srt_port=${CLOUDPHONE_SRT_PORT:-9000}
cat >"$demo/sidecar.json" <<JSON
{"apiVersion":"cloudphone.io/v1alpha1","kind":"SidecarConfig","stream":{"namespace":"local","name":"demo","generation":1},
 "shared":{"dir":"$demo/shared"},"video":{"fps":30,"bitrate":{"targetKbps":4000,"minKbps":1000,"maxKbps":8000}},
 "srt":{"mode":"listener","port":$srt_port,"latencyMs":20},
 "webrtc":{"whep":{"port":$whep_port,"viewTokenFile":"$demo/tokens/view","controlTokenFile":"$demo/tokens/control"}},
 "metrics":{"port":${CLOUDPHONE_METRICS_PORT:-9090}}}
JSON
node_modules/.bin/node sidecar/src/main.ts --config "$demo/sidecar.json" >.cache/logs/sidecar.log 2>&1 &
sidecar_pid=$!
native/build/cloudphone-simulator --dir "$demo/shared" --width 720 --height 1280 --fps 30 \
  </dev/null >.cache/logs/phone.log 2>&1 &
phone_pid=$!
for _ in $(seq 1 60); do
  curl -fs "http://127.0.0.1:${CLOUDPHONE_METRICS_PORT:-9090}/readyz" >/dev/null 2>&1 && break
  kill -0 "$sidecar_pid" 2>/dev/null || { echo "the sidecar exited; see .cache/logs/sidecar.log" >&2; exit 1; }
  sleep 0.5
done

echo
echo "A simulated phone is streaming (logs: .cache/logs/sidecar.log, .cache/logs/phone.log):"
echo "  player (touch, keys):  http://127.0.0.1:$whep_port/#token=$(cat "$demo/tokens/control")"
echo "  player (view only):    http://127.0.0.1:$whep_port/#token=$(cat "$demo/tokens/view")"
echo "  SRT:                   ffplay -fflags nobuffer -flags low_delay 'srt://127.0.0.1:$srt_port?latency=20000'"
echo "  metrics:               http://127.0.0.1:${CLOUDPHONE_METRICS_PORT:-9090}/metrics"
echo
echo "The local control plane is up. Try:"
echo "  export KUBECONFIG=$kubeconfig PATH=$root/.cache/bin:\$PATH"
echo "  kubectl -n phones describe cloudphonestream redroid   # conditions and Events"
echo "  kubectl explain cloudphonestream.spec --recursive"
echo "Ctrl-C stops it."
while true; do sleep 3600; done
