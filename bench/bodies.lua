-- wrk script: POST one form body per request, cycling through the
-- pre-minted bodies (one distinct ID token each) in BODIES (a file of
-- lines). Each thread starts at a different offset.
local bodies = {}
local counter = 0
local offset = 0

function init(args)
  local path = os.getenv("BODIES") or "bodies.txt"
  for line in io.lines(path) do
    bodies[#bodies + 1] = line
  end
  offset = math.random(#bodies)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
end

function request()
  counter = counter + 1
  local body = bodies[((counter + offset) % #bodies) + 1]
  return wrk.format(nil, "/", nil, body)
end

function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT requests=%d rps=%.0f p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), errors))
end
