-- Delayed tasks (included where "@include delayed" is). A queue's delayed tasks wait in the
-- sorted set P:{E}:z, scored by their due time in ms of the SERVER clock (TIME), so producers'
-- and workers' clocks never matter. A member is "<id>:<n>:<u>:<task>": id makes it unique
-- (a producer's random hex, or "W.token" for a process returned with a delay), n is the
-- deliveries so far (0: never delivered), u is "u" for a unique copy (its lock in P:{E}:u is
-- then "z") or empty.
-- When due, a member is PROMOTED, exactly once (ZREM and push in one script): a new task
-- (n = 0) to the queue's TAIL, a returned one (n > 0) to the FRONT with its delivery count,
-- as stop_process returns it; a unique copy's lock becomes "q" or "r".

-- The server's clock in ms.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Split a member into its deliveries (number), whether it is a unique copy, and its task.
local function parse_delayed(member)
  local n, u, task = string.match(member, '^[^:]*:(%d+):(u?):(.*)$')
  return tonumber(n), u == 'u', task
end

-- Promote at most `limit` due members of z (score <= now), earliest first; a job among them
-- is queued (jb: include/jobs.lua). Returns how many.
local function promote(z, q, qn, u, now, limit, jb)
  local due = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, limit)
  if #due == 0 then return 0 end
  local tail, front = {}, {}
  for i = 1, #due do
    local n, uniq, task = parse_delayed(due[i])
    if uniq and redis.call('HGET', u, task) ~= 'z' then uniq = false end
    if is_job(task) then job_lib().job_wait(jb, task, 'queued', '', nil, job_lib().SCHEDULED) end
    if n == 0 then
      tail[#tail + 1] = task
      if uniq then redis.call('HSET', u, task, 'q') end
    else
      front[#front + 1] = {task, n, uniq}
    end
  end
  for i = 1, #due, 1000 do redis.call('ZREM', z, unpack(due, i, math.min(i + 999, #due))) end
  for i = 1, #tail, 1000 do redis.call('RPUSH', q, unpack(tail, i, math.min(i + 999, #tail))) end
  for i = #front, 1, -1 do -- the earliest due ends up first
    local f = front[i]
    redis.call('LPUSH', q, f[1])
    if f[3] then
      redis.call('LPUSH', qn, f[2] .. ':u')
      redis.call('HSET', u, f[1], 'r')
    else
      redis.call('LPUSH', qn, f[2])
    end
  end
  return #due
end

-- The due time (server ms) of z's earliest member, or nil.
local function next_due(z)
  local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
  if #first == 0 then return nil end
  return tonumber(first[2])
end
