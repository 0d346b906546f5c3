--[[ finish: drop processes of worker W. Atomic and fenced: only a process still recorded
  as W's can be finished; a late call for a returned or reclaimed process changes nothing.
  KEYS[1]  P:{E}:p:W   W's processes on the queue
  KEYS[2]  P:{E}:d     "W.token" -> delivery count
  ARGV[1]  W           ARGV[2..] tokens
  Returns: an array with 1 for each token that was W's and is now finished, else 0.
]]
local out = {}
for i = 2, #ARGV do
  local ok = redis.call('HDEL', KEYS[1], ARGV[i])
  if ok == 1 then redis.call('HDEL', KEYS[2], ARGV[1] .. '.' .. ARGV[i]) end
  out[#out + 1] = ok
end
return out
