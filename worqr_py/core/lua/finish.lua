--[[ finish: drop processes of worker W, releasing a unique task's lock and publishing done.
  Atomic and fenced: only a process still recorded as W's can be finished; a late call for a
  returned or reclaimed process changes nothing.
  KEYS[1]  P:{E}:p:W   W's processes on the queue     KEYS[2] P:{E}:d     KEYS[3] P:{E}:u
  KEYS[4]  P:{E}:dl    done listeners present (done is published only then)
  KEYS[5]  P:{E}:w     workers of the queue
  ARGV[1]  W           ARGV[2] the queue's done channel
  ARGV[3]  the result, as JSON ("null" for none)      ARGV[4..] tokens
  Returns: an array with 1 for each token that was W's and is now finished, else 0; or -1 if
           W is no longer a worker of the queue (failed or reclaimed: nothing is W's).
]]
-- @include process
if redis.call('SISMEMBER', KEYS[5], ARGV[1]) == 0 then return -1 end
local out = {}
local done = done_channel(KEYS[4], ARGV[2])
local has_unique = redis.call('EXISTS', KEYS[3]) == 1
for i = 4, #ARGV do
  out[#out + 1] = finish_one(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[i], done, ARGV[3],
    has_unique)
end
return out
