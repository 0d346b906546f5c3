--[[ due_queues: the queues the registry of delayed queues says may have due tasks, with
  their versions (a supervision turn promotes them, then rehint.lua). Read-only.
  KEYS[1]  {P}:delayed    KEYS[2] {P}:delayed:v
  ARGV[1]  the most queues to answer
  Returns: {queue, version, queue, version, ...}, earliest first.
]]
-- @include delayed
local queues = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0,
  tonumber(ARGV[1]))
if #queues == 0 then return {} end
local versions = redis.call('HMGET', KEYS[2], unpack(queues))
local out = {}
for i = 1, #queues do
  out[#out + 1] = queues[i]
  out[#out + 1] = versions[i] or '0'
end
return out
