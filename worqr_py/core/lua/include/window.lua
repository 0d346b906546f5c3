-- Helpers for the list operations done in bounded calls (cancel, purge_dead, requeue_dead),
-- each call one window of the list, walked from the TAIL toward the head.
-- Why from the tail: between two calls, workers pop and push at the head and producers push
-- at the tail. A position counted from the tail moves only by the tail pushes, and those push
-- the unvisited part further from the tail: the next window then looks at some entries again
-- (harmless) and never skips one. Entries pushed at the tail after the walk began are behind
-- it and are not visited.
-- Removals in the visited part by another walk of the same list (a second cancel at once)
-- move the unvisited part toward the tail instead: this walk may then skip as many entries.

-- Not a valid UTF-8 string, so never equal to a task (tasks are UTF-8): it marks entries to
-- remove, and never outlives the call that sets it.
local REMOVED = '\255worqr:removed\255'

-- Remove the entries at head indexes `at` (ascending, taken in this call) of `list`, whose
-- length is `len`: each is overwritten with REMOVED (LSET), then all go in one LREM counted
-- from the nearer end of the list (a scan in C that stops at the last marker: the only work
-- that grows with the list, at most half of it).
local function remove_at(list, at, len)
  if #at == 0 then return end
  for i = 1, #at do redis.call('LSET', list, at[i], REMOVED) end
  if at[#at] < len - at[1] then
    redis.call('LREM', list, #at, REMOVED)
  else
    redis.call('LREM', list, -#at, REMOVED)
  end
end

-- Remove the copies of `task` among the at most `chunk` entries of `list` that come just
-- before its last `offset` entries (remove_at). Returns: copies removed, the offset of the
-- next window, whether the walk reached the head, the head indexes (before the removal) of
-- the copies removed, and the list's length before it.
local function remove_window(list, task, offset, chunk)
  local len = redis.call('LLEN', list)
  if offset >= len then return 0, offset, true, {}, len end
  local last = len - offset - 1
  local first = math.max(0, last - chunk + 1)
  local items = redis.call('LRANGE', list, first, last)
  local at = {}
  for i = 1, #items do
    if items[i] == task then at[#at + 1] = first + i - 1 end
  end
  remove_at(list, at, len)
  return #at, len - first - #at, first == 0, at, len
end
