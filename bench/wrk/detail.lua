-- GET /api/task/<id>. Data file: "<access token> <task id>" per line (tasks of 64 users), rotated.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local pairs_ = {}

function on_init()
   for _, line in ipairs(lines) do table.insert(pairs_, split(line)) end
   assert(#pairs_ > 0, "detail.lua needs a token/task file")
end

function build_request(n)
   local p = pairs_[((n * 13 + thread_id * 101) % #pairs_) + 1]
   return wrk.format("GET", "/api/task/" .. p[2], {["Authorization"] = "Bearer " .. p[1]})
end
