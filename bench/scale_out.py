#!/usr/bin/env python3
"""Scale-out: Portcullis on PostgreSQL + Redis, one instance and then two behind nginx
(round robin), the same scenarios; per-core figures and the ratio of two instances to one.

    python3 bench/scale_out.py [--duration 8] [--rounds 3]

Instance A is pinned to core 0 and B to core 1; nginx, the load generators, PostgreSQL and
Redis share the machine (two cores leave none free), so the figure that compares is
requests per CPU-second of the Portcullis processes. While two instances are loaded,
pg_stat_activity is sampled every 10 ms: the statement seen running most often is the one
the database spends its time on. Needs nginx (Debian nginx-light), PostgreSQL at
127.0.0.1:5432 (trust) and Redis at 127.0.0.1:6379. Leaves nothing behind.
"""
import argparse
import base64
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare as c  # noqa: E402

PROXY_PORT = 4210
PG = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-Atq", "-c"]


def nginx(upstreams):
    home = c.WORK / "nginx"
    shutil.rmtree(home, ignore_errors=True)
    (home / "tmp").mkdir(parents=True)
    servers = "\n".join(f"    server 127.0.0.1:{p};" for p in upstreams)
    (home / "nginx.conf").write_text(f"""
worker_processes 1;
pid {home}/nginx.pid;
error_log {home}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {home}/tmp;
  proxy_temp_path {home}/tmp;
  upstream portcullis {{
{servers}
    keepalive 64;
    keepalive_timeout 60s;  # under the server's 75 s, so nginx never reuses a closed one
  }}
  server {{
    listen 127.0.0.1:{PROXY_PORT};
    location / {{
      proxy_pass http://portcullis;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
    }}
  }}
}}
""")
    proc = subprocess.Popen(["nginx", "-p", str(home), "-c", str(home / "nginx.conf"), "-g", "daemon off;"])
    time.sleep(0.5)
    return proc


def start_direct(instance):
    """Starts an instance, waiting for its discovery on its own port (the proxy may not run yet)."""
    issuer = instance.issuer
    instance.issuer = f"http://127.0.0.1:{instance.port}"
    try:
        instance.start()
    finally:
        instance.issuer = issuer


def sample_queries(database, stop, seen):
    while not stop.is_set():
        out = subprocess.run(PG + [f"select query from pg_stat_activity where datname = '{database}' "
                                   "and state = 'active' and pid <> pg_backend_pid()"],
                             capture_output=True, text=True).stdout
        for q in filter(None, (l.strip() for l in out.splitlines())):
            seen[" ".join(q.split())[:160]] += 1
        time.sleep(0.01)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--duration", type=float, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--scenarios", default="jwks,cc-rs256,userinfo,introspection,refresh,login")
    args = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "--bin", "portcullis", "--example", "bench_driver"],
                   cwd=c.ROOT, check=True)
    database = f"bench_scale_{os.getpid()}"
    subprocess.run(PG + [f"create database {database}"], check=True)
    url = f"postgres://postgres@127.0.0.1:5432/{database}"
    issuer = f"http://127.0.0.1:{PROXY_PORT}"
    kek = base64.b64encode(os.urandom(32)).decode()
    os.environ["PORTCULLIS_KEY_ENCRYPTION_KEY"] = kek
    os.environ["PORTCULLIS_TRUSTED_PROXIES"] = "127.0.0.1"
    # The load generators cannot have a core of their own here.
    c.LOAD_CORE = "0,1"
    a = c.Portcullis(port=4201, database_url=url, redis_url="redis://127.0.0.1:6379", issuer=issuer,
                     home=c.WORK / "scale-a", core="0")
    b = c.Portcullis(port=4202, database_url=url, redis_url="redis://127.0.0.1:6379", issuer=issuer,
                     home=c.WORK / "scale-b", core="1", prepare=False)
    b.home.mkdir(parents=True, exist_ok=True)
    a.env["PORTCULLIS_METRICS_BIND"], b.env["PORTCULLIS_METRICS_BIND"] = "127.0.0.1:9465", "127.0.0.1:9466"
    b.env["PORTCULLIS_REDIS_PREFIX"] = a.env["PORTCULLIS_REDIS_PREFIX"]
    b.web, b.services, b.usernames = a.web, a.services, a.usernames
    results = {"one": collections.defaultdict(list), "two": collections.defaultdict(list)}
    seen = collections.Counter()
    proxy = None
    try:
        for layout, members in (("one", [a]), ("two", [a, b])):
            for m in members:
                if getattr(m, "proc", None) is None:
                    start_direct(m)
            proxy = nginx([m.port for m in members])
            front = members[0]
            front.endpoints()  # discovery through the proxy
            plans = c.scenarios(front, args.duration)
            stop = threading.Event()
            sampler = None
            if layout == "two":
                sampler = threading.Thread(target=sample_queries, args=(database, stop, seen))
                sampler.start()
            for name in args.scenarios.split(","):
                for _ in range(args.rounds):
                    before = sum(c.cpu_seconds(m.pid) for m in members)
                    r = plans[name]()
                    cpu = sum(c.cpu_seconds(m.pid) for m in members) - before
                    r["cpu_s"] = cpu
                    r["per_cpu_s"] = r.get("ok", 0) / cpu if cpu else 0
                    r["rate"] = r["ok"] / r["seconds"] if r.get("seconds") else r.get("rate", 0)
                    results[layout][name].append(r)
                    c.log(f"{layout} {name:<14} {r['rate']:>8.0f}/s {r['per_cpu_s']:>8.0f}/CPU-s "
                          f"p99 {r['p99_ms']:.1f} ms errors {r['errors']}")
            stop.set()
            if sampler:
                sampler.join()
            proxy.terminate()
            proxy.wait()
    finally:
        for m in (a, b):
            if getattr(m, "proc", None):
                m.stop()
        if proxy and proxy.poll() is None:
            proxy.terminate()
        subprocess.run(PG + [f"drop database if exists {database} with (force)"])
        prefix = a.env["PORTCULLIS_REDIS_PREFIX"]
        keys = subprocess.run(["redis-cli", "--scan", "--pattern", f"{prefix}*"], capture_output=True,
                              text=True).stdout.split()
        for i in range(0, len(keys), 500):
            subprocess.run(["redis-cli", "del", *keys[i:i + 500]], capture_output=True)
    lines = ["| PostgreSQL + Redis | 1 instance /s | 2 instances /s | 1 instance per CPU-s | 2 instances per CPU-s | per-core ratio |",
             "|---|---:|---:|---:|---:|---:|"]
    med = lambda runs, k: statistics.median(r[k] for r in runs)
    for name in args.scenarios.split(","):
        one, two = results["one"][name], results["two"][name]
        lines.append(f"| {c.LABELS[name]} | {med(one, 'rate'):,.0f} | {med(two, 'rate'):,.0f} | "
                     f"{med(one, 'per_cpu_s'):,.0f} | {med(two, 'per_cpu_s'):,.0f} | "
                     f"{med(two, 'per_cpu_s') / med(one, 'per_cpu_s'):.2f} |")
    total = sum(seen.values()) or 1
    lines.append("\nStatements seen running (pg_stat_activity, every 10 ms, two instances):")
    for q, n in seen.most_common(5):
        lines.append(f"- {100 * n / total:.0f} %: `{q}`")
    (c.WORK / "scale-out.json").write_text(json.dumps({"results": results, "queries": seen.most_common(20)}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
