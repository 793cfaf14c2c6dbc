"""test-services (main): start the job's stack; the post step always removes it."""

from test_services import steps

steps.main()
