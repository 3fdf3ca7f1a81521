#!/usr/bin/env bash
# setup-test-deps.sh: install the programs dgram's integration tests talk to
# or drive (netcat-openbsd, socat, python3, tmux, nftables, iproute2).
#
# Idempotent and quiet: when everything is already on PATH it prints nothing
# and touches nothing. Otherwise it installs the missing Debian packages with
# apt-get (root needed; these machines run as root, elsewhere sudo is used when
# present). Prerequisite: a Debian-like system with apt-get.
set -euo pipefail

# command on PATH -> Debian package that provides it
declare -A wanted=(
  [nc]=netcat-openbsd
  [socat]=socat
  [python3]=python3
  [tmux]=tmux
  [nft]=nftables
  [ip]=iproute2
)

missing=()
for cmd in "${!wanted[@]}"; do
  # nc must be the OpenBSD one: ncat and traditional netcat behave differently.
  if [[ $cmd == nc ]]; then
    if command -v nc >/dev/null 2>&1 && nc -h 2>&1 | grep -q -- '-U.*UNIX'; then continue; fi
  elif command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]]; then
    continue
  fi
  missing+=("${wanted[$cmd]}")
done

((${#missing[@]} == 0)) && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-test-deps: missing ${missing[*]} and no apt-get here: install them by hand" >&2
  exit 1
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "setup-test-deps: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  echo "setup-test-deps: installing ${missing[*]} failed:" >&2
  cat "$log" >&2
  exit 1
fi
echo "setup-test-deps: installed ${missing[*]}"
