#!/usr/bin/python3
"""vault-bench.py DIR [DIR...] - the small-trace workload and a 1 MiB-block
stream on each directory (a mounted filesystem), printing one JSON object
per directory.  Run by vault-bench.sh; not part of make check.

Small-trace workload: 4 worker processes, each on its own FILES files of
2 KiB; phases run one after another, each timed from a barrier:
  create  open(O_CREAT|O_WRONLY) + write 2 KiB + close
  stat    stat
  read    open + read all + close
  append  open(O_APPEND) + write 200 bytes + close
  unlink  unlink
  lines   one O_APPEND descriptor per worker, 10 x FILES JSON lines of 200
          bytes written to it one write(2) each (how applications log traces)
Stream: write STREAM_MB MiB in 1 MiB writes + fsync + close, drop the page
cache, read it back in 1 MiB reads."""
import json, multiprocessing as mp, os, sys, time

FILES = int(os.environ.get("BENCH_FILES", "500"))
STREAM_MB = int(os.environ.get("BENCH_STREAM_MB", "256"))
WORKERS = 4
PHASES = ["create", "stat", "read", "append", "unlink", "lines"]
PAYLOAD = b"{\"event_type\":\"model\",\"inputs\":\"" + b"x" * 2000 + b"\"}\n"
LINE = b"{\"t\":1}" + b"y" * 192 + b"\n"

def worker(d, w, bar, q):
    sub = os.path.join(d, "w%d" % w)
    os.makedirs(sub, exist_ok=True)
    names = [os.path.join(sub, "trace-%05d.json" % i) for i in range(FILES)]
    for ph in PHASES:
        bar.wait()
        t = time.perf_counter()
        if ph == "create":
            for n in names:
                fd = os.open(n, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
                os.write(fd, PAYLOAD); os.close(fd)
        elif ph == "stat":
            for n in names:
                os.stat(n)
        elif ph == "read":
            for n in names:
                fd = os.open(n, os.O_RDONLY)
                while os.read(fd, 65536):
                    pass
                os.close(fd)
        elif ph == "append":
            for n in names:
                fd = os.open(n, os.O_WRONLY | os.O_APPEND)
                os.write(fd, LINE); os.close(fd)
        elif ph == "unlink":
            for n in names:
                os.unlink(n)
        elif ph == "lines":
            fd = os.open(os.path.join(sub, "log.jsonl"), os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
            for _ in range(10 * FILES):
                os.write(fd, LINE)
            os.close(fd)
        q.put((ph, time.perf_counter() - t))
        bar.wait()

def small(d):
    bar = mp.Barrier(WORKERS + 1)
    q = mp.Queue()
    ps = [mp.Process(target=worker, args=(d, w, bar, q)) for w in range(WORKERS)]
    for p in ps: p.start()
    res = {}
    for ph in PHASES:
        bar.wait()
        t = time.perf_counter()
        bar.wait()
        ops = WORKERS * FILES * (10 if ph == "lines" else 1)
        res[ph] = round(ops / (time.perf_counter() - t))
    for p in ps: p.join()
    return res

def drop_caches():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass

def stream(d):
    p = os.path.join(d, "stream.bin")
    buf = os.urandom(1 << 20)
    t = time.perf_counter()
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    for _ in range(STREAM_MB):
        os.write(fd, buf)
    os.fsync(fd); os.close(fd)
    wr = STREAM_MB / (time.perf_counter() - t)
    drop_caches()
    t = time.perf_counter()
    fd = os.open(p, os.O_RDONLY)
    n = 0
    while True:
        b = os.read(fd, 1 << 20)
        if not b: break
        n += len(b)
    os.close(fd)
    rd = (n >> 20) / (time.perf_counter() - t)
    os.unlink(p)
    return {"stream_write_MBps": round(wr), "stream_read_MBps": round(rd)}

if __name__ == "__main__":
    for d in sys.argv[1:]:
        r = {"dir": d}
        r.update(small(d))
        r.update(stream(d))
        print(json.dumps(r), flush=True)
