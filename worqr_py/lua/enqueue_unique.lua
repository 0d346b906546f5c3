--[[ enqueue_unique: append a task at the tail only if no equal task is queued or in process
  on this queue, and take the queue's uniqueness lock for it. Atomic: of two racing producers,
  exactly one queues the task.
  KEYS[1]  P:{E}:q     KEYS[2] P:{E}:w     KEYS[3] P:{E}:u (task -> state of its unique copy)
  KEYS[4..] P:{E}:p:W for each worker W of the queue, as the caller read P:{E}:w
  ARGV[1]  the queue's event channel     ARGV[2] the task     ARGV[3..] those workers' ids
  Returns: the new queue length if queued; 0 if an equal task is queued or in process;
           -1 if the queue's workers changed since the caller read them (read again, retry).
]]
local workers = redis.call('SMEMBERS', KEYS[2])
if #workers ~= #ARGV - 2 then return -1 end
local given = {}
for i = 3, #ARGV do given[ARGV[i]] = true end
for _, w in ipairs(workers) do
  if not given[w] then return -1 end
end
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then return 0 end
if redis.call('LPOS', KEYS[1], ARGV[2]) then return 0 end
for i = 4, #KEYS do
  for _, task in ipairs(redis.call('HVALS', KEYS[i])) do
    if task == ARGV[2] then return 0 end
  end
end
local len = redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], 'q')
redis.call('PUBLISH', ARGV[1], 'work:1')
return len
