-- Throughput counters (included where "@include tally" is, first). Per queue, two hashes the
-- caller passes: P:{E}:m (kind -> count since the queue's counters began: what /metrics
-- exports; it expires after 30 days without a count, so a deleted queue's, written again by
-- a finish still in flight, cannot stay forever) and P:{E}:m:<minute> (kind -> count in that
-- minute, the minute of the caller's clock; it expires 62 minutes after its first count: the
-- dashboard's last hour, bounded). Kinds: i in (enqueued, scheduled, submitted or fired),
-- o done (finished), f failed (a job failed, or a task dead-lettered), r retried (retry.lua).
-- A call sums its counts and writes them once at its end (tally_close): two HINCRBYs per
-- kind it counted, and an HLEN and two PEXPIREs when it made the minute's hash (about once a
-- minute). No key passed (a caller of an older version): nothing is written.
local TALLY = {i = 0, o = 0, f = 0, r = 0}
local TALLY_KINDS = {'i', 'o', 'f', 'r'}

local function tally(kind, n)
  TALLY[kind] = TALLY[kind] + n
end

local function tally_close(total, minute)
  if not total or total == '' or not minute then return end
  for _, kind in ipairs(TALLY_KINDS) do
    local n = TALLY[kind]
    if n > 0 then
      redis.call('HINCRBY', total, kind, n)
      if redis.call('HINCRBY', minute, kind, n) == n and redis.call('HLEN', minute) == 1 then
        redis.call('PEXPIRE', minute, 3720000)
        redis.call('PEXPIRE', total, 2592000000)
      end
      TALLY[kind] = 0
    end
  end
end
