import json, sys, statistics as st, collections
res = json.load(open(sys.argv[1])); lim = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1
d = collections.defaultdict(list)
for r in res:
    if r['other'] <= lim: d[r['name']].append(r)
print(f"{'variant':8s} {'n':>2s} {'one ms':>7s} {'two ms':>7s} {'two/one med':>11s} {'[min-max]':>13s} {'stat ns':>8s} {'pair ns':>8s} {'one/native':>10s}")
nat = st.median(x['one'] for x in d['native']) if d['native'] else None
for k in sorted(d):
    v = d[k]; ratios = [x['two']/x['one'] for x in v]
    one = st.median(x['one'] for x in v)*1e3; two = st.median(x['two'] for x in v)*1e3
    print(f"{k:8s} {len(v):2d} {one:7.0f} {two:7.0f} {st.median(ratios):11.2f} {min(ratios):6.2f}-{max(ratios):5.2f} {st.median(x['ns'] for x in v):8.0f} {st.median(x.get('ns2',0) for x in v):8.0f} {one/nat/1e3:10.2f}")
