--[[ wait_for_work: live worker W's runner waits for work on a queue it joined: W becomes one of
  the queue's waiting workers (ZADD NX, score 0: below every worker that waited since), so the
  next task there wakes it by name. Atomic and fenced: a W that is no longer a worker of the
  queue (failed or reaped meanwhile) is not added, so no task is named for a worker that is gone.
  KEYS[1]  P:{E}:w     KEYS[2] P:{E}:i
  ARGV[1]  W
  Returns: 1 if W is waiting, 0 if it is not a worker of the queue.
]]
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], 'NX', 0, ARGV[1])
return 1
