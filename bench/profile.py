#!/usr/bin/env python3
"""Flame graphs of Portcullis's token, refresh and login paths: bench/flame-{token,token-es256,refresh,login}.svg.

Builds `--profile profiling` (release with line tables), starts it on core 0 as compare.py
does, drives one path from core 1 and samples the server with `perf record` (cpu-clock,
DWARF call graphs), then folds with inferno (`cargo install inferno`).

    python3 bench/profile.py            # every path, 8 s each
Needs: perf (Debian linux-perf), inferno-collapse-perf and inferno-flamegraph on PATH.
"""
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare as c  # noqa: E402

SECONDS = 8


def profile(server, name, title, load):
    data = c.WORK / f"perf-{name}.data"
    perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "499", "--call-graph", "dwarf,16384",
                             "-p", str(server.pid), "-o", str(data), "--", "sleep", str(SECONDS)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = threading.Thread(target=load)
    worker.start()
    perf.wait()
    worker.join()
    script = subprocess.run(["perf", "script", "-i", str(data)], capture_output=True, check=True).stdout
    folded = subprocess.run(["inferno-collapse-perf"], input=script, capture_output=True, check=True).stdout
    (c.WORK / f"{name}.folded").write_bytes(folded)
    svg = subprocess.run(["inferno-flamegraph", "--title", title, "--width", "1600", "--minwidth", "1"], input=folded,
                         capture_output=True, check=True).stdout
    out = c.ROOT / "bench" / f"flame-{name}.svg"
    out.write_bytes(svg)
    c.log(f"wrote {out.relative_to(c.ROOT)}")


def main():
    subprocess.run(["cargo", "build", "--profile", "profiling", "--bin", "portcullis"], cwd=c.ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "--example", "bench_driver"], cwd=c.ROOT, check=True)
    server = c.Portcullis(profile="profiling").start()
    try:
        token = server.discovery["token_endpoint"]
        # Warm up first: perf follows the threads that exist when it attaches, and the
        # password hashing threads start with the first sign-in.
        server.driver("tokens")
        profile(server, "token", "POST /token, client_credentials, RS256 access token (Portcullis, one core)",
                lambda: c.wrk(token, SECONDS + 1, server.cc("RS256")))
        profile(server, "token-es256", "POST /token, client_credentials, ES256 access token (Portcullis, one core)",
                lambda: c.wrk(token, SECONDS + 1, server.cc("ES256")))
        profile(server, "refresh", "POST /token, refresh_token grant: rotation, RS256 access and ID token",
                lambda: server.driver("refresh", concurrency=16, duration=SECONDS + 1))
        profile(server, "login", "Browser login round trips: authorize, login (argon2id), consent, code, token",
                lambda: server.driver("login", concurrency=8, duration=SECONDS + 1))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
