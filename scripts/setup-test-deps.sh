#!/usr/bin/env bash
# setup-test-deps.sh: install the programs dgram's integration tests talk to
# or drive (netcat-openbsd, socat, python3, tmux, nftables, iproute2, coturn,
# tshark with text2pcap for the capture files and the Wireshark dissector),
# and the PyPI packages the independent Python peer's secure sessions need
# (cryptography, spake2: tests/peer/dgram_secure.py).
#
# Idempotent and quiet: when everything is already there it prints nothing
# and touches nothing. Otherwise it installs the missing Debian packages with
# apt-get (root needed; these machines run as root, elsewhere sudo is used when
# present), then the missing Python packages with pip. Prerequisite: a
# Debian-like system with apt-get.
set -euo pipefail

# The Python peer's packages, installed with `python3 -m pip` only when the
# import fails.
python_packages() {
  python3 -c 'import spake2, cryptography' >/dev/null 2>&1 && return 0
  local log
  log=$(mktemp)
  # A Debian python3 refuses pip outside a virtualenv (PEP 668); this is a
  # test machine's own Python, so the packages go in anyway.
  if ! python3 -m pip install --quiet spake2 cryptography >"$log" 2>&1 &&
    ! { grep -q externally-managed "$log" &&
      python3 -m pip install --quiet --break-system-packages spake2 cryptography >"$log" 2>&1; }; then
    echo "setup-test-deps: installing the Python packages spake2 and cryptography failed:" >&2
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
  if ! python3 -c 'import spake2, cryptography' >/dev/null 2>&1; then
    echo "setup-test-deps: pip installed spake2 and cryptography, but python3 cannot import them" >&2
    exit 1
  fi
  echo "setup-test-deps: installed the Python packages spake2 and cryptography"
}

# Debian's coturn package enables and starts a system service (coturn.service,
# port 3478) where systemd runs; the tests start their own turnserver on free
# ports and want no other. It is stopped and disabled once, quietly. Without
# systemd the package's init script starts nothing unless /etc/default/coturn
# sets TURNSERVER_ENABLED=1, so there is nothing to do.
no_coturn_service() {
  [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1 || return 0
  systemctl is-enabled --quiet coturn 2>/dev/null || systemctl is-active --quiet coturn 2>/dev/null || return 0
  local as_root=()
  [[ $(id -u) -ne 0 ]] && as_root=(sudo)
  if ! "${as_root[@]}" systemctl disable --now --quiet coturn >/dev/null 2>&1; then
    echo "setup-test-deps: cannot stop the coturn system service (port 3478): systemctl disable --now coturn" >&2
    exit 1
  fi
  echo "setup-test-deps: stopped and disabled the coturn system service (the tests run their own turnserver)"
}

# command on PATH -> Debian package that provides it
declare -A wanted=(
  [nc]=netcat-openbsd
  [socat]=socat
  [python3]=python3
  [tmux]=tmux
  [nft]=nftables
  [ip]=iproute2
  [turnserver]=coturn
  [tshark]=tshark
  [text2pcap]=wireshark-common
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

if ((${#missing[@]} == 0)); then
  no_coturn_service
  python_packages
  exit 0
fi

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
no_coturn_service
python_packages
