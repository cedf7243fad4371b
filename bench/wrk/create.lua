-- POST /api/task/create, a valid basic_clean task per request.
-- Data file: one access token per line; requests rotate through them (64 users in the benchmark).
-- Every request carries a unique Idempotency-Key: <run id>-<thread>-<counter>.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function on_init()
   assert(#lines > 0, "create.lua needs a token file")
end

function build_request(n)
   local token = lines[((n + thread_id * 7) % #lines) + 1]
   local key = string.format("%s-%d-%d", run_id, thread_id, n)
   local body = string.format(
      '{"type":"basic_clean","inputImageUrl":"https://images.example.com/products/%s.jpg","params":{"template":"all"}}',
      key)
   return wrk.format("POST", "/api/task/create", {
      ["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = key,
   }, body)
end
