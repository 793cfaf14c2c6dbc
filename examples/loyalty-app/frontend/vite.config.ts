import { defineConfig } from "vite";

// `npm run dev` serves the page on 127.0.0.1:5173 and proxies /api to a backend on BACKEND_URL
// (default http://127.0.0.1:3000, the backend's `npm start`).
export default defineConfig({
  server: {
    host: "127.0.0.1",
    proxy: {
      "/api": process.env.BACKEND_URL ?? "http://127.0.0.1:3000",
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
  },
});
