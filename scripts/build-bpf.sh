#!/usr/bin/env bash
# Compiles every eBPF C source of the project (any `*.c` under a `bpf/` folder) into the object
# committed beside it (`foo.c` -> `foo.o`), so that a machine with only the Rust toolchain runs
# everything from the committed objects.
#
#   scripts/build-bpf.sh           rebuild the committed objects
#   scripts/build-bpf.sh --check   rebuild into a temporary folder and fail if any committed
#                                  object differs from its source's fresh build (run by the tests)
#
# Flags: -O2 -g0 -target bpf, the NAAM ABI header (naam/engine/include) and the kernel headers.
# A source may add flags with a line `// naam-bpf-cflags: <flags>` (e.g. -g for BTF maps).
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG=${CLANG:-clang-19}
mode=${1:-build}
command -v "$CLANG" >/dev/null || { echo "build-bpf: $CLANG not found (apt-get install clang-19)" >&2; exit 1; }

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0
while IFS= read -r src; do
  obj=${src%.c}.o
  extra=$(sed -n 's#^// naam-bpf-cflags: ##p' "$src" | head -n1)
  out=$obj; [[ $mode == --check ]] && out=$tmp/$(echo "$obj" | tr / _)
  # shellcheck disable=SC2086
  "$CLANG" -O2 -g0 -target bpf -Wall -Werror -I naam/engine/include -I /usr/include/x86_64-linux-gnu \
    $extra -c "$src" -o "$out"
  if [[ $mode == --check ]]; then
    if [[ ! -f $obj ]]; then echo "build-bpf: $obj is missing (run scripts/build-bpf.sh)" >&2; status=1
    elif ! cmp -s "$obj" "$out"; then echo "build-bpf: $obj differs from a fresh build of $src (run scripts/build-bpf.sh)" >&2; status=1
    else echo "build-bpf: $obj matches $src"; fi
  else
    echo "build-bpf: $src -> $obj"
  fi
done < <(git ls-files --cached --others --exclude-standard -- '*/bpf/*.c' | sort)
exit $status
