// Test-only bundles of the real widgets (npm) → dist/ (git-ignored). The pages under test load them as
// ES modules next to web/adapters/*.js, which stay build-free. Rebuilt when an entry or the lock changes.
import { build } from "esbuild";
import { readdirSync } from "node:fs";

const entries = readdirSync(new URL("./entries/", import.meta.url)).filter((n) => n.endsWith(".js"));
await build({
  absWorkingDir: new URL(".", import.meta.url).pathname,
  entryPoints: entries.map((n) => `entries/${n}`),
  outdir: "dist",
  bundle: true,
  format: "esm",
  minify: true,
  target: "chrome120",
  define: { "process.env.NODE_ENV": '"production"', __VUE_OPTIONS_API__: "true", __VUE_PROD_DEVTOOLS__: "false",
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: "false" },
  logLevel: "warning",
});
