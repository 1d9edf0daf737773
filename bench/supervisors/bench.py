#!/usr/bin/env python3
"""Interleaved benchmark of mn variants: one find, two finds at once, wl stat per call.
usage: bench.py ROUNDS OUT.json [variant-spec ...]   (spec: name=mn-args, e.g. B2='-v B -t 2')"""
import json, os, random, resource, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
MN = os.path.join(HERE, "mn"); WL = os.path.join(HERE, "wl")
ONE = "find /usr/share -name '*.h' >/dev/null"
TWO = "(find /usr/share -name '*.h' >/dev/null & find /usr/share -name '*.h' >/dev/null; wait)"
QUIET = os.environ.get("QUIET") == "1"
SLOW = {"N", "C2", "C3", "F2", "L2", "S2"}   # per-call test with fewer iterations (tens of µs per call)

def cpu_busy():
    with open("/proc/stat") as f:
        v = list(map(int, f.readline().split()[1:]))
    idle = v[3] + v[4]
    return sum(v[:8]) - idle  # jiffies

def wait_quiet(limit=60.0):
    """wait until the other CPU users are (almost) idle: < 0.05 CPU over 0.3 s; returns the last sample"""
    hz = os.sysconf("SC_CLK_TCK"); t_end = time.time() + limit
    while True:
        b0 = cpu_busy(); time.sleep(0.3); b = (cpu_busy() - b0) / hz / 0.3
        if b < 0.05 or time.time() > t_end: return b

def run(argv):
    hz = os.sysconf("SC_CLK_TCK")
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN); b0 = cpu_busy(); t0 = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    t1 = time.perf_counter(); b1 = cpu_busy(); r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    other = max(0.0, (b1 - b0) / hz - own) / (t1 - t0)   # CPUs used by others during the run
    return t1 - t0, p.stdout, other

def main():
    rounds = int(sys.argv[1]); out = sys.argv[2]
    specs = {"native": None}
    for s in sys.argv[3:]:
        k, v = s.split("=", 1); specs[k] = v.split()
    res = []
    for r in range(rounds):
        names = list(specs); random.shuffle(names)
        for name in names:
            pre = [] if specs[name] is None else [MN] + specs[name]
            if QUIET: wait_quiet()
            t1, _, o1 = run(pre + ["bash", "-c", ONE])
            t2, _, o2 = run(pre + ["bash", "-c", TWO])
            n = 20000 if name in SLOW else 200000
            _, so, o3 = run(pre + [WL, "stat", str(n)])
            ns = float(so.split()[2])
            _, so2, o4 = run(pre + ["bash", "-c", f"{WL} stat {n//2} & {WL} stat {n//2}; wait"])
            ns2 = sum(float(l.split()[2]) for l in so2.strip().splitlines()) / 2
            res.append(dict(round=r, name=name, one=t1, two=t2, ns=ns, ns2=ns2, other=(o1 + o2 + o3 + o4) / 4))
            print(f"r{r} {name:7s} one {t1*1e3:6.0f} ms two {t2*1e3:6.0f} ms ratio {t2/t1:4.2f} stat {ns:7.0f} ns pair-stat {ns2:7.0f} ns other-load {res[-1]['other']:.2f}", flush=True)
        json.dump(res, open(out, "w"))

main()
