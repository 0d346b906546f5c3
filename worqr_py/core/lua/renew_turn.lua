--[[ renew_turn: the supervisor keeps its turn while its scan lasts. Atomic compare-and-extend:
  a turn that lapsed and was taken by a peer is not extended (the scan then stops).
  KEYS[1]  {P}:sup       the supervision turn
  ARGV[1]  W, the supervisor       ARGV[2] the turn's new TTL in ms
  Returns: 1 if W still holds the turn (now extended), else 0.
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
