#!/usr/bin/env bash
# install.sh - build vurs and install it under a prefix, or remove it from there.
#
# usage: ./install.sh [--prefix DIR] [--no-build] [--uninstall]
#   --prefix DIR   where to install (default: /usr/local as root, ~/.local otherwise)
#   --no-build     install what target/release holds (no cargo build)
#   --uninstall    remove what an install put under the prefix
#
# Installs:
#   DIR/bin/vurs
#   DIR/lib/vurs/NAME.so                              the modules (vurs finds them there)
#   DIR/share/man/man1/vurs.1                         man vurs
#   DIR/share/bash-completion/completions/vurs        bash completion
#   DIR/share/zsh/site-functions/_vurs                zsh completion
#   DIR/share/fish/vendor_completions.d/vurs.fish     fish completion
# Make sure DIR/bin is on PATH (~/.local/bin usually is).
set -euo pipefail

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
if [ "$(id -u)" -eq 0 ]; then prefix=/usr/local; else prefix=$HOME/.local; fi
build=1 uninstall=0
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; exit 2; }
              prefix=$2; shift ;;
    --prefix=*) prefix=${1#*=} ;;
    --no-build) build=0 ;;
    --uninstall) uninstall=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$prefix" ] || { echo "install.sh: empty prefix" >&2; exit 2; }
case $prefix in /*) ;; *) prefix=$PWD/$prefix ;; esac

modules=()
for d in "$root"/modules/*/; do
  [ -f "$d/Cargo.toml" ] && modules+=("$(basename "$d")")
done

bin=$prefix/bin/vurs
libdir=$prefix/lib/vurs
man=$prefix/share/man/man1/vurs.1
bash_c=$prefix/share/bash-completion/completions/vurs
zsh_c=$prefix/share/zsh/site-functions/_vurs
fish_c=$prefix/share/fish/vendor_completions.d/vurs.fish

if [ "$uninstall" = 1 ]; then
  rm -f "$bin" "$man" "$bash_c" "$zsh_c" "$fish_c"
  for m in "${modules[@]}"; do rm -f "$libdir/$m.so"; done
  rmdir "$libdir" 2>/dev/null || true
  echo "install.sh: removed vurs from $prefix"
  exit 0
fi

if [ "$build" = 1 ]; then
  (cd "$root" && cargo build --release --workspace)
fi
target=${CARGO_TARGET_DIR:-$root/target}/release
[ -x "$target/vurs" ] || { echo "install.sh: $target/vurs not found (build first)" >&2; exit 1; }

install -D -m 755 "$target/vurs" "$bin"
for m in "${modules[@]}"; do
  install -D -m 644 "$target/lib$m.so" "$libdir/$m.so"
done
mkdir -p "$(dirname "$man")" "$(dirname "$bash_c")" "$(dirname "$zsh_c")" "$(dirname "$fish_c")"
"$bin" man > "$man"
"$bin" completions bash > "$bash_c"
"$bin" completions zsh > "$zsh_c"
"$bin" completions fish > "$fish_c"
echo "install.sh: installed vurs and modules (${modules[*]}) under $prefix"
case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "install.sh: note: $prefix/bin is not on PATH" ;; esac
