#!/usr/bin/env python3
"""Signing load through HAProxy, over mutual TLS, at a fixed request rate.

Each worker keeps one keep-alive HTTPS connection (as an SBC does) and
reconnects after a failure. Optionally kills one sks instance (SIGKILL, read
from its pidfile) part-way and watches HAProxy's stats CSV for the moment
the health check marks it DOWN. Prints one JSON summary line; writes every
signed Identity header (with its orig/dest, the iat sent and the seconds
into the run) to --identities for checking, as it arrives (one JSON line
each, flushed), so a caller can check tokens while the load goes on.
With --until-file, the load runs until that file exists (a key rotation
under load: the caller creates it when the rotation is done).

Exit status: 0 when every request after the instance was marked down (or
every request, with --expect-no-failures) succeeded; 1 otherwise.
"""
import argparse
import csv
import http.client
import io
import json
import os
import signal
import ssl
import threading
import time
import urllib.request


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--rate", type=float, default=200.0, help="requests per second")
    p.add_argument("--duration", type=float, default=10.0, help="seconds")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--kill-pidfile", help="SIGKILL the process in this pidfile")
    p.add_argument("--kill-after", type=float, default=3.0, help="seconds into the run")
    p.add_argument("--stats-url", help="HAProxy stats CSV URL (…/;csv)")
    p.add_argument("--server", help="server name to watch in the stats")
    p.add_argument("--identities", help="write signed identities here (JSON lines)")
    p.add_argument("--until-file", help="run until this file exists (instead of --duration)")
    p.add_argument("--results", help="write every request's outcome here (JSON lines: wall-clock "
                   "start and end, ok, detail), as it ends")
    p.add_argument("--expect-no-failures", action="store_true")
    return p.parse_args()


class Run:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.next_index = 0
        self.total = None if args.until_file else int(args.rate * args.duration)
        self.start = time.monotonic()
        self.stop_checked = 0.0
        self.stopped = False
        self.out = open(args.identities, "w") if args.identities else None
        self.results_out = open(args.results, "w") if args.results else None
        self.results = []  # (t, ok, detail)
        self.identities = []
        self.kill_time = None
        self.down_time = None
        self.done = threading.Event()

    def take(self):
        with self.lock:
            if self.total is None:
                now = time.monotonic()
                if now - self.stop_checked >= 0.1:  # one stat per 100 ms
                    self.stop_checked = now
                    self.stopped = os.path.exists(self.args.until_file)
                if self.stopped:
                    return None
            elif self.next_index >= self.total:
                return None
            i = self.next_index
            self.next_index += 1
            return i

    def record(self, t, ok, detail, identity=None, wall=None):
        with self.lock:
            self.results.append((t, ok, detail))
            if self.results_out is not None:
                self.results_out.write(json.dumps({"start": wall, "end": time.time(), "ok": ok,
                                                   "detail": detail}) + "\n")
                self.results_out.flush()
            if identity is not None:
                self.identities.append(identity)
                if self.out is not None:
                    self.out.write(json.dumps(identity) + "\n")
                    self.out.flush()


def tls_context(args):
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.load_cert_chain(args.cert, args.key)
    return ctx


def worker(run, ctx):
    args = run.args
    conn = None
    while True:
        i = run.take()
        if i is None:
            break
        due = run.start + i / args.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing to the request rate
        orig, dest = "12155550121", "1215555%04d" % (i % 10000)
        iat = int(time.time())
        body = json.dumps({"signingRequest": {"attest": "A", "dest": {"tn": [dest]},
                                              "iat": iat, "orig": {"tn": orig}}})
        t = time.monotonic() - run.start
        wall = time.time()
        try:
            if conn is None:
                conn = http.client.HTTPSConnection(args.host, args.port, context=ctx, timeout=5)
            conn.request("POST", "/stir/v1/signing", body,
                         {"Content-Type": "application/json", "Accept": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                run.record(t, False, "HTTP %d %s" % (resp.status, data[:200]), wall=wall)
                continue
            identity = json.loads(data)["signingResponse"]["identity"]
            run.record(t, True, "", {"identity": identity, "orig": orig, "dest": dest,
                                     "iat": iat, "t": round(t, 3)}, wall=wall)
        except Exception as e:  # any failure counts; reconnect for the next one
            run.record(t, False, "%s: %s" % (type(e).__name__, e), wall=wall)
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


def killer(run):
    args = run.args
    time.sleep(args.kill_after)  # the moment of the kill within the run
    with open(args.kill_pidfile) as f:
        pid = int(f.read().strip())
    os.kill(pid, signal.SIGKILL)
    run.kill_time = time.monotonic() - run.start


def watcher(run):
    """Polls the HAProxy stats CSV until the server is seen DOWN."""
    args = run.args
    while not run.done.is_set() and run.down_time is None:
        try:
            with urllib.request.urlopen(args.stats_url, timeout=1) as r:
                rows = csv.DictReader(io.StringIO(r.read().decode().lstrip("# ")))
                for row in rows:
                    if row.get("svname") == args.server and row.get("status", "").startswith("DOWN"):
                        if run.kill_time is not None:
                            run.down_time = time.monotonic() - run.start
        except OSError:
            pass
        run.done.wait(0.05)


def main():
    args = parse_args()
    run = Run(args)
    ctx = tls_context(args)
    threads = [threading.Thread(target=worker, args=(run, ctx)) for _ in range(args.workers)]
    if args.kill_pidfile:
        threads.append(threading.Thread(target=killer, args=(run,)))
    watch = None
    if args.stats_url and args.server:
        watch = threading.Thread(target=watcher, args=(run,))
        watch.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.done.set()
    if watch:
        watch.join()
    elapsed = time.monotonic() - run.start
    failures = [r for r in run.results if not r[1]]
    summary = {
        "requests": len(run.results),
        "ok": len(run.results) - len(failures),
        "failed": len(failures),
        "seconds": round(elapsed, 2),
        "rate": round(len(run.results) / elapsed, 1),
    }
    ok = summary["ok"] > 0
    if args.kill_pidfile:
        summary["killed_at_s"] = run.kill_time and round(run.kill_time, 3)
        summary["marked_down_at_s"] = run.down_time and round(run.down_time, 3)
        if run.down_time is None:
            ok = False
        else:
            summary["detection_s"] = round(run.down_time - run.kill_time, 3)
            before = [r for r in failures if r[0] < run.down_time]
            after = [r for r in failures if r[0] >= run.down_time]
            summary["failed_before_marked_down"] = len(before)
            summary["failed_after_marked_down"] = len(after)
            ok = ok and not after
    if args.expect_no_failures and failures:
        ok = False
    summary["first_failures"] = [f"{r[0]:.3f}s {r[2]}" for r in failures[:5]]
    x5u = {}
    for item in run.identities:
        url = item["identity"].split(";info=<", 1)[-1].split(">", 1)[0]
        x5u[url] = x5u.get(url, 0) + 1
    summary["x5u"] = x5u
    if run.out is not None:
        run.out.close()
    if run.results_out is not None:
        run.results_out.close()
    print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
