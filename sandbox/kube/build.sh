#!/usr/bin/env bash
# Build the sandbox cluster's components from the Go module proxy, once.
#
#   sandbox/kube/build.sh            build what is missing, print the bin directory
#   sandbox/kube/build.sh --print    print the bin directory if everything is built (exit 1 if not)
#
# Each component is a module of ours under sandbox/kube/build/ (go.mod and
# go.sum pin every version). Its binaries are cached outside the checkout in
# $AIAGENTS_KUBE_CACHE (default /var/cache/aiagents-runbooks/kube), in a
# directory named by the component, its version and a hash of its go.mod and
# go.sum: a second run builds nothing, and a changed pin builds anew.
# The Go toolchain is the machine's own (/usr/local/go); the only downloads are
# modules through the Go module proxy.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${AIAGENTS_KUBE_CACHE:-/var/cache/aiagents-runbooks/kube}"
bin="$cache/bin"
export PATH="/usr/local/go/bin:$PATH"
export GOFLAGS="-buildvcs=false -mod=readonly"
export GOTOOLCHAIN=local

say() { printf 'kube-build: %s\n' "$*"; }

if ! command -v go >/dev/null 2>&1; then
  say "go is not installed (expected at /usr/local/go/bin/go); the sandbox cluster is built with it" >&2
  exit 2
fi
# Modules come through the module proxy only, never straight from their
# repositories; go.sum (committed) pins every one of them.
GOPROXY="$(go env GOPROXY | sed 's/[,|]/\n/g' | grep -v -x -e direct -e off | paste -sd, -)"
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"

components=(kubernetes etcd containerd pause)
declare -A binaries=(
  [kubernetes]="kube-apiserver kube-controller-manager kube-scheduler kubelet"
  [etcd]="etcd"
  [containerd]="containerd containerd-shim-runc-v2 ctr"
  [pause]="pause"
)
declare -A main_module=(
  [kubernetes]="k8s.io/kubernetes"
  [etcd]="go.etcd.io/etcd/server/v3"
  [containerd]="github.com/containerd/containerd/v2"
)

version_of() {  # the pinned version of the component's main module ("local" for our own)
  if [[ -z "${main_module[$1]:-}" ]]; then echo local; return; fi
  (cd "$here/build/$1" && go list -m -f '{{.Version}}' "${main_module[$1]}")
}

key_of() {  # component, version, and a hash of everything in its module
  local v
  v="$(version_of "$1")"
  printf '%s-%s-%s' "$1" "$v" "$(cd "$here/build/$1" && cat go.mod ./*.go go.sum 2>/dev/null | sha256sum | cut -c1-10)"
}

ldflags_of() {
  local v="$2"
  case "$1" in
    kubernetes)
      local major minor pkg flags="-s -w"
      major="${v#v}"; major="${major%%.*}"
      minor="${v#v*.}"; minor="${minor%%.*}"
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
        flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
      done
      printf '%s' "$flags" ;;
    containerd)
      printf '%s' "-s -w -X github.com/containerd/containerd/v2/version.Version=$v" ;;
    *)
      printf "%s" "-s -w" ;;
  esac
}

built() {  # the component's cache directory holds every binary
  local dir b
  dir="$cache/$(key_of "$1")"
  [[ -f "$dir/.complete" ]] || return 1
  for b in ${binaries[$1]}; do [[ -x "$dir/$b" ]] || return 1; done
}

link_bin() {  # $cache/bin holds the current build of every binary
  local dir b
  dir="$cache/$(key_of "$1")"
  mkdir -p "$bin"
  for b in ${binaries[$1]}; do ln -sfn "$dir/$b" "$bin/$b"; done
}

if [[ "${1:-}" == "--print" ]]; then
  for c in "${components[@]}"; do built "$c" || exit 1; done
  printf '%s\n' "$bin"
  exit 0
fi

build() {
  local name="$1" version key dir tmp log pid started count
  version="$(version_of "$name")"
  key="$(key_of "$name")"
  dir="$cache/$key"
  if built "$name"; then
    link_bin "$name"
    say "$name $version: cached ($dir)"
    return 0
  fi
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/.build-$name.XXXXXX")"
  log="$tmp/build.log"
  say "$name $version: building ${binaries[$name]} (log $log)"
  started=$SECONDS
  (
    cd "$here/build/$name"
    # containerd: no cgo, so no btrfs/devmapper headers are needed; overlayfs
    # and native snapshotters are what the sandbox uses.
    if [[ "$name" == containerd ]]; then export CGO_ENABLED=0; fi
    # pause is the one program of our own: static, so it runs in an empty image.
    if [[ "$name" == pause ]]; then export CGO_ENABLED=0; fi
    local out="$tmp/" packages=tool
    [[ "$name" == pause ]] && packages=.
    # A lone binary is named here: etcd's package path would name it "server".
    [[ "${binaries[$name]}" == *" "* ]] || out="$tmp/${binaries[$name]}"
    exec go build -v -trimpath -ldflags "$(ldflags_of "$name" "$version")" -o "$out" "$packages"
  ) >"$log" 2>&1 &
  pid=$!
  local shown=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    if (( SECONDS - shown >= 60 )); then
      shown=$SECONDS
      count=$(grep -c -v '^go: ' "$log" 2>/dev/null || true)
      say "$name: $((SECONDS - started))s, ${count} packages compiled"
    fi
  done
  if ! wait "$pid"; then
    say "$name $version: build failed; last lines of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  local b
  for b in ${binaries[$name]}; do
    [[ -x "$tmp/$b" ]] || { say "$name: $b was not produced (see $log)" >&2; exit 1; }
  done
  touch "$tmp/.complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  link_bin "$name"
  say "$name $version: built in $((SECONDS - started))s"
}

for c in "${components[@]}"; do build "$c"; done
printf '%s\n' "$bin"
