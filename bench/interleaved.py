#!/usr/bin/env python3
"""Interleaved timing: run each command once per round, ROUNDS rounds (after 2 warm-up
rounds), and print median and minimum wall time with ratios to the first command.
Interleaving spreads the machine's slow phases over all commands alike; on a shared VM
that matters more than the number of runs.

usage: interleaved.py ROUNDS NAME=COMMAND [NAME=COMMAND ...]   (COMMAND runs under sh -c)
"""
import statistics
import subprocess
import sys
import time


def main() -> int:
    if len(sys.argv) < 3 or not sys.argv[1].isdigit():
        print(__doc__.strip(), file=sys.stderr)
        return 2
    rounds = int(sys.argv[1])
    cmds = [a.split("=", 1) for a in sys.argv[2:]]
    if any(len(c) != 2 for c in cmds):
        print("interleaved.py: each command is NAME=COMMAND", file=sys.stderr)
        return 2
    times = {name: [] for name, _ in cmds}
    for r in range(rounds + 2):
        for name, cmd in cmds:
            start = time.perf_counter()
            done = subprocess.run(cmd, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            elapsed = (time.perf_counter() - start) * 1000
            if done.returncode != 0:
                print(f"interleaved.py: {name} failed (status {done.returncode}): {cmd}", file=sys.stderr)
                return 1
            if r >= 2:
                times[name].append(elapsed)
    base_med = statistics.median(times[cmds[0][0]])
    base_min = min(times[cmds[0][0]])
    print(f"| command | median | ratio | min | ratio |  ({rounds} interleaved rounds)")
    print("|---|---|---|---|---|")
    for name, _ in cmds:
        med, low = statistics.median(times[name]), min(times[name])
        print(f"| {name} | {med:.1f} ms | {med / base_med:.2f}x | {low:.1f} ms | {low / base_min:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
