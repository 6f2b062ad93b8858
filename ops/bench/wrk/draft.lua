-- POST /v1/documents: a new draft per request, each under an Idempotency-Key
-- of its own (run ‖ thread ‖ counter), as an author's client sends them.
-- BENCH_TOKEN: the author's token; BENCH_SHA: an uploaded file's SHA-256.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  counter = 0
  run = os.getenv("BENCH_RUN") or "0"
  headers = {
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
    ["Content-Type"] = "application/json",
  }
  body = '{"doc_type":"CV","title":"Công văn về việc đo tải hệ thống",' ..
    '"content":[{"name":"cong-van.txt","sha256":"' .. os.getenv("BENCH_SHA") .. '"}],' ..
    '"recipients":[{"agency":"UBND","reply_within_working_days":5}]}'
end
request = function()
  counter = counter + 1
  headers["Idempotency-Key"] = string.format("bench-%s-%d-%d", run, tid, counter)
  return wrk.format("POST", "/v1/documents", headers, body)
end
