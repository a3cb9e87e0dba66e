// Bundle entry.js (Uppy from node_modules) into dist/uppy.bundle.js for tests/browser/test_uppy_multipart.py.
import { build } from "esbuild";

const outfile = process.argv[2] || new URL("./dist/uppy.bundle.js", import.meta.url).pathname;
await build({
  entryPoints: [new URL("./entry.js", import.meta.url).pathname],
  bundle: true, format: "esm", platform: "browser", target: "chrome120", outfile, logLevel: "warning",
});
console.log(outfile);
