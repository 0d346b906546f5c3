-- Jobs (included where "@include jobs" is, before the other includes). A job is a task whose
-- string is "\31" .. K (K: the job's key, without "\31"); its record is a set of fields of
-- the queue's job hash P:{E}:j: K (its call, as the serializer wrote it) and K .. "\31" ..
--   s status: queued | scheduled | started | finished | failed | dead | cancelled
--   n attempts (deliveries)   w worker   e enqueued, b began, x ended (server ms)
--   r result (finished) or error (JSON {"type", "message", "traceback"})
--   t "<result ttl ms>:<failure ttl ms>" (-1: kept; present exactly while the record is)
--   o options (JSON: timeout, retry)
-- Every script that moves a task sets the status of a job it moves, in the same call, so the
-- status never disagrees with where the job is. An ended job is listed in P:{E}:jx with the
-- time its record expires; a call that ends n jobs drops at most 2n expired records
-- (jobs_close). A plain task costs one byte compare, and no Redis command.

-- The job context of a call (no command yet): the job hash, the expiry set, the waiters
-- flag and the job-end channel ('' for none: nothing is published).
local function jobs_open(h, x, l, ch)
  return {h = h, x = x, l = l, ch = ch, ended = 0}
end

-- Whether a task is a job's (one byte compare: what a plain task costs).
local function is_job(task)
  return string.byte(task, 1) == 31
end

-- The job library, made on first use in a call (lazily: a call that meets no job creates
-- none of its functions). Its entries are used as job_lib().start(...) and so on.
local JOB_LIB
local function job_lib()
  if JOB_LIB then return JOB_LIB end
  local L = {}
  -- K if task is a job (its record is not checked), else nil.
  function L.job_key(jb, task)
    if string.byte(task, 1) ~= 31 then return nil end
    return string.sub(task, 2)
  end

  function L.job_now(jb)
    if not jb.now then
      local t = redis.call('TIME')
      jb.now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    return jb.now
  end

  -- HSET fields of job K: suffix, value, suffix, value...
  function L.job_put(jb, k, ...)
    local a, out = {...}, {}
    for i = 1, #a, 2 do
      out[#out + 1] = k .. '\31' .. a[i]
      out[#out + 1] = a[i + 1]
    end
    redis.call('HSET', jb.h, unpack(out))
  end

  local JOB_FIELDS = {'s', 'n', 'w', 'e', 'b', 'x', 'r', 't', 'o'}

  -- Drop job K's record.
  function L.job_drop(h, k)
    local f = {k}
    for i = 1, #JOB_FIELDS do f[#f + 1] = k .. '\31' .. JOB_FIELDS[i] end
    redis.call('HDEL', h, unpack(f))
  end

  -- What the dequeue answers for a job (its record read as HMGET e, o, K): the task, then
  -- "\31<enqueued>:<began>\31<options>\31" and its call.
  function L.job_answer(task, got, began)
    return task .. '\31' .. (got[1] or '0') .. ':' .. began .. '\31' .. (got[2] or '{}') ..
      '\31' .. got[3]
  end

  -- A task taken by worker w as token tok (its n-th delivery). A job whose record says
  -- queued is started, its process "W.tok" recorded (the fence of every later move). Returns
  -- what the dequeue answers for it (job_answer); the task alone for a plain task, and for a
  -- stale copy of a job (no record, or one in another state: a copy of an older job of the
  -- same key), which the job runtime drops.
  function L.job_start(jb, task, n, w, tok)
    local k = L.job_key(jb, task)
    if not k then return task end
    local got = redis.call('HMGET', jb.h, k .. '\31e', k .. '\31o', k, k .. '\31s')
    if not got[3] or got[4] ~= 'queued' then return task end
    local now = L.job_now(jb)
    L.job_put(jb, k, 's', 'started', 'n', n, 'w', w .. '.' .. tok, 'b', now)
    return L.job_answer(task, got, now)
  end

  -- The dequeue's answer for a task already started by W as tok (a replayed dequeue): as
  -- job_start's, if the record still says so.
  function L.job_reply(jb, task, w, tok)
    local k = L.job_key(jb, task)
    if not k then return task end
    local got = redis.call('HMGET', jb.h, k .. '\31e', k .. '\31o', k, k .. '\31w', k .. '\31b')
    if not got[3] or got[4] ~= w .. '.' .. tok then return task end
    return L.job_answer(task, got, got[5] or '0')
  end

  -- The job's key, status and TTLs if task is a job whose record the move may change: the
  -- process it moves must be the record's (f: "W.tok", status started), or its status one of
  -- from (a set); else nil (a plain task, no record, or a stale copy: left alone).
  function L.job_fenced(jb, task, f, from)
    local k = L.job_key(jb, task)
    if not k then return nil end
    local got = redis.call('HMGET', jb.h, k .. '\31s', k .. '\31w', k .. '\31t')
    if not got[3] then return nil end
    if f and (got[1] ~= 'started' or got[2] ~= f) then return nil end
    if from and not from[got[1]] then return nil end
    return k, got[1], got[3]
  end

  L.WAITING = {queued = true, scheduled = true}
  L.SCHEDULED = {scheduled = true}
  L.DEAD = {dead = true}

  -- A job back to waiting: status queued (in the queue) or scheduled (delayed), with the error
  -- of the try that sent it back when err is not ''. Fenced as job_fenced (f or from). A
  -- requeued dead letter (from DEAD) loses its end time and leaves P:{E}:jx. Returns whether
  -- the record changed.
  function L.job_wait(jb, task, status, err, f, from)
    local k, was = L.job_fenced(jb, task, f, from)
    if not k then return false end
    if err and err ~= '' then
      L.job_put(jb, k, 's', status, 'r', err)
    else
      L.job_put(jb, k, 's', status)
    end
    if was == 'dead' then
      redis.call('HDEL', jb.h, k .. '\31x')
      redis.call('ZREM', jb.x, k)
    end
    return true
  end

  -- A job ended: finished (payload: its result; nil: none), failed, dead or cancelled
  -- (payload: the error), fenced as job_fenced (f or from). Its record expires after its
  -- result TTL (finished) or failure TTL (the others); waiters are told (K on the channel,
  -- while P:{E}:jl exists). The caller ends with jobs_close.
  function L.job_end(jb, task, status, payload, f, from)
    local k, _, ttls = L.job_fenced(jb, task, f, from)
    if not k then return end
    local now = L.job_now(jb)
    if payload then
      L.job_put(jb, k, 's', status, 'x', now, 'r', payload)
    else
      L.job_put(jb, k, 's', status, 'x', now)
      redis.call('HDEL', jb.h, k .. '\31r')
    end
    local ok, bad = string.match(ttls, '^(-?%d+):(-?%d+)$')
    local keep = tonumber(status == 'finished' and ok or bad) or -1
    if keep >= 0 then redis.call('ZADD', jb.x, now + keep, k) else redis.call('ZREM', jb.x, k) end
    jb.ended = jb.ended + 1
    if jb.ch ~= '' then
      if jb.listened == nil then jb.listened = redis.call('EXISTS', jb.l) == 1 end
      if jb.listened then redis.call('PUBLISH', jb.ch, k) end
    end
  end

  -- After the call's job ends: drop at most 2 expired records per job ended (bounded; the
  -- expired ones are already invisible to get_job).
  function L.jobs_close(jb)
    if jb.ended == 0 then return end
    local old = redis.call('ZRANGEBYSCORE', jb.x, '-inf', L.job_now(jb), 'LIMIT', 0, 2 * jb.ended)
    for i = 1, #old do L.job_drop(jb.h, old[i]) end
    if #old > 0 then redis.call('ZREM', jb.x, unpack(old)) end
  end

  -- The error recorded for a job dead-lettered without a reason (a crash loop).
  function L.job_lost(n)
    return '{"type":"","message":"dead-lettered after ' .. n ..
      ' deliveries without finishing (max_deliveries)","traceback":""}'
  end
  JOB_LIB = L
  return L
end

-- After the call's job ends: drop at most 2 expired records per job ended.
local function jobs_close(jb)
  if jb.ended > 0 then job_lib().jobs_close(jb) end
end

-- A settle argument of dequeue/finish: "<token>", or for a job "<token>:<kind>:<payload>"
-- (f: finished with the result payload; x: failed with the error payload; n: finished, no
-- result). Returns token, kind (nil: a plain task), payload.
local function settle_arg(a)
  local c = string.find(a, ':', 1, true)
  if not c then return a, nil, nil end
  return string.sub(a, 1, c - 1), string.sub(a, c + 1, c + 1), string.sub(a, c + 3)
end
