#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian 12 machine that has only the Rust toolchain.
# Idempotent: skips packages that are already present. Needs root (CI runs as root).
set -euo pipefail

APT_PACKAGES=(
  clang-19 llvm-19            # compiles the NAAM functions and the eSwitch program (C -> eBPF)
  libclang-19-dev             # bindgen for the ibverbs crate (rdma feature)
  openssh-server openssh-client  # real sshd instances for the orchestrator's tests
  libibverbs-dev cmake libnl-3-dev libnl-route-3-dev  # rdma feature (ibverbs backend) builds in CI
  pkg-config libssl-dev       # ssh2 (libssh2 against the system OpenSSL)
  iproute2                    # network namespaces and veth for the netns tests
  openvswitch-switch ethtool  # the Open vSwitch eSwitch test (userspace datapath over veth)
  procps                      # ps: the orchestrator tells live processes from zombies
  python3-pip                 # cross-checks with Python polars/pandas/hdrhistogram
  chromium                    # headless browser: naam report's page loads, its figures decode
)
PIP_PACKAGES=(polars pandas pyarrow hdrhistogram)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-test-deps: missing Debian packages: ${missing[*]}" >&2
    echo "install-test-deps: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "install-test-deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! python3 -c 'import polars, pandas, pyarrow, hdrh' 2>/dev/null; then
  echo "install-test-deps: installing Python packages ${PIP_PACKAGES[*]}"
  python3 -m pip install --quiet --disable-pip-version-check "${PIP_PACKAGES[@]}" \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "${PIP_PACKAGES[@]}"
fi
echo "install-test-deps: ok"
