--[[ rehint: after promoting a queue's due tasks, set its registry entry to the earliest due
  time left (or drop it: none left), unless the queue's version changed since due_queues.lua
  read it (a task was delayed meanwhile: its hint.lua already lowered the entry, which stays).
  Atomic.
  KEYS[1]  {P}:delayed    KEYS[2] {P}:delayed:v
  ARGV[1]  the queue name   ARGV[2] the version read   ARGV[3] the next due time, or -1
  Returns: 1 if updated, 0 if the version had changed.
]]
if (redis.call('HGET', KEYS[2], ARGV[1]) or '0') ~= ARGV[2] then return 0 end
if ARGV[3] == '-1' then
  redis.call('ZREM', KEYS[1], ARGV[1]) -- the version stays: a stale reader never matches
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
