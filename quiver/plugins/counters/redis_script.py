"""The Lua script of the ``redis`` counter store: :mod:`.algorithms`, transcribed.

One call of :data:`SCRIPT` reads every window of a key, decides and writes them back,
atomically (Redis runs one script at a time), so a take is all-or-nothing across
the windows and exact across every node.  Its arithmetic is that of
:mod:`.algorithms` operation for operation, on the same IEEE doubles: given the
same states and the same ``now``, both stores reach the same verdict.

Calendar arithmetic stays in Python: the caller passes the bounds of the fixed
window holding ``now`` (and the end of the next one, for a state a node with a
clock ahead has already rolled over), so the script never needs a calendar.

A record is ``struct.pack('<dddd', first, second, third, expiry)``: the state and the
time it is worth no more than a fresh one.  A record past ``expiry`` (by the
caller's clock) counts as fresh, like an expired slot of the local table; Redis
drops the key a little later (:data:`EXPIRY_MARGIN_MS`), so a Redis clock slightly
ahead of the nodes' never loses a live count.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from quiver.plugins.counters import Window
from quiver.plugins.counters.algorithms import ROOM, SOONEST, State

EXPIRY_MARGIN_MS = 1000
TAKE = b"t"
SETTLE = b"s"
_CODES = {"sliding_window": b"s", "token_bucket": b"t", "fixed_window": b"f"}
PER_WINDOW = 7  # algorithm, limit, seconds, capacity, start, end, next end
_DOUBLE = struct.Struct("<d")
_STATE = struct.Struct("<ddd")

SCRIPT = """
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local take = ARGV[3] == 't'
local n = #KEYS
local spec = {}
local states = {}
local wait = 0.0

local function wait_for(algorithm, limit, seconds, capacity, finish, a, b, c)
  if cost > capacity then return math.huge end
  if algorithm == 't' then
    return math.max(cost - a, 0.0) * seconds / limit
  end
  if algorithm == 'f' then
    if b + cost <= capacity then return 0.0 end
    return math.max(finish - now, 0.0)
  end
  local elapsed = now - a
  local weight = 1.0 - elapsed / seconds
  local share = c
  if weight <= 0.0 then share = 0.0 end
  local room = limit * ROOM
  if b + share * weight + cost <= room then return 0.0 end
  local wait
  if b + cost <= room and share > 0.0 then
    wait = seconds * (1.0 - (room - b - cost) / share) - elapsed
  elseif b > 0.0 then
    wait = seconds - elapsed + seconds * (1.0 - (room - cost) / b)
  else
    wait = seconds - elapsed
  end
  return math.max(wait, SOONEST)
end

for i = 1, n do
  local at = 3 + (i - 1) * 7
  local algorithm = ARGV[at + 1]
  local limit = tonumber(ARGV[at + 2])
  local seconds = tonumber(ARGV[at + 3])
  local capacity = tonumber(ARGV[at + 4])
  local start = tonumber(ARGV[at + 5])
  local finish = tonumber(ARGV[at + 6])
  spec[i] = {algorithm, limit, seconds, capacity, start, finish, tonumber(ARGV[at + 7])}
  local a, b, c, expiry
  local raw = redis.call('GET', KEYS[i])
  if raw then
    a, b, c, expiry = struct.unpack('<dddd', raw)
    if expiry <= now then a = nil end
  end
  if a == nil then
    if algorithm == 't' then a, b, c = capacity, now, 0.0 else a, b, c = start, 0.0, 0.0 end
  elseif algorithm == 't' then
    if now > b then a, b, c = math.min(capacity, a + (now - b) * (limit / seconds)), now, 0.0 end
  elseif start > a then
    if algorithm == 's' and start - a < seconds * 1.5 then
      a, b, c = start, 0.0, b
    else
      a, b, c = start, 0.0, 0.0
    end
  end
  states[i] = {a, b, c}
  if take then
    wait = math.max(wait, wait_for(algorithm, limit, seconds, capacity, finish, a, b, c))
  end
end

local reply = {struct.pack('<d', wait)}
for i = 1, n do
  local algorithm, limit, seconds, capacity, start, finish, next_end = unpack(spec[i])
  local a, b, c = unpack(states[i])
  if wait == 0.0 then
    if algorithm == 't' then a = math.min(a - cost, capacity) else b = math.max(b + cost, 0.0) end
    local expiry
    if algorithm == 't' then
      expiry = b + (capacity - a) * seconds / limit
    elseif algorithm == 's' then
      expiry = a + 2 * seconds
    elseif a == start then
      expiry = finish
    elseif a == finish then
      expiry = next_end
    else
      expiry = a + (finish - start)
    end
    -- kept even when already worth nothing: a node whose clock lags still reads it
    local ttl = math.max(math.ceil((expiry - now) * 1000), 0) + EXPIRY_MARGIN_MS
    redis.call('SET', KEYS[i], struct.pack('<dddd', a, b, c, expiry), 'PX', ttl)
  end
  reply[i + 1] = struct.pack('<ddd', a, b, c)
end
return reply
""".replace("EXPIRY_MARGIN_MS", str(EXPIRY_MARGIN_MS))
SCRIPT = SCRIPT.replace("ROOM", repr(ROOM)).replace("SOONEST", repr(SOONEST))


def window_args(windows: Sequence[Window], now: float) -> list[bytes | int | float]:
    """The script's arguments for ``windows`` at ``now``, after now, cost and mode."""
    args: list[bytes | int | float] = []
    for window in windows:
        algorithm = window.algorithm
        if algorithm == "token_bucket":
            start = end = next_end = 0.0
        else:
            start, end = window.bounds(now)
            next_end = window.bounds(end)[1] if algorithm == "fixed_window" else 0.0
        args += (_CODES[algorithm], window.limit, window.seconds, window.capacity)
        args += (start, end, next_end)
    return args


def decode(reply: Sequence[bytes]) -> tuple[float, list[State]]:
    """The seconds to wait (0: taken) and the state of every window, from a reply."""
    [wait] = _DOUBLE.unpack(reply[0])
    return wait, [_STATE.unpack(item) for item in reply[1:]]
