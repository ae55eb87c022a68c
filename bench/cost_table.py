#!/usr/bin/env python3
"""The per-request cost table of a `perf record` of sks serve (bench/README.md).

    bench/cost_table.py PERF_DATA US_PER_REQUEST

Splits the samples by their own function (self time, so a library without
frame pointers still lands in the right row) into the rows of issue 20:
kernel (by what it does), TLS, HTTP, JSON, the token's signature, the
hop, logging, metrics, allocation and the rest; prints each row's share
and, given the server's CPU time per request from the same run, its
microseconds per request.
"""
import re
import subprocess
import sys

# (row, dso regex, symbol regex); the first match wins.
RULES = [
    ("kernel: loopback TCP and sockets", r"kernel", r"tcp|inet|sock|skb|ip_|__dev|net_|loopback|napi|nf_|sendmsg|recvmsg|__sys_send|__sys_recv|copy_.*user|_copy|csum"),
    ("kernel: scheduling and futex (the hop)", r"kernel", r"futex|schedule|switch|wake|sched|enqueue|dequeue|update_curr|pick_|ttwu|__lock_text|select_task|idle|cpuacct|psi_"),
    ("kernel: epoll, timers", r"kernel", r"epoll|ep_|timerfd|hrtimer|timer|poll"),
    ("kernel: files (SoftHSM2's object store)", r"kernel", r"open|fcntl|lock|stat|path|dentry|lookup|vfs|read|fsnotify|file|ext4|mnt"),
    ("kernel: system call entry and the rest", r"kernel", r"."),
    ("token signature (SoftHSM2, ECDSA)", r"softhsm", r"."),
    ("token signature (SoftHSM2, ECDSA)", r"libcrypto", r"^(BN_|bn_|ec_|EC_|ecp_|ECDSA|ossl_ec|ossl_bn|ecdsa|bn_mul|RAND|rand_|drbg|ossl_rand|ossl_ecdsa|ossl_ec_)"),
    ("TLS (record crypto and libssl)", r"libssl", r"."),
    ("TLS (record crypto and libssl)", r"libcrypto", r"aes|gcm|ghash|AES|GCM|chacha|poly1305|EVP_(Encrypt|Decrypt|Cipher)|ossl_gcm|cipher"),
    ("hashing (SHA-256)", r"libcrypto", r"sha|SHA"),
    ("OpenSSL, other", r"libcrypto", r"."),
    ("allocation (malloc, free, new)", r".", r"malloc|free|_int_|tcache|operator new|operator delete|cfree|realloc|calloc|arena|consolidate|unlink_chunk|sysmalloc"),
    ("JSON (nlohmann)", r".", r"nlohmann|json"),
    ("HTTP parse and serialise (Beast)", r".", r"beast|http::"),
    ("the hop (worker pool, condition variable, futex in libc)", r".", r"WorkerPool|condition_variable|pthread_cond|futex|__lll_|pthread_mutex|std::mutex"),
    ("logging (access log, audit)", r".", r"log_access|AuditLog|rfc3339|loggable|fwrite|_IO_|vfprintf|snprintf|__strftime|gmtime|tz"),
    ("metrics", r".", r"Metrics|Histogram|count_request|observe"),
    ("Asio (executors, strands, reactor)", r".", r"asio|strand|executor|reactor|scheduler"),
    ("memcpy, string", r"libc", r"mem|str|__memmove|__memcpy|__memset"),
]

def main():
    data, per_request = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    out = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym",
                          "--stdio", "-g", "none", "--percent-limit", "0"],
                         capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
        if not m:
            continue
        share, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
        if kind == "k":
            dso = "kernel"
        row = "sks and the rest (Beast/Asio glue, request handling)"
        for name, dso_re, sym_re in RULES:
            if re.search(dso_re, dso) and re.search(sym_re, sym):
                row = name
                break
        rows[row] = rows.get(row, 0.0) + share
    total = sum(rows.values()) or 1.0
    print(f"| where | share | us per request |")
    print(f"|---|---|---|")
    for name, share in sorted(rows.items(), key=lambda kv: -kv[1]):
        us = f"{per_request * share / total:.1f}" if per_request else ""
        print(f"| {name} | {100 * share / total:.1f} % | {us} |")

if __name__ == "__main__":
    main()
