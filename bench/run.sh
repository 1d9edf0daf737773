#!/usr/bin/env bash
# bench/run.sh - vurs benchmark.
#  1. builds vurs and its modules (cargo build --release --workspace);
#  2. micro: per-call cost of one syscall pattern, with the shared `wl` workload
#     (../shared/bench/floor/wl.c, or bench/wl.c without the shared sources; prints ns/op
#     of its timed loop; startup is excluded):
#       getpid  native | vurs | vurs -m fsremap            (never trapped: seccomp filter cost)
#       stat    native | vurs | vurs -m fsremap            (fsremap traps stat; no mount matches)
#       stat    vurs -b (resolved) | the same decided on a worker thread (VURS_FORCE_WORKERS=1)
#       open    native | vurs -b (resolved) | vurs -b (redirected: vurs opens, ADDFD installs)
#       clock   native | vurs (vDSO untouched) | vurs -m time  (clock_gettime traps)
#     each cell is the median of RUNS runs; "+ns" is the added cost per call vs native;
#  3. macro: ../shared/bench/run.sh (native | floor | proot | vurs | vurs with a bind) over the
#     five reference workloads, hyperfine tables, quote the "Relative" column (skipped, with
#     the floor column, when the shared sources are not found: a plain clone);
#     then workload e once more, interleaved (bench/interleaved.py, E_ROUNDS rounds, default
#     30): median and minimum of native | floor | vurs | vurs -b;
#  4. a remapped tree: find and tar over a copy of /usr/include shown at another path,
#     native (on the copy) | vurs -b | proot -b; and the copy through a cow view with an
#     empty upper layer (--mount type=cow, vurs-cow rows).
#
# usage: bench/run.sh [OPTIONS] [LETTERS]       LETTERS: macro workloads, default abcde
#   --native-only   micro benchmark natively only, skip build and macro (plumbing check)
#   --no-build      do not run cargo build (use the existing target/release/vurs)
#   --micro         micro benchmark only            --macro   macro benchmark only
#   --runs N        runs per micro cell (default 5)
# env: VURS (default target/release/vurs), SHARED_BENCH (default ../shared/bench relative to
#      the repo root), WL_N_GETPID / WL_N_STAT / WL_N_OPEN / WL_N_CLOCK iteration counts.
# Needs gcc; the macro part needs hyperfine (and uses proot if present): installed with apt-get
# when missing and running as root.
set -euo pipefail

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$root"

native_only=0 build=1 micro=1 macro=1 runs=5 letters=abcde
while [ $# -gt 0 ]; do
  case $1 in
    --native-only) native_only=1 build=0 macro=0 ;;
    --no-build) build=0 ;;
    --micro) macro=0 ;;
    --macro) micro=0 ;;
    --runs) runs=$2; shift ;;
    --runs=*) runs=${1#*=} ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    [a-z]*) [[ $1 =~ ^[a-e]+$ ]] || { echo "run.sh: bad workload letters '$1' (a-e)" >&2; exit 2; }
            letters=$1 ;;
    *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# The shared benchmark sources (the `floor` tracer, the five reference workloads, their `wl`)
# are not part of vurs: with them, floor columns and the reference table; without them (a
# plain clone), vurs's own bench/wl.c, no floor column, no reference table, said below.
shared=${SHARED_BENCH:-$root/../shared/bench}
if [ -f "$shared/floor/wl.c" ] && [ -f "$shared/run.sh" ]; then
  shared=$(cd "$shared" && pwd)
  have_shared=1 wl_src=$shared/floor/wl.c
else
  [ -n "${SHARED_BENCH:-}" ] && { echo "run.sh: SHARED_BENCH=$SHARED_BENCH has no floor/wl.c and run.sh" >&2; exit 2; }
  have_shared=0 wl_src=$root/bench/wl.c
  echo "run.sh: $shared not found: running without the floor columns and the reference workloads"
  echo "run.sh: (to get them, put the shared benchmark sources there or set SHARED_BENCH; see docs/benchmarks.md)"
fi
vurs=${VURS:-$root/target/release/vurs}

# --- tools
need=()
[ "$macro" = 1 ] && ! command -v hyperfine >/dev/null 2>&1 && need+=(hyperfine)
[ "$macro" = 1 ] && ! dpkg -s proot >/dev/null 2>&1 && ! command -v proot >/dev/null 2>&1 && need+=(proot)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "run.sh: installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" </dev/null >/dev/null
  else
    echo "run.sh: missing ${need[*]} (apt-get install -y ${need[*]} as root)" >&2
  fi
fi

# --- 1. build
if [ "$build" = 1 ]; then
  echo "== cargo build --release --workspace"
  cargo build --release --workspace
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0

# --- 2. micro
# one cell: median ns/op over $runs runs of: PREFIX... wl OP N     (prints "op n ns" per run)
cell() {
  local op=$1 n=$2; shift 2
  local vals=() i out
  for ((i = 0; i < runs; i++)); do
    if ! out=$("$@" "$work/wl" "$op" "$n" 2>"$work/err"); then
      echo "run.sh: failed: $* $work/wl $op $n: $(head -c 300 "$work/err")" >&2
      return 1
    fi
    out=$(awk -v op="$op" '$1 == op && NF == 3 {print $3}' <<<"$out" | tail -n1)
    [ -n "$out" ] || { echo "run.sh: no timing from: $* wl $op $n" >&2; return 1; }
    vals+=("$out")
  done
  printf '%s\n' "${vals[@]}" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

if [ "$micro" = 1 ]; then
  cc -O2 -o "$work/wl" "$wl_src"
  have_vurs=1
  if [ "$native_only" = 1 ]; then have_vurs=0
  elif [ ! -x "$vurs" ]; then echo "run.sh: $vurs not built: vurs rows skipped" >&2; have_vurs=0; status=1
  fi
  # op | iterations | label | prefix command ("" = native)
  rows=(
    "getpid|${WL_N_GETPID:-1000000}|native|"
    "getpid|${WL_N_GETPID:-1000000}|vurs|$vurs --"
    "getpid|${WL_N_GETPID:-1000000}|vurs -m fsremap|$vurs -m fsremap --"
    "stat|${WL_N_STAT:-200000}|native|"
    "stat|${WL_N_STAT:-200000}|vurs (untrapped)|$vurs --"
    "stat|${WL_N_STAT:-200000}|vurs -m fsremap (trapped, passed)|$vurs -m fsremap --"
    "stat|${WL_N_STAT:-200000}|vurs -b (trapped, resolved)|$vurs -b /etc/hostname:/etc/passwd --"
    "stat|${WL_N_STAT:-200000}|vurs -b, ptrace engine|env VURS_ENGINE=ptrace $vurs -b /etc/hostname:/etc/passwd --"
    "stat|${WL_N_STAT:-200000}|vurs -b (redirected into a mount)|$vurs -b /etc/passwd:/etc/hostname --"
    "stat|${WL_N_STAT:-200000}|the same, ptrace engine|env VURS_ENGINE=ptrace $vurs -b /etc/passwd:/etc/hostname --"
    "open|${WL_N_OPEN:-50000}|native|"
    "open|${WL_N_OPEN:-50000}|vurs -b (trapped, resolved)|$vurs -b /etc/hostname:/etc/passwd --"
    "open|${WL_N_OPEN:-50000}|vurs -b (redirected: ADDFD)|$vurs -b /etc/passwd:/etc/hostname --"
    "clock|${WL_N_CLOCK:-1000000}|native|"
    "clock|${WL_N_CLOCK:-1000000}|vurs (no time module: vDSO)|$vurs --"
    "clock|${WL_N_CLOCK:-200000}|vurs -m time|$vurs -m time --"
  )
  echo
  echo "== micro: ns per call, median of $runs runs ($(nproc) cpus, $(uname -r))"
  echo
  printf '| %-6s | %-34s | %10s | %10s | %7s |\n' op configuration ns/call "+ns/call" ratio
  printf '|%s|%s|%s|%s|%s|\n' -------- ------------------------------------ ------------ ------------ ---------
  declare -A base
  for r in "${rows[@]}"; do
    IFS='|' read -r op n label prefix <<<"$r"
    if [ -n "$prefix" ] && [ "$have_vurs" = 0 ]; then continue; fi
    read -ra pre <<<"$prefix"
    if ns=$(cell "$op" "$n" "${pre[@]}"); then
      if [ -z "$prefix" ]; then base[$op]=$ns; fi
      b=${base[$op]:-}
      if [ -n "$b" ]; then
        extra=$(awk -v a="$ns" -v b="$b" 'BEGIN {printf "%+.1f", a - b}')
        ratio=$(awk -v a="$ns" -v b="$b" 'BEGIN {printf "%.2fx", (b > 0) ? a / b : 0}')
      else extra=- ratio=-; fi
      printf '| %-6s | %-34s | %10.1f | %10s | %7s |\n' "$op" "$label" "$ns" "$extra" "$ratio"
    else
      printf '| %-6s | %-34s | %10s | %10s | %7s |\n' "$op" "$label" FAILED - -
      status=1
    fi
  done
fi

# --- 3. macro
if [ "$macro" = 1 ]; then
  if [ ! -x "$vurs" ]; then
    echo "run.sh: $vurs not built: macro benchmark skipped" >&2
    exit 1
  fi
  command -v hyperfine >/dev/null 2>&1 || { echo "run.sh: hyperfine not installed: macro benchmark skipped" >&2; exit 1; }
  if [ "$have_shared" = 1 ]; then
    echo
    echo "== macro: $shared/run.sh $letters"
    VURS_CMDS="vurs=$vurs --;vurs-fsremap=$vurs -b /etc/hostname:/etc/passwd --" \
      "$shared/run.sh" "$letters" || status=$?
  else
    echo
    echo "== macro: reference workloads skipped (no shared benchmark sources); workload e and the remapped tree follow"
    letters=e
  fi

  # --- 3b. e (gcc) again, interleaved: the noisiest workload, 5 runs per command do not
  # settle it on a shared VM.
  if [[ $letters == *e* ]]; then
    printf '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n' >"$work/hello.c"
    gcc_e="gcc -O2 -o $work/hello $work/hello.c"
    floor_cmd=()
    if [ "$have_shared" = 1 ]; then
      cc -O2 -o "$work/floor" "$shared/floor/mini_vz.c"
      cc -O2 -o "$work/floor-notify" "$shared/floor/mini_notify.c"
      floor_cmd=("floor=$work/floor $gcc_e" "floor-notify=$work/floor-notify $gcc_e")
    fi
    echo
    echo "=== workload e interleaved: $gcc_e"
    python3 "$root/bench/interleaved.py" "${E_ROUNDS:-30}" "native=$gcc_e" "${floor_cmd[@]}" \
      "vurs=$vurs -- $gcc_e" "vurs-fsremap=$vurs -b /etc/hostname:/etc/passwd -- $gcc_e" \
      "vurs-fsremap-ptrace=env VURS_ENGINE=ptrace $vurs -b /etc/hostname:/etc/passwd -- $gcc_e" || status=$?
  fi

  # --- 3c. parallel programs stay parallel: two finds at once against one alone, under
  # each engine (and the floor's single synchronous supervisor).
  find_job="find /usr/share -name '*.h'"
  two="($find_job >/dev/null & $find_job >/dev/null; wait)"
  echo
  echo "=== parallel: one '$find_job' alone, then two at once"
  pargs=(-N --warmup 1 --runs 5
    -n "native one" "bash -c \"$find_job >/dev/null\"" -n "native two" "bash -c \"$two\""
    -n "vurs one" "$vurs -b /etc/hostname:/etc/passwd -- bash -c \"$find_job >/dev/null\""
    -n "vurs two" "$vurs -b /etc/hostname:/etc/passwd -- bash -c \"$two\""
    -n "vurs-ptrace one" "env VURS_ENGINE=ptrace $vurs -b /etc/hostname:/etc/passwd -- bash -c \"$find_job >/dev/null\""
    -n "vurs-ptrace two" "env VURS_ENGINE=ptrace $vurs -b /etc/hostname:/etc/passwd -- bash -c \"$two\"")
  if [ "$have_shared" = 1 ]; then
    [ -x "$work/floor-notify" ] || cc -O2 -o "$work/floor-notify" "$shared/floor/mini_notify.c"
    pargs+=(-n "floor-notify one" "$work/floor-notify bash -c \"$find_job >/dev/null\""
      -n "floor-notify two" "$work/floor-notify bash -c \"$two\"")
  fi
  hyperfine "${pargs[@]}" || status=$?

  # --- 4. a remapped tree: find and tar over a copy of /usr/include seen at another path
  tree=$work/include
  cp -a /usr/include "$tree"
  target=/opt/vurs-bench-include
  cow_upper=$work/cow-upper # stays empty: the jobs only read
  mkdir -p "$cow_upper"
  for job in "find $target -name '*.h' | wc -l" "tar cf - $target 2>/dev/null | wc -c"; do
    echo
    echo "=== remapped tree: $job  (native: the same on the copy itself)"
    native_job=${job//$target/$tree}
    args=(-N --warmup 1 --runs 5 -n native "bash -c \"$native_job\""
      -n vurs "$vurs -b $tree:$target -- bash -c \"$job\"")
    args+=(-n vurs-ptrace "env VURS_ENGINE=ptrace $vurs -b $tree:$target -- bash -c \"$job\"")
    # the copy seen through a cow view with an empty upper layer (the module's cost for a
    # tree nobody changed), side by side with the remap above
    args+=(-n vurs-cow "$vurs --mount type=cow,source=$cow_upper,target=$tree -- bash -c \"$native_job\"")
    args+=(-n vurs-cow-ptrace "env VURS_ENGINE=ptrace $vurs --mount type=cow,source=$cow_upper,target=$tree -- bash -c \"$native_job\"")
    command -v proot >/dev/null && args+=(-n proot "proot -b $tree:$target bash -c \"$job\"")
    hyperfine "${args[@]}" || status=$?
  done
fi
exit "$status"
