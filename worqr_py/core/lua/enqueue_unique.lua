--[[ enqueue_unique: append a task at the tail unless a unique copy of it is already queued or
  in process on this queue, and take the queue's uniqueness lock for it. Atomic: of racing
  producers exactly one queues it. O(1): one HSETNX on the lock hash (copies enqueued without
  unique=True are not looked for: that would scan the whole queue inside Redis).
  KEYS[1]  P:{E}:q     KEYS[2] P:{E}:u (task -> state of its unique copy)
  ARGV[1]  the queue's event channel     ARGV[2] the task
  Returns: the new queue length if queued; 0 if a unique copy holds the lock.
]]
if redis.call('HSETNX', KEYS[2], ARGV[2], 'q') == 0 then return 0 end
local len = redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[1], 'work:1')
return len
