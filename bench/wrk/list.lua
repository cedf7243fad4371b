-- GET /api/task/list?limit=10&offset=0 (the default page). Data file: one access token per line, rotated.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function on_init()
   assert(#lines > 0, "list.lua needs a token file")
end

function build_request(n)
   local token = lines[((n + thread_id * 7) % #lines) + 1]
   return wrk.format("GET", "/api/task/list?limit=10&offset=0", {["Authorization"] = "Bearer " .. token})
end
