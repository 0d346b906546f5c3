-- Waking ONE idle runner per task instead of all (included where "@include wake" is).
-- P:{E}:i holds the workers whose runner waits for work on the queue, scored by when they
-- began to wait. A runner in it has said "tell me"; one not in it has the queue on its own
-- list of queues to try, or is taking from it now, so it needs no message. A runner listens
-- on its worker's own wake channel, {P}:wake:W, not on the queue's event channel, so a task
-- wakes one process, not every subscriber. The wake channel is the one name a script
-- completes (prefix .. W): a channel is not a key and has no hash slot.

-- Pop waiting workers, most recent first (the likeliest alive), and wake up to n of them
-- with the queue name on their wake channels. A popped worker that is no longer a worker of
-- the queue (P:{E}:w: a leave that did not take it out of the set, as a 0.2 peer's does) is
-- dropped, not woken; at most n + 100 are popped. Returns how many were woken.
local function wake_some(idle, members, n, wakes, queue)
  local woken, popped = 0, 0
  while woken < n and popped < n + 100 do
    local top = redis.call('ZPOPMAX', idle)
    if #top == 0 then break end
    popped = popped + 1
    if redis.call('SISMEMBER', members, top[1]) == 1 then
      redis.call('PUBLISH', wakes .. top[1], queue)
      woken = woken + 1
    end
  end
  return woken
end

-- Announce n tasks: 'work:<n>' on the queue's event channel ev (for on() handlers), and wake
-- up to n waiting workers (at most 1000). n = 0: nothing.
local function wake(idle, members, ev, n, wakes, queue)
  if n <= 0 then return end
  redis.call('PUBLISH', ev, 'work:' .. n)
  wake_some(idle, members, math.min(n, 1000), wakes, queue)
end

-- Wake the next waiting worker, if any, for queued work: when a worker named for a task
-- could not take it (busy, stopping) or left the queue. Returns 1 if one was woken, else 0.
local function wake_next(idle, members, wakes, queue)
  return wake_some(idle, members, 1, wakes, queue)
end

-- Worker w waits for work on the queue (its take came back short).
local function waiting(idle, w)
  local t = redis.call('TIME')
  redis.call('ZADD', idle, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), w)
end
