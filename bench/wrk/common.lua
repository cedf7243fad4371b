-- Shared by the bench/api_load.py wrk scripts: per-thread counters and a one-line JSON report.
-- Each script sets `build_request(n)` (n = this thread's request counter, from 0) and dofile()s this.
-- Script arguments (after `--` on the wrk command line): <data file> <run id>.

local threads = {}
local counter = 0
thread_id = 0
lines = {}
run_id = "run"
status_counts = {}
code_counts = {}

function setup(thread)
   thread:set("thread_id", #threads)
   table.insert(threads, thread)
end

function read_lines(path)
   local out = {}
   local f = assert(io.open(path, "r"))
   for line in f:lines() do
      if line ~= "" then table.insert(out, line) end
   end
   f:close()
   return out
end

function split(line)
   local parts = {}
   for p in line:gmatch("%S+") do table.insert(parts, p) end
   return parts
end

function init(args)
   if args[1] ~= nil and args[1] ~= "-" then lines = read_lines(args[1]) end
   if args[2] ~= nil then run_id = args[2] end
   if on_init ~= nil then on_init() end
end

function request()
   local n = counter
   counter = counter + 1
   return build_request(n)
end

function response(status, headers, body)
   local s = tostring(status)
   status_counts[s] = (status_counts[s] or 0) + 1
   if status >= 400 and body ~= nil then
      local code = body:match('"code"%s*:%s*(%d+)') or "none"
      code_counts[code] = (code_counts[code] or 0) + 1
   end
end

local function add_into(dst, src)
   if src == nil then return end
   for k, v in pairs(src) do dst[k] = (dst[k] or 0) + v end
end

local function encode(t)
   local parts = {}
   for k, v in pairs(t) do table.insert(parts, string.format('"%s":%d', k, v)) end
   return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
   local statuses, codes = {}, {}
   for _, t in ipairs(threads) do
      add_into(statuses, t:get("status_counts"))
      add_into(codes, t:get("code_counts"))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"duration_us":%d,"requests":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%d,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d},'
      .. '"statuses":%s,"codes":%s}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.stdev, latency.min, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
      encode(statuses), encode(codes)))
end
