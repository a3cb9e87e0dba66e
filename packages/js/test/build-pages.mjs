// Test-only: bundle the pages' entries (the real React and Vue from npm + this package through its
// "exports", as an app's bundler would) into test/dist/ (git-ignored). Run after build.mjs.
import { build } from "esbuild";

await build({
  absWorkingDir: new URL(".", import.meta.url).pathname,
  entryPoints: ["entries/react-page.js", "entries/vue-page.js"],
  outdir: "dist",
  bundle: true,
  format: "esm",
  target: "chrome120",
  define: { "process.env.NODE_ENV": '"production"', __VUE_OPTIONS_API__: "true", __VUE_PROD_DEVTOOLS__: "false",
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: "false" },
  logLevel: "warning",
});
