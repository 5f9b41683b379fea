-- wrk script of bench_load: GET /api/v1/recommendations/<id> for random known ids, each
-- request with the cookie of the shopper who owns that id. The file named by the first
-- script argument holds "reviewerID<TAB>Cookie header" lines. done() prints one JSON line.
local owners = {}

function init(args)
  for line in io.lines(args[1]) do
    local reviewer, cookie = line:match("^([^\t]+)\t(.+)$")
    owners[#owners + 1] = { "/api/v1/recommendations/" .. reviewer, cookie }
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  local owner = owners[math.random(#owners)]
  return wrk.format("GET", owner[1], { ["Cookie"] = owner[2] })
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
