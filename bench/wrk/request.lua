-- One request, repeated: method, body and headers from the environment (set by
-- bench/compare.py), and a JSON summary on the last line of wrk's output.
--   WRK_METHOD  GET (default) or POST
--   WRK_BODY    a form body (POST)
--   WRK_AUTH    the Authorization header value
--   WRK_COOKIE  the Cookie header value (bench/scale.py: the console's)
wrk.method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
local cookie = os.getenv("WRK_COOKIE")
if cookie and cookie ~= "" then
  wrk.headers["Cookie"] = cookie
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"seconds":%.3f,"errors":%d,"status_errors":%d,"p50_ms":%.3f,"p99_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6,
    e.connect + e.read + e.write + e.timeout + e.status, e.status,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
