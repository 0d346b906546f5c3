--[[ fence_worker: first step of failing worker W. Atomic. Deletes W's heartbeat (W can then
  join no queue and will find itself failed) and returns the queues whose processes must be
  returned (one leave_queue each), after which remove_worker drops its records.
  KEYS[1]  {P}:hb:W      KEYS[2] {P}:wq:W
  ARGV[1]  "fail" (fail W whatever its state) or "reap" (only if its heartbeat is already gone)
  Returns: W's queue names, or nil when reaping a worker that is alive.
]]
if ARGV[1] == 'reap' and redis.call('EXISTS', KEYS[1]) == 1 then return false end
redis.call('DEL', KEYS[1])
return redis.call('SMEMBERS', KEYS[2])
