#!/usr/bin/env python3
"""codex-hotswap benchmarks, each beside its baseline in the same run (see shell/bench).

Usage: bench/bench.py BIN_DIR WORK_DIR [relay|echo|startup|switch|boundary ...]
BIN_DIR holds the release hs-* tools and fake-codex (built with --features test-fakes).
Every figure goes to stdout as a markdown table row; details go to stderr.
Each benchmark runs the tools in a sealed HOME under WORK_DIR with fake logins (unsigned JWTs).
"""

import base64
import fcntl
import json
import os
import shutil
import pty
import secrets
import select
import statistics
import struct
import subprocess
import sys
import termios
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def fake_auth_json(name):
    """A ChatGPT login as codex writes it, with unsigned JWTs (what the test harness mints)."""
    claims = {
        "email": f"{name}@example.com",
        "exp": int(time.time()) + 86400,
        "https://api.openai.com/auth": {
            "chatgpt_plan_type": "plus",
            "chatgpt_account_id": f"acct-{name}",
            "chatgpt_user_id": f"user-{name}",
        },
    }
    head = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    jwt = lambda kind: f"{head}.{body}.tok-{kind}-{secrets.token_hex(8)}"
    return json.dumps({
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {"id_token": jwt("id"), "access_token": jwt("access"),
                   "refresh_token": f"tok-refresh-{secrets.token_hex(16)}", "account_id": f"acct-{name}"},
        "last_refresh": "2026-11-24T18:00:00Z",
    })


class Sealed:
    """A sealed HOME with accounts acc1..accN logged in, and the environment to run tools in."""

    def __init__(self, bin_dir, work, name, accounts):
        self.bin = bin_dir
        self.root = os.path.join(work, name)
        self.home = os.path.join(self.root, "home")
        os.makedirs(os.path.join(self.home, ".codex"), exist_ok=True)
        self.env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": self.home,
            "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
            "XDG_STATE_HOME": os.path.join(self.home, ".local/state"),
            "TZ": "UTC",
            "LANG": "C.UTF-8",
            "TERM": "xterm-256color",
        }
        for i in range(1, accounts + 1):
            acc = f"acc{i}"
            self.run("hs-vault", "add", acc)
            auth = os.path.join(self.home, f".codex-{acc}", "auth.json")
            fd = os.open(auth, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, fake_auth_json(acc).encode())
            os.close(fd)

    def tool(self, name):
        return os.path.join(self.bin, name)

    def run(self, name, *args, **kw):
        return subprocess.run([self.tool(name), *args], env=self.env, check=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=self.home, **kw)

    def script(self, name, text):
        path = os.path.join(self.root, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
        return path


# ---- a pseudo-terminal, as the user's terminal ----

def pty_spawn(argv, env, cwd, rows=30, cols=100):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                         start_new_session=True, close_fds=True,
                         preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    return p, master


def drain(master, p, want=None):
    """Reads the terminal until the child side closes; returns (bytes read, tail of the output)."""
    total, tail = 0, b""
    while True:
        try:
            data = os.read(master, 1 << 16)
        except OSError:
            break
        if not data:
            break
        total += len(data)
        tail = (tail + data)[-4096:]
    p.wait()
    os.close(master)
    return total, tail


def read_until(master, marker, timeout=30.0):
    buf = b""
    end = time.monotonic() + timeout
    while marker not in buf:
        left = end - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"timed out waiting for {marker!r}; got {buf[-300:]!r}")
        r, _, _ = select.select([master], [], [], left)
        if r:
            buf += os.read(master, 4096)
    return buf


def time_file(path):
    """Peak RSS (KiB) and elapsed seconds from `/usr/bin/time -f '%M %e' -o path`."""
    with open(path) as f:
        last = f.read().strip().splitlines()[-1].split()
    return int(last[0]), float(last[1])


def row(*cells):
    print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)


# ---- output relay ----

WORDS = ("the session continues on the next account while codex keeps its rollout open and "
         "hs-run copies every byte to the terminal and to hs-detect fn main let mut buf Vec u8 "
         "Ok Err Result match impl struct pub use std io Write poll fd read write").split()


def make_text(path, size):
    """Realistic terminal text: lines of code and prose with ANSI colours, bold, dim, diffs."""
    import random
    rnd = random.Random(7)
    colours = ["\x1b[32m", "\x1b[31m", "\x1b[36m", "\x1b[1m", "\x1b[2m", "\x1b[33m", "\x1b[35m", ""]
    lines = []
    n = 0
    while n < 1 << 20:
        words = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(3, 14)))
        c = rnd.choice(colours)
        prefix = rnd.choice(["", "  ", "+ ", "- ", "• ", "    "])
        line = f"{c}{prefix}{words}\x1b[0m\n" if c else f"{prefix}{words}\n"
        lines.append(line)
        n += len(line)
    chunk = "".join(lines).encode()
    with open(path, "wb") as f:
        written = 0
        while written < size:
            part = chunk[: size - written]
            f.write(part)
            written += len(part)


# Rounds of the relay benchmark (each runs all four, one after the other): the machine's load
# moves single runs by ±20 %, so the median of several rounds is shown.
RELAY_ROUNDS = int(os.environ.get("HS_BENCH_ROUNDS", "5"))


def null_detector_bin(bin_dir, work):
    """A copy of the tools with hs-detect replaced by a reader that throws its input away: hs-run
    relaying exactly as it does, without the screen model's work."""
    d = os.path.join(work, "bin-null-detect")
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(bin_dir):
        src = os.path.join(bin_dir, name)
        if name.startswith("hs-") and os.path.isfile(src) and os.access(src, os.X_OK):
            shutil.copy2(src, os.path.join(d, name))
    with open(os.path.join(d, "hs-detect"), "w") as f:
        f.write("#!/bin/sh\nexec cat >/dev/null\n")
    os.chmod(os.path.join(d, "hs-detect"), 0o755)
    return d


def relay(bin_dir, work):
    s = Sealed(bin_dir, work, "relay", 1)
    null_bin = null_detector_bin(bin_dir, work)
    results = {}
    for mb in (50, 200):
        data = os.path.join(s.root, f"text-{mb}MB")
        make_text(data, mb * 1000 * 1000)
        gen = s.script(f"gen-{mb}", "#!/bin/sh\n"
                       "case \" $* \" in *\" --help \"*) echo '      --no-daemon'; exit 0;; esac\n"
                       f"exec cat '{data}'\n")
        tfile = os.path.join(s.root, "time")
        cmds = {
            "hs-run": [s.tool("hs-run"), "--codex", gen],
            "hs-run, null detector": [os.path.join(null_bin, "hs-run"), "--codex", gen],
            "script": ["script", "-qec", gen, "/dev/null"],
            "direct": [gen],
        }
        runs = {k: [] for k in cmds}
        for _ in range(RELAY_ROUNDS):
            for name, argv in cmds.items():
                t0 = time.monotonic()
                p, m = pty_spawn(["/usr/bin/time", "-f", "%M %e %U %S", "-o", tfile, *argv], s.env, s.home)
                got, tail = drain(m, p)
                secs = time.monotonic() - t0
                if p.returncode != 0:
                    raise RuntimeError(f"{name} exited {p.returncode}: {tail[-500:]!r}")
                with open(tfile) as f:
                    rss, _, user, sys_ = f.read().strip().splitlines()[-1].split()
                cpu = float(user) + float(sys_)
                runs[name].append((secs, int(rss), got, cpu))
                log(f"relay {mb} MB {name}: {secs:.2f} s, {got / 1e6:.1f} MB read, peak RSS {int(rss) / 1024:.1f} MB, "
                    f"CPU {cpu:.2f} s (with its children)")
        med = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
        rss = {k: max(r[1] for r in v) for k, v in runs.items()}
        cpu = {k: statistics.median(r[3] for r in v) for k, v in runs.items()}
        results[mb] = (med, rss)
        rate = lambda k: mb / med[k]
        # The host's speed drifts between rounds: each round's hs-run is compared with the
        # script run right after it, and the median of those ratios is the figure.
        ratio = lambda k: statistics.median(s[0] / h[0] for h, s in zip(runs[k], runs["script"]))
        row(f"relay {mb} MB, throughput (median of {RELAY_ROUNDS})", f"hs-run {rate('hs-run'):.0f} MB/s",
            f"script {rate('script'):.0f} MB/s (direct on the PTY {rate('direct'):.0f} MB/s)",
            f"{ratio('hs-run'):.2f} of script (median of the rounds' ratios)", "≥ 0.8 of script")
        row(f"relay {mb} MB, hs-run with hs-detect replaced by `cat >/dev/null` (median of {RELAY_ROUNDS})",
            f"{rate('hs-run, null detector'):.0f} MB/s", f"script {rate('script'):.0f} MB/s",
            f"{ratio('hs-run, null detector'):.2f} of script", "(what the relay alone costs)")
        row(f"relay {mb} MB, CPU time of the whole tree (generator included; median of {RELAY_ROUNDS})",
            f"hs-run {cpu['hs-run']:.2f} s, with the null detector {cpu['hs-run, null detector']:.2f} s",
            f"script {cpu['script']:.2f} s, generator alone {cpu['direct']:.2f} s",
            f"screen model {cpu['hs-run'] - cpu['hs-run, null detector']:.2f} s", "")
        row(f"relay {mb} MB, peak RSS", f"hs-run {rss['hs-run'] / 1024:.1f} MB", f"script {rss['script'] / 1024:.1f} MB",
            "", "< 16 MB, flat")
    # the overlay went away each time
    left = os.listdir(os.path.join(s.home, ".local/state/codex-hotswap/runtime"))
    if left:
        raise RuntimeError(f"overlays left behind: {left}")


# ---- keystroke echo ----

def echo(bin_dir, work, n=2000):
    s = Sealed(bin_dir, work, "echo", 1)
    child = os.path.join(HERE, "echo_child.py")
    wrapper = s.script("echo-codex", "#!/bin/sh\n"
                       "case \" $* \" in *\" --help \"*) echo '      --no-daemon'; exit 0;; esac\n"
                       f"exec python3 '{child}'\n")
    results = {}
    for name, argv in [("direct", ["python3", child]), ("hs-run", [s.tool("hs-run"), "--codex", wrapper])]:
        p, m = pty_spawn(argv, s.env, s.home)
        read_until(m, b"READY")
        time.sleep(0.3)  # let hs-run's start-up work (rollout scans) settle
        while select.select([m], [], [], 0.05)[0]:
            os.read(m, 4096)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(m, b"x")
            got = b""
            while b"x" not in got:
                got += os.read(m, 64)
            times.append(time.perf_counter() - t0)
        os.write(m, b"q")
        drain(m, p)
        times.sort()
        results[name] = times
        log(f"echo {name}: median {statistics.median(times) * 1e6:.0f} µs, p90 {times[int(n * 0.9)] * 1e6:.0f} µs, "
            f"p99 {times[int(n * 0.99)] * 1e6:.0f} µs over {n}")
    med = {k: statistics.median(v) * 1e3 for k, v in results.items()}
    p90 = {k: v[int(n * 0.9)] * 1e3 for k, v in results.items()}
    row(f"keystroke echo, median round trip ({n} keys)", f"hs-run {med['hs-run']:.3f} ms (p90 {p90['hs-run']:.3f})",
        f"direct {med['direct']:.3f} ms (p90 {p90['direct']:.3f})", f"+{med['hs-run'] - med['direct']:.3f} ms", "< +1 ms")


# ---- start-up ----

def mean_ms(xs):
    return statistics.mean(xs) * 1e3


def startup(bin_dir, work, n=40):
    s = Sealed(bin_dir, work, "startup", 2)
    fake = s.tool("fake-codex")
    starts = os.path.join(s.root, "starts")
    # the same wrapper in both cases: it notes when the child starts
    wrapper = s.script("codex", "#!/bin/bash\n"
                       f"[[ \" $* \" == *\" --help \"* ]] || echo \"$EPOCHREALTIME\" >> '{starts}'\n"
                       f"exec '{fake}' \"$@\"\n")
    env = dict(s.env, CODEX_HOTSWAP_REAL_CODEX=wrapper)
    direct_home = os.path.join(s.root, "direct-home")
    os.makedirs(direct_home, exist_ok=True)
    direct_env = dict(s.env, CODEX_HOME=direct_home)
    cases = {
        "direct": ([wrapper, "exec", "x"], direct_env),
        "hs-run": ([s.tool("hs-run"), "--", "exec", "x"], env),
    }
    whole = {k: [] for k in cases}
    to_start = {k: [] for k in cases}
    subprocess.run(cases["hs-run"][0], env=env, cwd=s.home, check=True, capture_output=True)  # warm caches
    for _ in range(n):
        for name, (argv, e) in cases.items():
            t0 = time.time()
            r = subprocess.run(argv, env=e, cwd=s.home, stdin=subprocess.DEVNULL, capture_output=True)
            whole[name].append(time.time() - t0)
            if r.returncode != 0 or r.stdout != b"fake answer to: x\n":
                raise RuntimeError(f"{name}: exit {r.returncode}: {r.stderr[-300:]!r}")
            with open(starts) as f:
                to_start[name].append(float(f.read().split()[-1]) - t0)
    for name in cases:
        log(f"startup {name}: whole run mean {mean_ms(whole[name]):.1f} ms (median "
            f"{statistics.median(whole[name]) * 1e3:.1f}), child started after {mean_ms(to_start[name]):.1f} ms")
    row(f"start-up: `hs-run -- exec x` with the fake codex, whole run (mean of {n})",
        f"hs-run {mean_ms(whole['hs-run']):.1f} ms", f"fake codex alone {mean_ms(whole['direct']):.1f} ms",
        f"+{mean_ms(whole['hs-run']) - mean_ms(whole['direct']):.1f} ms", "< +30 ms")
    row(f"start-up: until the child starts (mean of {n})", f"hs-run {mean_ms(to_start['hs-run']):.1f} ms",
        f"alone {mean_ms(to_start['direct']):.1f} ms",
        f"+{mean_ms(to_start['hs-run']) - mean_ms(to_start['direct']):.1f} ms", "(part of the above)")
    true = []
    tools = {"current": [], "pick": []}
    for _ in range(100):
        t0 = time.perf_counter()
        subprocess.run(["/bin/true"], env=s.env)
        true.append(time.perf_counter() - t0)
        for verb in tools:
            t0 = time.perf_counter()
            subprocess.run([s.tool("hs-rotate"), verb], env=s.env, check=True, stdout=subprocess.DEVNULL)
            tools[verb].append(time.perf_counter() - t0)
    for verb, xs in tools.items():
        row(f"`hs-rotate {verb}` (mean of 100)", f"{mean_ms(xs):.2f} ms", f"/bin/true {mean_ms(true):.2f} ms",
            f"+{mean_ms(xs) - mean_ms(true):.2f} ms over a process start", "< 5 ms")


# ---- switch ----

def limit_times(root):
    """The times of the rollouts' limit records (task_complete with usage_limit_exceeded)."""
    out = []
    for d, _, files in os.walk(root):
        for f in files:
            if f.startswith("rollout-") and f.endswith(".jsonl"):
                for line in open(os.path.join(d, f)):
                    v = json.loads(line)
                    err = (v.get("payload") or {}).get("error") or {}
                    if err.get("codex_error_info") == "usage_limit_exceeded":
                        ts = v["timestamp"].replace("Z", "+00:00")
                        from datetime import datetime
                        out.append(datetime.fromisoformat(ts).timestamp())
    return sorted(out)


def switch(bin_dir, work, n=10):
    rows = []
    for mode in ("exec", "tui"):
        s = Sealed(bin_dir, work, f"switch-{mode}", n + 1)
        fake = s.tool("fake-codex")
        marks = os.path.join(s.root, "marks")
        wrapper = s.script("codex", "#!/bin/bash\n"
                           f"[[ \" $* \" == *\" --help \"* ]] && exec '{fake}' \"$@\"\n"
                           f"echo \"start $EPOCHREALTIME\" >> '{marks}'\n"
                           f"'{fake}' \"$@\"; rc=$?\n"
                           f"echo \"end $EPOCHREALTIME\" >> '{marks}'\n"
                           "exit $rc\n")
        env = dict(s.env, CODEX_HOTSWAP_REAL_CODEX=wrapper, FAKE_CODEX_LOG=os.path.join(s.root, "fake.jsonl"),
                   FAKE_CODEX_LIMIT=",".join(str(i) for i in range(1, n + 1)))
        args = [s.tool("hs-run"), "--max-swaps", str(n)]
        if mode == "exec":
            r = subprocess.run([*args, "--", "exec", "task"], env=env, cwd=s.home, stdin=subprocess.DEVNULL,
                               capture_output=True)
            if r.returncode != 0:
                raise RuntimeError(f"switch exec: exit {r.returncode}: {r.stderr[-500:]!r}")
        else:
            p, m = pty_spawn(args, env, s.home)
            end = time.monotonic() + 120
            while True:
                if select.select([m], [], [], 0.05)[0]:
                    os.read(m, 65536)
                starts = open(marks).read().count("start") if os.path.exists(marks) else 0
                if starts == n + 1 or time.monotonic() > end:
                    break
            time.sleep(0.2)
            os.write(m, b"q")
            drain(m, p)
            if p.returncode != 0:
                raise RuntimeError(f"switch tui: exit {p.returncode}")
        events = [l.split() for l in open(marks)]
        starts = [float(t) for k, t in events if k == "start"]
        ends = [float(t) for k, t in events if k == "end"]
        limits = limit_times(s.home)
        if len(limits) != n or len(starts) != n + 1:
            raise RuntimeError(f"switch {mode}: {len(limits)} limit records, {len(starts)} starts")
        total = [(starts[k + 1] - limits[k]) * 1e3 for k in range(n)]
        wait = [(ends[k] - limits[k]) * 1e3 for k in range(n)]
        rest = [(starts[k + 1] - ends[k]) * 1e3 for k in range(n)]
        log(f"switch {mode}: limit→resumed start {[round(x) for x in total]} ms; "
            f"of which old child exit {[round(x) for x in wait]} ms")
        label = "`exec`" if mode == "exec" else "TUI (PTY)"
        row(f"switch, {label}: limit record → resumed codex starts (mean of {n})", f"{statistics.mean(total):.0f} ms",
            f"waiting for the old codex to exit {statistics.mean(wait):.0f} ms",
            f"the switch itself {statistics.mean(rest):.0f} ms", "< 300 ms")


# ---- boundary switch ----

def rollout_times(root, kind):
    """The times of the rollouts' event records of `kind` (e.g. task_complete), in order."""
    from datetime import datetime
    out = []
    for d, _, files in os.walk(root):
        for f in files:
            if f.startswith("rollout-") and f.endswith(".jsonl"):
                for line in open(os.path.join(d, f)):
                    v = json.loads(line)
                    if (v.get("payload") or {}).get("type") == kind:
                        out.append(datetime.fromisoformat(v["timestamp"].replace("Z", "+00:00")).timestamp())
    return sorted(out)


def boundary(bin_dir, work, n=10):
    """A turn ends with the account at 96 % of its 5 h window: task_complete → the resumed codex
    has drawn its screen (composer included), with the fake codex, n times in one session."""
    s = Sealed(bin_dir, work, "boundary", n + 1)
    fake = s.tool("fake-codex")
    marks = os.path.join(s.root, "marks")
    wrapper = s.script("codex", "#!/bin/bash\n"
                       f"[[ \" $* \" == *\" --help \"* ]] && exec '{fake}' \"$@\"\n"
                       f"echo \"start $EPOCHREALTIME\" >> '{marks}'\n"
                       f"'{fake}' \"$@\"; rc=$?\n"
                       f"echo \"end $EPOCHREALTIME\" >> '{marks}'\n"
                       "exit $rc\n")
    env = dict(s.env, CODEX_HOTSWAP_REAL_CODEX=wrapper, FAKE_CODEX_LOG=os.path.join(s.root, "fake.jsonl"),
               FAKE_CODEX_USED="96")
    p, m = pty_spawn([s.tool("hs-run"), "--max-swaps", str(n)], env, s.home)
    drawn, buf = [], b""
    end = time.monotonic() + 120
    while len(drawn) < n + 1 and time.monotonic() < end:
        if select.select([m], [], [], 0.01)[0]:
            buf += os.read(m, 65536)
        if buf.count("› ready".encode()) > len(drawn):
            drawn.append(time.time())
            if len(drawn) <= n:
                # the next prompt: text, a pause, Enter (its turn ends 100 ms later)
                time.sleep(0.3)
                os.write(m, b"go")
                time.sleep(0.3)
                os.write(m, b"\r")
    os.write(m, b"q")
    drain(m, p)
    events = [l.split() for l in open(marks)]
    starts = [float(t) for k, t in events if k == "start"]
    ends = [float(t) for k, t in events if k == "end"]
    done = rollout_times(s.home, "task_complete")
    if len(drawn) != n + 1 or len(done) < n or len(starts) != n + 1:
        raise RuntimeError(f"boundary: {len(drawn)} screens, {len(done)} turn ends, {len(starts)} starts")
    total = [(drawn[k + 1] - done[k]) * 1e3 for k in range(n)]
    stop = [(ends[k] - done[k]) * 1e3 for k in range(n)]
    between = [(starts[k + 1] - ends[k]) * 1e3 for k in range(n)]
    log(f"boundary: task_complete→resumed screen {[round(x) for x in total]} ms; old codex stopped after "
        f"{[round(x) for x in stop]} ms; between the two codex {[round(x) for x in between]} ms")
    row(f"boundary switch, TUI (PTY): task_complete → resumed codex drew its screen (mean of {n})",
        f"{statistics.mean(total):.0f} ms", f"stopping the old codex {statistics.mean(stop):.0f} ms",
        f"hs-run between the two {statistics.mean(between):.0f} ms", "< 500 ms")


def main():
    bin_dir, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    which = sys.argv[3:] or ["relay", "echo", "startup", "switch", "boundary"]
    funcs = {"relay": relay, "echo": echo, "startup": startup, "switch": switch, "boundary": boundary}
    for w in which:
        funcs[w](bin_dir, work)


if __name__ == "__main__":
    main()
