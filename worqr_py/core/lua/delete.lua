--[[ delete: drop a queue's queued tasks and tell the workers (first call), then release the
  uniqueness locks of the dropped unique tasks in bounded calls. The caller repeats it with
  the cursor it answered until that is "0". Atomic per call, not as a whole.
  The first call (ARGV[2] empty) counts the queue, UNLINKs it, its delivery counts, its
  delayed tasks and its periodic schedules (O(1) for Redis' main thread: the lists are freed
  in the background) and PUBLISHes delete. Each
  call then does one HSCAN of the lock hash (COUNT CHUNK) and drops the locks held by queued
  ("q"), returned ("r") or delayed ("z") copies; locks of copies in process are kept.
  Processes in flight are left to their workers; one that is returned later re-creates the
  queue. The dead-letter list is kept (purge_dead drops it).
  Between calls: a unique copy enqueued (or returned) after the first call may lose its lock
  to a later call (it stays queued; it is just not protected from a duplicate). A delete
  whose calls stop half-way leaves locks of dropped tasks, which refuse their unique
  enqueue: calling delete_queue again releases them.
  KEYS[1]  P:{E}:q     KEYS[2] P:{E}:qn     KEYS[3] P:{E}:u     KEYS[4] P:{E}:z
  KEYS[5]  P:{E}:sched KEYS[6] P:{E}:sf     (the queue's periodic schedules go too)
  KEYS[7]  P:{E}:j     KEYS[8] P:{E}:jx     (and its job records: get_job finds none)
  ARGV[1]  the queue's event channel
  ARGV[2]  "" on the first call, then the HSCAN cursor the previous call answered
  ARGV[3]  CHUNK (HSCAN COUNT)
  Returns: {tasks dropped, delayed ones included (first call; 0 after), the next cursor
  ("0": done)}.
]]
local n = 0
local cursor = ARGV[2]
if cursor == '' then
  n = redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[4])
  redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
  redis.call('PUBLISH', ARGV[1], 'delete:')
  cursor = '0'
end
local scan = redis.call('HSCAN', KEYS[3], cursor, 'COUNT', tonumber(ARGV[3]))
local drop = {}
for i = 1, #scan[2], 2 do
  local state = scan[2][i + 1]
  if state == 'q' or state == 'r' or state == 'z' then drop[#drop + 1] = scan[2][i] end
end
for i = 1, #drop, 1000 do
  redis.call('HDEL', KEYS[3], unpack(drop, i, math.min(i + 999, #drop)))
end
return {n, scan[1]}
