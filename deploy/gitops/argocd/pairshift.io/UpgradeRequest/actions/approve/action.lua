-- Opens the approval gate: spec.options.approved = true (the operator starts).
if obj.spec.options == nil then obj.spec.options = {} end
obj.spec.options.approved = true
return obj
