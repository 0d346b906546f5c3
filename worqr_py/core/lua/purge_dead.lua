--[[ purge_dead: drop dead-lettered tasks for good. Atomic.
  KEYS[1]  P:{E}:dead
  ARGV[1]  "all" to drop every dead task, "one" to drop only the copies of ARGV[2]
  ARGV[2]  the task, with "one"
  Returns: the number of tasks dropped.
]]
if ARGV[1] == 'all' then
  local n = redis.call('LLEN', KEYS[1])
  redis.call('UNLINK', KEYS[1])
  return n
end
return redis.call('LREM', KEYS[1], 0, ARGV[2])
