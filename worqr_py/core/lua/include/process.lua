-- Helpers shared by the scripts that move processes (included where "@include process" is).
-- A task's uniqueness lock lives in P:{E}:u as task -> state of its one unique copy:
-- 'q' queued (not yet delivered), 'r' returned to the head (its qn entry ends in ':u'),
-- or 'W.token' in process with that worker and token.

-- Take the head of the queue into W's processes as token tok. Returns task, deliveries.
local function take_one(q, qn, p, d, u, w, tok, has_unique)
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
  return task, n
end

-- Finish W's process tok: drop it, release its uniqueness lock if it holds it, and PUBLISH
-- done (JSON) on the done channel when it is not '' (someone listens). Returns 1, or 0 if
-- the process is not W's. With no listener and no unique task it is just two HDELs.
local function finish_one(p, d, u, w, tok, done, result, has_unique)
  local task
  if done ~= '' or has_unique then
    task = redis.call('HGET', p, tok)
    if not task then return 0 end
    redis.call('HDEL', p, tok)
  elseif redis.call('HDEL', p, tok) == 0 then
    return 0
  end
  local f = w .. '.' .. tok
  redis.call('HDEL', d, f)
  if has_unique and redis.call('HGET', u, task) == f then redis.call('HDEL', u, task) end
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

-- Give W's process (token tok, task) back: to the FRONT with its delivery count (a unique
-- copy keeps its lock), or, after max deliveries (max > 0), to the dead-letter list (its
-- lock released). The caller has already removed it from P:{E}:p:W. Returns 1 front, 2 dead.
local function give_back(q, qn, dead, d, u, w, tok, task, max, ev)
  local f = w .. '.' .. tok
  local n = redis.call('HGET', d, f)
  if n then redis.call('HDEL', d, f) else n = 1 end
  local uniq = redis.call('HGET', u, task) == f
  if max > 0 and tonumber(n) >= max then
    redis.call('RPUSH', dead, task)
    if uniq then redis.call('HDEL', u, task) end
    redis.call('PUBLISH', ev, 'dead:' .. task)
    return 2
  end
  redis.call('LPUSH', q, task)
  if uniq then
    redis.call('LPUSH', qn, n .. ':u')
    redis.call('HSET', u, task, 'r')
  else
    redis.call('LPUSH', qn, n)
  end
  return 1
end
