#!/usr/bin/env python3
"""Relay A/B: several builds of hs-run against `script`, interleaved round by round.

    bench/relay_ab.py ROUNDS NAME=BIN_DIR [NAME=BIN_DIR ...] [--mb MB]

Each BIN_DIR holds a release build of the tools (e.g. `target/release` of a worktree at another
commit). Every round runs each build's hs-run and then `script -qec` on the same generator as
`shell/bench relay` (coloured text, MB megabytes, default 200), each on a fresh PTY read to the
end; each hs-run is compared with the script run of its own round, since the host's speed drifts
between rounds. Prints the median, mean and range of those ratios per build.
"""
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    args = sys.argv[1:]
    mb = 200
    if "--mb" in args:
        i = args.index("--mb")
        mb = int(args[i + 1])
        del args[i:i + 2]
    if len(args) < 2 or not args[0].isdigit() or any("=" not in a for a in args[1:]):
        sys.exit(__doc__)
    rounds = int(args[0])
    builds = [(n, os.path.abspath(b)) for n, b in (a.split("=", 1) for a in args[1:])]
    for name, b in builds:
        if not os.access(os.path.join(b, "hs-run"), os.X_OK):
            sys.exit(f"relay_ab: no hs-run in {b} (build {name} with `cargo build --release`)")
    with tempfile.TemporaryDirectory(prefix="hs-relay-ab.") as work:
        s = bench.Sealed(builds[0][1], work, "ab", 1)
        data = os.path.join(s.root, "text")
        bench.make_text(data, mb * 1000 * 1000)
        gen = s.script("gen", "#!/bin/sh\n"
                       "case \" $* \" in *\" --help \"*) echo '      --no-daemon'; exit 0;; esac\n"
                       f"exec cat '{data}'\n")
        cmds = [(n, [os.path.join(b, "hs-run"), "--codex", gen]) for n, b in builds]
        cmds.append(("script", ["script", "-qec", gen, "/dev/null"]))
        times = {n: [] for n, _ in cmds}
        for _ in range(rounds):
            for name, argv in cmds:
                t0 = time.monotonic()
                p, m = bench.pty_spawn(argv, s.env, s.home)
                bench.drain(m, p)
                if p.returncode != 0:
                    sys.exit(f"relay_ab: {name} exited {p.returncode}")
                times[name].append(time.monotonic() - t0)
    print(f"relay {mb} MB, {rounds} rounds, load {open('/proc/loadavg').read().split()[0]} at the end")
    for name, _ in cmds[:-1]:
        r = [sc / h for h, sc in zip(times[name], times["script"])]
        print(f"{name}: hs-run / script median {statistics.median(r):.3f}, mean {statistics.mean(r):.3f}, "
              f"range {min(r):.2f} to {max(r):.2f}; median wall {statistics.median(times[name]):.2f} s")
    print(f"script: median wall {statistics.median(times['script']):.2f} s")


if __name__ == "__main__":
    main()
