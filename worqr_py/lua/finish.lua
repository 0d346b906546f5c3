--[[ finish: drop processes of worker W, releasing a unique task's lock and publishing done.
  Atomic and fenced: only a process still recorded as W's can be finished; a late call for a
  returned or reclaimed process changes nothing.
  KEYS[1]  P:{E}:p:W   W's processes on the queue     KEYS[2] P:{E}:d     KEYS[3] P:{E}:u
  ARGV[1]  W           ARGV[2] the queue's done channel
  ARGV[3]  the result, as JSON ("null" for none)      ARGV[4..] tokens
  Returns: an array with 1 for each token that was W's and is now finished, else 0.
]]
-- @include process
local out = {}
for i = 4, #ARGV do
  out[#out + 1] = finish_one(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[i], ARGV[2], ARGV[3])
end
return out
