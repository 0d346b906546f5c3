--[[ delete: drop a queue's queued tasks and tell the workers. Atomic.
  Processes in flight are left to their workers; one that is returned later re-creates the queue.
  The dead-letter list is kept (purge_dead drops it).
  KEYS[1]  P:{E}:q     KEYS[2] P:{E}:qn
  ARGV[1]  the queue's event channel
  Returns: the number of tasks dropped.
]]
local n = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[1], 'delete:')
return n
