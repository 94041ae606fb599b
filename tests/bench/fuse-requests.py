#!/usr/bin/python3
"""fuse-requests.py N DIR [DIR...] - how many FUSE requests each small-file
operation of tests/bench/vault-bench.py costs each file system: one process
runs each phase over N files of DIR while `perf record` counts the kernel's
fuse:fuse_request_send tracepoint system-wide (kernel 6.15 or later); prints
the requests per operation and the opcodes that make them up.  Run by
vault-bench.sh with BENCH_REQUESTS=N; needs root and perf.  Not part of
make check.  The count is what the kernel sends, so it includes what a
daemon never answers (FORGET) and works for every FUSE file system alike."""
import collections, os, re, signal, subprocess, sys, tempfile, time

PAYLOAD = b"x" * 2048
PHASES = ["create", "stat", "read", "append", "unlink", "lines"]


def run(names, ph):
    if ph == "lines":               # N lines appended through one descriptor
        fd = os.open(names[0] + ".jsonl", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
        for _ in names:
            os.write(fd, b"y" * 199 + b"\n")
        os.close(fd)
        return
    for n in names:
        if ph == "create":
            fd = os.open(n, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
            os.write(fd, PAYLOAD)
            os.close(fd)
        elif ph == "stat":
            os.stat(n)
        elif ph == "read":
            fd = os.open(n, os.O_RDONLY)
            while os.read(fd, 65536):
                pass
            os.close(fd)
        elif ph == "append":
            fd = os.open(n, os.O_WRONLY | os.O_APPEND)
            os.write(fd, b"y" * 200)
            os.close(fd)
        elif ph == "unlink":
            os.unlink(n)


def counted(names, ph, data):
    p = subprocess.Popen(["perf", "record", "-q", "-e", "fuse:fuse_request_send", "-a", "-o", data],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)                 # perf is recording once it has opened its events
    run(names, ph)
    time.sleep(0.3)                 # FORGETs are sent when the kernel drops the inode
    p.send_signal(signal.SIGINT)
    p.wait()
    s = subprocess.run(["perf", "script", "-i", data], capture_output=True, text=True).stdout
    return collections.Counter(m.group(1) for m in re.finditer(r"\(FUSE_(\w+)\)", s))


def main():
    n = int(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        for d in sys.argv[2:]:
            sub = os.path.join(d, "requests")
            os.makedirs(sub, exist_ok=True)
            names = [os.path.join(sub, "f%05d" % i) for i in range(n)]
            print(d)
            for ph in PHASES:
                c = counted(names, ph, data)
                parts = " ".join("%s %.2f" % (k, v / n) for k, v in c.most_common() if v >= n / 20)
                print("  %-7s %5.2f  %s" % (ph, sum(c.values()) / n, parts), flush=True)
            os.unlink(names[0] + ".jsonl")
            os.rmdir(sub)


if __name__ == "__main__":
    main()
