-- Helpers shared by the scripts that move processes (included where "@include process" is).
-- A task's uniqueness lock lives in P:{E}:u as task -> state of its one unique copy:
-- 'q' queued (not yet delivered), 'r' returned to the head (its qn entry ends in ':u'),
-- or 'W.token' in process with that worker and token. jb: the job context (jobs.lua): a
-- job's status changes with each move.

-- Take the head of the queue into W's processes as token tok. Returns what the dequeue
-- answers for it (the task; a job's with its call: job_start) and its deliveries.
local function take_one(q, qn, p, d, u, w, tok, has_unique, jb)
  local task = redis.call('LPOP', q)
  if not task then return nil, 0 end
  local entry = redis.call('LPOP', qn)
  local n, uniq = 1, false
  if entry then
    local count, tag = string.match(entry, '^(%d+)(:?u?)$')
    n, uniq = tonumber(count) + 1, tag == ':u'
  elseif has_unique then
    uniq = redis.call('HGET', u, task) == 'q'
  end
  local f = w .. '.' .. tok
  if n > 1 then redis.call('HSET', d, f, n) end
  if uniq then redis.call('HSET', u, task, f) end
  redis.call('HSET', p, tok, task)
  if is_job(task) then return job_lib().job_start(jb, task, n, w, tok), n end
  return task, n
end

-- Finish W's process tok: drop it, release its uniqueness lock if it holds it, and PUBLISH
-- done (JSON) on the done channel when it is not '' (someone listens). A job (kind not nil:
-- the caller says which processes are jobs) ends: finished (kind 'f': payload is its result;
-- 'n': no result) or failed (kind 'x': payload is the error); its done event carries a null
-- result (get the job for it). Returns 1, or 0 if the process is not W's. With no listener,
-- no unique task and no job it is just two HDELs.
local function finish_one(p, d, u, w, tok, done, result, has_unique, jb, kind, payload)
  local task
  if done ~= '' or has_unique or kind then
    task = redis.call('HGET', p, tok)
    if not task then return 0 end
    redis.call('HDEL', p, tok)
  elseif redis.call('HDEL', p, tok) == 0 then
    return 0
  end
  local f = w .. '.' .. tok
  redis.call('HDEL', d, f)
  if has_unique and redis.call('HGET', u, task) == f then redis.call('HDEL', u, task) end
  if kind then result = 'null' end
  tally(kind == 'x' and 'f' or 'o', 1)
  if kind == 'x' then
    job_lib().job_end(jb, task, 'failed', payload, f)
  elseif kind then
    job_lib().job_end(jb, task, 'finished', kind == 'f' and payload or nil, f)
  end
  if done ~= '' then
    redis.call('PUBLISH', done, '{"workerId":' .. cjson.encode(w) .. ',"task":' ..
      cjson.encode(task) .. ',"result":' .. result .. '}')
  end
  return 1
end

-- The done channel to publish on: ARGV's, while some done listener has said it listens.
local function done_channel(listeners, channel)
  if redis.call('EXISTS', listeners) == 1 then return channel end
  return ''
end

-- Record why a task was dead-lettered, in P:{E}:dr (task -> JSON) beside the dead-letter
-- list: reason is the JSON object the caller gave (a handler's exception), recorded with the
-- delivery count and the server time (ms); '' (none) drops an earlier copy's record, so a
-- dead letter never shows a reason that is not its own.
local function record_dead(why, task, n, reason)
  if reason == '' then
    redis.call('HDEL', why, task)
    return
  end
  local t = redis.call('TIME')
  local at = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', why, task,
    '{"deliveries":' .. n .. ',"at":' .. at .. ',"error":' .. reason .. '}')
end

-- The first half of returning W's process (token tok, task), which the caller has already
-- removed from P:{E}:p:W: drop its delivery count entry and, after max deliveries (max > 0),
-- dead-letter it (its lock released, a dead event, its reason recorded: record_dead).
-- Returns nil if it was dead-lettered, else its delivery count and whether it holds its
-- unique lock (the caller puts it back).
local function returning(dead, d, u, w, tok, task, max, ev, why, reason, jb)
  local f = w .. '.' .. tok
  local n = redis.call('HGET', d, f)
  if n then redis.call('HDEL', d, f) else n = 1 end
  local uniq = redis.call('HGET', u, task) == f
  if max > 0 and tonumber(n) >= max then
    redis.call('RPUSH', dead, task)
    if uniq then redis.call('HDEL', u, task) end
    record_dead(why, task, n, reason)
    tally('f', 1)
    if is_job(task) then
      job_lib().job_end(jb, task, 'dead', reason ~= '' and reason or job_lib().job_lost(n), f)
    end
    redis.call('PUBLISH', ev, 'dead:' .. task)
    return nil
  end
  return n, uniq
end

-- Give W's process (token tok, task) back: to the FRONT with its delivery count (a unique
-- copy keeps its lock), or, after max deliveries (max > 0), to the dead-letter list (its
-- lock released, reason recorded as by record_dead). The caller has already removed it from P:{E}:p:W. Returns 1 front, 2 dead.
local function give_back(q, qn, dead, d, u, w, tok, task, max, ev, why, reason, jb)
  local n, uniq = returning(dead, d, u, w, tok, task, max, ev, why, reason, jb)
  if not n then return 2 end
  if is_job(task) then job_lib().job_wait(jb, task, 'queued', reason, w .. '.' .. tok) end
  redis.call('LPUSH', q, task)
  if uniq then
    redis.call('LPUSH', qn, n .. ':u')
    redis.call('HSET', u, task, 'r')
  else
    redis.call('LPUSH', qn, n)
  end
  return 1
end

-- Give back many of W's processes at once, in the order given (give the newest first: each
-- goes to the FRONT, so the last given is delivered first). toks/tasks: parallel arrays; the
-- caller has already removed them from P:{E}:p:W. As give_back per process, but with one
-- HMGET/HDEL of the delivery counts, one HMGET of the locks (when any exist) and one LPUSH
-- per 1,000 tasks; a task dead-lettered here has no reason (why: its record dropped).
-- Returns the number back at the front and the dead-lettered tasks.
local function give_back_many(q, qn, dead, d, u, w, toks, tasks, max, ev, why, jb)
  local k = #toks
  if k == 0 then return 0, {} end
  local fields, counts, locks = {}, {}, {}
  for i = 1, k do fields[i] = w .. '.' .. toks[i] end
  local has_unique = redis.call('EXISTS', u) == 1
  for i = 1, k, 1000 do
    local j = math.min(i + 999, k)
    local got = redis.call('HMGET', d, unpack(fields, i, j))
    for x = 1, #got do counts[i + x - 1] = got[x] end
    if has_unique then
      got = redis.call('HMGET', u, unpack(tasks, i, j))
      for x = 1, #got do locks[i + x - 1] = got[x] end
    end
  end
  local front, entries, relock, died = {}, {}, {}, {}
  for i = 1, k do
    local n = counts[i] or 1
    local uniq = has_unique and locks[i] == fields[i]
    if max > 0 and tonumber(n) >= max then
      redis.call('RPUSH', dead, tasks[i])
      if uniq then redis.call('HDEL', u, tasks[i]) end
      record_dead(why, tasks[i], n, '')
      tally('f', 1)
      if is_job(tasks[i]) then
        job_lib().job_end(jb, tasks[i], 'dead', job_lib().job_lost(n), fields[i])
      end
      redis.call('PUBLISH', ev, 'dead:' .. tasks[i])
      died[#died + 1] = tasks[i]
    else
      front[#front + 1] = tasks[i]
      if is_job(tasks[i]) then job_lib().job_wait(jb, tasks[i], 'queued', '', fields[i]) end
      if uniq then
        entries[#entries + 1] = n .. ':u'
        relock[#relock + 1] = tasks[i]
        relock[#relock + 1] = 'r'
      else
        entries[#entries + 1] = n
      end
    end
  end
  for i = 1, k, 1000 do redis.call('HDEL', d, unpack(fields, i, math.min(i + 999, k))) end
  for i = 1, #front, 1000 do
    local j = math.min(i + 999, #front)
    redis.call('LPUSH', q, unpack(front, i, j))
    redis.call('LPUSH', qn, unpack(entries, i, j))
  end
  for i = 1, #relock, 1000 do
    redis.call('HSET', u, unpack(relock, i, math.min(i + 999, #relock)))
  end
  return #front, died
end
