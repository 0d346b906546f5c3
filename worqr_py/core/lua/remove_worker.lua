--[[ remove_worker: last step of failing worker W, after it left its queues (leave_queue). Atomic.
  KEYS[1]  {P}:workers   KEYS[2] {P}:wq:W
  ARGV[1]  W
  Returns: 1 if W was registered, else 0.
]]
redis.call('DEL', KEYS[2])
return redis.call('SREM', KEYS[1], ARGV[1])
