#!/usr/bin/env bash
# The project's test command (README). On a fresh Debian 12 machine with the Rust toolchain it
# installs what the tests need, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
echo "== eBPF objects match their C sources"
scripts/build-bpf.sh --check
if cargo fmt --version >/dev/null 2>&1; then
  echo "== formatting (cargo fmt --check)"
  cargo fmt --check
else
  echo "== formatting: rustfmt is not installed with this toolchain; check skipped"
fi
echo "== cargo test (workspace, all targets)"
cargo test --workspace --all-targets --locked --no-fail-fast
echo "== naam-vm with its Cranelift JIT (feature jit): conformance, hostile and differential tests"
cargo test --locked -p naam-vm --features jit
echo "== the rdma feature (ibverbs backend) builds, and fails cleanly without an RDMA device"
cargo test --locked -p naam-net --features rdma --test rdma --lib
cargo test --locked -p naam-roles --features rdma --lib rdma
cargo test --locked -p naam-roles --features rdma --test offbox_nic
