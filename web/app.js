// The upload page: queue, parallel limit, progress, cancel/retry, results, sign-in. Uses uploader.js.
// config.json: {"signatureUrl": "...", "auth": {"getToken": "<function on window>" | "tokenUrl": "...",
//               "signInUrl": "..."}}; "localStack": true also shows a Test user field (devstack only).
import { fetchLimits, precheck, SIGN_IN_SENTENCE, uploadFile, UploadError } from "./uploader.js";

const PARALLEL = 3;
const params = new URLSearchParams(location.search);
const skipPrecheck = params.get("precheck") === "off"; // testing hook: let the server refuse instead

const $ = (id) => document.getElementById(id);
const state = { signatureUrl: "", limits: null, items: [], nextId: 1, auth: null, getToken: null,
  testUser: "", account: "unknown" };

function announce(text) {
  $("announcer").textContent = "";
  setTimeout(() => { $("announcer").textContent = text; }, 50);
}

function fmtBytes(n) {
  if (n >= 1048576) return `${(n / 1048576).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return n === 1 ? "1 byte" : `${n} bytes`;
}

// --- sign-in: where tokens come from ----------------------------------------------------------
/** The exp claim of a JWT (seconds), without verifying it (only to know when to fetch a new one). */
function tokenExpiry(token) {
  try {
    const part = token.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    const exp = JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4))).exp;
    return typeof exp === "number" ? exp : 0;
  } catch {
    return 0;
  }
}

/** auth.getToken: a function the host site defines on window (a dotted path such as "myAuth.getToken" works). */
function windowTokenProvider(name) {
  return async (options) => {
    const path = String(name).split(".");
    let owner = window;
    for (const part of path.slice(0, -1)) owner = owner?.[part];
    const fn = owner?.[path.at(-1)];
    if (typeof fn !== "function") {
      throw new UploadError(SIGN_IN_SENTENCE, { signIn: true, code: "TokenProviderMissing",
        detail: `window.${name} is not a function` });
    }
    return fn.call(owner, options);
  };
}

/** auth.tokenUrl: GET it (with the site's cookies) for {"token": ...}; 401/403 there means "not signed in". */
function urlTokenProvider(tokenUrl, testUser) {
  let cached = null;
  let inflight = null;
  const fetchToken = async () => {
    const url = new URL(tokenUrl, document.baseURI);
    if (testUser) {
      const user = testUser();
      if (!user) return "";
      url.searchParams.set("user", user);
    }
    let response;
    try {
      response = await fetch(url, { credentials: "include", cache: "no-store" });
    } catch {
      throw new UploadError("Could not reach the sign-in service. Check your connection and retry.", { retryable: true });
    }
    if (response.status === 401 || response.status === 403) return "";
    if (!response.ok) {
      throw new UploadError(`The sign-in service answered ${response.status}. Try again later.`, { retryable: true });
    }
    let body = null;
    try { body = await response.json(); } catch { /* not JSON */ }
    return typeof body?.token === "string" ? body.token : "";
  };
  const provider = async ({ refresh = false } = {}) => {
    if (!refresh && cached && cached.exp * 1000 - 30000 > Date.now()) return cached.token;
    if (!refresh && inflight) return inflight; // parallel uploads share one token request
    const request = inflight = fetchToken();
    try {
      const token = await request;
      cached = token ? { token, exp: tokenExpiry(token) } : null;
      return token;
    } finally {
      if (inflight === request) inflight = null;
    }
  };
  provider.reset = () => { cached = null; inflight = null; };
  return provider;
}

function tokenProvider(config) {
  const auth = config.auth;
  if (!auth) return null;
  if (auth.getToken) return windowTokenProvider(auth.getToken);
  if (auth.tokenUrl) {
    const testUsers = config.localStack === true;
    return urlTokenProvider(auth.tokenUrl, testUsers ? () => state.testUser : null);
  }
  return null;
}

// --- the account area: signed in as, folder, remaining allowance; or "Sign in to upload" ------------
function authRequired() {
  return state.limits?.auth === "jwt";
}

function remainingText(remaining) {
  if (!remaining) return "";
  const parts = [];
  if (remaining.forms != null) parts.push(remaining.forms === 1 ? "1 upload" : `${remaining.forms} uploads`);
  if (remaining.bytes != null) parts.push(fmtBytes(remaining.bytes));
  if (!parts.length) return "";
  let text = `Remaining: ${parts.join(" and ")}`;
  if (remaining.resets_at) { // an ISO time, or epoch seconds
    const when = new Date(typeof remaining.resets_at === "number" ? remaining.resets_at * 1000 : remaining.resets_at);
    if (!Number.isNaN(when.getTime())) {
      text += ` (resets ${when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })})`;
    }
  }
  return `${text}.`;
}

function renderAccount({ quiet = false } = {}) {
  const l = state.limits || {};
  const box = $("account-status");
  const show = Boolean(state.auth) || authRequired() || Boolean(l.user);
  $("account").hidden = !show;
  if (!show) return;
  box.replaceChildren();
  let said;
  if (l.user && state.account !== "signed-out") {
    state.account = "signed-in";
    const who = document.createElement("p");
    who.id = "signed-in-as";
    who.append("Signed in as ", Object.assign(document.createElement("strong"), { textContent: l.user }), ".");
    box.append(who);
    said = `Signed in as ${l.user}.`;
    if (l.folder) {
      const folder = document.createElement("p");
      folder.id = "user-folder";
      folder.append("Your uploads go to ", Object.assign(document.createElement("code"), { textContent: l.folder }), ".");
      box.append(folder);
      said += ` Your uploads go to ${l.folder}.`;
    }
    const left = remainingText(l.remaining);
    if (left) {
      box.append(Object.assign(document.createElement("p"), { id: "remaining", textContent: left }));
      said += ` ${left}`;
    }
  } else if (authRequired() || state.account === "signed-out") {
    state.account = "signed-out";
    const p = document.createElement("p");
    p.id = "sign-in";
    p.className = "sign-in";
    const signInUrl = state.auth?.signInUrl;
    if (signInUrl) {
      const a = document.createElement("a");
      a.href = new URL(signInUrl, document.baseURI).href;
      a.textContent = "Sign in to upload";
      p.append(a);
    } else {
      p.append(Object.assign(document.createElement("strong"), { textContent: "Sign in to upload" }));
    }
    const problem = l.accountProblem;
    if (problem && !problem.signIn) p.append(` (${problem.sentence})`);
    else p.append(".");
    box.append(p);
    said = SIGN_IN_SENTENCE;
  } else {
    state.account = "unknown";
    box.append(Object.assign(document.createElement("p"), { textContent: "Sign-in is not required here." }));
  }
  if (said && !quiet) announce(said);
}

async function loadLimits() {
  state.limits = await fetchLimits(state.signatureUrl, { getToken: state.getToken });
}

async function refreshAccount({ quiet = false } = {}) {
  try {
    await loadLimits();
  } catch {
    return; // keep what is shown; the next upload says what is wrong
  }
  if (state.account === "signed-out" && state.limits.user) state.account = "unknown";
  renderAccount({ quiet });
}

function signedOut() {
  if (state.account === "signed-out") return;
  state.account = "signed-out";
  renderAccount({ quiet: true }); // the item's own status says it already
}

async function init() {
  let config;
  try {
    config = await (await fetch("config.json", { cache: "no-store" })).json();
    state.signatureUrl = new URL(config.signatureUrl, document.baseURI).href;
    state.auth = config.auth || null;
    state.getToken = tokenProvider(config);
    if (config.localStack === true && state.auth?.tokenUrl) $("test-user-form").hidden = false;
    await loadLimits();
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
  renderAccount({ quiet: true });
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
      naming, folder, signal: item.controller.signal, getToken: state.getToken,
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
    if (state.getToken || authRequired()) scheduleAccountRefresh();
  } catch (err) {
    const e = err instanceof UploadError ? err : new UploadError(String(err));
    item.error = e;
    if (e.cancelled) setStatus(item, "cancelled", "Cancelled");
    else if (e.signIn) setStatus(item, "signin", e.sentence);
    else setStatus(item, e.retryable ? "failed" : "refused", e.sentence);
    announce(`${item.file.name}: ${item.el.querySelector(".status").textContent}`);
    if (e.signIn) signedOut();
    else if (e.status === 429) scheduleAccountRefresh();
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
  item.el.querySelector(".retry").hidden = !["failed", "cancelled", "refused", "signin"].includes(status);
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
  if (record.user) rows.splice(3, 0, ["User", record.user]);
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

let accountTimer = null;
function scheduleAccountRefresh() { // after uploads finish: the remaining allowance changed
  clearTimeout(accountTimer);
  accountTimer = setTimeout(() => {
    if (!state.items.some((i) => i.status === "uploading")) refreshAccount({ quiet: true });
  }, 300);
}

function updateOverall() {
  const active = state.items.filter((i) => !["refused", "cancelled", "signin"].includes(i.status));
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
$("test-user-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  state.testUser = $("test-user").value.trim();
  state.getToken?.reset?.();
  state.account = "unknown";
  await refreshAccount();
});
init().then(() => { document.body.dataset.ready = "true"; });
