require("../../shared/launch/launch.js")(__dirname, "cache_local.main");
