-- wrk script: the load a busy PBX puts on Zammad's CTI endpoint.
--
-- Every fourth request is an outbound newCall in JSON, every fourth an inbound
-- newCall as a form; the other half answer and hang up earlier outbound calls,
-- LAG calls back so the newCall has surely been answered first whatever the
-- number of connections. Call IDs are unique per run and thread.

local LAG = 256
local thread_number = 0

function setup(thread)
  thread:set("tid", thread_number)
  thread_number = thread_number + 1
end

function init(args)
  n = 0
  prefix = string.format("zcti-bench-%d-%d-%d-", os.time(), math.random(1, 1000000000), tid)
  json_headers = {["Content-Type"] = "application/json"}
  form_headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
end

local function call_id(step)
  return prefix .. step
end

local function new_call_json(step)
  return wrk.format("POST", nil, json_headers, string.format(
    '{"event":"newCall","from":"493023125741","to":"4989%08d","direction":"out","callId":"%s","user":"Christopher Miller"}',
    step, call_id(step)))
end

local function new_call_form(step)
  return wrk.format("POST", nil, form_headers, string.format(
    "event=newCall&from=4922%08d&to=493023125741&direction=in&callId=%s&user%%5B%%5D=Christopher+Miller&user%%5B%%5D=Emma+Taylor",
    step, call_id(step)))
end

local function follow_up(event, step, extra)
  return wrk.format("POST", nil, json_headers, string.format(
    '{"event":"%s","from":"498999998145","to":"4989%08d","direction":"out","callId":"%s"%s}',
    event, step, call_id(step), extra))
end

function request()
  local step = n
  n = n + 1
  local phase = step % 4
  if phase == 0 then
    return new_call_json(step)
  elseif phase == 1 then
    return new_call_form(step)
  end
  -- answer the outbound call made LAG rounds ago; hang up the one answered LAG rounds before that
  local target = step - phase - 4 * LAG * (phase - 1)
  -- wrk builds one request per thread before it connects and never sends it: on the first
  -- thread that is step 0's newCall, so step 0 is never answered or hung up.
  if target <= 0 then
    return new_call_json(step)
  elseif phase == 2 then
    return follow_up("answer", target, "")
  else
    return follow_up("hangup", target, ',"cause":"normalClearing"')
  end
end
