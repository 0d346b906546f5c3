--[[ retry: return processes of worker W to their queue LATER: each leaves W's record for the
  queue's delayed set P:{E}:z, due ARGV[6] ms from now (server clock), keeping its delivery
  count (and a unique copy its lock, as "z"); when due it is promoted to the FRONT
  (include/delayed.lua). One already delivered max-deliveries times goes to the dead-letter
  list instead, as with stop. Atomic and fenced like stop: a token no longer W's is left alone.
  KEYS[1]  P:{E}:z     KEYS[2] P:{E}:p:W     KEYS[3] P:{E}:d     KEYS[4] P:{E}:dead
  KEYS[5]  P:{E}:u     KEYS[6] P:{E}:i       KEYS[7] P:{E}:w     KEYS[8] P:{E}:dr
  KEYS[9]  P:{E}:j     KEYS[10] P:{E}:jx     KEYS[11] P:{E}:jl   (a job is scheduled, with
                       the error as its last; or dead)
  KEYS[12]  P:{E}:m   throughput totals   KEYS[13] P:{E}:m:<minute>  this minute's (include/tally.lua)
  ARGV[1]  W           ARGV[2] the queue's event channel      ARGV[3] max deliveries (0: never)
  ARGV[4]  the wake channel prefix           ARGV[5] the queue name
  ARGV[6]  the delay in ms (> 0)
  ARGV[7]  the reason recorded if a task is dead-lettered instead (JSON object, or "")
  ARGV[8]  the queue's job-end channel
  ARGV[9..] tokens
  Returns: {per token: 3 delayed, 2 dead-lettered, 0 not W's; ..., the due time in server ms}.
]]
-- @include tally
-- @include jobs
-- @include process
-- @include delayed
-- @include wake
local due = now_ms() + tonumber(ARGV[6])
local max = tonumber(ARGV[3])
local out, delayed = {}, 0
local jb = jobs_open(KEYS[9], KEYS[10], KEYS[11], ARGV[8])
for i = 9, #ARGV do
  local tok = ARGV[i]
  local task = redis.call('HGET', KEYS[2], tok)
  if not task then
    out[#out + 1] = 0
  else
    redis.call('HDEL', KEYS[2], tok)
    local n, uniq = returning(KEYS[4], KEYS[3], KEYS[5], ARGV[1], tok, task, max, ARGV[2],
      KEYS[8], ARGV[7], jb)
    if not n then
      out[#out + 1] = 2
    else
      if uniq then redis.call('HSET', KEYS[5], task, 'z') end
      local member = ARGV[1] .. '.' .. tok .. ':' .. n .. ':' .. (uniq and 'u' or '') .. ':' .. task
      redis.call('ZADD', KEYS[1], due, member)
      if is_job(task) then
        job_lib().job_wait(jb, task, 'scheduled', ARGV[7], ARGV[1] .. '.' .. tok)
      end
      out[#out + 1] = 3
      delayed = delayed + 1
      tally('r', 1)
    end
  end
end
jobs_close(jb)
tally_close(KEYS[12], KEYS[13])
if delayed > 0 then wake_next(KEYS[6], KEYS[7], ARGV[4], ARGV[5]) end
out[#out + 1] = due
return out
