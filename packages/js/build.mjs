// dist/ = web/'s ES modules (copied as they are: web/ is the one source of the clients and adapters)
// + src/ (what only the package has: the entry point, the React and Vue bindings, the .d.ts types).
// No bundler: web/'s relative imports (./common.js, ../uploader.js) hold in dist/ as in web/.
import { cpSync, mkdirSync, readdirSync, rmSync } from "node:fs";

const here = new URL(".", import.meta.url);
const web = new URL("../../web/", here);
const dist = new URL("dist/", here);
const FROM_WEB = ["common.js", "crc64.js", "md5.js", "files.js", "i18n.js", "uploader.js", "multipart.js"];

rmSync(dist, { recursive: true, force: true });
mkdirSync(new URL("adapters/", dist), { recursive: true });
for (const name of FROM_WEB) cpSync(new URL(name, web), new URL(name, dist));
for (const name of readdirSync(new URL("adapters/", web)).filter((n) => n.endsWith(".js"))) {
  cpSync(new URL(`adapters/${name}`, web), new URL(`adapters/${name}`, dist));
}
cpSync(new URL("src/", here), dist, { recursive: true });
