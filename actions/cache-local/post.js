require("./launch.js")("cache_local.post");
