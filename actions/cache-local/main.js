require("./launch.js")("cache_local.main");
