// ESLint flat config: recommended JS + TypeScript rules (no type-aware rules: keeps `npm run lint` fast).
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
  {
    ignores: ["dist/", "build-test/", "node_modules/", "src/generated/"],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: "module",
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      eqeqeq: ["error", "always"],
    },
  },
  {
    // Tests read JSON responses loosely.
    files: ["test/**/*.ts", "test-integration/**/*.ts"],
    rules: { "@typescript-eslint/no-explicit-any": "off" },
  },
);
