--[[ stop: return processes of worker W to the FRONT of their queue. Atomic and fenced.
  The first token given is delivered first. Each keeps its delivery count (and a unique task
  its lock); one already delivered max-deliveries times goes to the dead-letter list instead.
  KEYS[1]  P:{E}:q     KEYS[2] P:{E}:qn     KEYS[3] P:{E}:p:W     KEYS[4] P:{E}:d
  KEYS[5]  P:{E}:dead  KEYS[6] P:{E}:u     KEYS[7] P:{E}:i (one waiting worker woken per task)
  KEYS[8]  P:{E}:w     KEYS[9] P:{E}:dr (why each dead letter died)
  KEYS[10] P:{E}:j     KEYS[11] P:{E}:jx   KEYS[12] P:{E}:jl  (a job is queued again, or dead)
  KEYS[13]  P:{E}:m   throughput totals   KEYS[14] P:{E}:m:<minute>  this minute's (include/tally.lua)
  ARGV[1]  W           ARGV[2] the queue's event channel
  ARGV[3]  max deliveries (0: never; 1: dead-letter now)    ARGV[4] the wake channel prefix
  ARGV[5]  the queue name
  ARGV[6]  the reason recorded for a task this call dead-letters: a JSON object
           ({"type", "message", "traceback"}) or "" (none)
  ARGV[7]  the queue's job-end channel
  ARGV[8..] tokens
  Returns: an array with, per token: 1 back in the queue, 2 dead-lettered, 0 not W's.
]]
-- @include tally
-- @include jobs
-- @include process
-- @include wake
local out, back = {}, 0
local jb = jobs_open(KEYS[10], KEYS[11], KEYS[12], ARGV[7])
for i = #ARGV, 8, -1 do
  local task = redis.call('HGET', KEYS[3], ARGV[i])
  if task then
    redis.call('HDEL', KEYS[3], ARGV[i])
    out[i - 7] = give_back(KEYS[1], KEYS[2], KEYS[5], KEYS[4], KEYS[6], ARGV[1], ARGV[i], task,
      tonumber(ARGV[3]), ARGV[2], KEYS[9], ARGV[6], jb)
    if out[i - 7] == 1 then back = back + 1 end
  else
    out[i - 7] = 0
  end
end
jobs_close(jb)
tally_close(KEYS[13], KEYS[14])
wake(KEYS[7], KEYS[8], ARGV[2], back, ARGV[4], ARGV[5])
return out
