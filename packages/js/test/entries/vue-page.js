// <OssDirectUpload> from "ossdirect/vue" with Vue 3 (npm), in Chromium.
import { createApp, h } from "vue";
import { OssDirectUpload } from "ossdirect/vue";

const { signatureUrl } = await (await fetch("../config.json", { cache: "no-store" })).json();
window.events = [];
const log = (event, extra) => window.events.push({ event, ...extra });
createApp({
  render: () => h(OssDirectUpload, { signatureUrl, label: undefined,
    onUploaded: (result, file) => log("uploaded", { name: file.name, result }),
    onError: (error, file) => log("error", { name: file.name, sentence: error.sentence, code: error.code }) }),
}).mount("#app");
window.ready = true;
