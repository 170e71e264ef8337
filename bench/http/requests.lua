-- POST /api/v1/requests, each one new: user i%U asks for role r on site s, walking all combinations.
-- Tokens are read from the file named by TOKENS (one per line, user u on line u+1).
local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do tokens[#tokens + 1] = line end
local sites = tonumber(os.getenv("SITES"))
local roles = {"site-administrator", "site-security-officer", "site-operations-deputy-manager", "site-operations-manager"}
local counter = 0

function setup(thread)
  thread:set("offset", counter)
  counter = counter + 1
end

local n = 0
function request()
  local i = n * 2 + offset -- two threads interleave
  n = n + 1
  local user = i % #tokens
  local site = math.floor(i / #tokens) % sites
  local role = roles[math.floor(i / (#tokens * sites)) % #roles + 1]
  local body = string.format('{"role":"%s","scope":"S%d","reason":"bench"}', role, site)
  local headers = {["Authorization"] = "Bearer " .. tokens[user + 1], ["Content-Type"] = "application/json"}
  return wrk.format("POST", "/api/v1/requests", headers, body)
end

function done(summary, latency, requests)
  io.write(string.format("requests=%d errors_status=%d\n", summary.requests, summary.errors.status))
end
