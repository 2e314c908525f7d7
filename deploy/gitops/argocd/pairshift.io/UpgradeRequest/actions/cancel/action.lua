-- Asks for a cancel the way the REST API and `pairshift upgrade cancel` do:
-- spec.cancel (the operator stops at a safe point, task list 3.5).
obj.spec.cancel = { reason = "cancelled from Argo CD", requestedBy = "argocd" }
return obj
