-- Asks for a rollback the way the REST API and `pairshift upgrade rollback`
-- do: spec.rollback (back to the old version, task list 3.4). The database
-- is not restored (restoreDatabase: false): that loses writes and is a
-- decision for kubectl or the CLI, not a button.
obj.spec.rollback = { reason = "rollback from Argo CD", requestedBy = "argocd" }
return obj
