--[[ finish: drop processes of worker W, releasing a unique task's lock and publishing done.
  Atomic and fenced: only a process still recorded as W's can be finished; a late call for a
  returned or reclaimed process changes nothing.
  KEYS[1]  P:{E}:p:W   W's processes on the queue     KEYS[2] P:{E}:d     KEYS[3] P:{E}:u
  KEYS[4]  P:{E}:dl    done listeners present (done is published only then)
  KEYS[5]  P:{E}:w     workers of the queue
  KEYS[6]  P:{E}:j     KEYS[7] P:{E}:jx    KEYS[8] P:{E}:jl   (a finished job ends)
  KEYS[9]  P:{E}:m   throughput totals   KEYS[10] P:{E}:m:<minute>  this minute's (include/tally.lua)
  ARGV[1]  W           ARGV[2] the queue's done channel
  ARGV[3]  the result, as JSON ("null" for none)      ARGV[4] the queue's job-end channel
  ARGV[5..] "<token>", or for a job "<token>:f:<result>" / "<token>:x:<error>" (settle_arg)
  Returns: an array with 1 for each token that was W's and is now finished, else 0; or -1 if
           W is no longer a worker of the queue (failed or reclaimed: nothing is W's).
]]
-- @include tally
-- @include jobs
-- @include process
if redis.call('SISMEMBER', KEYS[5], ARGV[1]) == 0 then return -1 end
local out = {}
local done = done_channel(KEYS[4], ARGV[2])
local has_unique = redis.call('EXISTS', KEYS[3]) == 1
local jb = jobs_open(KEYS[6], KEYS[7], KEYS[8], ARGV[4])
for i = 5, #ARGV do
  local tok, kind, payload = settle_arg(ARGV[i])
  out[#out + 1] = finish_one(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tok, done, ARGV[3],
    has_unique, jb, kind, payload)
end
jobs_close(jb)
tally_close(KEYS[9], KEYS[10])
return out
