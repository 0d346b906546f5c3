--[[ dequeue: move up to N tasks from the head of a queue into worker W's processes. Atomic.
  KEYS[1]  P:{E}:q     the queue list (head = next)
  KEYS[2]  P:{E}:qn    delivery counts of the returned tasks at the head of q
  KEYS[3]  P:{E}:w     workers of the queue: W must be a member (fencing)
  KEYS[4]  P:{E}:p:W   W's processes on the queue: token -> task
  KEYS[5]  P:{E}:d     "W.token" -> delivery count, when above 1
  ARGV[1]  W           ARGV[2] first token      ARGV[3] N, the most tasks to take
  Returns: -1 if W is not a worker of the queue (never started, stopped, or reclaimed);
           else a flat array {task, deliveries, task, deliveries, ...} whose i-th task has
           token ARGV[2] + i - 1; empty when the queue is empty.
  Retry-safe: if the first token is already W's (the same call, retried after its reply was
  lost), the tasks it took are answered again and nothing more is taken.
]]
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then return -1 end
local token = tonumber(ARGV[2])
local out = {}
if redis.call('HEXISTS', KEYS[4], ARGV[2]) == 1 then
  for i = 0, tonumber(ARGV[3]) - 1 do
    local tok = string.format('%d', token + i)
    local task = redis.call('HGET', KEYS[4], tok)
    if not task then break end
    out[#out + 1] = task
    out[#out + 1] = tonumber(redis.call('HGET', KEYS[5], ARGV[1] .. '.' .. tok) or 1)
  end
  return out
end
for _ = 1, tonumber(ARGV[3]) do
  local task = redis.call('LPOP', KEYS[1])
  if not task then break end
  local tok = string.format('%d', token)
  local n = redis.call('LPOP', KEYS[2])
  if n then
    n = tonumber(n) + 1
    redis.call('HSET', KEYS[5], ARGV[1] .. '.' .. tok, n)
  else
    n = 1
  end
  redis.call('HSET', KEYS[4], tok, task)
  out[#out + 1] = task
  out[#out + 1] = n
  token = token + 1
end
return out
