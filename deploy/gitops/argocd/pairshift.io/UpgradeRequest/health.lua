-- Argo CD health of a pairshift UpgradeRequest (docs/kubernetes.md, "GitOps").
-- Reads the conditions the operator writes (src/core/conditions.ts) and trusts
-- a verdict only when it is about the current spec (observedGeneration).
--   Healthy      COMPLETE (Ready=True)
--   Degraded     FAILED, TIMEOUT, UNREACHABLE (Degraded=True), and a halt
--                (Stalled=True): a halt needs a person, it should page
--   Suspended    waiting for approval (spec.options.approved=false, not
--                started), and CANCELLED: stopped on purpose, the pair
--                serving the old version; it will not go on by itself
--   Progressing  running (and before the operator wrote a verdict)
-- Tested by health_test.yaml on status objects from real lab runs
-- (test/unit/gitops-health.test.ts runs it with Lua 5.1, as gopher-lua).
local hs = { status = "Progressing", message = "waiting for the operator" }
if obj.status == nil or obj.status.conditions == nil then
  if obj.spec ~= nil and obj.spec.options ~= nil and obj.spec.options.approved == false then
    return { status = "Suspended", message = "waiting for approval (spec.options.approved)" }
  end
  return hs
end
local byType = {}
for _, c in ipairs(obj.status.conditions) do
  byType[c.type] = c
end
local ready = byType["Ready"]
local generation = obj.metadata.generation
if ready == nil or (generation ~= nil and (ready.observedGeneration == nil or ready.observedGeneration < generation)) then
  hs.message = "the operator has not seen the latest spec yet"
  return hs
end
local function isTrue(t)
  return byType[t] ~= nil and byType[t].status == "True"
end
if isTrue("Stalled") then
  return { status = "Degraded", message = byType["Stalled"].message }
end
if isTrue("Degraded") then
  return { status = "Degraded", message = byType["Degraded"].message }
end
if ready.status == "True" then
  return { status = "Healthy", message = ready.message }
end
local phase = obj.status.phase
if phase == "IDLE" and obj.spec.options ~= nil and obj.spec.options.approved == false then
  return { status = "Suspended", message = "waiting for approval (spec.options.approved)" }
end
if isTrue("Progressing") then
  return { status = "Progressing", message = byType["Progressing"].message }
end
if phase == "CANCELLED" then
  return { status = "Suspended", message = "cancelled: " .. (obj.status.message or "") }
end
return { status = "Unknown", message = obj.status.message or phase or "" }
