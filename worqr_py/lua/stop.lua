--[[ stop: return processes of worker W to the FRONT of their queue. Atomic and fenced.
  The first token given is delivered first. Each keeps its delivery count.
  KEYS[1]  P:{E}:q     KEYS[2] P:{E}:qn     KEYS[3] P:{E}:p:W     KEYS[4] P:{E}:d
  ARGV[1]  W           ARGV[2] the queue's event channel          ARGV[3..] tokens
  Returns: an array with 1 for each token that was W's and is now back in the queue, else 0.
]]
local out, back = {}, 0
for i = #ARGV, 3, -1 do
  local task = redis.call('HGET', KEYS[3], ARGV[i])
  if task then
    redis.call('HDEL', KEYS[3], ARGV[i])
    local f = ARGV[1] .. '.' .. ARGV[i]
    local n = redis.call('HGET', KEYS[4], f)
    if n then redis.call('HDEL', KEYS[4], f) else n = 1 end
    redis.call('LPUSH', KEYS[1], task)
    redis.call('LPUSH', KEYS[2], n)
    back = back + 1
    out[i - 2] = 1
  else
    out[i - 2] = 0
  end
end
if back > 0 then redis.call('PUBLISH', ARGV[2], 'work:' .. back) end
return out
