/**
 * Lua run atomically inside Redis: every counter of one check in ONE script call (one round trip),
 * the same arithmetic as `algorithms.ts`. Time comes from the caller's clock (`ARGV[1]`, ms), so
 * replicas must be NTP-synchronised like any fleet sharing windows (the reference service does the
 * same for its window keys).
 *
 * ARGV after the time: per key, 5 values: algorithm (`f` fixed window, `g` GCRA), limit,
 * window ms (fixed: TTL) or interval µs (GCRA), burst µs (GCRA) and cost.
 * Reply: per key `{allowed(0|1), a, b}`: fixed ⇒ a = count after the hit; GCRA ⇒ a = TAT before,
 * b = TAT after (µs, integers: exact in doubles up to 2^53).
 */
export const HITS_SCRIPT = `
local now = tonumber(ARGV[1])
local nowUs = now * 1000
local out = {}
for i = 1, #KEYS do
  local b = 1 + (i - 1) * 5
  local algo = ARGV[b + 1]
  local limit = tonumber(ARGV[b + 2])
  local p1 = tonumber(ARGV[b + 3])
  local burst = tonumber(ARGV[b + 4])
  local cost = tonumber(ARGV[b + 5])
  if algo == 'f' then
    local after = redis.call('INCRBY', KEYS[i], cost)
    if after == cost then redis.call('PEXPIRE', KEYS[i], p1) end
    if after <= limit then out[i] = {1, after, 0} else out[i] = {0, after, 0} end
  else
    local tat = tonumber(redis.call('GET', KEYS[i]) or nowUs)
    if tat < nowUs then tat = nowUs end
    local nxt = tat + cost * p1
    if limit <= 0 or nxt - nowUs > burst then
      out[i] = {0, tat, nxt}
    else
      redis.call('SET', KEYS[i], string.format('%.0f', nxt), 'PX', math.ceil((nxt - nowUs) / 1000))
      out[i] = {1, tat, nxt}
    end
  end
end
return out
`;
