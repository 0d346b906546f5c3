--[[ promote: move at most LIMIT due tasks of a queue's delayed set into the queue
  (include/delayed.lua: a new task to the tail, a returned one to the front) and announce
  them as enqueue does ('work:<n>', one waiting runner woken per task). Atomic; bounded by
  LIMIT however many are due. The supervision turn and idle runners call it; dequeue does
  the same inside its own call.
  KEYS[1]  P:{E}:z     KEYS[2] P:{E}:q     KEYS[3] P:{E}:qn    KEYS[4] P:{E}:u
  KEYS[5]  P:{E}:i     KEYS[6] P:{E}:w
  KEYS[7]  P:{E}:j     KEYS[8] P:{E}:jx    KEYS[9] P:{E}:jl   (a promoted job is queued)
  ARGV[1]  the queue's event channel   ARGV[2] the wake channel prefix   ARGV[3] the queue name
  ARGV[4]  LIMIT
  Returns: {tasks promoted, the earliest due time left (server ms) or -1, the server time}.
]]
-- @include jobs
-- @include delayed
-- @include wake
local now = now_ms()
local jb = jobs_open(KEYS[7], KEYS[8], KEYS[9], '')
local n = promote(KEYS[1], KEYS[2], KEYS[3], KEYS[4], now, tonumber(ARGV[4]), jb)
wake(KEYS[5], KEYS[6], ARGV[1], n, ARGV[2], ARGV[3])
return {n, next_due(KEYS[1]) or -1, now}
