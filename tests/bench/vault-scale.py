#!/usr/bin/python3
"""vault-scale.py LABEL:DIR[:PID] ... - the cost per file as a filesystem
grows: files of 2 KiB are created (4 worker processes, 1,000 per
directory) until each checkpoint (default 10k, 100k, 1M; BENCH_SCALE
overrides, comma-separated); at each checkpoint the create rate of the last
WINDOW files and the stat rate of WINDOW files picked at random among all
are measured, with the daemon's resident memory and descriptors when its PID
is given.  One JSON object per filesystem and checkpoint.  Run by
vault-scale.sh; not part of make check."""
import json, multiprocessing as mp, os, random, sys, time

POINTS = [int(x) for x in os.environ.get("BENCH_SCALE", "10000,100000,1000000").split(",")]
WINDOW = int(os.environ.get("BENCH_WINDOW", "10000"))
WORKERS = 4
PAYLOAD = b"{\"event_type\":\"model\",\"inputs\":\"" + b"x" * 2000 + b"\"}\n"

def path(d, i):
    return "%s/d%04d/f%07d.json" % (d, i // 1000, i)

def create(args):
    d, lo, hi = args
    for i in range(lo, hi):
        if i == lo or i % 1000 == 0:
            os.makedirs("%s/d%04d" % (d, i // 1000), exist_ok=True)
        fd = os.open(path(d, i), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        os.write(fd, PAYLOAD)
        os.close(fd)

def stat(args):
    d, picks = args
    for i in picks:
        os.stat(path(d, i))

def split(lo, hi):
    step = (hi - lo + WORKERS - 1) // WORKERS
    return [(max(lo, lo + w * step), min(hi, lo + (w + 1) * step)) for w in range(WORKERS)]

def proc(pid, what):
    try:
        if what == "rss":
            for line in open("/proc/%s/status" % pid):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
        return len(os.listdir("/proc/%s/fd" % pid))
    except OSError:
        return None

def main():
    targets = [a.split(":") for a in sys.argv[1:]]
    with mp.Pool(WORKERS) as pool:
        for label, d, *pid in targets:
            have = 0
            for point in POINTS:
                # grow to the window's start without timing, then time the window
                start = max(have, point - WINDOW)
                # directories begin at multiples of 1,000: keep each worker's range aligned
                for lo in range(have, start, 100000):
                    hi = min(start, lo + 100000)
                    pool.map(create, [(d, a, b) for a, b in split(lo, hi) if a < b])
                t = time.perf_counter()
                pool.map(create, [(d, a, b) for a, b in split(start, point) if a < b])
                create_rate = (point - start) / (time.perf_counter() - t)
                have = point
                rnd = random.Random(point)
                picks = [rnd.randrange(point) for _ in range(WINDOW)]
                t = time.perf_counter()
                pool.map(stat, [(d, picks[w::WORKERS]) for w in range(WORKERS)])
                stat_rate = WINDOW / (time.perf_counter() - t)
                row = {"fs": label, "files": point, "create_per_s": round(create_rate),
                       "stat_per_s": round(stat_rate)}
                if pid:
                    row["rss_MiB"] = proc(pid[0], "rss")
                    row["fds"] = proc(pid[0], "fds")
                print(json.dumps(row), flush=True)

if __name__ == "__main__":
    main()
