--[[ requeue_dead: move dead-lettered tasks back to the TAIL of their queue as fresh tasks
  (delivery count reset) and announce them, in bounded calls: the caller repeats it, passing
  the offset it answered, until it answers done. Atomic per call, not as a whole.
  "all": one call moves the at most CHUNK oldest dead letters (LRANGE + LTRIM of the head of
  the dead list, RPUSH to the queue, oldest first). The first call (offset -1) takes the dead
  list's length as the number to move, so dead letters that arrive meanwhile do not make it
  run on; the offset answered is how many are left to move.
  "one": one call looks at one window of at most CHUNK entries of the dead list, walked from
  the tail toward the head (see include/window.lua), and moves the copies of the task in it:
  O(CHUNK) plus one LREM scan in C from the nearer end, only when the window holds a copy.
  Between calls, producers may enqueue between two calls' tasks: a requeue is not one block
  at the tail. Every dead letter (or copy) that was dead when it began and still is when it
  ends is moved, once; one dead-lettered after it began may stay.
  KEYS[1]  P:{E}:dead  KEYS[2] P:{E}:q     KEYS[3] P:{E}:i (one waiting runner woken per task)
  KEYS[4]  P:{E}:w     KEYS[5] P:{E}:dr (the reasons of the moved tasks are dropped)
  KEYS[6]  P:{E}:j     KEYS[7] P:{E}:jx     KEYS[8] P:{E}:jl   (a job moved is queued again)
  ARGV[1]  the queue's event channel
  ARGV[2]  "all" to move every dead task, "one" to move only the copies of ARGV[3]
  ARGV[3]  the task, with "one"
  ARGV[4]  offset: "all": -1 on the first call, then the number left; "one": entries at the
           tail already walked (0 on the first call)
  ARGV[5]  CHUNK       ARGV[6] the wake channel prefix     ARGV[7] the queue name
  Returns: {tasks moved by this call, the offset for the next call, 1 if done else 0}.
  PUBLISHes work:<n> when it moved n > 0.
]]
-- @include jobs
-- @include window
-- @include wake
local chunk = tonumber(ARGV[5])
local moved, nxt, done = {}, 0, true
if ARGV[2] == 'all' then
  local len = redis.call('LLEN', KEYS[1])
  local left = tonumber(ARGV[4])
  if left < 0 then left = len end
  local n = math.min(chunk, left, len)
  if n > 0 then
    moved = redis.call('LRANGE', KEYS[1], 0, n - 1)
    redis.call('LTRIM', KEYS[1], n, -1)
  end
  nxt = left - n
  done = nxt == 0 or n == len
else
  local removed
  removed, nxt, done = remove_window(KEYS[1], ARGV[3], tonumber(ARGV[4]), chunk)
  for i = 1, removed do moved[i] = ARGV[3] end
end
local jb = jobs_open(KEYS[6], KEYS[7], KEYS[8], '')
local push = {}
for i = 1, #moved do -- a job's letter goes back only if its record says dead: a stale one
  if not is_job(moved[i]) or job_lib().job_wait(jb, moved[i], 'queued', '', nil, job_lib().DEAD) then
    push[#push + 1] = moved[i] -- (its job expired, or a newer job has its key) is dropped
  end
end
for i = 1, #moved, 1000 do
  redis.call('HDEL', KEYS[5], unpack(moved, i, math.min(i + 999, #moved)))
end
for i = 1, #push, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(push, i, math.min(i + 999, #push)))
end
wake(KEYS[3], KEYS[4], ARGV[1], #push, ARGV[6], ARGV[7])
return {#push, nxt, done and 1 or 0}
