--[[ leave_queue: one bounded step of worker W leaving a queue (stop_work, fail_worker, or a
  peer's reclaim of a dead W). The caller repeats it until it answers done. Atomic per call.
  Every call first removes W from P:{E}:w, so a late dequeue or finish by W is refused from
  the first call on (and a join that slipped in between calls is undone by the next).
  What one call does, by the state of the staging key P:{E}:s:W (a sorted set of W's tokens):
  - no staging key, W's record P:{E}:p:W empty: nothing to return; done.
  - no staging key, at most CHUNK processes: all of them go back in this call, as before:
    HGETALL, sort by token, give back newest first; done.
  - no staging key, more than CHUNK: staging begins (a marker member at score -1 holds the
    HSCAN cursor, 'c<cursor>'), and goes on as below.
  - marker present (staging): one HSCAN of the record (COUNT CHUNK) from the stored cursor,
    each token found added to the staging set (score = member = token); the cursor is stored
    again, or the marker dropped once HSCAN is back at 0. Nothing is returned yet, so the
    order cannot depend on the hash's layout; the record stays intact (it is the truth: a
    process is in the record until it is back in the queue, and inspection still sees it).
  - no marker (returning): ZPOPMAX of at most CHUNK tokens, the newest; those still in the
    record (HMGET) are removed from it and given back newest first, each to the FRONT with its
    delivery count (a unique task keeps its lock), or, past max deliveries, dead-lettered.
    When the staging set is empty the record is checked: if anything is left in it (a join
    slipped in and W took more), the next call stages it again; otherwise done.
  Order: the staging set is complete before any return, and each call returns the newest
  CHUNK of what is left, so when the last call is done W's tasks sit at the front oldest first,
  as one atomic call left them. While the calls go on, a consumer may take a newer task that
  is already back before an older one comes back (at most CHUNK tasks are returned per call).
  Exactly once: a task goes back only in the call that removes its token from the record, so
  racing callers (two reapers, a reaper and W's own late stop_process) return each task once.
  The state lives in Redis, so any caller resumes a leave another started and did not finish.
  One call touches at most CHUNK processes (HSCAN may return a few more: its COUNT is a hint)
  plus O(log n) sorted-set work each; never the whole record.
  KEYS[1]  P:{E}:q     KEYS[2] P:{E}:qn     KEYS[3] P:{E}:w     KEYS[4] P:{E}:p:W
  Waking (include/wake.lua): every call also takes W out of the queue's waiting workers; the
  tasks a call returns wake waiting runners (one per task), and the call that completes the
  leave also wakes the next waiting runner if tasks are queued (W may have been woken for one
  just before it left: that task is not among those returned).
  KEYS[1]  P:{E}:q     KEYS[2] P:{E}:qn     KEYS[3] P:{E}:w     KEYS[4] P:{E}:p:W
  KEYS[5]  P:{E}:d     KEYS[6] P:{E}:dead   KEYS[7] P:{E}:u     KEYS[8] P:{E}:s:W (staging)
  KEYS[9]  P:{E}:i     the waiting workers     KEYS[10] P:{E}:dr (reasons of dead letters)
  KEYS[11] P:{E}:j     KEYS[12] P:{E}:jx   KEYS[13] P:{E}:jl  (a job given back is queued, or dead)
  KEYS[14]  P:{E}:m   throughput totals   KEYS[15] P:{E}:m:<minute>  this minute's (include/tally.lua)
  ARGV[1]  W           ARGV[2] the queue's event channel
  ARGV[3]  max deliveries (0: never dead-letter; a graceful leave passes 0)
  ARGV[4]  CHUNK, the most processes one call handles
  ARGV[5]  the wake channel prefix     ARGV[6] the queue name
  ARGV[7]  the queue's job-end channel
  Returns: {number returned to the queue by this call, 1 if W's leave is complete else 0,
            dead-lettered task, dead-lettered task, ...}. PUBLISHes work:<n> when n > 0.
]]
-- @include tally
-- @include jobs
-- @include process
-- @include wake
local chunk = tonumber(ARGV[4])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[9], ARGV[1])
local toks, tasks = {}, {}
local done = 0
if redis.call('EXISTS', KEYS[8]) == 0 then
  local n = redis.call('HLEN', KEYS[4])
  if n == 0 then
    if redis.call('LLEN', KEYS[1]) > 0 then wake_next(KEYS[9], KEYS[3], ARGV[5], ARGV[6]) end
    return {0, 1}
  end
  if n <= chunk then
    local all = redis.call('HGETALL', KEYS[4])
    local idx = {}
    for i = 1, #all, 2 do idx[#idx + 1] = i end
    table.sort(idx, function(a, b) return tonumber(all[a]) > tonumber(all[b]) end)
    for j = 1, #idx do
      toks[j] = all[idx[j]]
      tasks[j] = all[idx[j] + 1]
    end
    redis.call('DEL', KEYS[4])
    done = 1
  else
    redis.call('ZADD', KEYS[8], -1, 'c0')
  end
end
if done == 0 then
  local head = redis.call('ZRANGE', KEYS[8], 0, 0, 'WITHSCORES')
  if head[2] and tonumber(head[2]) == -1 then
    local scan = redis.call('HSCAN', KEYS[4], string.sub(head[1], 2), 'COUNT', chunk)
    local found, add = scan[2], {}
    for i = 1, #found, 2 do
      add[#add + 1] = found[i]
      add[#add + 1] = found[i]
    end
    for i = 1, #add, 1000 do
      redis.call('ZADD', KEYS[8], unpack(add, i, math.min(i + 999, #add)))
    end
    redis.call('ZREM', KEYS[8], head[1])
    if scan[1] ~= '0' then redis.call('ZADD', KEYS[8], -1, 'c' .. scan[1]) end
    return {0, 0}
  end
  local popped = redis.call('ZPOPMAX', KEYS[8], chunk)
  local want = {}
  for i = 1, #popped, 2 do want[#want + 1] = popped[i] end
  if #want > 0 then
    local got = redis.call('HMGET', KEYS[4], unpack(want))
    for i = 1, #want do
      if got[i] then
        toks[#toks + 1] = want[i]
        tasks[#tasks + 1] = got[i]
      end
    end
    if #toks > 0 then redis.call('HDEL', KEYS[4], unpack(toks)) end
  end
  if redis.call('EXISTS', KEYS[8]) == 0 and redis.call('HLEN', KEYS[4]) == 0 then done = 1 end
end
local jb = jobs_open(KEYS[11], KEYS[12], KEYS[13], ARGV[7])
local back, died = give_back_many(KEYS[1], KEYS[2], KEYS[6], KEYS[5], KEYS[7], ARGV[1], toks,
  tasks, tonumber(ARGV[3]), ARGV[2], KEYS[10], jb)
jobs_close(jb)
tally_close(KEYS[14], KEYS[15])
wake(KEYS[9], KEYS[3], ARGV[2], back, ARGV[5], ARGV[6])
if done == 1 and redis.call('LLEN', KEYS[1]) > back then
  wake_next(KEYS[9], KEYS[3], ARGV[5], ARGV[6])
end
local out = {back, done}
for i = 1, #died do out[#out + 1] = died[i] end
return out
