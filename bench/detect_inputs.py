#!/usr/bin/env python3
"""hs-detect against the bare vt100 screen model, on each real capture (tests/fixtures/detect/real).

Each capture is cycled to MB megabytes and piped (`cat FILE |`, 64 KiB pipe reads) into
  - the baseline: `vt100_parse ROWSxCOLS` (shared/examples/vt100_parse.rs: vt100 alone, no detection)
  - `hs-detect --format tui --size ROWSxCOLS`
each pinned to one core (taskset -c 0), interleaved, ROUNDS rounds; the median throughput of each
is printed beside the other, with the ratio and peak RSS. The load average is printed before and
after: other work on the machine moves both figures together.

Usage: bench/detect_inputs.py BIN_DIR EXAMPLE_BIN [MB] [ROUNDS] [CAPTURE...]
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
print(f"{'capture':42} {'size':>8} {'vt100 alone':>12} {'hs-detect':>10} {'ratio':>6} {'RSS MB':>7}")
with tempfile.TemporaryDirectory() as work:
    for name in names:
        m = re.search(r"(\d+)x(\d+)", name)
        size = f"{m.group(1)}x{m.group(2)}"
        path = os.path.join(work, "input")
        cycled(os.path.join(real, name), path, mb * 1000 * 1000)
        rates = {"base": [], "detect": []}
        rss = []
        for _ in range(rounds):
            w, _ = run([baseline, size], path)
            rates["base"].append(mb / w)
            w, r = run([os.path.join(bin_dir, "hs-detect"), "--format", "tui", "--size", size], path)
            rates["detect"].append(mb / w)
            rss.append(r / 1024)
        b, d = statistics.median(rates["base"]), statistics.median(rates["detect"])
        print(f"{name:42} {size:>8} {b:9.1f} MB/s {d:7.1f} MB/s {d / b:6.2f} {max(rss):7.1f}", flush=True)
print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")
