--[[ cancel_delayed: one bounded step of removing the delayed copies of a task (ZSCAN of the
  delayed set, COUNT CHUNK, matching members that end in ":<task>"; each match is checked
  exactly). The caller repeats it with the cursor it answered until that is "0". Atomic per
  call. A unique copy's lock ("z") is released with it. Copies delayed after the scan passed
  their place may stay (ZSCAN's guarantee: every member present for the whole scan is seen).
  A job removed is cancelled in the call that removes it (include/jobs.lua).
  KEYS[1]  P:{E}:z     KEYS[2] P:{E}:u
  KEYS[3]  P:{E}:j     KEYS[4] P:{E}:jx     KEYS[5] P:{E}:jl
  ARGV[1]  the task    ARGV[2] the cursor ("0" on the first call)
  ARGV[3]  CHUNK       ARGV[4] the MATCH pattern: "*:" .. the task, glob-escaped
  ARGV[5]  the queue's job-end channel
  Returns: {copies removed by this call, the next cursor ("0": done)}.
]]
-- @include jobs
-- @include delayed
local scan = redis.call('ZSCAN', KEYS[1], ARGV[2], 'MATCH', ARGV[4], 'COUNT', tonumber(ARGV[3]))
local removed = 0
for i = 1, #scan[2], 2 do
  local member = scan[2][i]
  local _, uniq, task = parse_delayed(member)
  if task == ARGV[1] and redis.call('ZREM', KEYS[1], member) == 1 then
    removed = removed + 1
    if uniq and redis.call('HGET', KEYS[2], task) == 'z' then redis.call('HDEL', KEYS[2], task) end
  end
end
if removed > 0 then
  local jb = jobs_open(KEYS[3], KEYS[4], KEYS[5], ARGV[5])
  local L = job_lib()
  L.job_end(jb, ARGV[1], 'cancelled', nil, nil, L.WAITING)
  jobs_close(jb)
end
return {removed, scan[1]}
