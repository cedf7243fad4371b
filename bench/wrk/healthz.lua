-- GET /healthz (reference: the process, no database, no Redis).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function build_request(n)
   return wrk.format("GET", "/healthz")
end
