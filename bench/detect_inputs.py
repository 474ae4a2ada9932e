#!/usr/bin/env python3
"""hs-detect against the bare screen models, on each real capture (tests/fixtures/detect/real).

Each capture is cycled to MB megabytes and piped (`cat FILE |`, 64 KiB pipe reads) into
  - `screen_parse vt100 ROWSxCOLS` (shared/examples/screen_parse.rs: the vt100 crate alone)
  - `screen_parse term ROWSxCOLS` (hs-detect's own model, shared::term, alone)
  - `hs-detect --format tui --size ROWSxCOLS` (on its own model, the default)
  - `hs-detect ... --screen-model vt100` (the detector on vt100, as before)
each pinned to one core (taskset -c 0), interleaved, ROUNDS rounds; the median throughput of each
is printed, with hs-detect / its bare model and peak RSS. The load average is printed before and
after: other work on the machine moves all figures together.

Usage: bench/detect_inputs.py BIN_DIR SCREEN_PARSE_BIN [MB] [ROUNDS] [CAPTURE...]
"""
import os, re, statistics, subprocess, sys, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
real = os.path.join(root, "tests/fixtures/detect/real")
bin_dir, baseline = sys.argv[1], sys.argv[2]
mb = int(sys.argv[3]) if len(sys.argv) > 3 else 100
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 5
names = sys.argv[5:] or sorted(f for f in os.listdir(real) if f.startswith(("tui-", "bench-")) and f.endswith(".bin"))


def cycled(src, dst, size):
    data = open(src, "rb").read()
    with open(dst, "wb") as f:
        left = size
        while left > 0:
            f.write(data[:left])
            left -= len(data)


def run(argv, path):
    """Wall seconds from start to exit, and peak RSS (KB), of argv reading `cat path`."""
    pin = ["taskset", "-c", "0"] if subprocess.call(["sh", "-c", "command -v taskset"], stdout=subprocess.DEVNULL) == 0 else []
    # Peak RSS from /usr/bin/time: the rusage of a child forked from Python counts Python's own
    # pages from before the exec.
    rss_file = path + ".rss"
    t0 = time.perf_counter()
    cat = subprocess.Popen(["cat", path], stdout=subprocess.PIPE)
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file] + pin + argv, stdin=cat.stdout, stdout=subprocess.DEVNULL)
    cat.stdout.close()
    code = p.wait()
    wall = time.perf_counter() - t0
    cat.wait()
    if code not in (0, 1):
        sys.exit(f"detect_inputs: {argv[0]} exited {code}")
    return wall, int(open(rss_file).read().split()[-1])


print(f"load average before: {open('/proc/loadavg').read().split()[:3]}")
print("MB/s, median of each; `detect/term`: hs-detect over its bare model")
print(f"{'capture':32} {'size':>7} {'vt100':>7} {'term':>7} {'hs-detect':>9} {'on vt100':>9} {'detect/term':>11} {'RSS MB':>7}")
runs = {
    "vt100": lambda size: [baseline, "vt100", size],
    "term": lambda size: [baseline, "term", size],
    "detect": lambda size: [os.path.join(bin_dir, "hs-detect"), "--format", "tui", "--size", size],
    "detect_vt100": lambda size: [os.path.join(bin_dir, "hs-detect"), "--format", "tui", "--size", size, "--screen-model", "vt100"],
}
with tempfile.TemporaryDirectory() as work:
    for name in names:
        m = re.search(r"(\d+)x(\d+)", name)
        size = f"{m.group(1)}x{m.group(2)}"
        path = os.path.join(work, "input")
        cycled(os.path.join(real, name), path, mb * 1000 * 1000)
        rates = {k: [] for k in runs}
        rss = []
        for _ in range(rounds):
            for k, argv in runs.items():
                w, r = run(argv(size), path)
                rates[k].append(mb / w)
                if k == "detect":
                    rss.append(r / 1024)
        med = {k: statistics.median(v) for k, v in rates.items()}
        print(f"{name[:-4]:32} {size:>7} {med['vt100']:7.1f} {med['term']:7.1f} {med['detect']:9.1f} {med['detect_vt100']:9.1f} {med['detect'] / med['term']:11.2f} {max(rss):7.1f}", flush=True)
print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")
