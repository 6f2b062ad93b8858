-- POST /v1/documents/BENCH_DOC/revisions, one after another on the same
-- document (run with one connection: every revision lengthens its stream).
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
local path = "/v1/documents/" .. os.getenv("BENCH_DOC") .. "/revisions"
local headers = {
  ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
  ["Content-Type"] = "application/json",
}
local body = '{"doc_type":"CV","title":"Công văn về việc đo tải (sửa)",' ..
  '"content":[{"name":"cong-van.txt","sha256":"' .. os.getenv("BENCH_SHA") .. '"}],' ..
  '"recipients":[{"agency":"UBND","reply_within_working_days":5}]}'
request = function()
  return wrk.format("POST", path, headers, body)
end
