--[[ enqueue: append tasks at the tail of a queue and announce them: 'work:<n>' on the queue's
  event channel, and one waiting runner woken per task (include/wake.lua). Atomic.
  KEYS[1]  P:{E}:q    the queue list          KEYS[2] P:{E}:i  the waiting workers
  KEYS[3]  P:{E}:w    the queue's workers (a waiter not among them is not woken)
  KEYS[4]  P:{E}:m   throughput totals   KEYS[5] P:{E}:m:<minute>  this minute's (include/tally.lua)
  ARGV[1]  the queue's event channel   ARGV[2] the wake channel prefix {P}:wake:
  ARGV[3]  the queue name              ARGV[4..] the tasks, in order
  Returns: the queue length after the push.
]]
-- @include tally
-- @include wake
local len = 0
for i = 4, #ARGV, 1000 do
  len = redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
wake(KEYS[2], KEYS[3], ARGV[1], #ARGV - 3, ARGV[2], ARGV[3])
tally('i', #ARGV - 3)
tally_close(KEYS[4], KEYS[5])
return len
