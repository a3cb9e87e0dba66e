// <OssDirectUpload> and useOssDirectUpload from "ossdirect/react" with React 18 (npm), in Chromium.
import { createElement as h, StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { OssDirectUpload, useOssDirectUpload } from "ossdirect/react";

const { signatureUrl } = await (await fetch("../config.json", { cache: "no-store" })).json();
window.events = [];
const log = (event, extra) => window.events.push({ event, ...extra });

function HookStatus() { // the hook on its own: its state, rendered as JSON, drives a second list
  const { items, upload, busy } = useOssDirectUpload(signatureUrl, {
    onUploaded: (result, file) => log("hook-uploaded", { name: file.name, result }),
  });
  window.hookUpload = (files) => upload(files);
  return h("pre", { id: "hook-state", "data-busy": String(busy) },
    JSON.stringify(items.map(({ name, state, loaded, size }) => ({ name, state, loaded, size }))));
}

createRoot(document.getElementById("app")).render(h(StrictMode, null,
  h(OssDirectUpload, { signatureUrl,
    onUploaded: (result, file) => log("uploaded", { name: file.name, result }),
    onError: (error, file) => log("error", { name: file.name, sentence: error.sentence, code: error.code }) }),
  h(HookStatus)));
window.ready = true;
