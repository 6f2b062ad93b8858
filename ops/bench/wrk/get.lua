-- GET BENCH_PATH, with BENCH_TOKEN as a bearer token when set.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
local path = os.getenv("BENCH_PATH") or "/healthz"
local token = os.getenv("BENCH_TOKEN")
local headers = {}
if token and token ~= "" then
  headers["Authorization"] = "Bearer " .. token
end
request = function()
  return wrk.format("GET", path, headers)
end
