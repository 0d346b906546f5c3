--[[ enqueue: append tasks at the tail of a queue and announce them. Atomic.
  KEYS[1]  P:{E}:q    the queue list
  ARGV[1]  the queue's event channel
  ARGV[2..] the tasks, in order
  Returns: the queue length after the push.
]]
local len = 0
for i = 2, #ARGV, 1000 do
  len = redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('PUBLISH', ARGV[1], 'work:' .. (#ARGV - 1))
return len
