--[[ cancel: one bounded step of removing the queued copies of a task. The caller repeats it,
  passing the offset it answered, until it answers done. Atomic per call, not as a whole.
  One call looks at one window of at most CHUNK entries of the queue, walked from the tail
  toward the head (see include/window.lua): it removes the copies of the task in the window,
  with their delivery counts in P:{E}:qn when they are among the first LLEN(qn) entries (so
  qn stays aligned with the head of q). Work per call: O(CHUNK) plus one LREM scan in C from
  the nearer end of each list, only when the window holds a copy.
  Between calls workers dequeue and return tasks at the head and producers enqueue at the
  tail. Every copy that was queued when the cancel began and is still queued when it ends is
  removed; a copy enqueued after it began may stay, and a copy returned to the head while it
  runs may or may not be removed. Copies already in process are not touched: workers get the
  "cancel" event and decide.
  The last call (the window reached the head) releases the task's uniqueness lock if it is
  still held by a queued or returned copy and some copy was removed, and PUBLISHes cancel.
  A job removed is cancelled in the call that removes it (include/jobs.lua).
  KEYS[1]  P:{E}:q     KEYS[2] P:{E}:qn     KEYS[3] P:{E}:u
  KEYS[4]  P:{E}:j     KEYS[5] P:{E}:jx     KEYS[6] P:{E}:jl
  ARGV[1]  the task    ARGV[2] the queue's event channel
  ARGV[3]  offset: entries at the tail already walked (0 on the first call)
  ARGV[4]  CHUNK       ARGV[5] copies removed by the earlier calls of this cancel
  ARGV[6]  the queue's job-end channel
  Returns: {copies removed by this call, the offset for the next call, 1 if done else 0}.
]]
-- @include jobs
-- @include window
local removed, nxt, done, at = remove_window(KEYS[1], ARGV[1], tonumber(ARGV[3]),
  tonumber(ARGV[4]))
if removed > 0 then
  local k = redis.call('LLEN', KEYS[2])
  local counted = {}
  for i = 1, #at do
    if at[i] < k then counted[#counted + 1] = at[i] end
  end
  remove_at(KEYS[2], counted, k)
  local jb = jobs_open(KEYS[4], KEYS[5], KEYS[6], ARGV[6])
  local L = job_lib()
  L.job_end(jb, ARGV[1], 'cancelled', nil, nil, L.WAITING)
  jobs_close(jb)
end
if not done then return {removed, nxt, 0} end
if removed + tonumber(ARGV[5]) > 0 then
  local lock = redis.call('HGET', KEYS[3], ARGV[1])
  if lock == 'q' or lock == 'r' then redis.call('HDEL', KEYS[3], ARGV[1]) end
end
redis.call('PUBLISH', ARGV[2], 'cancel:' .. ARGV[1])
return {removed, nxt, 1}
