--[[ hint: note in the registry of delayed queues that a queue has a task due at some time
  (lowering the queue's entry, never raising it) and bump the queue's version, so that a
  supervisor that read the registry before this cannot raise the entry past this due time
  (rehint.lua). Atomic. Sent after the schedule or retry call it follows, never before: in
  the same pipeline, so a caller that dies after the delay cannot leave it unhinted.
  KEYS[1]  {P}:delayed    zset: queue -> a time (server ms) at or before its earliest due task
  KEYS[2]  {P}:delayed:v  hash: queue -> version
  ARGV[1]  the queue name
  ARGV[2]  the due time (server ms), or "now" (TIME: a lower bound for a delay counted from
           the server's clock by the call before, which the next supervision turn raises to
           the queue's earliest due time)
  Returns: the queue's new version.
]]
local due = ARGV[2]
if due == 'now' then
  local t = redis.call('TIME')
  due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not cur or tonumber(due) < tonumber(cur) then
  redis.call('ZADD', KEYS[1], due, ARGV[1])
end
return redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
