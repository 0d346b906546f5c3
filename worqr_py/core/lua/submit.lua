--[[ submit: create a job's record and queue it (at the tail, as enqueue does) or delay it (into
  the delayed set, as a delayed enqueue does), in one atomic call: the record never exists
  without the job being where its status says. Idempotent by key: if a job with this key has
  a record (live, or ended and not yet expired) nothing is written and its status is answered.
  An expired record (P:{E}:jx score past) is dropped first, so its key can be used again.
  KEYS[1]  P:{E}:q     KEYS[2] P:{E}:i     KEYS[3] P:{E}:w     KEYS[4] P:{E}:z
  KEYS[5]  P:{E}:j     job records         KEYS[6] P:{E}:jx    ended jobs' expiry
  KEYS[7]  P:{E}:m   throughput totals   KEYS[8] P:{E}:m:<minute>  this minute's (include/tally.lua)
  ARGV[1]  the queue's event channel   ARGV[2] the wake channel prefix   ARGV[3] the queue name
  ARGV[4]  K, the job's key            ARGV[5] its call (the serializer's text)
  ARGV[6]  its options (JSON)          ARGV[7] "<result ttl ms>:<failure ttl ms>" (-1: kept)
  ARGV[8]  'now', 'in' (ARGV[9] = ms from now) or 'at' (ARGV[9] = due time, ms since epoch)
  Returns: {1 if created (0: a record with this key exists), its status, the due time (server
  ms; the submit time when queued at once)}.
]]
-- @include tally
-- @include jobs
-- @include delayed
-- @include wake
local k = ARGV[4]
local now = now_ms()
local expires = redis.call('ZSCORE', KEYS[6], k)
if expires and tonumber(expires) <= now then
  job_lib().job_drop(KEYS[5], k)
  redis.call('ZREM', KEYS[6], k)
end
if redis.call('HSETNX', KEYS[5], k, ARGV[5]) == 0 then
  return {0, redis.call('HGET', KEYS[5], k .. '\31s') or 'queued', now}
end
local due = now
if ARGV[8] == 'in' then due = now + tonumber(ARGV[9]) end
if ARGV[8] == 'at' then due = tonumber(ARGV[9]) end
local status = due <= now and 'queued' or 'scheduled'
local jb = jobs_open(KEYS[5], KEYS[6], '', '')
job_lib().job_put(jb, k, 's', status, 'n', 0, 'e', now, 'o', ARGV[6], 't', ARGV[7])
local task = '\31' .. k
if due <= now then
  redis.call('RPUSH', KEYS[1], task)
  wake(KEYS[2], KEYS[3], ARGV[1], 1, ARGV[2], ARGV[3])
else
  redis.call('ZADD', KEYS[4], due, 'j:0::' .. task)
  wake_next(KEYS[2], KEYS[3], ARGV[2], ARGV[3])
end
tally('i', 1)
tally_close(KEYS[7], KEYS[8])
return {1, status, due}
