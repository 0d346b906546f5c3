--[[ join: record that live worker W works on a queue. Atomic: refused once W's heartbeat is
  gone, so a peer that read W's queues after W died has seen every queue W could have joined.
  KEYS[1]  {P}:hb:W      KEYS[2] {P}:wq:W
  ARGV[1]  the queue name
  Returns: 1, or 0 if W is not alive.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
