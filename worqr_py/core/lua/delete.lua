--[[ delete: drop a queue's queued tasks and tell the workers. Atomic.
  Processes in flight are left to their workers; one that is returned later re-creates the queue.
  The dead-letter list is kept (purge_dead drops it).
  KEYS[1]  P:{E}:q     KEYS[2] P:{E}:qn     KEYS[3] P:{E}:u
  ARGV[1]  the queue's event channel
  The uniqueness locks of the queued unique tasks are released.
  Returns: the number of tasks dropped.
]]
local n = redis.call('LLEN', KEYS[1])
redis.call('UNLINK', KEYS[1], KEYS[2])
local locks = redis.call('HGETALL', KEYS[3])
for i = 1, #locks, 2 do
  if locks[i + 1] == 'q' or locks[i + 1] == 'r' then redis.call('HDEL', KEYS[3], locks[i]) end
end
redis.call('PUBLISH', ARGV[1], 'delete:')
return n
