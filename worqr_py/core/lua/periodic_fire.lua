--[[ periodic_fire: enqueue a periodic task for its due fire times, each EXACTLY ONCE however
  many workers call it: a fire time is enqueued only if it is later than the schedule's last
  fire time and not later than the server clock (TIME), and the last fire time moves to it
  in the same call. Skipped if the schedule was removed or changed since the caller read it.
  KEYS[1]  P:{E}:sched   KEYS[2] P:{E}:sf   KEYS[3] P:{E}:q   KEYS[4] P:{E}:i   KEYS[5] P:{E}:w
  KEYS[6]  P:{E}:m   throughput totals   KEYS[7] P:{E}:m:<minute>  this minute's (include/tally.lua)
  ARGV[1]  the schedule's name              ARGV[2] its spec as the caller read it (JSON)
  ARGV[3]  the task                         ARGV[4] the queue's event channel
  ARGV[5]  the wake channel prefix          ARGV[6] the queue name
  ARGV[7]  the firing worker's id (recorded as the last firer)
  ARGV[8..] fire times (server ms), ascending
  Returns: the number of fire times enqueued by this call (one task each, at the TAIL).
]]
-- @include tally
-- @include delayed
-- @include wake
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
local state = redis.call('HGET', KEYS[2], ARGV[1])
if not state then return 0 end
local since, last, fires = string.match(state, '^(%d+):(%d+):(%d+):')
since, last, fires = tonumber(since), tonumber(last), tonumber(fires)
local now, n = now_ms(), 0
for i = 8, #ARGV do
  local t = tonumber(ARGV[i])
  if t > last and t > since and t <= now then
    redis.call('RPUSH', KEYS[3], ARGV[3])
    last, n = t, n + 1
  end
end
if n > 0 then
  redis.call('HSET', KEYS[2], ARGV[1], since .. ':' .. last .. ':' .. (fires + n) .. ':' .. ARGV[7])
  wake(KEYS[4], KEYS[5], ARGV[4], n, ARGV[5], ARGV[6])
end
tally('i', n)
tally_close(KEYS[6], KEYS[7])
return n
