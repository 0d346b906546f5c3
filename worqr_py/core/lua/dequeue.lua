--[[ dequeue: finish some of worker W's processes on a queue (optional), then move up to N tasks
  from the queue's head into W's processes. Atomic. A busy worker acks its last task and takes
  the next in this one call: one round trip per task.
  KEYS[1]  P:{E}:q     the queue list (head = next)
  KEYS[2]  P:{E}:qn    delivery counts of the returned tasks at the head of q
  KEYS[3]  P:{E}:w     workers of the queue: W must be a member (fencing)
  KEYS[4]  P:{E}:p:W   W's processes on the queue: token -> task
  KEYS[5]  P:{E}:d     "W.token" -> delivery count, when above 1
  KEYS[6]  P:{E}:u     uniqueness locks       KEYS[7] P:{E}:dl  done listeners present
  KEYS[8]  P:{E}:i     workers waiting for work (wake one)
  KEYS[9]  P:{E}:z     the queue's delayed tasks: up to ARGV[9] due ones are promoted first
                       (include/delayed.lua) and announced like an enqueue
  KEYS[10] P:{E}:j     job records   KEYS[11] P:{E}:jx ended jobs   KEYS[12] P:{E}:jl waiters
                       (include/jobs.lua: a job taken is started, one finished ends)
  KEYS[13]  P:{E}:m   throughput totals   KEYS[14] P:{E}:m:<minute>  this minute's (include/tally.lua)
  ARGV[1]  W           ARGV[2] first new token      ARGV[3] N, the most tasks to take
  ARGV[4]  the queue's done channel
  ARGV[5]  '1' if W's runner takes part in waking one runner per task (include/wake.lua),
           else '': then a short take (fewer than N) puts W among the waiting workers, and a
           full take takes it out (its runner tries the queue again: one with work never
           waits to be woken)
  ARGV[6]  the queue's event channel    ARGV[7] the wake channel prefix
  ARGV[8]  the queue name               ARGV[9] the most delayed tasks to promote
  ARGV[10] the queue's job-end channel
  ARGV[11..] W's processes to finish first: "<token>", or for a job "<token>:f:<result>" /
           "<token>:x:<error>" (include/jobs.lua settle_arg)
  Returns: -1 if W is not a worker of the queue (never started, stopped, or reclaimed: its
           processes are gone too); else {finished, due, task, deliveries, task, deliveries,
           ...}: finished has 1 per token finished (0: not W's), due is in how many ms the
           earliest delayed task left is due (0: already) or -1 (none), the i-th task has
           token ARGV[2]+i-1; a job's task is followed by "\31<options>\31<call>".
  Retry-safe: if the first new token is already W's (the same call, retried after its reply was
  lost), the tasks it took are answered again (its finishes reported done) and nothing more is
  taken.
]]
-- @include tally
-- @include jobs
-- @include process
-- @include delayed
-- @include wake
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then return -1 end
local token = tonumber(ARGV[2])
local finished = {}
local out = {finished, -1}
local jb = jobs_open(KEYS[10], KEYS[11], KEYS[12], ARGV[10])
if redis.call('HEXISTS', KEYS[4], ARGV[2]) == 1 then
  for _ = 11, #ARGV do finished[#finished + 1] = 1 end
  for i = 0, tonumber(ARGV[3]) - 1 do
    local tok = string.format('%d', token + i)
    local task = redis.call('HGET', KEYS[4], tok)
    if not task then break end
    out[#out + 1] = is_job(task) and job_lib().job_reply(jb, task, ARGV[1], tok) or task
    out[#out + 1] = tonumber(redis.call('HGET', KEYS[5], ARGV[1] .. '.' .. tok) or 1)
  end
  return out
end
local has_unique = redis.call('EXISTS', KEYS[6]) == 1
if #ARGV >= 11 then
  local done = done_channel(KEYS[7], ARGV[4])
  for i = 11, #ARGV do
    local tok, kind, payload = settle_arg(ARGV[i])
    finished[#finished + 1] = finish_one(KEYS[4], KEYS[5], KEYS[6], ARGV[1], tok, done,
      'null', has_unique, jb, kind, payload)
  end
end
local promoted, now = 0, nil
if redis.call('EXISTS', KEYS[9]) == 1 then
  now = now_ms()
  promoted = promote(KEYS[9], KEYS[1], KEYS[2], KEYS[6], now, tonumber(ARGV[9]), jb)
end
for i = 0, tonumber(ARGV[3]) - 1 do
  local task, n = take_one(KEYS[1], KEYS[2], KEYS[4], KEYS[5], KEYS[6], ARGV[1],
    string.format('%d', token + i), has_unique, jb)
  if not task then break end
  out[#out + 1] = task
  out[#out + 1] = n
end
if now then
  local due = next_due(KEYS[9])
  if due then out[2] = math.max(0, due - now) end
  if promoted > 0 then -- announce what this take left of them
    wake(KEYS[8], KEYS[3], ARGV[6], math.min(promoted, redis.call('LLEN', KEYS[1])), ARGV[7],
      ARGV[8])
  end
end
jobs_close(jb)
tally_close(KEYS[13], KEYS[14])
if ARGV[5] ~= '' then
  if #out - 2 < 2 * tonumber(ARGV[3]) then
    waiting(KEYS[8], ARGV[1])
  else
    redis.call('ZREM', KEYS[8], ARGV[1])
  end
end
return out
