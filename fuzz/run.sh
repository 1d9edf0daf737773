#!/usr/bin/env bash
# Run the fuzz targets one after the other (one fuzzing job at a time), each for SECONDS
# (default 600), on a stable toolchain (RUSTC_BOOTSTRAP=1 lets cargo fuzz pass its nightly
# flags). Needs `cargo install cargo-fuzz` and the workspace built first:
#   cargo build --release --workspace && fuzz/run.sh [SECONDS] [TARGET...]
# Crashes are written to fuzz/artifacts/TARGET/; the growing corpus to fuzz/corpus/TARGET/
# (the kept, minimized one is tests/pathdiff/corpus/TARGET/, replayed by cargo test).
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
secs=${1:-600}
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(resolve_diff mount_spec module_options)
export RUSTC_BOOTSTRAP=1
export VURS_MODULE_PATH=${VURS_MODULE_PATH:-$PWD/../target/release}
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  # Start from the kept corpus, so every run goes on from what earlier runs found.
  cp -n "../tests/pathdiff/corpus/$t/"* "corpus/$t/" 2>/dev/null || true
  echo "fuzz: $t for ${secs}s"
  cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=2048 -len_control=20 -timeout=10 \
    -print_final_stats=1
done
