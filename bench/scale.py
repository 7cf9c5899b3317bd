#!/usr/bin/env python3
"""Data at scale: Portcullis on an EMPTY PostgreSQL database and on a SEEDED one (bench/seed:
1M users, 100k clients, 2M grants, 1M sessions, 5M audit events), side by side, the same
load generators as bench/compare.py, rounds interleaved. By hand, never by the tests.

    bench/seed && bench/seed --database portcullis_scale_empty --empty
    python3 bench/scale.py [--duration 5] [--rounds 3] [--scenarios cc,refresh,...]

Both servers are pinned to core 0 (one loaded at a time, alternating within each round);
the load generators run on core 1; PostgreSQL shares the machine. Per path: requests/s,
per server CPU-second, p50/p99 (wrk's or bench_driver's), for both databases and the ratio
seeded/empty. `sessions list` is the CLI (a process per call: wall time, p50/p99 of
--cli-runs calls). The console pages are loaded with the cookie of a real console sign-in.
Writes target/bench/scale/results.json and prints a Markdown table.
"""
import argparse
import html
import http.cookiejar
import json
import re
import runpy
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare as c  # noqa: E402

HOME = c.WORK / "scale"
PORTS = {"empty": 4301, "seeded": 4302}


def start(database, port, binary=None):
    known = json.loads((HOME / f"{database}.json").read_text())
    server = runpy.run_path(str(Path(__file__).with_name("seed")))["server"]
    p = server(database, port=port, prepare=False, binary=binary)
    p.home.mkdir(parents=True, exist_ok=True)
    p.env["PORTCULLIS_METRICS_BIND"] = "off"
    p.web, p.web_es256 = tuple(known["web"]), tuple(known["web_es256"])
    p.services = {k: tuple(v) for k, v in known["services"].items()}
    p.usernames = known["usernames"]
    p.known = known
    p.start()
    return p


def post_form(url, form, auth=None):
    req = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST")
    if auth:
        req.add_header("Authorization", auth)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def admin_token(p):
    client_id, secret = p.known["admin_service"]
    return post_form(p.discovery["token_endpoint"], {"grant_type": "client_credentials", "scope": "admin"},
                     c.basic(client_id, secret))["access_token"]


def admin_get(p, env, path):
    req = urllib.request.Request(f"{p.issuer}/admin/api/{path}", headers={"Authorization": env["WRK_AUTH"]})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def console_cookie(p):
    """Signs in to the console as the seeded administrator, as a browser does; the cookies."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{p.issuer}/admin", timeout=10) as r:
        page = r.read().decode()
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', page, re.S)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(2)))
    fields = {k: html.unescape(v) for k, v in fields.items()}
    fields.update(username=p.known["admin_user"], password=p.known["password"])
    action = urllib.parse.urljoin(p.issuer + "/", html.unescape(form.group(1)))
    with opener.open(action, data=urllib.parse.urlencode(fields).encode(), timeout=10) as r:
        landed = urllib.parse.urlsplit(r.geturl()).path
        assert landed.startswith("/admin"), f"console sign-in ended at {r.geturl()}"
    return "; ".join(f"{k.name}={k.value}" for k in jar if k.name.startswith("portcullis_console"))


def cli_runs(p, args, runs):
    """Wall time of `portcullis ARGS`, `runs` times, as a wrk-like summary."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        c.run(["taskset", "-c", p.core, p.bin, *args], env=p.env, cwd=p.home)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"requests": runs, "ok": runs, "errors": 0, "seconds": sum(times) / 1000,
            "p50_ms": statistics.median(times), "p99_ms": times[min(runs - 1, int(runs * 0.99))]}


def plans(p, duration, args):
    user = p.driver("tokens")
    bearer = {"WRK_AUTH": f"Bearer {user['access_token']}"}
    admin = {"WRK_AUTH": f"Bearer {admin_token(p)}"}
    console = {"WRK_COOKIE": console_cookie(p)}
    d = p.discovery
    introspect = dict(WRK_METHOD="POST", WRK_AUTH=c.basic(*p.web),
                      WRK_BODY="token=" + urllib.parse.quote(user["access_token"], safe=""))
    api = lambda q: f"{p.issuer}/admin/api/{q}"
    alice_id = admin_get(p, admin, f"users?limit=1&search={args.session_user}")["users"][0]["id"]
    w = lambda url, env: (lambda: c.wrk(url, duration, env, connections=args.connections))
    # An administrator is one person: the admin API and console rows are latencies of
    # requests one at a time (--admin-connections), not of a queue on a saturated core.
    a = lambda url, env: (lambda: c.wrk(url, duration, env, connections=args.admin_connections))
    q = urllib.parse.quote
    return {
        "cc": w(d["token_endpoint"], p.cc("RS256")),
        "refresh": lambda: p.driver("refresh", concurrency=16, duration=duration),
        "login": lambda: p.driver("login", concurrency=8, duration=duration)["login"],
        "userinfo": w(d["userinfo_endpoint"], bearer),
        "introspection": w(d["introspection_endpoint"], introspect),
        "api-users": a(api("users?limit=50"), admin),
        "api-search-prefix": a(api(f"users?limit=50&search={q(args.prefix)}"), admin),
        "api-search-email": a(api(f"users?limit=50&search={q(args.email)}"), admin),
        "api-deep-page": a(api(f"users?limit=50&after={q(args.after)}"), admin),
        "api-clients": a(api("clients?limit=50"), admin),
        "api-audit": a(api("audit?limit=50"), admin),
        "console-user": a(f"{p.issuer}/admin/users/{alice_id}", console),
        "console-users": a(f"{p.issuer}/admin/users", console),
        "console-search": a(f"{p.issuer}/admin/users?search={q(args.prefix)}", console),
        "console-clients": a(f"{p.issuer}/admin/clients", console),
        "console-audit": a(f"{p.issuer}/admin/audit", console),
        "sessions-cli": lambda: cli_runs(p, ["sessions", "list", "--user", args.session_user], args.cli_runs),
    }


LABELS = {
    "cc": "token: client_credentials (RS256)",
    "refresh": "token: refresh_token (rotation)",
    "login": "login round trip (authorize, password, consent, code → token)",
    "userinfo": "userinfo",
    "introspection": "introspection",
    "api-users": "admin API: users, first page",
    "api-search-prefix": "admin API: user search, prefix",
    "api-search-email": "admin API: user search, an email address",
    "api-deep-page": "admin API: users, a deep page (after=)",
    "api-clients": "admin API: clients (limit=50)",
    "api-audit": "admin API: audit events (limit=50)",
    "console-user": "console: a user (sessions, consents, groups)",
    "console-users": "console: users",
    "console-search": "console: user search",
    "console-clients": "console: clients",
    "console-audit": "console: audit",
    "sessions-cli": "CLI: sessions list --user (wall time per call)",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8, help="wrk connections (hot paths)")
    ap.add_argument("--admin-connections", type=int, default=1, help="wrk connections (admin API, console)")
    ap.add_argument("--scenarios", default=",".join(LABELS))
    ap.add_argument("--bin", help="the portcullis executable (default: the release build's)")
    ap.add_argument("--empty", default="portcullis_scale_empty")
    ap.add_argument("--seeded", default="portcullis_scale")
    ap.add_argument("--prefix", default="john.smi", help="the prefix searched for")
    ap.add_argument("--email", default="alice7@example.test", help="the address searched for")
    ap.add_argument("--after", default="william.young", help="the deep page's cursor (a username)")
    ap.add_argument("--session-user", default="alice")
    ap.add_argument("--cli-runs", type=int, default=10)
    args = ap.parse_args()
    wanted = [n for n in args.scenarios.split(",") if n]
    servers = {}
    results = {"machine": c.machine(), "args": vars(args), "runs": {"empty": {}, "seeded": {}}}
    try:
        for kind, database in (("empty", args.empty), ("seeded", args.seeded)):
            servers[kind] = start(database, PORTS[kind], args.bin)
        scenario_plans = {kind: plans(p, args.duration, args) for kind, p in servers.items()}
        for name in wanted:
            for rnd in range(args.rounds):
                for kind, p in servers.items():
                    r = c.measure(p, scenario_plans[kind][name])
                    results["runs"][kind].setdefault(name, []).append(r)
                    c.log(f"{name:<18} round {rnd + 1} {kind:<6} {r['rate']:>8.0f}/s {r['per_cpu_s']:>8.0f}/CPU-s "
                          f"p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms errors {r['errors']}")
    finally:
        for p in servers.values():
            p.stop()
    (HOME / "results.json").write_text(json.dumps(results, indent=1))
    print(table(results, wanted))


def table(results, wanted):
    med = lambda runs, k: statistics.median(r[k] for r in runs) if runs else 0.0
    lines = ["| path | empty /s | seeded /s | seeded / empty | empty p99 | seeded p99 | errors |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in wanted:
        e, s = results["runs"]["empty"].get(name, []), results["runs"]["seeded"].get(name, [])
        re_, rs = med(e, "rate"), med(s, "rate")
        p99 = lambda runs: f"{med(runs, 'p99_ms'):.1f} ms" if med(runs, "rate") else "timeouts"
        ratio = f"{rs / re_:.2f}" if re_ else "—"
        errors = sum(r["errors"] for r in e + s)
        lines.append(f"| {LABELS[name]} | {re_:,.0f} | {rs:,.0f} | {ratio} | {p99(e)} | {p99(s)} | {errors} |")
    m = results["machine"]
    lines.append(f"\n{m['date']}, {m['cpu']}, {m['cores']} cores (shared with other builds), Linux {m['kernel']}; "
                 f"median of {results['args']['rounds']} interleaved rounds of {results['args']['duration']:.0f} s, "
                 f"server on core {c.SERVER_CORE}, load on core {c.LOAD_CORE}.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
