--[[ requeue_dead: move dead-lettered tasks back to the TAIL of their queue as fresh tasks
  (delivery count reset) and announce them. Atomic.
  KEYS[1]  P:{E}:dead  KEYS[2] P:{E}:q
  ARGV[1]  the queue's event channel
  ARGV[2]  "all" to move every dead task, "one" to move only the copies of ARGV[3]
  ARGV[3]  the task, with "one"
  Returns: the number of tasks moved.
]]
local moved = {}
if ARGV[2] == 'all' then
  moved = redis.call('LRANGE', KEYS[1], 0, -1)
  redis.call('UNLINK', KEYS[1])
else
  local n = redis.call('LREM', KEYS[1], 0, ARGV[3])
  for i = 1, n do moved[i] = ARGV[3] end
end
for i = 1, #moved, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(moved, i, math.min(i + 999, #moved)))
end
if #moved > 0 then redis.call('PUBLISH', ARGV[1], 'work:' .. #moved) end
return #moved
