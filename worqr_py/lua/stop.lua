--[[ stop: return processes of worker W to the FRONT of their queue. Atomic and fenced.
  The first token given is delivered first. Each keeps its delivery count; one already
  delivered max-deliveries times goes to the dead-letter list instead.
  KEYS[1]  P:{E}:q     KEYS[2] P:{E}:qn     KEYS[3] P:{E}:p:W     KEYS[4] P:{E}:d
  KEYS[5]  P:{E}:dead
  ARGV[1]  W           ARGV[2] the queue's event channel
  ARGV[3]  max deliveries (0: never)                              ARGV[4..] tokens
  Returns: an array with, per token: 1 back in the queue, 2 dead-lettered, 0 not W's.
]]
local out, back = {}, 0
local max = tonumber(ARGV[3])
for i = #ARGV, 4, -1 do
  local task = redis.call('HGET', KEYS[3], ARGV[i])
  if task then
    redis.call('HDEL', KEYS[3], ARGV[i])
    local f = ARGV[1] .. '.' .. ARGV[i]
    local n = redis.call('HGET', KEYS[4], f)
    if n then redis.call('HDEL', KEYS[4], f) else n = 1 end
    if max > 0 and tonumber(n) >= max then
      redis.call('RPUSH', KEYS[5], task)
      redis.call('PUBLISH', ARGV[2], 'dead:' .. task)
      out[i - 3] = 2
    else
      redis.call('LPUSH', KEYS[1], task)
      redis.call('LPUSH', KEYS[2], n)
      back = back + 1
      out[i - 3] = 1
    end
  else
    out[i - 3] = 0
  end
end
if back > 0 then redis.call('PUBLISH', ARGV[2], 'work:' .. back) end
return out
