--[[ unschedule: remove a periodic schedule of a queue (its spec and its firing state) in one
  call, so no fire can happen after it returns. Atomic.
  KEYS[1]  P:{E}:sched   KEYS[2] P:{E}:sf
  ARGV[1]  the schedule's name
  Returns: {1 if it existed else 0, how many schedules the queue has left}.
]]
redis.call('HDEL', KEYS[2], ARGV[1])
local existed = redis.call('HDEL', KEYS[1], ARGV[1])
return {existed, redis.call('HLEN', KEYS[1])}
