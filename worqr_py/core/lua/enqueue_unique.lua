--[[ enqueue_unique: append a task at the tail unless a unique copy of it is already queued or
  in process on this queue, and take the queue's uniqueness lock for it. Atomic: of racing
  producers exactly one queues it. O(1): one HSETNX on the lock hash (copies enqueued without
  unique=True are not looked for: that would scan the whole queue inside Redis).
  KEYS[1]  P:{E}:q     KEYS[2] P:{E}:u (task -> state of its unique copy)
  KEYS[3]  P:{E}:i     the waiting workers (one is woken: include/wake.lua)   KEYS[4] P:{E}:w
  KEYS[5]  P:{E}:m   throughput totals   KEYS[6] P:{E}:m:<minute>  this minute's (include/tally.lua)
  ARGV[1]  the queue's event channel     ARGV[2] the task
  ARGV[3]  the wake channel prefix       ARGV[4] the queue name
  Returns: the new queue length if queued; 0 if a unique copy holds the lock.
]]
-- @include tally
-- @include wake
if redis.call('HSETNX', KEYS[2], ARGV[2], 'q') == 0 then return 0 end
local len = redis.call('RPUSH', KEYS[1], ARGV[2])
wake(KEYS[3], KEYS[4], ARGV[1], 1, ARGV[3], ARGV[4])
tally('i', 1)
tally_close(KEYS[5], KEYS[6])
return len
