require("../../shared/launch/launch.js")(__dirname, "test_services.main");
