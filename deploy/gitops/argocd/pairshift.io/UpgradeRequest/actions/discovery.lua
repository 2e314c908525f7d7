-- Which actions Argo CD offers on an UpgradeRequest, and when. The operator
-- (the state machine) has the last word: an action it cannot honour shows
-- as a Refused Event; disabling here only spares the click.
local actions = {}
local phase = nil
if obj.status ~= nil then phase = obj.status.phase end
local terminal = phase == "COMPLETE" or phase == "CANCELLED" or phase == "FAILED"
  or phase == "TIMEOUT" or phase == "UNREACHABLE"
local spec = obj.spec or {}
local waiting = spec.options ~= nil and spec.options.approved == false
-- approve: only while the approval gate holds it
actions["approve"] = { ["disabled"] = not waiting or terminal }
-- cancel: while it has not ended and nobody asked yet
actions["cancel"] = { ["disabled"] = terminal or spec.cancel ~= nil or phase == "ROLLBACK" }
-- rollback: only once a verified backup exists (the machine's guard)
local backedUp = obj.status ~= nil and obj.status.backups ~= nil and #obj.status.backups > 0
actions["rollback"] = {
  ["disabled"] = terminal or spec.rollback ~= nil or phase == "ROLLBACK" or not backedUp,
}
return actions
