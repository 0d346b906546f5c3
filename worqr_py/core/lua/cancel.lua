--[[ cancel: remove every queued copy of a task and tell the workers. Atomic.
  Copies already in process are not touched: workers get the "cancel" event and decide.
  KEYS[1]  P:{E}:q     KEYS[2] P:{E}:qn     KEYS[3] P:{E}:u
  ARGV[1]  the task    ARGV[2] the queue's event channel
  Returns: the number of queued copies removed. A queued unique copy's lock is released.
]]
local k = redis.call('LLEN', KEYS[2])
if k > 0 then
  local head = redis.call('LRANGE', KEYS[1], 0, k - 1)
  local counts = redis.call('LRANGE', KEYS[2], 0, -1)
  local keep = {}
  for i = 1, k do
    if head[i] ~= ARGV[1] then keep[#keep + 1] = counts[i] end
  end
  if #keep < k then
    redis.call('DEL', KEYS[2])
    for i = 1, #keep, 1000 do
      redis.call('RPUSH', KEYS[2], unpack(keep, i, math.min(i + 999, #keep)))
    end
  end
end
local removed = redis.call('LREM', KEYS[1], 0, ARGV[1])
local lock = redis.call('HGET', KEYS[3], ARGV[1])
if lock == 'q' or lock == 'r' then redis.call('HDEL', KEYS[3], ARGV[1]) end
redis.call('PUBLISH', ARGV[2], 'cancel:' .. ARGV[1])
return removed
