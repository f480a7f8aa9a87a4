-- wrk script for the API benchmark (driven by bench/api_wrk.py; loopback only).
--   wrk -t1 -c16 -d10s --latency -s bench/api_wrk.lua http://127.0.0.1:PORT -- PATHS_FILE API_KEY EXPECTED_STATUS
-- Every connection's requests rotate through the paths in PATHS_FILE (one per line), each thread starting at its
-- own offset; every answer whose status is not EXPECTED_STATUS counts as a wrong status. done() prints one JSON
-- line: requests, duration, socket errors, wrong statuses and latency percentiles (microseconds).

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  paths = {}
  for line in io.lines(args[1]) do
    if line ~= "" then
      paths[#paths + 1] = line
    end
  end
  wrk.headers["Authorization"] = "Api-Key " .. args[2]
  wrk.headers["Accept"] = "application/json"
  expected = tonumber(args[3] or "200")
  -- Threads start far apart in the list, so they do not ask the same things at the same time.
  index = (tid * 7919) % #paths
  wrong = 0
end

function request()
  index = index % #paths + 1
  return wrk.format("GET", paths[index])
end

function response(status, headers, body)
  if status ~= expected then
    wrong = wrong + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("wrong")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "timeouts": %d, "status_errors": %d, "wrong_status": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status, bad,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean
  ))
end
