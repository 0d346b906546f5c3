--[[ register: a new worker joins. Atomic.
  KEYS[1]  {P}:workers   KEYS[2] {P}:hb:W
  ARGV[1]  W             ARGV[2] heartbeat TTL in ms (also the key's value, for its age);
           0 for a permanent worker, whose heartbeat never expires
  Returns: 1, or 0 if the id is already taken (ids are never reused).
]]
if ARGV[2] == '0' then
  if redis.call('SET', KEYS[2], '0', 'NX') == false then return 0 end
elseif redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[2]) == false then
  return 0
end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
