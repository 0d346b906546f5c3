-- Jobs (included where "@include jobs" is, before the other includes). A job is a task whose
-- string is "\31" .. K (K: the job's key, without "\31"); its record is a set of fields of
-- the queue's job hash P:{E}:j: K (its call, as the serializer wrote it) and K .. "\31" ..
--   s status: queued | scheduled | started | finished | failed | dead | cancelled
--   n attempts (deliveries)   w worker   e enqueued, b began, x ended (server ms)
--   r result (finished) or error (JSON {"type", "message", "traceback"})
--   t "<result ttl ms>:<failure ttl ms>" (-1: kept)   o options (JSON: timeout, retry)
-- Every script that moves a task sets the status of a job it moves, in the same call, so the
-- status never disagrees with where the job is. An ended job is listed in P:{E}:jx with the
-- time its record expires; each job end drops at most 2 expired records. A plain task costs
-- one EXISTS per call (no job hash: nothing more) or one byte compare per task.

-- The job context of a call: nil when the queue has no job hash. ch is the job-end channel,
-- '' when no waiter listens (P:{E}:jl is missing) or x is ''.
local function jobs_open(h, x, l, ch)
  if redis.call('EXISTS', h) == 0 then return nil end
  if x == '' or redis.call('EXISTS', l) == 0 then ch = '' end
  return {h = h, x = x, ch = ch}
end

-- K if task is a job whose record exists, else nil.
local function job_key(jb, task)
  if jb == nil or string.byte(task, 1) ~= 31 then return nil end
  local k = string.sub(task, 2)
  if redis.call('HEXISTS', jb.h, k) == 0 then return nil end
  return k
end

local function job_now(jb)
  if not jb.now then
    local t = redis.call('TIME')
    jb.now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return jb.now
end

-- HSET fields of job K: suffix, value, suffix, value...
local function job_put(jb, k, ...)
  local a, out = {...}, {}
  for i = 1, #a, 2 do
    out[#out + 1] = k .. '\31' .. a[i]
    out[#out + 1] = a[i + 1]
  end
  redis.call('HSET', jb.h, unpack(out))
end

local JOB_FIELDS = {'s', 'n', 'w', 'e', 'b', 'x', 'r', 't', 'o'}

-- Drop job K's record.
local function job_drop(h, k)
  local f = {k}
  for i = 1, #JOB_FIELDS do f[#f + 1] = k .. '\31' .. JOB_FIELDS[i] end
  redis.call('HDEL', h, unpack(f))
end

-- What the dequeue answers for job K: the task, then "\31<enqueued>:<began>\31<options>\31"
-- and its call.
local function job_answer(jb, task, k)
  local got = redis.call('HMGET', jb.h, k .. '\31e', k .. '\31b', k .. '\31o', k)
  return task .. '\31' .. (got[1] or '0') .. ':' .. (got[2] or '0') .. '\31' ..
    (got[3] or '{}') .. '\31' .. got[4]
end

-- A job taken by worker w (n-th delivery): started. Returns what the dequeue answers for it
-- (job_answer; the task alone for a plain task).
local function job_start(jb, task, n, w)
  local k = job_key(jb, task)
  if not k then return task end
  job_put(jb, k, 's', 'started', 'n', n, 'w', w, 'b', job_now(jb))
  return job_answer(jb, task, k)
end

-- The dequeue's answer for a task already started (a replayed dequeue): as job_start's.
local function job_reply(jb, task)
  local k = job_key(jb, task)
  if not k then return task end
  return job_answer(jb, task, k)
end

-- A job back to waiting: status queued (in the queue) or scheduled (delayed), with the error
-- of the try that sent it back when err is not '' (it stays until the next end). No longer
-- an ended job (a requeued dead letter): off P:{E}:jx.
local function job_wait(jb, task, status, err)
  local k = job_key(jb, task)
  if not k then return end
  if err and err ~= '' then
    job_put(jb, k, 's', status, 'r', err)
  else
    job_put(jb, k, 's', status)
  end
  redis.call('HDEL', jb.h, k .. '\31x')
  if jb.x ~= '' then redis.call('ZREM', jb.x, k) end
end

-- A job ended: finished (payload: its result; nil: none), failed, dead or cancelled
-- (payload: the error). Its record expires after its result TTL (finished) or failure TTL
-- (the others); at most 2 expired records are dropped; waiters are told (K on the channel).
local function job_end(jb, task, status, payload)
  local k = job_key(jb, task)
  if not k then return end
  local now = job_now(jb)
  if payload then
    job_put(jb, k, 's', status, 'x', now, 'r', payload)
  else
    job_put(jb, k, 's', status, 'x', now)
    redis.call('HDEL', jb.h, k .. '\31r')
  end
  local ok, bad = string.match(redis.call('HGET', jb.h, k .. '\31t') or '', '^(-?%d+):(-?%d+)$')
  local keep = tonumber(status == 'finished' and ok or bad) or -1
  if keep >= 0 then redis.call('ZADD', jb.x, now + keep, k) else redis.call('ZREM', jb.x, k) end
  local old = redis.call('ZRANGEBYSCORE', jb.x, '-inf', now, 'LIMIT', 0, 2)
  for i = 1, #old do
    job_drop(jb.h, old[i])
    redis.call('ZREM', jb.x, old[i])
  end
  if jb.ch ~= '' then redis.call('PUBLISH', jb.ch, k) end
end

-- The error recorded for a job dead-lettered without a reason (a crash loop).
local function job_lost(n)
  return '{"type":"","message":"dead-lettered after ' .. n ..
    ' deliveries without finishing (max_deliveries)","traceback":""}'
end

-- A settle argument of dequeue/finish: "<token>" or "<token>:<f|x>:<payload>" (f: finished
-- with a result, x: failed with an error). Returns token, kind (nil: plain), payload.
local function settle_arg(a)
  local c = string.find(a, ':', 1, true)
  if not c then return a, nil, nil end
  return string.sub(a, 1, c - 1), string.sub(a, c + 1, c + 1), string.sub(a, c + 3)
end
