// The upload page: queue, parallel limit, progress, cancel/retry, results. Uses uploader.js.
import { precheck, uploadFile, UploadError } from "./uploader.js";

const PARALLEL = 3;
const params = new URLSearchParams(location.search);
const skipPrecheck = params.get("precheck") === "off"; // testing hook: let the server refuse instead

const $ = (id) => document.getElementById(id);
const state = { signatureUrl: "", limits: null, items: [], nextId: 1 };

function announce(text) {
  $("announcer").textContent = "";
  setTimeout(() => { $("announcer").textContent = text; }, 50);
}

function fmtBytes(n) {
  if (n >= 1048576) return `${(n / 1048576).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return n === 1 ? "1 byte" : `${n} bytes`;
}

async function init() {
  try {
    const config = await (await fetch("config.json", { cache: "no-store" })).json();
    state.signatureUrl = new URL(config.signatureUrl, document.baseURI).href;
    const limitsUrl = new URL("limits", state.signatureUrl.endsWith("/") ? state.signatureUrl : state.signatureUrl + "/");
    state.limits = await (await fetch(limitsUrl, { cache: "no-store" })).json();
  } catch (err) {
    $("limits").textContent = "The upload service could not be reached. Reload the page to try again.";
    return;
  }
  const l = state.limits;
  const types = l.content_types.length ? l.content_types.join(", ") : "any type";
  $("limits").textContent = `Up to ${fmtBytes(l.max_bytes)} per file (at least ${fmtBytes(l.min_bytes)}). Accepted: ${types}.`;
  if (l.naming.includes("original") && l.naming.includes("random")) $("naming-group").hidden = false;
  document.querySelector(`input[name=naming][value=${l.default_naming}]`)?.click();
  if (l.folders) $("folder-group").hidden = false;
}

function addFiles(files) {
  for (const file of files) {
    const item = { id: state.nextId++, file, status: "queued", loaded: 0, controller: null, result: null, error: null };
    state.items.push(item);
    renderItem(item);
    const problem = skipPrecheck ? "" : precheck(file, state.limits);
    if (problem) {
      setStatus(item, "refused", problem);
      announce(`${file.name}: ${problem}`);
    }
  }
  pump();
}

function pump() {
  const running = state.items.filter((i) => i.status === "uploading").length;
  const waiting = state.items.filter((i) => i.status === "queued");
  for (const item of waiting.slice(0, Math.max(0, PARALLEL - running))) start(item);
  updateOverall();
}

async function start(item) {
  item.controller = new AbortController();
  item.loaded = 0;
  setStatus(item, "uploading", "Uploading… 0%");
  const naming = document.querySelector("input[name=naming]:checked")?.value;
  const folder = $("folder-group").hidden ? "" : $("folder").value.trim();
  try {
    const result = await uploadFile(state.signatureUrl, item.file, {
      naming, folder, signal: item.controller.signal,
      onProgress: (loaded, total) => {
        item.loaded = Math.min(loaded, item.file.size);
        const pct = Math.floor((100 * loaded) / (total || 1));
        item.el.querySelector("progress").value = pct;
        item.el.querySelector(".status").textContent = `Uploading… ${pct}%`;
        updateOverall();
      },
    });
    item.result = result;
    item.loaded = item.file.size;
    if (result.state === "unrecorded") {
      setStatus(item, "unrecorded", `${result.sentence} (${result.detail || "callback failed"})`);
    } else {
      setStatus(item, "done", result.record ? "Uploaded and recorded" : "Uploaded");
    }
    showResult(item);
    announce(`${item.file.name}: ${item.el.querySelector(".status").textContent}`);
  } catch (err) {
    const e = err instanceof UploadError ? err : new UploadError(String(err));
    item.error = e;
    if (e.cancelled) setStatus(item, "cancelled", "Cancelled");
    else setStatus(item, e.retryable ? "failed" : "refused", e.sentence);
    announce(`${item.file.name}: ${item.el.querySelector(".status").textContent}`);
  } finally {
    item.controller = null;
    pump();
  }
}

function setStatus(item, status, text) {
  item.status = status;
  item.el.dataset.state = status;
  item.el.querySelector(".status").textContent = text;
  const progress = item.el.querySelector("progress");
  if (status === "done" || status === "unrecorded") progress.value = 100;
  item.el.querySelector(".cancel").hidden = !(status === "queued" || status === "uploading");
  item.el.querySelector(".retry").hidden = !(status === "failed" || status === "cancelled" || status === "refused");
  $("cancel-all").disabled = !state.items.some((i) => i.status === "queued" || i.status === "uploading");
  updateOverall();
}

function renderItem(item) {
  const li = document.createElement("li");
  li.className = "item";
  li.dataset.id = item.id;
  li.innerHTML = `
    <div class="row"><span class="name"></span><span class="actions">
      <button type="button" class="secondary cancel">Cancel</button>
      <button type="button" class="secondary retry" hidden>Retry</button></span></div>
    <progress max="100" value="0"></progress>
    <div class="status" role="status"></div>`;
  li.querySelector(".name").textContent = `${item.file.name} (${fmtBytes(item.file.size)})`;
  const label = `${item.file.name}`;
  li.querySelector("progress").setAttribute("aria-label", `Progress of ${label}`);
  li.querySelector(".cancel").setAttribute("aria-label", `Cancel ${label}`);
  li.querySelector(".retry").setAttribute("aria-label", `Retry ${label}`);
  li.querySelector(".cancel").addEventListener("click", () => cancel(item));
  li.querySelector(".retry").addEventListener("click", () => {
    item.el.querySelector("dl")?.remove();
    setStatus(item, "queued", "Waiting…");
    pump();
  });
  item.el = li;
  $("queue").append(li);
  setStatus(item, "queued", "Waiting…");
}

function cancel(item) {
  if (item.status === "uploading") item.controller?.abort();
  else if (item.status === "queued") {
    setStatus(item, "cancelled", "Cancelled");
    announce(`${item.file.name}: Cancelled`);
  }
}

function showResult(item) {
  const r = item.result;
  const record = r.record || {};
  const dl = document.createElement("dl");
  const rows = [["Key", record.key || r.key], ["Size", fmtBytes(r.size)], ["Record", record.record_id || "—"],
    ["Time", `${(r.ms / 1000).toFixed(2)} s`]];
  for (const [k, v] of rows) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v; dd.dataset.field = k.toLowerCase();
    dl.append(dt, dd);
  }
  if (record.url) {
    const dt = document.createElement("dt"); dt.textContent = "Link";
    const dd = document.createElement("dd");
    const a = document.createElement("a");
    a.href = record.url; a.textContent = "Open file"; a.target = "_blank"; a.rel = "noopener";
    dd.append(a); dl.append(dt, dd);
  }
  item.el.append(dl);
}

function updateOverall() {
  const active = state.items.filter((i) => !["refused", "cancelled"].includes(i.status));
  const total = active.reduce((s, i) => s + i.file.size, 0);
  const loaded = active.reduce((s, i) => s + (["done", "unrecorded"].includes(i.status) ? i.file.size : i.loaded), 0);
  const pct = total ? Math.floor((100 * loaded) / total) : 0;
  $("overall").value = pct;
  $("overall-text").textContent = `${pct}%`;
}

// --- wiring ----------------------------------------------------------------------------------
const zone = $("dropzone");
$("picker").addEventListener("change", (e) => { addFiles([...e.target.files]); e.target.value = ""; });
zone.addEventListener("keydown", (e) => {
  if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("picker").click(); }
});
zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (e) => {
  e.preventDefault();
  zone.classList.remove("over");
  addFiles([...(e.dataTransfer?.files || [])]);
});
$("cancel-all").addEventListener("click", () => state.items.forEach(cancel));
init().then(() => { document.body.dataset.ready = "true"; });
