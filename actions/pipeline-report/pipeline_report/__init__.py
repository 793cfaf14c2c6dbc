"""pipeline-report: a run's timeline (jobs, steps and every action's inner phases), its critical path
and cache figures, as a step summary and JSON; a successful run goes into the local run history."""
