# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Taking many jobs out of a live Redis list in one pass, no command longer than a few milliseconds.

Redis cannot remove an element from the middle of a list without scanning up
to it: one LREM at depth 1,000,000 holds the server for 40-90 ms, and k of them
cost k scans. A sweep instead rebuilds the list from one end, a window at a
time, each window one short atomic script:

* the items the sweep has looked at and keeps wait, in order, in a *parked*
  list next to the source; the items it takes go to a *sink* list;
* producers keep pushing and consumers keep taking from the source while it
  runs. When the sweep works from the producers' end, the item at that end
  after each step is remembered (the *boundary*); whatever lies beyond it at
  the next step was pushed meanwhile and joins the far end of the parked
  list, so the queue's order is kept. Consumers only shorten the part not yet
  swept; a window they took into is trimmed to what is left;
* when the source holds nothing unswept, the parked list is renamed onto it in
  one O(1) step (a blocked BRPOP wakes), and an optional *drain* moves the sink
  to its final list in chunks.

All state lives in Redis (a hash next to the source), so nothing is lost if the
controller dies midway: a later run takes over a sweep whose lease ran out and
finishes it without taking anything more (`finish_abandoned`).

Known limit: the boundary is found by value. If a producer pushes a job byte
for byte identical to the boundary during a step, the jobs between the two are
swept as if they had been there first: none is lost or duplicated, but they
land a few places earlier.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Iterator

from ansible_collections.aiagents.runbooks.plugins.module_utils._errors import RunbookError

# How far from the producers' end the boundary is looked for: more pushes than
# this during one step (a few milliseconds) is not a queue but a firehose.
MAX_PUSHED_PER_STEP = 20000
# A controller that has not stepped for this long has died: its sweep may be taken over.
LEASE_MS = 60000
# The bytes one window may carry: each step reads, trims and pushes the window (and the next one) once.
# 64 KiB keeps a step near a millisecond on a 2-core machine, the slowest at 3 ms on 1M jobs
# (benchmarks/redis_quarantine.py); 16 KiB windows were no faster at the tail, only four times the steps.
WINDOW_BYTES = 64 * 1024
WINDOW_MIN, WINDOW_MAX = 16, 500

# Helpers shared by the scripts. Sides are 'L' and 'R'; blocks are in list order (left to right).
_LUA_HELPERS = """
local function take(key, side, n)
  if n <= 0 then return {} end
  if side == 'L' then return redis.call('LRANGE', key, 0, n - 1) end
  return redis.call('LRANGE', key, -n, -1)
end
local function trim(key, side, n)
  if n <= 0 then return end
  if side == 'L' then redis.call('LTRIM', key, n, -1) else redis.call('LTRIM', key, 0, -(n + 1)) end
end
local function place(key, side, block)
  -- the block joins the list at `side`, keeping its own left-to-right order
  local chunk = 500
  if side == 'R' then
    for i = 1, #block, chunk do redis.call('RPUSH', key, unpack(block, i, math.min(i + chunk - 1, #block))) end
  else
    local reversed = {}
    for i = #block, 1, -1 do reversed[#reversed + 1] = block[i] end
    for i = 1, #reversed, chunk do
      redis.call('LPUSH', key, unpack(reversed, i, math.min(i + chunk - 1, #reversed)))
    end
  end
end
local function other(side) if side == 'L' then return 'R' end return 'L' end
local function is_list_or_none(key)
  local kind = redis.call('TYPE', key)['ok']
  return kind == 'list' or kind == 'none', kind
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# Claim a sweep: returns 'new', 'taken-over' (an abandoned one, now ours to finish) or 'busy'.
# KEYS[1] state; ARGV: token, lease ms, then field/value pairs of the configuration.
START = _LUA_HELPERS + """
local state = KEYS[1]
if redis.call('EXISTS', state) == 1 then
  local lease = tonumber(redis.call('HGET', state, 'lease_until') or '0')
  if lease > now_ms() then return 'busy' end
  redis.call('HSET', state, 'token', ARGV[1], 'lease_until', now_ms() + tonumber(ARGV[2]), 'abandoned', '1')
  return 'taken-over'
end
if #ARGV == 2 then return 'none' end
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', state, 'token', ARGV[1], 'lease_until', now_ms() + tonumber(ARGV[2]), 'phase', 'sweep',
           'window', '0', unpack(fields))
return 'new'
"""

# One step. KEYS[1] state. ARGV: token, lease ms, next window size, max pushed per step, number of decisions n,
# then n window indexes (1-based, ascending), n payloads for the sink and the n chosen items.
# Returns {status, gone, ...}: 'window' or 'final' with the next window's items; 'drain' or 'done' (after a
# final window: with the indexes of the chosen items consumers took first); 'lost'; or an error text.
STEP = _LUA_HELPERS + """
local state = KEYS[1]
local st = {}
local flat = redis.call('HGETALL', state)
for i = 1, #flat, 2 do st[flat[i]] = flat[i + 1] end
if st['token'] ~= ARGV[1] then return {'lost', 0} end
redis.call('HSET', state, 'lease_until', now_ms() + tonumber(ARGV[2]))
local next_w, max_pushed, n = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local src, parked, sink = st['src'], st['parked'], st['sink']
for _, key in ipairs({src, parked, sink, st['drain_to'] or sink}) do
  local ok, kind = is_list_or_none(key)
  if not ok then return {'error: ' .. key .. ' holds a ' .. kind .. ', not a list', 0} end
end

local function finish(gone, missed)
  if st['drain_to'] and redis.call('LLEN', sink) > 0 then
    redis.call('HSET', state, 'phase', 'drain', 'window', '0')
    local reply = {'drain', gone}
    for i = 1, #missed do reply[#reply + 1] = missed[i] end
    return reply
  end
  redis.call('DEL', state)
  local reply = {'done', gone}
  for i = 1, #missed do reply[#reply + 1] = missed[i] end
  return reply
end

local function flip_if(block)
  if st['sink_flip'] ~= '1' then return block end
  local flipped = {}
  for i = #block, 1, -1 do flipped[#flipped + 1] = block[i] end
  return flipped
end

if st['phase'] == 'final' then
  -- The last window went back into the queue with everything parked; its chosen items are taken out
  -- near the consumers' end, where finding one costs at most the window's length.
  local consume = 'L'
  if st['push'] == 'L' then consume = 'R' end
  local rank, w = 1, tonumber(st['window'])
  if consume == 'R' then rank = -1 end
  local tomb = 'aiagents.runbooks sweep ' .. st['token']
  -- One read of the window's place matches every chosen item (copies counted), then one LREM of the markers.
  local wanted = {}
  for i = 1, n do
    local item = ARGV[5 + 2 * n + i]
    wanted[item] = (wanted[item] or 0) + 1
  end
  local near = take(src, consume, w)
  local found, hits = 0, {}
  for j = 1, #near do
    local item = near[j]
    if (wanted[item] or 0) > 0 then
      wanted[item] = wanted[item] - 1
      hits[item] = (hits[item] or 0) + 1
      local index = j - 1
      if consume == 'R' then index = -(#near - j + 1) end
      redis.call('LSET', src, index, tomb)
      found = found + 1
    end
  end
  local taken, missed = {}, {}
  for i = 1, n do
    local item = ARGV[5 + 2 * n + i]
    if (hits[item] or 0) > 0 then
      hits[item] = hits[item] - 1
      taken[#taken + 1] = ARGV[5 + n + i]
    else
      missed[#missed + 1] = ARGV[5 + i]
    end
  end
  if found > 0 then redis.call('LREM', src, rank * found, tomb) end
  place(sink, st['sink_side'], flip_if(taken))
  return finish(#missed, missed)
end

if st['phase'] == 'drain' then
  local from, side = st['sink'], st['drain_side']
  local block = take(from, side, next_w)
  if #block == 0 then redis.call('DEL', state) return {'done', 0} end
  trim(from, side, #block)
  if st['drain_flip'] == '1' then
    local flipped = {}
    for i = #block, 1, -1 do flipped[#flipped + 1] = block[i] end
    block = flipped
  end
  place(st['drain_to'], 'R', block)
  return {'drain', 0}
end

local sweep, push = st['sweep'], st['push']
local len = redis.call('LLEN', src)
local unswept = len
-- 1. What producers pushed since the last step joins the far end of the parked list.
if sweep == push and st['boundary'] then
  local rank = -1
  if push == 'L' then rank = 1 end
  local pos = redis.call('LPOS', src, st['boundary'], 'RANK', rank, 'MAXLEN', max_pushed)
  local pushed
  if not pos then
    if len > max_pushed then
      return {'error: more than ' .. max_pushed .. ' jobs were pushed during one step', 0}
    end
    pushed = len
  elseif push == 'R' then pushed = len - 1 - pos
  else pushed = pos end
  if pushed > 0 then
    place(parked, push, take(src, push, pushed))
    trim(src, push, pushed)
  end
  unswept = len - pushed
elseif sweep ~= push then
  unswept = math.min(len, tonumber(st['remaining']))
end

-- 2. The window the caller decided on: what consumers left of it, kept or sent to the sink.
local w = tonumber(st['window'])
local k = math.min(w, unswept)
local gone = w - k
if k > 0 then
  local block = take(src, sweep, k)
  trim(src, sweep, k)
  local offset = 0
  if sweep == 'R' then offset = w - k end
  local chosen, taken = {}, {}
  for i = 1, n do
    local at = tonumber(ARGV[5 + i]) - offset
    if at >= 1 and at <= k then
      chosen[at] = true
      taken[#taken + 1] = ARGV[5 + n + i]
    end
  end
  local kept = {}
  for i = 1, k do if not chosen[i] then kept[#kept + 1] = block[i] end end
  place(parked, other(sweep), kept)
  place(sink, st['sink_side'], flip_if(taken))
  if sweep ~= push then redis.call('HSET', state, 'remaining', tonumber(st['remaining']) - k) end
  unswept = unswept - k
end

-- 3. The next window, or the end of the sweep.
if unswept > 0 and sweep == push and unswept <= next_w then
  -- The last window: the queue is whole again before anyone decides, so consumers never find it
  -- empty of the old jobs and take new ones first.
  local window = take(src, sweep, unswept)
  place(parked, other(sweep), window)
  redis.call('DEL', src)
  redis.call('RENAME', parked, src)
  redis.call('HSET', state, 'phase', 'final', 'window', unswept)
  local reply = {'final', gone}
  for i = 1, #window do reply[#reply + 1] = window[i] end
  return reply
end
if unswept > 0 then
  local size = math.min(next_w, unswept)
  local window = take(src, sweep, size)
  redis.call('HSET', state, 'window', size)
  if sweep == push then
    local edge = 0
    if push == 'R' then edge = -1 end
    redis.call('HSET', state, 'boundary', redis.call('LINDEX', src, edge))
  end
  local reply = {'window', gone}
  for i = 1, #window do reply[#reply + 1] = window[i] end
  return reply
end
redis.call('HSET', state, 'window', '0')
local rest = redis.call('LLEN', src)
if rest > 0 then
  -- pushed while the sweep ran (sweeping away from the producers): after everything parked
  local moved = math.min(rest, next_w)
  if push == 'R' then
    place(parked, 'R', take(src, 'L', moved))
    trim(src, 'L', moved)
  else
    place(parked, 'L', take(src, 'R', moved))
    trim(src, 'R', moved)
  end
  if moved < rest then return {'window', gone} end
end
if redis.call('EXISTS', parked) == 1 then redis.call('RENAME', parked, src) end
return finish(gone, {})
"""


def window_size(sample: list[bytes]) -> int:
    """Items per window so that a step moves about WINDOW_BYTES (reading, trimming and pushing them)."""
    if not sample:
        return WINDOW_MAX
    average = max(1, sum(len(item) for item in sample) // len(sample))
    return max(WINDOW_MIN, min(WINDOW_MAX, WINDOW_BYTES // average))


def state_key(src: str) -> str:
    return f"{src}:sweep"


def parked_key(src: str) -> str:
    """Where a sweep keeps, in order, the jobs of `src` it has looked at and keeps (still queued jobs)."""
    return f"{src}:sweep:kept"


def taken_key(src: str) -> str:
    """Where a sweep of `src` gathers what it takes before the drain moves it on."""
    return f"{src}:sweep:taken"


def _config(src: str, sweep: str, push: str, sink: str, sink_side: str, sink_flip: bool,
            drain: tuple[str, str, bool] | None, remaining: int | None) -> list[str]:
    fields = {"src": src, "sweep": sweep, "push": push, "parked": parked_key(src), "sink": sink,
              "sink_side": sink_side, "sink_flip": "1" if sink_flip else "0"}
    if drain:
        fields.update({"drain_to": drain[0], "drain_side": drain[1], "drain_flip": "1" if drain[2] else "0"})
    if remaining is not None:
        fields["remaining"] = str(remaining)
    return [value for pair in fields.items() for value in pair]


class Sweep:
    """One sweep of `src`. `run(decide)` answers each window with `decide`'s choices and yields progress;
    afterwards `landed` holds the tags of the items that went to the sink and `missed` those consumers took
    first. A sweep a dead controller left on `src` is finished first (`recovered` says so)."""

    def __init__(self, client, src: str, *, sweep: str, push: str, sink: str, sink_side: str,
                 sink_flip: bool = False, drain: tuple[str, str, bool] | None = None,
                 operation: str = "sweep", target: str = "") -> None:
        self._attach(client, src, sweep, operation, target or repr(src))
        self.recovered = finish_abandoned(client, src, operation, self.target)
        self.token = secrets.token_hex(12)
        sample = client.lrange(src, 0, 19) if sweep == "L" else client.lrange(src, -20, -1)
        self._size = window_size(sample)
        remaining = None if sweep == push else client.llen(src)
        claimed = _text(client.register_script(START)(
            keys=[state_key(src)], args=[self.token, LEASE_MS,
                                         *_config(src, sweep, push, sink, sink_side, sink_flip, drain, remaining)]))
        if claimed != "new":
            raise RunbookError(operation, self.target, f"another run is sweeping '{src}' right now; nothing was moved - "
                                                       "try again when it has finished")

    def _attach(self, client, src: str, sweep_side: str, operation: str, target: str, token: str = "") -> None:
        self.src, self.sweep_side, self.operation, self.target, self.token = src, sweep_side, operation, target, token
        self.landed: list[Any] = []
        self.missed: list[Any] = []
        self.steps = 0
        self._step = client.register_script(STEP)
        self._size = WINDOW_MAX
        self._window: list[bytes] = []
        self._missed_last: set[int] = set()

    def step(self, decisions: list[tuple[int, bytes, Any]]) -> tuple[str, list[bytes], int]:
        """Send the choices for the pending window; returns (status, next window, how many of the pending
        window's items consumers had taken)."""
        reply = self._step(keys=[state_key(self.src)],
                           args=[self.token, LEASE_MS, self._size, MAX_PUSHED_PER_STEP, len(decisions),
                                 *(str(index) for index, _payload, _tag in decisions),
                                 *(payload for _index, payload, _tag in decisions),
                                 *(self._window[index - 1] for index, _payload, _tag in decisions)])
        self.steps += 1
        status, gone = _text(reply[0]), int(reply[1])
        if status == "lost":
            raise RunbookError(self.operation, self.target, f"another run took over the sweep of '{self.src}' and "
                                                            "finishes it; nothing is lost")
        if status.startswith("error"):
            raise RunbookError(self.operation, self.target, f"{status[7:]}; the sweep of '{self.src}' stopped where "
                                                            "it was and the next run finishes it - nothing is lost")
        if status in ("window", "final"):
            self._window = list(reply[2:])
            if self._window:
                self._size = window_size(self._window[:50])
            return status, self._window, gone
        self._missed_last = {int(index) for index in reply[2:]}
        self._window = []
        return status, [], gone

    def run(self, decide: Callable[[list[bytes]], list[tuple[int, bytes, Any]]]) -> Iterator[int]:
        seen = 0
        status, window, _gone = self.step([])
        while status != "done":
            decisions = decide(window) if window else []
            width, final = len(window), status == "final"
            seen += width
            status, window, gone = self.step(decisions)
            for index, _payload, tag in decisions:
                if final:
                    taken_first = index in self._missed_last
                else:
                    taken_first = index <= gone if self.sweep_side == "R" else index > width - gone
                (self.missed if taken_first else self.landed).append(tag)
            yield seen


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def finish_abandoned(client, src: str, operation: str, target: str) -> bool:
    """Finish a sweep a dead controller left on `src`, taking nothing more; False when there is none."""
    if not client.exists(state_key(src)):
        return False
    token = secrets.token_hex(12)
    claimed = _text(client.register_script(START)(keys=[state_key(src)], args=[token, LEASE_MS]))
    if claimed == "none":
        return False
    if claimed == "busy":
        raise RunbookError(operation, target, f"another run is sweeping '{src}' right now; nothing was moved - "
                                              "try again when it has finished")
    sweep = Sweep.__new__(Sweep)
    # Its side is in the state it left; it only matters for telling taken items apart, and nothing is taken.
    sweep._attach(client, src, "R", operation, target, token)  # pylint: disable=protected-access
    for _seen in sweep.run(lambda window: []):
        pass
    return True
