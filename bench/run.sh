#!/usr/bin/env bash
# Measures the hot paths of a release build on this machine: raw JWT signing, then JWKS,
# discovery, the token endpoint (authorization code with PKCE, client_secret_basic) and
# userinfo over HTTP on loopback with 32 requests in flight. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench endpoints "$@"
