"""test-services: a job's own compose stack on leased loopback ports, waited for by its health checks,
with an env file of its endpoints, always torn down, and a reaper for the stacks of dead jobs."""
