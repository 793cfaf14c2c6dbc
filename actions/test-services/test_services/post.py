"""test-services (post, always): remove the stack the main step started, whatever became of the job."""

from test_services import steps

steps.post()
