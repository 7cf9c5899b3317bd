#!/usr/bin/env python3
"""Portcullis side by side with node-oidc-provider, on loopback, by hand (not in the tests).

Each server is pinned to core 0 (taskset), the load generators (wrk with bench/wrk/request.lua,
and examples/bench_driver.rs for login round trips, refresh chains and fixed-rate probes) to
core 1. Every scenario runs --rounds times, the servers interleaved within each round; the
table shows medians. Figures are per server CPU-second (requests / CPU time the server
used), so a server that does not saturate its core is not penalised for the client's speed.

    python3 bench/compare.py                       # everything, ~15 min
    python3 bench/compare.py --scenarios jwks,cc-rs256 --rounds 3 --duration 5
    python3 bench/compare.py --scenarios login,login-passkey --flood-seconds 0

Portcullis runs with the issuer http://localhost:4200 (a host name: passkeys need one; it
listens on 127.0.0.1). Binaries are taken from $CARGO_TARGET_DIR when set, else target/.

Writes target/bench/results.json and prints a Markdown table (the README's).
Needs: cargo, node + npm (the peer) and wrk (Debian: apt-get install wrk).
"""

import argparse
import base64
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "target" / "bench"
# Where cargo puts the binaries (it honours CARGO_TARGET_DIR; so do we).
BUILD = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
DRIVER = str(BUILD / "release" / "examples" / "bench_driver")
PEER_SRC = ROOT.parent / "shared" / "peers" / "node-oidc-provider"
SERVER_CORE, LOAD_CORE = "0", "1"
TICKS = os.sysconf("SC_CLK_TCK")
REDIRECT_URI = "http://127.0.0.1:4199/cb"
USER, PASSWORD = "alice", "alice-password-123"
# Portcullis throttles concurrent sign-ins to one account from one address (five), so its
# floods sign in as many people; the peer has no such limit and signs in alice every time.
FLOOD_USERS = 32
WRK_CONNECTIONS = 32


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    done = subprocess.run(cmd, text=True, capture_output=True, **kw)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}{done.stdout[-2000:]}")
    return done.stdout


def cpu_seconds(pid):
    """utime + stime of the process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def wait_up(url, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            return get_json(url)
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer in {seconds} s")


def basic(client_id, secret):
    q = lambda s: urllib.parse.quote(s, safe="")
    return "Basic " + base64.b64encode(f"{q(client_id)}:{q(secret)}".encode()).decode()


class Server:
    """A provider under test: its process, endpoints and the credentials of its clients."""

    name = ""
    pid = 0
    issuer = ""
    usernames = [USER]

    def launch(self, command, env, log_path):
        log = open(log_path, "w")
        self.proc = subprocess.Popen(command, env=env, cwd=self.home, stdout=log, stderr=log)
        self.pid = self.proc.pid
        self.endpoints()
        return self

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)

    def endpoints(self):
        self.discovery = wait_up(f"{self.issuer}/.well-known/openid-configuration")

    def service(self, alg):
        """The client whose client_credentials tokens are signed with alg."""
        return self.web

    def driver(self, mode, client=None, usernames=None, service_alg="RS256", **kw):
        service = self.service(service_alg)
        client = client or self.web
        args = [DRIVER, mode, "--issuer", self.issuer,
                "--client-id", client[0], "--client-secret", client[1],
                "--service-id", service[0], "--service-secret", service[1],
                "--redirect-uri", REDIRECT_URI, "--username", ",".join(usernames or self.usernames),
                "--password", PASSWORD]
        for k, v in kw.items():
            args += [f"--{k.replace('_', '-')}", str(v)]
        return json.loads(run(["taskset", "-c", LOAD_CORE] + args).strip().splitlines()[-1])


class Portcullis(Server):
    name = "portcullis"

    def __init__(self, port=4200, database_url=None, redis_url=None, issuer=None, home=None,
                 core=SERVER_CORE, prepare=True, profile="release"):
        self.port, self.core = port, core
        self.home = home or WORK / "portcullis"
        # A host name, not 127.0.0.1: an IP address cannot be a WebAuthn RP ID, and
        # http://localhost is a secure context, so passkeys are on (login-passkey).
        self.issuer = issuer or f"http://localhost:{port}"
        if prepare:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home.mkdir(parents=True)
        self.env = dict(os.environ,
                        PORTCULLIS_ISSUER=self.issuer,
                        PORTCULLIS_BIND=f"127.0.0.1:{port}",
                        PORTCULLIS_DATABASE_URL=database_url or f"sqlite://{self.home}/portcullis.db",
                        PORTCULLIS_LOG_FORMAT="json",
                        RUST_LOG="warn")
        if redis_url:
            self.env["PORTCULLIS_REDIS_URL"] = redis_url
            self.env["PORTCULLIS_REDIS_PREFIX"] = f"bench{os.getpid()}:"
        self.bin = str(BUILD / profile / "portcullis")
        if prepare:
            self.register()

    def cli(self, *args, stdin=None):
        return run([self.bin, *args], env=self.env, cwd=self.home, input=stdin)

    def register(self):
        self.usernames = [USER] + [f"{USER}{i}" for i in range(1, FLOOD_USERS)]
        for username in self.usernames:
            self.cli("users", "add", "--username", username, "--password-stdin", "--name", "Alice Bench",
                     "--email", f"{username}@example.test", stdin=PASSWORD + "\n")
        web = json.loads(self.cli("clients", "add", "--name", "bench web", "--redirect-uri", REDIRECT_URI,
                                  "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                                  "--scope", "openid", "--scope", "profile", "--scope", "email",
                                  "--scope", "offline_access"))
        self.web = (web["client_id"], web["client_secret"])
        # The same app registered for ES256 ID and access tokens (RFC 7591 metadata).
        web = json.loads(self.cli("clients", "add", "--name", "bench web es256", "--redirect-uri", REDIRECT_URI,
                                  "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                                  "--scope", "openid", "--scope", "profile", "--scope", "email",
                                  "--scope", "offline_access", "--access-token-alg", "ES256",
                                  "--id-token-alg", "ES256"))
        self.web_es256 = (web["client_id"], web["client_secret"])
        # The same app with opaque access tokens (issue 26; RS256 ID tokens), as the
        # peer's code-flow tokens are.
        web = json.loads(self.cli("clients", "add", "--name", "bench web opaque", "--redirect-uri", REDIRECT_URI,
                                  "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                                  "--scope", "openid", "--scope", "profile", "--scope", "email",
                                  "--scope", "offline_access", "--access-token-format", "opaque"))
        self.web_opaque = (web["client_id"], web["client_secret"])
        self.services = {}
        for alg in ("RS256", "ES256"):
            c = json.loads(self.cli("clients", "add", "--name", f"bench {alg}", "--grant-type",
                                    "client_credentials", "--scope", "api:read", "--access-token-alg", alg))
            self.services[alg] = (c["client_id"], c["client_secret"])
        c = json.loads(self.cli("clients", "add", "--name", "bench opaque", "--grant-type",
                                "client_credentials", "--scope", "api:read", "--access-token-format", "opaque"))
        self.services["opaque"] = (c["client_id"], c["client_secret"])

    def start(self):
        return self.launch(["taskset", "-c", self.core, self.bin, "serve"], self.env,
                           self.home / f"server-{self.port}.log")

    def service(self, alg):
        return self.services[alg]

    def cc(self, alg):
        client_id, secret = self.services[alg]
        return dict(WRK_METHOD="POST", WRK_AUTH=basic(client_id, secret),
                    WRK_BODY="grant_type=client_credentials&scope=api%3Aread")

    def userinfo_url(self):
        return self.discovery["userinfo_endpoint"]

    def register_passkeys(self):
        """FLOOD_USERS more people, each with a passkey added through the account page
        after a password sign-in (setup, outside the measurements; the private keys go to
        a file). Others than the password logins' people: an account with a passkey is
        asked for it after its password (a second factor), which is not that row's flow."""
        usernames = [f"passkey{i}" for i in range(FLOOD_USERS)]
        for username in usernames:
            self.cli("users", "add", "--username", username, "--password-stdin", "--name", "Pat Bench",
                     "--email", f"{username}@example.test", stdin=PASSWORD + "\n")
        self.passkeys = WORK / "passkeys-portcullis.json"
        report = self.driver("passkey-register", usernames=usernames, passkeys=self.passkeys)
        log(f"passkeys registered for {report['registered']} users")


class NodePeer(Server):
    name = "node-oidc-provider"
    port = 4100

    def __init__(self):
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.home = WORK / "node-peer"
        if not (self.home / "node_modules" / "oidc-provider").exists():
            shutil.rmtree(self.home, ignore_errors=True)
            shutil.copytree(PEER_SRC, self.home, ignore=shutil.ignore_patterns("node_modules", "data", "logs"))
            log("npm ci (node-oidc-provider peer) ...")
            run(["npm", "ci", "--no-audit", "--no-fund"], cwd=self.home)
        # The peer as shipped signs client_credentials tokens with RS256 only: a second
        # resource server (same settings, ES256) measures the ES256 row like for like.
        server = (PEER_SRC / "server.mjs").read_text()
        patched = server.replace(
            "        if (resourceIndicator !== RESOURCE) throw new Provider.errors.InvalidTarget();",
            "        if (resourceIndicator === 'urn:bench:api-es256') {\n"
            "          return { scope: 'api:read', audience: resourceIndicator, accessTokenTTL: 3600,"
            " accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };\n"
            "        }\n"
            "        if (resourceIndicator !== RESOURCE) throw new Provider.errors.InvalidTarget();")
        # And a second web client whose ID tokens are ES256 (its access tokens are opaque).
        clients = patched.replace(
            "    scope: 'openid profile email offline_access api:read',\n  }],",
            "    scope: 'openid profile email offline_access api:read',\n  }, {\n"
            "    client_id: CLIENT_ID + '-es256', client_secret: CLIENT_SECRET,"
            " token_endpoint_auth_method: 'client_secret_basic',\n"
            "    grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],\n"
            "    redirect_uris: [REDIRECT_URI], scope: 'openid profile email offline_access',\n"
            "    id_token_signed_response_alg: 'ES256',\n  }],")
        assert patched != server and clients != patched, "the peer's server.mjs changed: update the patches"
        patched = clients
        (self.home / "server.mjs").write_text(patched)
        self.web = ("bench-client", "bench-secret-0123456789abcdef0123456789abcdef")
        self.web_es256 = ("bench-client-es256", self.web[1])
        # The peer's code-flow access tokens are opaque already.
        self.web_opaque = self.web

    def start(self):
        (self.home / "logs").mkdir(exist_ok=True)
        env = dict(os.environ, NODE_ENV="production", PORT=str(self.port))
        return self.launch(["taskset", "-c", SERVER_CORE, "node", "server.mjs"], env,
                           self.home / "logs" / "server.log")

    def cc(self, alg):
        body = "grant_type=client_credentials&scope=api%3Aread"
        if alg == "ES256":
            body += "&resource=urn%3Abench%3Aapi-es256"
        elif alg == "opaque":
            body += "&resource=urn%3Abench%3Aopaque"
        return dict(WRK_METHOD="POST", WRK_AUTH=basic(*self.web), WRK_BODY=body)

    def userinfo_url(self):
        return self.discovery["userinfo_endpoint"]


def wrk(url, seconds, env=None, connections=WRK_CONNECTIONS):
    out = run(["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s",
               "-s", str(ROOT / "bench/wrk/request.lua"), url], env=dict(os.environ, **(env or {})))
    line = next(l for l in out.splitlines() if l.startswith("WRK_JSON "))
    result = json.loads(line[len("WRK_JSON "):])
    result["ok"] = result["requests"] - result["status_errors"]
    return result


def measure(server, fn):
    """Runs fn() while counting the server's CPU time; adds per-CPU-second figures and RSS."""
    before = cpu_seconds(server.pid)
    result = fn()
    cpu = cpu_seconds(server.pid) - before
    result["cpu_s"] = cpu
    result["rss_mib"] = rss_mib(server.pid)
    ok = result.get("ok", 0)
    result["per_cpu_s"] = ok / cpu if cpu > 0 else 0.0
    result["rate"] = ok / result["seconds"] if result.get("seconds") else result.get("rate", 0.0)
    return result


def scenarios(server, duration):
    """name -> a function that runs the scenario once against server and returns its figures."""
    user = server.driver("tokens")
    access = user["access_token"]
    bearer = {"WRK_AUTH": f"Bearer {access}"}
    introspect = dict(WRK_METHOD="POST", WRK_AUTH=basic(*server.web),
                      WRK_BODY="token=" + urllib.parse.quote(access, safe=""))
    d = server.discovery
    return {
        "discovery": lambda: wrk(f"{server.issuer}/.well-known/openid-configuration", duration),
        "jwks": lambda: wrk(d["jwks_uri"], duration),
        "cc-rs256": lambda: wrk(d["token_endpoint"], duration, server.cc("RS256")),
        "cc-es256": lambda: wrk(d["token_endpoint"], duration, server.cc("ES256")),
        "cc-opaque": lambda: wrk(d["token_endpoint"], duration, server.cc("opaque")),
        "userinfo": lambda: wrk(server.userinfo_url(), duration, bearer),
        "introspection": lambda: wrk(d["introspection_endpoint"], duration, introspect),
        "refresh": lambda: server.driver("refresh", concurrency=16, duration=duration),
        "refresh-es256": lambda: server.driver("refresh", client=server.web_es256, concurrency=16, duration=duration),
        "refresh-opaque": lambda: server.driver("refresh", client=server.web_opaque, concurrency=16, duration=duration),
        "login": lambda: server.driver("login", concurrency=8, duration=duration)["login"],
        # Portcullis only (RFC 9449): a fresh proof per request by one ES256 key per run,
        # from bench_driver (wrk cannot sign); beside the Bearer rows above.
        "cc-dpop": lambda: server.driver("cc", service_alg="ES256", scope="api:read", proof="dpop",
                                         concurrency=32, duration=duration),
        "userinfo-dpop": lambda: server.driver("userinfo", proof="dpop", concurrency=32, duration=duration),
        # Portcullis only: node-oidc-provider has no passkeys.
        "login-passkey": lambda: server.driver("passkey-login", passkeys=server.passkeys,
                                               concurrency=8, duration=duration)["login"],
    }


LABELS = {
    "discovery": "discovery GET",
    "jwks": "JWKS GET",
    "cc-rs256": "client_credentials (RS256 JWT)",
    "cc-es256": "client_credentials (ES256 JWT)",
    "cc-opaque": "client_credentials (opaque token)",
    "cc-dpop": "client_credentials (DPoP-bound) ³",
    "userinfo": "userinfo GET (token from a real login)",
    "userinfo-dpop": "userinfo (DPoP) ³",
    "introspection": "introspection (token from a real login)",
    "refresh": "refresh_token grant (rotation)",
    "refresh-es256": "refresh_token grant, a client registered for ES256",
    "refresh-opaque": "refresh_token grant, opaque access tokens (RS256 ID tokens)",
    "login": "browser login round trips (password, argon2id)",
    "login-passkey": "browser login round trips with a passkey (no argon2) ²",
}
# Scenarios node-oidc-provider cannot run, and the row of its shown beside them instead.
PEER_REFERENCE = {"login-passkey": "login", "cc-dpop": "cc-es256", "userinfo-dpop": "userinfo"}


def median_of(runs, key):
    return statistics.median(r[key] for r in runs) if runs else 0.0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=8, help="seconds per measurement")
    p.add_argument("--scenarios", default=",".join(LABELS))
    p.add_argument("--only", choices=["portcullis", "node"], help="measure one server")
    p.add_argument("--flood-seconds", type=float, default=60, help="login flood with probes (0: skip)")
    p.add_argument("--no-build", action="store_true")
    args = p.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if not args.no_build:
        log("cargo build --release ...")
        subprocess.run(["cargo", "build", "--release", "--bin", "portcullis", "--example", "bench_driver"],
                       cwd=ROOT, check=True)
    servers = []
    if args.only != "node":
        servers.append(Portcullis().start())
    if args.only != "portcullis":
        servers.append(NodePeer().start())
    results = {"machine": machine(), "servers": {}, "rounds": args.rounds, "duration": args.duration}
    try:
        time.sleep(1)
        for s in servers:
            results["servers"][s.name] = {"idle_rss_mib": rss_mib(s.pid), "runs": {}}
        plans = {s.name: scenarios(s, args.duration) for s in servers}
        wanted = [n for n in args.scenarios.split(",") if n]
        unknown = [n for n in wanted if n not in LABELS]
        if unknown:
            raise SystemExit(f"unknown scenarios {unknown}: {', '.join(LABELS)}")
        for s in servers:
            if "login-passkey" in wanted and isinstance(s, Portcullis):
                s.register_passkeys()
        for name in wanted:
            for rnd in range(args.rounds):
                for s in servers:
                    if isinstance(s, NodePeer) and name in PEER_REFERENCE:
                        continue
                    r = measure(s, plans[s.name][name])
                    results["servers"][s.name]["runs"].setdefault(name, []).append(r)
                    per_login = f" {r['requests_per_login']:.1f} requests/login" if "requests_per_login" in r else ""
                    first_error = f" first error: {r['first_error']}" if r.get("first_error") else ""
                    log(f"{name:<14} round {rnd + 1} {s.name:<19} {r['per_cpu_s']:>9.0f}/CPU-s "
                        f"{r['rate']:>9.0f}/s p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms "
                        f"errors {r['errors']} cpu {r['cpu_s']:.1f} s rss {r['rss_mib']:.0f} MiB{per_login}{first_error}")
        # The ceiling of client_credentials: raw signing through the same key code, on the
        # server's core, while no server is busy.
        results["signing"] = {
            alg: statistics.median(
                json.loads(run(["taskset", "-c", SERVER_CORE, DRIVER,
                                "sign", "--alg", alg, "--duration", "3"]))["rate"] for _ in range(args.rounds))
            for alg in ("RS256", "ES256")}
        log(f"raw signing, one core: {results['signing']}")
        # The floor of a DPoP proof check: one raw ES256 verification, same library, same core.
        if any(n.endswith("-dpop") for n in wanted):
            results["verifying"] = {"ES256": statistics.median(
                json.loads(run(["taskset", "-c", SERVER_CORE, DRIVER, "verify", "--duration", "3"]))["rate"]
                for _ in range(args.rounds))}
            log(f"raw verifying, one core: {results['verifying']}")
        # The token endpoint's p99 at half of its peak rate, open loop.
        for s in servers:
            runs = results["servers"][s.name]["runs"].get("cc-rs256")
            if runs:
                half = median_of(runs, "rate") / 2
                probe = s.driver("probe", probes=f"cc:{half:.0f}:api:read", duration=10)["probes"][0]
                results["servers"][s.name]["half_peak"] = probe
                log(f"half peak     {s.name:<19} {half:.0f}/s p99 {probe['p99_ms']:.2f} ms errors {probe['errors']}")
        if args.flood_seconds > 0:
            for s in servers:
                results["servers"][s.name]["flood"] = flood(s, args.flood_seconds)
    finally:
        for s in servers:
            s.stop()
    (WORK / "results.json").write_text(json.dumps(results, indent=1))
    print(table(results))


def flood(server, seconds):
    """A login flood (32 browsers at once) on a freshly started server, with the other
    endpoints probed at 20/s each; RSS before (idle) and after."""
    server.stop()
    server.start()
    time.sleep(1)
    idle = rss_mib(server.pid)
    user = server.driver("tokens")
    before = cpu_seconds(server.pid)
    probes = f"cc:20:api:read,jwks:20:,userinfo:20:{user['access_token']}"
    report = server.driver("login", concurrency=32, duration=seconds, probes=probes)
    report["cpu_s"] = cpu_seconds(server.pid) - before
    report["rss_after_mib"] = rss_mib(server.pid)
    report["rss_before_mib"] = idle
    log(f"flood {server.name}: {report['login']['rate']:.0f} logins/s, "
        + ", ".join(f"{p['name']} p99 {p['p99_ms']:.1f} ms ({p['errors']} errors)" for p in report["probes"])
        + f", RSS {idle:.0f} -> {report['rss_after_mib']:.0f} MiB")
    return report


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "?")
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": os.uname().release,
            "date": time.strftime("%Y-%m-%d"),
            "node": run(["node", "--version"]).strip() if shutil.which("node") else None}


def table(results):
    servers = results["servers"]
    ours = servers.get("portcullis", {}).get("runs", {})
    peer = servers.get("node-oidc-provider", {}).get("runs", {})
    lines = ["| per server CPU-second | Portcullis | node-oidc-provider | ratio | Portcullis p50 / p99 | errors |",
             "|---|---:|---:|---:|---|---:|"]
    for name, label in LABELS.items():
        if name not in ours and name not in peer:
            continue
        peer_name = PEER_REFERENCE.get(name, name)
        a, b = median_of(ours.get(name), "per_cpu_s"), median_of(peer.get(peer_name), "per_cpu_s")
        ratio = f"{a / b:.1f}×" if a and b else "—"
        lat = f"{median_of(ours.get(name), 'p50_ms'):.2f} / {median_of(ours.get(name), 'p99_ms'):.2f} ms" if name in ours else "—"
        errors = sum(r["errors"] for r in ours.get(name, []) + peer.get(name, []))
        reference = " (Bearer)" if name.endswith("-dpop") else " (password)"
        peer_figure = f"{b:,.0f}" + (reference if peer_name != name and b else "")
        lines.append(f"| {label} | {a:,.0f} | {peer_figure} | {ratio} | {lat} | {errors} |")
    if "login-passkey" in ours:
        passkey, password = median_of(ours["login-passkey"], "per_cpu_s"), median_of(ours.get("login"), "per_cpu_s")
        peer_password = median_of(peer.get("login"), "per_cpu_s")
        versus = [f"{passkey / password:.1f}× Portcullis's password logins" if password else "",
                  f"{passkey / peer_password:.1f}× node-oidc-provider's" if peer_password else ""]
        requests = lambda runs: (f"{median_of(runs, 'requests_per_login'):.0f}"
                                 if runs and all("requests_per_login" in r for r in runs) else "?")
        lines.append(f"\n² Portcullis only (node-oidc-provider has no passkeys: its column and ratio are its "
                     f"password logins, for reference). A software authenticator (ES256, discoverable, "
                     f"\"none\" attestation) answers the login page's passkey ceremony (options, then the "
                     f"assertion); no argon2. Passkey logins per CPU-second: "
                     + (", ".join(v for v in versus if v) or "no password figure to compare") + ". "
                     f"Requests per login, the token request included: passkey {requests(ours['login-passkey'])}, "
                     f"password {requests(ours.get('login'))} (node-oidc-provider {requests(peer.get('login'))}).")
    for dpop, bearer in (("cc-dpop", "cc-es256"), ("userinfo-dpop", "userinfo")):
        d, b = median_of(ours.get(dpop), "per_cpu_s"), median_of(ours.get(bearer), "per_cpu_s")
        if d and b:
            v = results.get("verifying", {}).get("ES256")
            # Each DPoP request costs the Bearer request plus at least one ES256 verification.
            bound = (1 / (1 / b + 1 / v)) if v else 0
            floor = (f" One ES256 verification per request ({v:,.0f}/s raw on one core) bounds it at "
                     f"{bound / b:.0%} of Bearer; it reaches {d / bound:.0%} of that bound.") if bound else ""
            lines.append(f"\n³ {LABELS[dpop]}: {d / b:.0%} of Portcullis's Bearer row ({LABELS[bearer]}) "
                         f"per CPU-second; node-oidc-provider's column is its Bearer figure.{floor}")
    sig = results.get("signing")
    if sig:
        for alg in ("RS256", "ES256"):
            cc = median_of(ours.get(f"cc-{alg.lower()}"), "per_cpu_s")
            share = f" (client_credentials reaches {cc / sig[alg]:.0%} of it)" if cc else ""
            lines.append(f"\nRaw {alg} signing on one core, same library: {sig[alg]:,.0f}/s{share}")
    for key, label in (("portcullis", "Portcullis"), ("node-oidc-provider", "node-oidc-provider")):
        s = servers.get(key)
        if not s:
            continue
        f = s.get("flood")
        extra = ""
        if f:
            extra = (f"; after a {f['login']['seconds']:.0f} s login flood (32 at once, {f['login']['rate']:.0f} logins/s): "
                     f"RSS {f['rss_after_mib']:.0f} MiB, p99 during it: "
                     + ", ".join(f"{p['name']} {p['p99_ms']:.1f} ms" for p in f["probes"]))
        hp = s.get("half_peak")
        if hp:
            extra += f"; client_credentials p99 at half peak ({hp['rate']:.0f}/s): {hp['p99_ms']:.2f} ms"
        lines.append(f"\n{label}: RSS idle {s['idle_rss_mib']:.0f} MiB{extra}")
    m = results["machine"]
    lines.append(f"\n{m['date']}, {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, node {m['node']}; "
                 f"median of {results['rounds']} interleaved rounds of {results['duration']:.0f} s, server on core "
                 f"{SERVER_CORE}, load on core {LOAD_CORE}.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
