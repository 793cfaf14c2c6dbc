require("../../shared/launch/launch.js")(__dirname, "build_images");
