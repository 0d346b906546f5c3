--[[ schedule: enqueue tasks to be delivered later: each goes into the queue's delayed set
  P:{E}:z scored by its due time on the server clock (include/delayed.lua), or, if that time
  has already come, straight to the queue's tail as enqueue does. Atomic. Retry-safe: members
  carry the producer's ids, so a replayed call adds nothing twice. A unique copy (ARGV[6] =
  '1', one task) is scheduled only if no unique copy of the task is queued, delayed or in
  process on the queue (its lock, HSETNX, becomes "z"). One waiting runner is woken, so it
  learns the new due time (its dequeue reply carries it) and wakes then.
  KEYS[1]  P:{E}:z     KEYS[2] P:{E}:q     KEYS[3] P:{E}:u
  KEYS[4]  P:{E}:i     KEYS[5] P:{E}:w
  KEYS[6]  P:{E}:m   throughput totals   KEYS[7] P:{E}:m:<minute>  this minute's (include/tally.lua)
  ARGV[1]  the queue's event channel   ARGV[2] the wake channel prefix   ARGV[3] the queue name
  ARGV[4]  'in' (ARGV[5] = ms from now) or 'at' (ARGV[5] = due time, ms since the epoch)
  ARGV[6]  '1' for a unique copy, else ''
  ARGV[7..] id, task, id, task, ... (ids: no ':')
  Returns: {tasks now delayed on the queue (ZCARD), 1 if scheduled (0: a unique copy holds
  the lock), the due time in server ms}.
]]
-- @include tally
-- @include delayed
-- @include wake
local now = now_ms()
local due = tonumber(ARGV[5])
if ARGV[4] == 'in' then due = now + due end
local uniq = ARGV[6] == '1'
if uniq and redis.call('HSETNX', KEYS[3], ARGV[8], due <= now and 'q' or 'z') == 0 then
  return {redis.call('ZCARD', KEYS[1]), 0, due}
end
local n = (#ARGV - 6) / 2
if due <= now then
  local tasks = {}
  for i = 8, #ARGV, 2 do tasks[#tasks + 1] = ARGV[i] end
  for i = 1, #tasks, 1000 do
    redis.call('RPUSH', KEYS[2], unpack(tasks, i, math.min(i + 999, #tasks)))
  end
  wake(KEYS[4], KEYS[5], ARGV[1], n, ARGV[2], ARGV[3])
  tally('i', n)
  tally_close(KEYS[6], KEYS[7])
  return {redis.call('ZCARD', KEYS[1]), 1, due}
end
local flag = uniq and 'u' or ''
local args = {}
for i = 7, #ARGV, 2 do
  args[#args + 1] = due
  args[#args + 1] = ARGV[i] .. ':0:' .. flag .. ':' .. ARGV[i + 1]
  if #args >= 2000 then
    redis.call('ZADD', KEYS[1], unpack(args))
    args = {}
  end
end
if #args > 0 then redis.call('ZADD', KEYS[1], unpack(args)) end
wake_next(KEYS[4], KEYS[5], ARGV[2], ARGV[3])
tally('i', n)
tally_close(KEYS[6], KEYS[7])
return {redis.call('ZCARD', KEYS[1]), 1, due}
