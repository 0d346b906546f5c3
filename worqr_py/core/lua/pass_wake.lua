--[[ pass_wake: worker W was woken for a queue but cannot take now (all its runner's jobs are
  busy, or it is stopping): it stops waiting on the queue and, if tasks are queued, wakes the
  next waiting worker in its place. Atomic. W keeps the queue on its own list of queues to
  try, so it takes what is left once it is free.
  KEYS[1]  P:{E}:q     KEYS[2] P:{E}:i     KEYS[3] P:{E}:w
  ARGV[1]  W           ARGV[2] the wake channel prefix     ARGV[3] the queue name
  Returns: 1 if another worker was woken, else 0.
]]
-- @include wake
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('LLEN', KEYS[1]) == 0 then return 0 end
return wake_next(KEYS[2], KEYS[3], ARGV[2], ARGV[3])
