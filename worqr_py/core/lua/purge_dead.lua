--[[ purge_dead: drop dead-lettered tasks for good. Atomic per call.
  "all": one call, LLEN + UNLINK (O(1) for Redis' main thread: freed in the background).
  "one": one bounded step of dropping the copies of a task; the caller repeats it, passing
  the offset it answered, until it answers done. One call looks at one window of at most
  CHUNK entries, walked from the tail toward the head (see include/window.lua): O(CHUNK) plus
  one LREM scan in C from the nearer end, only when the window holds a copy. Every copy that
  was dead when the purge began and still is when it ends is dropped; one dead-lettered
  after it began may stay.
  KEYS[1]  P:{E}:dead  KEYS[2] P:{E}:dr (reasons: all dropped with "all", the task's once
                       its walk is done with "one")
  ARGV[1]  "all" to drop every dead task, "one" to drop only the copies of ARGV[2]
  ARGV[2]  the task, with "one"
  ARGV[3]  offset: entries at the tail already walked (0 on the first call)
  ARGV[4]  CHUNK
  Returns: {tasks dropped by this call, the offset for the next call, 1 if done else 0}.
]]
-- @include window
if ARGV[1] == 'all' then
  local n = redis.call('LLEN', KEYS[1])
  redis.call('UNLINK', KEYS[1], KEYS[2])
  return {n, 0, 1}
end
local removed, nxt, done = remove_window(KEYS[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
if done then redis.call('HDEL', KEYS[2], ARGV[2]) end
return {removed, nxt, done and 1 or 0}
