"""test-services/stop: remove the job's stacks now (the post step then finds nothing left)."""

from test_services import steps

steps.stop()
