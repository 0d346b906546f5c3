--[[ periodic_set: create or change a periodic schedule of a queue. Atomic. Setting the same
  spec again changes nothing (every process of an application may call schedule() at start).
  A new or changed spec starts now ("since": server clock); a changed one keeps its last fire
  time, so no fire time is enqueued twice across the change.
  KEYS[1]  P:{E}:sched (name -> spec)     KEYS[2] P:{E}:sf (name -> "since:last:fires:W")
  ARGV[1]  the schedule's name            ARGV[2] its spec (JSON, made by core/periodic.py)
  Returns: {1 if created or changed else 0, since (server ms)}.
]]
-- @include delayed
local old = redis.call('HGET', KEYS[1], ARGV[1])
local state = redis.call('HGET', KEYS[2], ARGV[1])
if old == ARGV[2] and state then
  return {0, tonumber(string.match(state, '^(%d+):'))}
end
local now = now_ms()
local last, fires, by = '0', '0', ''
if state then last, fires, by = string.match(state, '^%d+:(%d+):(%d+):(.*)$') end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], now .. ':' .. last .. ':' .. fires .. ':' .. by)
return {1, now}
