--[[ leave_queue: worker W leaves a queue (stop_work, fail_worker, or a peer's reclaim of a dead W).
  Atomic: W stops being a worker of the queue (so a late dequeue by W is refused) and every
  one of W's processes goes back to the FRONT, oldest first, with its delivery count (and a
  unique task its lock); one already delivered max-deliveries times goes to the dead-letter
  list instead. Racing callers are safe: the second finds nothing to return, so each task
  comes back exactly once.
  KEYS[1]  P:{E}:q     KEYS[2] P:{E}:qn     KEYS[3] P:{E}:w     KEYS[4] P:{E}:p:W
  KEYS[5]  P:{E}:d     KEYS[6] P:{E}:dead   KEYS[7] P:{E}:u
  ARGV[1]  W           ARGV[2] the queue's event channel
  ARGV[3]  max deliveries (0: never dead-letter; a graceful leave passes 0)
  Returns: {number returned to the queue, dead-lettered task, dead-lettered task, ...}.
]]
-- @include process
redis.call('SREM', KEYS[3], ARGV[1])
local all = redis.call('HGETALL', KEYS[4])
local idx = {}
for i = 1, #all, 2 do idx[#idx + 1] = i end
table.sort(idx, function(a, b) return tonumber(all[a]) < tonumber(all[b]) end)
local out = {0}
for j = #idx, 1, -1 do
  local i = idx[j]
  if give_back(KEYS[1], KEYS[2], KEYS[6], KEYS[5], KEYS[7], ARGV[1], all[i], all[i + 1],
      tonumber(ARGV[3]), ARGV[2]) == 1 then
    out[1] = out[1] + 1
  else
    out[#out + 1] = all[i + 1]
  end
end
redis.call('DEL', KEYS[4])
if out[1] > 0 then redis.call('PUBLISH', ARGV[2], 'work:' .. out[1]) end
return out
