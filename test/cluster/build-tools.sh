#!/usr/bin/env bash
# Builds the control-plane tools, the real node's (kubelet, kube-proxy, containerd, CoreDNS, pause) and mediamtx (the media server of the WHIP tests) from their Go modules at the versions pinned in versions.env
# and installs them into .cache/bin/. Reuses what is there when the pins have not changed.
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod redirects the k8s.io/* staging modules
# to ./staging. So we generate a small consumer module that requires it and replaces each
# staging module with its published v0.<minor>.<patch> twin, the way downstream projects do.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

bin_dir="$root/.cache/bin"
stamp_file="$bin_dir/.pins"
pins=$(cat "$here/versions.env" "$here/build-tools.sh" | sha256sum | cut -c1-16)
tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy kwok helm mediamtx
  containerd containerd-shim-runc-v2 ctr coredns pause)

all_present() {
  local t
  for t in "${tools[@]}"; do [ -x "$bin_dir/$t" ] || return 1; done
  [ -s "$bin_dir/kwok-stages.yaml" ]
}

if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$pins" ] && all_present; then
  echo "cluster tools: up to date in .cache/bin (pins $pins)"
  exit 0
fi

command -v go >/dev/null || { echo "cluster tools: Go is required (go 1.26 or newer)" >&2; exit 1; }
mkdir -p "$bin_dir"
work="$root/.cache/tools/$pins"
mkdir -p "$work"
export GOFLAGS="-buildvcs=false -trimpath"
started=$SECONDS
step() { echo "cluster tools: [$((SECONDS - started))s] $*"; }
# Runs a go command, showing its output only when it fails (module downloads are many hundreds of lines).
quiet() {
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    grep -v '^go: downloading' "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

# --- Kubernetes components ---------------------------------------------------------------
k8s_minor=${K8S_VERSION#v1.}           # 36.3
staging_version="v0.${k8s_minor}"       # v0.36.3
step "resolving k8s.io/kubernetes $K8S_VERSION"
gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
go_directive=$(sed -n 's/^go \(.*\)/\1/p' "$gomod")
{
  echo "module cloudphone.local/cluster-tools"
  echo
  echo "go $go_directive"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  # One replace per staging module of this release.
  sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => \./staging/.*#replace \1 => \1 '"$staging_version"'#p' "$gomod"
} > "$work/go.mod"
cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
GO
step "downloading Kubernetes modules"
(cd "$work" && quiet go mod tidy)

version_pkgs=(k8s.io/component-base/version k8s.io/client-go/pkg/version)
ldflags="-s -w"
for p in "${version_pkgs[@]}"; do
  ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=${k8s_minor%%.*}"
  ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
  step "building $cmd $K8S_VERSION"
  (cd "$work" && go build -ldflags "$ldflags" -o "$bin_dir/$cmd" "k8s.io/kubernetes/cmd/$cmd")
done

# --- etcd ---------------------------------------------------------------------------------
# go.etcd.io/etcd/server/v3 (whose root package is the etcd binary) also replaces its sibling modules with
# ../paths, so it gets a consumer module too, pinning those siblings to the same release.
etcd_work="$work/etcd"
mkdir -p "$etcd_work"
{
  echo "module cloudphone.local/etcd"
  echo
  echo "go $go_directive"
  echo
  for m in server/v3 api/v3 client/pkg/v3 client/v3 pkg/v3; do echo "require go.etcd.io/etcd/$m $ETCD_VERSION"; done
} > "$etcd_work/go.mod"
printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$etcd_work/tools.go"
step "building etcd $ETCD_VERSION"
(cd "$etcd_work" && quiet go mod tidy)
(cd "$etcd_work" && go build -ldflags "-s -w" -o "$bin_dir/etcd" go.etcd.io/etcd/server/v3)

# --- kwok, helm: ordinary go install -------------------------------------------------------
step "building kwok $KWOK_VERSION"
GOBIN="$bin_dir" quiet go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
# kwok's binary has no built-in lifecycle: take the stock "fast" node and pod stages from the module we built.
kwok_dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
for stage in node/fast/node-initialize node/heartbeat/node-heartbeat pod/fast/pod-ready pod/fast/pod-complete \
  pod/fast/pod-delete; do
  echo "---"
  cat "$kwok_dir/kustomize/stage/$stage.yaml"
done > "$bin_dir/kwok-stages.yaml"
step "building helm $HELM_VERSION"
GOBIN="$bin_dir" quiet go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"

# --- mediamtx ------------------------------------------------------------------------------
# Its module leaves out two files its own `go generate` downloads (the version string, and hls.js for the HLS
# player page): the build copies the module and writes the version and an empty HLS script in their place (the
# tests use its WHIP, WHEP and RTSP sides, never the HLS page). On arm64 it also embeds a Raspberry Pi camera
# helper, which gets an empty placeholder too.
step "building mediamtx $MEDIAMTX_VERSION"
mediamtx_dir=$(go mod download -json "github.com/bluenviron/mediamtx@$MEDIAMTX_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
mediamtx_work="$work/mediamtx"
rm -rf "$mediamtx_work"
cp -r "$mediamtx_dir" "$mediamtx_work"
chmod -R u+w "$mediamtx_work"
echo "$MEDIAMTX_VERSION" > "$mediamtx_work/internal/core/VERSION"
echo '// not built: the HLS page is not used' > "$mediamtx_work/internal/servers/hls/hls.min.js"
for camera in mtxrpicam_32 mtxrpicam_64; do
  mkdir -p "$mediamtx_work/internal/staticsources/rpicamera/$camera"
  touch "$mediamtx_work/internal/staticsources/rpicamera/$camera/none"
done
(cd "$mediamtx_work" && quiet go build -ldflags "-s -w" -o "$bin_dir/mediamtx" .)

# --- the real node's runtime and DNS -------------------------------------------------------------
# containerd's module has no replace directives, so its commands `go install` as they are; the build tags leave
# out snapshotters this node does not use (they need C headers that are not installed).
step "building containerd $CONTAINERD_VERSION"
for cmd in containerd containerd-shim-runc-v2 ctr; do
  GOBIN="$bin_dir" quiet go install -tags "no_btrfs no_devmapper no_zfs" \
    -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
    "github.com/containerd/containerd/v2/cmd/$cmd@$CONTAINERD_VERSION"
done
step "building coredns $COREDNS_VERSION"
GOBIN="$bin_dir" quiet go install -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
# The pod sandbox's process: Kubernetes' own pause.c from the same module, static, for an image FROM scratch.
k8s_dir=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
gcc -Os -Wall -Werror -static -DVERSION="$K8S_VERSION" -o "$bin_dir/pause" "$k8s_dir/build/pause/linux/pause.c"

all_present || { echo "cluster tools: a binary is missing after the build" >&2; exit 1; }
echo "$pins" > "$stamp_file"
step "done: ${tools[*]} in .cache/bin (build took $((SECONDS - started))s)"
