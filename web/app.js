// The upload page: queue, parallel limit, progress, cancel/retry/remove, automatic retry of network
// errors, image thumbnails, paste, results, the record poll after "stored, not recorded", sign-in, and
// (signed in) "Your files": the person's own uploads, newest first, with download and delete.
// config.json: {"signatureUrl": "...", "auth": {"getToken": "<function on window>" | "tokenUrl": "...",
//               "signInUrl": "..."}}; "localStack": true also shows a Test user field (devstack only);
//               "developer": true starts in developer mode (keys, record ids, timings, MIME types) until
//               the person flips the Developer details switch (remembered in localStorage).
import { fetchLimits, fetchRecord, formatBytes, formatSizes, precheck, SIGN_IN_SENTENCE, uploadFile,
  UploadError } from "./uploader.js";
import { discardResumable, findResumable, listResumable } from "./multipart.js";
import { deleteFile, fileDownloadUrl, listFiles, startDownload } from "./files.js";
import { localizePage, t } from "./i18n.js";

const PARALLEL = 3;
const RETRY_DELAYS = [1, 2, 4]; // seconds before each automatic retry of a network error; then Retry is offered
const POLL_DELAYS = [1, 2, 4, 8, 16, 29]; // seconds between looks for the record of an unrecorded upload (~1 min)
// Thumbnails only for raster images the browser shows inertly (never SVG, whose markup is active content).
const THUMB_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"]);
const THUMB_MAX_BYTES = 20 * 1048576;
// Refusals that would only repeat: no automatic retry and no Retry button (remove the file instead).
const PERMANENT = new Set(["Precheck", "EntityTooLarge", "EntityTooSmall", "UnsupportedContentType",
  "InvalidContentType", "ContentTypeRequired", "FileAlreadyExists", "InvalidFilename", "InvalidFolder",
  "FoldersNotAllowed", "OriginNotAllowed"]);
const ACTIVE = ["queued", "uploading", "paused", "retrying"];
const FINISHED = ["done", "unrecorded", "recorded"];
const params = new URLSearchParams(location.search);
const skipPrecheck = params.get("precheck") === "off"; // testing hook: let the server refuse instead
// files listed at a time ("Show more files" reads the next page); ?files_page=N is a testing hook
const FILES_PAGE = Math.min(200, Math.max(1, Number(params.get("files_page")) || 20));

const NOT_DOWNLOADABLE = new Set(["quarantined", "foreign", "corrupt"]); // the service refuses their URLs
const DEVELOPER_KEY = "ossdirect.developer"; // localStorage: "1" or "0", the person's own choice

const $ = (id) => document.getElementById(id);
const state = { signatureUrl: "", limits: null, items: [], nextId: 1, auth: null, getToken: null,
  testUser: "", account: "unknown", awaitingSignIn: false, privateFiles: false };

function announce(text) {
  $("announcer").textContent = "";
  setTimeout(() => { $("announcer").textContent = text; }, 50);
}

const fmtBytes = formatBytes; // one unit convention (uploader.js): the limit line, pre-checks and refusals

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
      throw new UploadError(t("Could not reach the sign-in service. Check your connection and retry."), { retryable: true });
    }
    if (response.status === 401 || response.status === 403) return "";
    if (!response.ok) {
      throw new UploadError(t("The sign-in service answered {status}. Try again later.", { status: response.status }), { retryable: true });
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
  if (remaining.forms != null) parts.push(remaining.forms === 1 ? t("1 upload") : t("{n} uploads", { n: remaining.forms }));
  if (remaining.bytes != null) parts.push(fmtBytes(remaining.bytes));
  if (!parts.length) return "";
  let text = t("Remaining: {parts}", { parts: parts.join(t(" and ")) });
  if (remaining.resets_at) { // an ISO time, or epoch seconds
    const when = new Date(typeof remaining.resets_at === "number" ? remaining.resets_at * 1000 : remaining.resets_at);
    if (!Number.isNaN(when.getTime())) {
      text += t(" (resets {when})", { when: when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) });
    }
  }
  return text + t(".");
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
    if (state.awaitingSignIn) setTimeout(uploadAfterSignIn); // files dropped while signed out go up now
    const who = document.createElement("p");
    who.id = "signed-in-as";
    who.append(t("Signed in as "), Object.assign(document.createElement("strong"), { textContent: l.user }), t("."));
    box.append(who);
    said = t("Signed in as {user}.", { user: l.user });
    if (l.folder) {
      const folder = document.createElement("p");
      folder.id = "user-folder";
      folder.append(t("Your uploads go to "), Object.assign(document.createElement("code"), { textContent: l.folder }), t("."));
      box.append(folder);
      said += " " + t("Your uploads go to {folder}.", { folder: l.folder });
    }
    const left = remainingText(l.remaining);
    if (left) {
      box.append(Object.assign(document.createElement("p"), { id: "remaining", textContent: left }));
      said += ` ${left}`;
    }
  } else if (authRequired() || state.account === "signed-out") {
    state.account = "signed-out";
    state.awaitingSignIn = true;
    const p = document.createElement("p");
    p.id = "sign-in";
    p.className = "sign-in";
    const signInUrl = state.auth?.signInUrl;
    if (signInUrl) {
      const a = document.createElement("a");
      a.href = new URL(signInUrl, document.baseURI).href;
      a.textContent = t("Sign in to upload");
      p.append(a);
    } else {
      p.append(Object.assign(document.createElement("strong"), { textContent: t("Sign in to upload") }));
    }
    const problem = l.accountProblem;
    if (problem && !problem.signIn) p.append(` (${problem.sentence})`);
    else p.append(t("."));
    box.append(p);
    said = SIGN_IN_SENTENCE;
  } else {
    state.account = "unknown";
    box.append(Object.assign(document.createElement("p"), { textContent: t("Sign-in is not required here.") }));
  }
  if (said && !quiet) announce(said);
  syncFiles();
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

/** Signed in after being signed out: the files that waited for it upload without being dropped again. */
function uploadAfterSignIn() {
  state.awaitingSignIn = false;
  const waiting = state.items.filter((i) => i.status === "signin");
  for (const item of waiting) {
    setNote(item, "");
    setStatus(item, "queued", t("Waiting…"));
  }
  if (waiting.length) announce(waiting.length === 1 ? t("Signed in: uploading the file that waited.")
    : t("Signed in: uploading the {n} files that waited.", { n: waiting.length }));
  pump();
}

/** Back on the page (e.g. from signing in in another tab): look again whether the person is signed in. */
function recheckSignIn() {
  if (document.visibilityState === "hidden" || state.account !== "signed-out") return;
  if (!state.items.some((i) => i.status === "signin")) return;
  state.getToken?.reset?.();
  refreshAccount({ quiet: true });
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
    state.privateFiles = config.privateFiles === true; // a private bucket: no upload has a public link
    state.getToken = tokenProvider(config);
    if (config.localStack === true && state.auth?.tokenUrl) $("test-user-form").hidden = false;
    setDeveloper(storedDeveloper() ?? config.developer === true);
    await loadLimits();
  } catch (err) {
    $("limits").textContent = t("The upload service could not be reached. Reload the page to try again.");
    return;
  }
  const l = state.limits;
  renderLimits();
  if (l.naming.includes("original") && l.naming.includes("random")) $("naming-group").hidden = false;
  document.querySelector(`input[name=naming][value=${l.default_naming}]`)?.click();
  if (l.folders) $("folder-group").hidden = false;
  renderAccount({ quiet: true });
  renderResumable();
}

// --- end-user mode (the default) or developer details (keys, record ids, timings, MIME types) ------
function storedDeveloper() {
  try {
    const value = localStorage.getItem(DEVELOPER_KEY);
    return value === "1" ? true : value === "0" ? false : null;
  } catch {
    return null; // storage disabled: the page's default
  }
}

function setDeveloper(on, { remember = false } = {}) {
  document.body.classList.toggle("developer", on);
  $("developer").checked = on;
  if (remember) {
    try { localStorage.setItem(DEVELOPER_KEY, on ? "1" : "0"); } catch { /* not remembered, still applied */ }
  }
  renderLimits();
}

/** "image/*" → "images", "application/pdf" → "PDF files": what a person calls the accepted kinds. */
function friendlyType(type) {
  const [major, minor = ""] = type.toLowerCase().split("/");
  const whole = { image: t("images"), video: t("videos"), audio: t("audio"), text: t("text files") };
  if (minor === "*" && whole[major]) return whole[major];
  if (type === "text/plain") return t("text files");
  const kind = minor.replace(/^(x-|vnd\.)/, "").split(/[.+;-]/)[0].toUpperCase();
  if (!kind || kind === "*") return t("any type");
  return major === "image" ? t("{kind} images", { kind }) : t("{kind} files", { kind });
}

function renderLimits() {
  const l = state.limits;
  if (!l) return;
  if (document.body.classList.contains("developer")) {
    const types = l.content_types.length ? l.content_types.join(", ") : t("any type");
    $("limits").textContent = t("Up to {max} per file (at least {min}). Accepted: {types}.",
      { max: fmtBytes(l.max_bytes), min: fmtBytes(l.min_bytes), types });
  } else {
    $("limits").textContent = t("Up to {max} per file. Accepted: {types}.", { max: fmtBytes(l.max_bytes), types: acceptedKinds() });
  }
}

function acceptedKinds() {
  const kinds = [...new Set((state.limits?.content_types || []).map(friendlyType))];
  return kinds.length && !kinds.includes(t("any type")) ? kinds.join(t(", ")) : t("any type");
}

/** The page's own refusal: a type refusal names MIME types, so end-user mode says it in kinds instead. */
function plainProblem(file, problem) {
  const l = state.limits;
  if (document.body.classList.contains("developer") || !l) return problem;
  if (file.size > l.max_bytes || file.size < l.min_bytes) return problem; // sizes are plain already
  return t("Files of this type are not accepted here. Accepted: {types}.", { types: acceptedKinds() });
}

// --- large files: unfinished multipart uploads kept across reloads (multipart.js) -----------------
/** Offer what an earlier visit left unfinished: choosing or dropping the same file again resumes it. */
function renderResumable() {
  const entries = state.limits?.multipart_threshold ? listResumable({ signatureUrl: state.signatureUrl }) : [];
  const list = $("resumable-list");
  list.replaceChildren();
  for (const entry of entries) {
    const li = document.createElement("li");
    const text = document.createElement("span");
    text.textContent = t("{name} ({size}): choose or drop this file again to resume it.",
      { name: entry.name, size: fmtBytes(entry.size) });
    const discard = document.createElement("button");
    discard.type = "button";
    discard.className = "secondary";
    discard.textContent = t("Discard");
    discard.setAttribute("aria-label", t("Discard the unfinished upload of {name}", { name: entry.name }));
    discard.addEventListener("click", async () => {
      discard.disabled = true;
      await discardResumable(state.signatureUrl, entry, { getToken: state.getToken }).catch(() => {});
      announce(t("{name}: unfinished upload discarded.", { name: entry.name }));
      renderResumable();
      $("dropzone").focus();
    });
    li.append(text, " ", discard);
    list.append(li);
  }
  $("resumable").hidden = entries.length === 0;
}

/** Pause or resume a file that is going up in parts. */
function togglePause(item) {
  const up = item.multipart;
  if (!up) return;
  if (item.status === "paused") {
    up.resume();
    setStatus(item, "uploading", t("Resuming…"));
    announce(t("{name}: resumed.", { name: item.file.name }));
  } else if (item.status === "uploading") {
    up.pause();
    setStatus(item, "paused", t("Paused: {done} of {count} parts uploaded.", { done: up.partsDone, count: up.partCount }));
    announce(t("{name}: paused.", { name: item.file.name }));
  }
}

// --- the queue ------------------------------------------------------------------------------
/** Clipboard images usually arrive as "image.png": give each a name of its own (two pastes must not collide). */
function namePasted(file, index) {
  if (file.name && !/^image\.\w+$/i.test(file.name)) return file;
  const ext = (file.name.match(/\.\w+$/) || [`.${(file.type.split("/")[1] || "bin").replace(/\W.*/, "")}`])[0];
  const stamp = new Date().toISOString().slice(0, 19).replace("T", "-").replaceAll(":", "");
  const name = `pasted-${stamp}${index ? `-${index + 1}` : ""}${ext.toLowerCase()}`;
  return new File([file], name, { type: file.type, lastModified: file.lastModified });
}

function addFiles(files, how = "") {
  let refused = "";
  for (const file of files) {
    const item = { id: state.nextId++, file, status: "queued", loaded: 0, controller: null, result: null,
      error: null, autoRetries: 0, timer: null, poll: null, thumbUrl: null, removed: false };
    state.items.push(item);
    renderItem(item);
    const problem = skipPrecheck ? "" : precheck(file, state.limits);
    if (problem) {
      item.error = new UploadError(problem, { code: "Precheck" });
      setStatus(item, "refused", plainProblem(file, problem));
      refused = `${file.name}: ${item.el.querySelector(".status").textContent}`;
    }
  }
  if (refused) announce(refused);
  else if (how && files.length) announce(t("{files} added {how}.", { files: files.length === 1 ? t("1 file") : t("{n} files", { n: files.length }), how: t(how) }));
  pump();
}

function pump() {
  const running = state.items.filter((i) => i.status === "uploading" || i.status === "paused").length;
  const waiting = state.items.filter((i) => i.status === "queued");
  for (const item of waiting.slice(0, Math.max(0, PARALLEL - running))) start(item);
  updateOverall();
}

/** Our own sentence for a size refusal, built from the published limits (the server's counts raw bytes). */
function refusalSentence(e, file) {
  const l = state.limits;
  if (l && e.code === "EntityTooLarge" && file.size > l.max_bytes) {
    const [size, limit] = formatSizes(file.size, l.max_bytes);
    return `${e.sentence} ${t("It is {size}; the limit is {limit}.", { size, limit })}`;
  }
  if (l && e.code === "EntityTooSmall" && file.size < l.min_bytes) {
    const [size, minimum] = formatSizes(file.size, l.min_bytes);
    return `${e.sentence} ${t("It is {size}; the minimum is {minimum}.", { size, minimum })}`;
  }
  return e.sentence;
}

/** A network error: the service or the storage could not be reached at all (no HTTP answer). */
function isNetworkError(e) {
  return e.retryable && !e.status && !e.cancelled && !e.signIn;
}

async function start(item) {
  item.controller = new AbortController();
  item.loaded = 0;
  setStatus(item, "uploading", t("Uploading… {pct}%", { pct: 0 }));
  const naming = document.querySelector("input[name=naming]:checked")?.value;
  const folder = $("folder-group").hidden ? "" : $("folder").value.trim();
  try {
    if (state.limits?.multipart_threshold && findResumable(item.file, { signatureUrl: state.signatureUrl })) {
      setStatus(item, "uploading", t("Resuming the unfinished upload…"));
    }
    const result = await uploadFile(state.signatureUrl, item.file, {
      naming, folder, signal: item.controller.signal, getToken: state.getToken, limits: state.limits,
      onMultipart: (upload) => { item.multipart = upload; setStatus(item, item.status, item.el.querySelector(".status").textContent); },
      onProgress: (loaded, total) => {
        if (item.removed) return;
        // Pausing drops the parts in flight (sent again on resume), so the count of bytes sent falls back to
        // the finished parts: the bars hold where they were instead of jumping back (to 0 before a part is done).
        if (item.multipart || item.status === "paused") loaded = Math.max(loaded, item.loaded);
        item.loaded = Math.min(loaded, item.file.size);
        const pct = Math.floor((100 * item.loaded) / (total || 1));
        item.el.querySelector("progress").value = pct;
        if (item.status === "uploading") item.el.querySelector(".status").textContent = t("Uploading… {pct}%", { pct });
        updateOverall();
      },
    });
    if (item.removed) return;
    item.result = result;
    item.loaded = item.file.size;
    item.autoRetries = 0;
    if (result.state === "unrecorded") {
      setStatus(item, "unrecorded", `${result.sentence} (${result.detail || t("callback failed")})`);
    } else {
      setStatus(item, "done", result.record ? t("Uploaded and recorded") : t("Uploaded"));
    }
    showResult(item);
    announce(`${item.file.name}: ${item.el.querySelector(".status").textContent}`);
    if (result.state === "unrecorded") pollRecord(item);
    if (state.getToken || authRequired()) scheduleAccountRefresh();
  } catch (err) {
    if (item.removed) return;
    const e = err instanceof UploadError ? err : new UploadError(String(err));
    item.error = e;
    if (e.cancelled) setStatus(item, "cancelled", t("Cancelled"));
    else if (e.signIn) {
      setStatus(item, "signin", e.sentence);
      setNote(item, t("It uploads once you sign in."));
    }
    else if (isNetworkError(e) && item.autoRetries < RETRY_DELAYS.length) {
      scheduleRetry(item, e);
      return;
    } else if (isNetworkError(e)) {
      setStatus(item, "failed", `${e.sentence} ${t("(Tried {n} times.)", { n: item.autoRetries + 1 })}`);
    } else setStatus(item, e.retryable ? "failed" : "refused", refusalSentence(e, item.file));
    announce(`${item.file.name}: ${item.el.querySelector(".status").textContent}`);
    if (e.signIn) signedOut();
    else if (e.status === 429) scheduleAccountRefresh();
  } finally {
    item.controller = null;
    item.multipart = null;
    if (!item.removed) {
      pump();
      renderResumable(); // a finished or cancelled multipart upload is no longer unfinished
      setStatus(item, item.status, item.el.querySelector(".status").textContent);
    }
  }
}

/** After a network error: wait 1, 2, 4 s (a visible countdown), then queue the file again. */
function scheduleRetry(item, e) {
  const n = ++item.autoRetries;
  let left = RETRY_DELAYS[n - 1];
  const first = e.sentence.split(/(?<=\.) |(?<=。)/)[0];
  setStatus(item, "retrying", `${first} ${t("Retrying automatically (retry {n} of {count}).", { n, count: RETRY_DELAYS.length })}`);
  announce(`${item.file.name}: ${item.el.querySelector(".status").textContent}`);
  const tick = () => {
    if (left <= 0) {
      item.timer = null;
      setNote(item, "");
      setStatus(item, "queued", t("Waiting…"));
      pump();
      return;
    }
    setNote(item, t("Next try in {n} s.", { n: left }));
    left -= 1;
    item.timer = setTimeout(tick, 1000);
  };
  tick();
}

function stopTimers(item) {
  clearTimeout(item.timer);
  item.timer = null;
  if (item.poll) {
    clearTimeout(item.poll.timer);
    item.poll.controller.abort();
    item.poll = null;
  }
}

// --- "stored, but not recorded": look for the record the event path writes ----------------------
function pollRecord(item) {
  const uploadId = item.result?.uploadId;
  if (!uploadId) return;
  const poll = item.poll = { step: 0, timer: null, controller: new AbortController() };
  setNote(item, t("Checking whether it gets recorded…"));
  const stop = (text) => {
    item.poll = null;
    setNote(item, text);
  };
  const look = async () => {
    let record = null;
    try {
      record = await fetchRecord(state.signatureUrl, uploadId, { getToken: state.getToken,
        signal: poll.controller.signal });
    } catch (err) {
      if (err?.cancelled || item.poll !== poll) return;
      const status = err?.status || 0;
      if (status === 501) return stop(t("This service cannot look records up; the file is stored."));
      if (err?.signIn || (status >= 400 && status < 500 && status !== 429)) {
        return stop(t("The record cannot be checked from this page; the file is stored."));
      }
      // network errors, 5xx, 429: keep looking
    }
    if (item.poll !== poll || item.removed) return;
    if (record) return recorded(item, record);
    if (poll.step >= POLL_DELAYS.length) {
      return stop(t("Still not recorded after a minute. The file is stored; the site can record it later."));
    }
    poll.timer = setTimeout(look, POLL_DELAYS[poll.step++] * 1000);
  };
  poll.timer = setTimeout(look, POLL_DELAYS[poll.step++] * 1000);
}

function recorded(item, record) {
  item.poll = null;
  item.result = { ...item.result, state: "recorded", record: { ...(item.result.record || {}), ...record } };
  setNote(item, "");
  const by = record.source === "event" ? t(" (by the storage event)") : "";
  setStatus(item, "recorded", t("Stored and recorded{by}.", { by }));
  item.el.querySelector("dl")?.remove();
  showResult(item);
  announce(t("{name}: recorded now{by}, record {id}.", { name: item.file.name, by, id: record.record_id || t("saved") }));
}

function setNote(item, text) {
  const note = item.el.querySelector(".note");
  note.textContent = text;
  note.hidden = !text;
}

function setStatus(item, status, text) {
  item.status = status;
  item.el.dataset.state = status;
  item.el.querySelector(".status").textContent = text;
  const progress = item.el.querySelector("progress");
  if (FINISHED.includes(status)) progress.value = 100;
  else if (status === "retrying") progress.value = 0;
  item.el.querySelector(".cancel").hidden = !ACTIVE.includes(status);
  const pause = item.el.querySelector(".pause");
  pause.hidden = !(item.multipart && ["uploading", "paused"].includes(status));
  pause.textContent = status === "paused" ? t("Resume") : t("Pause");
  pause.setAttribute("aria-label", `${pause.textContent} ${item.file.name}`);
  const retry = item.el.querySelector(".retry");
  const permanent = status === "refused" && PERMANENT.has(item.error?.code);
  retry.hidden = !(["failed", "cancelled", "refused", "signin", "retrying"].includes(status) && !permanent);
  retry.textContent = status === "retrying" ? t("Retry now") : t("Retry");
  retry.setAttribute("aria-label", `${retry.textContent} ${item.file.name}`);
  // one of the two, never both: Cancel while the file is on its way, Remove once it is done or stopped
  const remove = item.el.querySelector(".remove");
  const finished = FINISHED.includes(status);
  remove.hidden = ACTIVE.includes(status);
  remove.textContent = finished ? t("Remove from list") : t("Remove");
  remove.setAttribute("aria-label", finished ? t("Remove from list: {name} (the stored file is kept)", { name: item.file.name })
    : t("Remove {name}", { name: item.file.name }));
  $("cancel-all").disabled = !state.items.some((i) => ACTIVE.includes(i.status));
  updateOverall();
}

/** A preview from the local file, before upload: raster images only; the object URL is revoked once shown. */
function addThumbnail(item, li) {
  const type = (item.file.type || "").toLowerCase();
  if (!THUMB_TYPES.has(type) || item.file.size > THUMB_MAX_BYTES) return;
  const img = document.createElement("img");
  img.className = "thumb";
  img.alt = t("Preview of {name}", { name: item.file.name });
  img.decoding = "async";
  item.thumbUrl = URL.createObjectURL(item.file);
  const done = (ok) => {
    revokeThumbnail(item);
    if (!ok) img.remove(); // not a picture after all: the name says enough
  };
  img.addEventListener("load", () => done(true), { once: true });
  img.addEventListener("error", () => done(false), { once: true });
  img.src = item.thumbUrl;
  li.querySelector(".file").prepend(img);
}

function revokeThumbnail(item) {
  if (item.thumbUrl) URL.revokeObjectURL(item.thumbUrl);
  item.thumbUrl = null;
}

function renderItem(item) {
  const li = document.createElement("li");
  li.className = "item";
  li.dataset.id = item.id;
  li.innerHTML = `
    <div class="row"><span class="file"><span class="name"></span></span><span class="actions">
      <button type="button" class="secondary pause" hidden></button>
      <button type="button" class="secondary cancel"></button>
      <button type="button" class="secondary retry" hidden></button>
      <button type="button" class="secondary remove"></button></span></div>
    <progress max="100" value="0"></progress>
    <div class="status" role="status"></div>
    <p class="note" hidden></p>`;
  li.querySelector(".name").textContent = `${item.file.name} (${fmtBytes(item.file.size)})`;
  const label = `${item.file.name}`;
  li.querySelector("progress").setAttribute("aria-label", t("Progress of {name}", { name: label }));
  li.querySelector(".cancel").textContent = t("Cancel");
  li.querySelector(".cancel").setAttribute("aria-label", t("Cancel {name}", { name: label }));
  li.querySelector(".cancel").addEventListener("click", () => cancel(item));
  li.querySelector(".pause").addEventListener("click", () => togglePause(item));
  li.querySelector(".retry").addEventListener("click", () => {
    stopTimers(item);
    setNote(item, "");
    item.el.querySelector("dl")?.remove();
    if (item.status !== "retrying") item.autoRetries = 0; // a person's Retry earns fresh automatic ones
    setStatus(item, "queued", t("Waiting…"));
    pump();
  });
  li.querySelector(".remove").addEventListener("click", () => remove(item));
  item.el = li;
  addThumbnail(item, li);
  $("queue").append(li);
  setStatus(item, "queued", t("Waiting…"));
}

function cancel(item) {
  if (item.status === "uploading" || item.status === "paused") item.controller?.abort(); // parts: aborted on OSS
  else if (item.status === "queued" || item.status === "retrying") {
    stopTimers(item);
    setNote(item, "");
    setStatus(item, "cancelled", t("Cancelled"));
    announce(`${item.file.name}: ${t("Cancelled")}`);
  }
}

/** Remove an item: an upload in flight (or waiting) is cancelled; a finished file stays stored. */
function remove(item) {
  const index = state.items.indexOf(item);
  if (index < 0) return;
  const wasActive = ACTIVE.includes(item.status);
  const finished = FINISHED.includes(item.status);
  item.removed = true;
  stopTimers(item);
  item.controller?.abort();
  revokeThumbnail(item);
  state.items.splice(index, 1);
  const next = state.items[index] || state.items[index - 1];
  item.el.remove();
  (next ? next.el.querySelector(".actions button:not([hidden])") || next.el : $("dropzone")).focus();
  const name = item.file.name;
  announce(t(wasActive ? "{name} removed; its upload was cancelled."
    : finished ? "{name} removed from the list; the stored file is kept." : "{name} removed from the list.", { name }));
  $("cancel-all").disabled = !state.items.some((i) => ACTIVE.includes(i.status));
  pump();
}

function showResult(item) {
  const r = item.result;
  const record = r.record || {};
  const dl = document.createElement("dl");
  const rows = [["Key", record.key || r.key], ["Size", fmtBytes(r.size)], ["Record", record.record_id || "—"],
    ["Time", `${(r.ms / 1000).toFixed(2)} s`]];
  if (record.user) rows.splice(3, 0, ["User", record.user]);
  if (r.state === "recorded" && record.source) rows.splice(3, 0, ["Recorded by", record.source]);
  for (const [k, v] of rows) {
    const dt = document.createElement("dt"); dt.textContent = t(k);
    const dd = document.createElement("dd"); dd.textContent = v;
    dd.dataset.field = k.toLowerCase().replaceAll(" ", "-");
    if (k !== "Size") dt.className = dd.className = "dev"; // jargon for most people: behind the switch
    dl.append(dt, dd);
  }
  const link = resultLink(item, record, r.uploadId || record.upload_id);
  if (link) {
    const dt = document.createElement("dt"); dt.textContent = t("Link");
    const dd = document.createElement("dd");
    dd.dataset.field = "link";
    dd.append(link); dl.append(dt, dd);
  }
  item.el.append(dl);
}

/** The finished upload's way back to the file. Signed in: an "Open file" button through GET /files/<id>/url
 * (a short-lived signed URL: works in a private bucket). Signed out: the public link, unless the bucket is
 * private (config.json "privateFiles"), where a plain link would only answer 403: a sentence instead. */
function resultLink(item, record, uploadId) {
  const name = item.file.name;
  if (ownFiles.user && uploadId) {
    const button = Object.assign(document.createElement("button"), { type: "button", className: "open-file",
      textContent: t("Open file") });
    button.setAttribute("aria-label", t("Open file {name}", { name })); // "Download {name}" is the list's
    const note = Object.assign(document.createElement("span"), { className: "link-note", hidden: true });
    button.addEventListener("click", async () => {
      note.hidden = true;
      try {
        const answer = await fileDownloadUrl(state.signatureUrl, uploadId, { getToken: state.getToken });
        startDownload(answer.url, answer.filename || name);
        announce(t("{name}: download started.", { name }));
      } catch (err) {
        note.textContent = err?.sentence || String(err);
        note.hidden = false;
        announce(`${name}: ${note.textContent}`);
      }
    });
    const span = document.createElement("span");
    span.append(button, " ", note);
    return span;
  }
  if (state.privateFiles) {
    return Object.assign(document.createElement("span"), { textContent: t("Stored privately: there is no public link.") });
  }
  if (!record.url) return null;
  const a = document.createElement("a");
  a.href = record.url; a.textContent = t("Open file"); a.target = "_blank"; a.rel = "noopener";
  return a;
}

let accountTimer = null;
function scheduleAccountRefresh() { // after uploads finish: the remaining allowance changed
  clearTimeout(accountTimer);
  if (ownFiles.user) filesBusy(true); // the list is about to reload
  accountTimer = setTimeout(async () => {
    if (state.items.some((i) => i.status === "uploading")) return filesBusy(false);
    await refreshAccount({ quiet: true });
    if (ownFiles.user) loadFiles(); // the new upload is on the list
    else filesBusy(false);
  }, 300);
}

/** aria-busy on the list while it is (about to be) reloaded: assistive technology (and tests) wait. */
function filesBusy(busy) { $("files-list").setAttribute("aria-busy", busy ? "true" : "false"); }

function updateOverall() {
  const active = state.items.filter((i) => !["refused", "cancelled", "signin"].includes(i.status));
  const total = active.reduce((s, i) => s + i.file.size, 0);
  const loaded = active.reduce((s, i) => s + (FINISHED.includes(i.status) ? i.file.size : i.loaded), 0);
  const pct = total ? Math.floor((100 * loaded) / total) : 0;
  $("overall").value = pct;
  $("overall-text").textContent = `${pct}%`;
}

// --- "Your files" (signed in): list, download, delete (files.js) -------------------------------
const ownFiles = { user: null, next: null, controller: null };

/** Show the list for the signed-in person (loaded when the person changes); hide it when signed out. */
function syncFiles() {
  const user = state.account === "signed-in" ? state.limits?.user || null : null;
  $("files").hidden = !user;
  if (user === ownFiles.user) return;
  ownFiles.user = user;
  ownFiles.next = null;
  ownFiles.controller?.abort();
  $("files-list").replaceChildren();
  $("files-status").textContent = "";
  $("files-more").hidden = true;
  if (user) loadFiles();
}

async function loadFiles({ more = false } = {}) {
  ownFiles.controller?.abort();
  const controller = ownFiles.controller = new AbortController();
  const list = $("files-list");
  const before = more ? list.children.length : 0;
  filesBusy(true);
  $("files-status").textContent = t("Loading your files…");
  try {
    const page = await listFiles(state.signatureUrl, { getToken: state.getToken, signal: controller.signal,
      pageToken: more ? ownFiles.next : null, limit: FILES_PAGE });
    if (controller !== ownFiles.controller) return;
    if (!more) list.replaceChildren();
    for (const file of page.files || []) list.append(renderFile(file));
    ownFiles.next = page.next_page_token || null;
    $("files-more").hidden = !ownFiles.next;
    filesCount();
    if (more) (list.children[before]?.querySelector("button") || $("files-refresh")).focus();
  } catch (err) {
    if (err?.cancelled || controller !== ownFiles.controller) return;
    $("files-status").textContent = err?.sentence || String(err);
    if (err?.signIn) signedOut();
  } finally {
    if (controller === ownFiles.controller) {
      ownFiles.controller = null;
      filesBusy(false);
    }
  }
}

function filesCount() {
  const n = $("files-list").children.length;
  $("files-status").textContent = !n ? t("You have no files yet.")
    : n === 1 ? t("Showing 1 file.") : t("Showing {n} files.", { n });
}

function fileName(file) {
  return file.filename || String(file.key || "").split("/").pop() || file.upload_id;
}

/** What a held file's line says (the service keeps it from being downloaded). */
function heldText(status) {
  if (status === "corrupt") return t("It arrived changed on the way: it cannot be downloaded.");
  if (status === "quarantined") return t("Held back by a content check: it cannot be downloaded.");
  if (status === "suspect") return t("Flagged by a content check.");
  if (NOT_DOWNLOADABLE.has(status)) return t("It cannot be downloaded.");
  return "";
}

function renderFile(file) {
  const name = fileName(file);
  const li = document.createElement("li");
  li.dataset.uploadId = file.upload_id;
  li.dataset.status = file.status || "";
  li.innerHTML = `
    <div class="row"><span class="name"></span><span class="actions">
      <button type="button" class="secondary download"></button>
      <button type="button" class="secondary delete"></button></span></div>
    <p class="meta"></p>
    <p class="note" role="status" hidden></p>`;
  li.querySelector(".name").textContent = name;
  const when = new Date(file.created_at);
  const meta = [fmtBytes(Number(file.size) || 0)];
  if (!Number.isNaN(when.getTime())) meta.push(when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }));
  li.querySelector(".meta").textContent = meta.join(" · ");
  const held = heldText(file.status);
  if (held) li.querySelector(".meta").append(" · ", Object.assign(document.createElement("span"),
    { className: "held", textContent: held }));
  const download = li.querySelector(".download");
  download.textContent = t("Download");
  download.setAttribute("aria-label", t("Download {name}", { name }));
  download.hidden = NOT_DOWNLOADABLE.has(file.status);
  download.addEventListener("click", () => downloadFile(file, li, name));
  const del = li.querySelector(".delete");
  del.textContent = t("Delete");
  del.setAttribute("aria-label", t("Delete {name}", { name }));
  del.addEventListener("click", () => askDelete(file, li, name));
  return li;
}

function fileNote(li, text) {
  const note = li.querySelector(".note");
  note.textContent = text;
  note.hidden = !text;
}

async function downloadFile(file, li, name) {
  if (li.dataset.busy) return;
  li.dataset.busy = "1";
  fileNote(li, "");
  try {
    const answer = await fileDownloadUrl(state.signatureUrl, file.upload_id, { getToken: state.getToken });
    startDownload(answer.url, answer.filename || name);
    announce(t("{name}: download started.", { name }));
  } catch (err) {
    fileNote(li, err?.sentence || String(err));
    announce(`${name}: ${err?.sentence || String(err)}`);
  } finally {
    delete li.dataset.busy;
  }
}

/** Delete asks first, in place: "Keep" has the focus (Escape keeps it too); "Yes, delete" deletes. */
function askDelete(file, li, name) {
  if (li.querySelector(".confirm")) { li.querySelector(".confirm .keep").focus(); return; }
  const box = document.createElement("div");
  box.className = "confirm";
  box.setAttribute("role", "group");
  const question = Object.assign(document.createElement("span"), { id: `confirm-${file.upload_id}`,
    textContent: t("Delete {name}? This cannot be undone.", { name }) });
  box.setAttribute("aria-labelledby", question.id);
  const yes = Object.assign(document.createElement("button"), { type: "button", className: "danger yes",
    textContent: t("Yes, delete") });
  yes.setAttribute("aria-label", t("Yes, delete {name}", { name }));
  const keep = Object.assign(document.createElement("button"), { type: "button", className: "secondary keep",
    textContent: t("Keep") });
  keep.setAttribute("aria-label", t("Keep {name}", { name }));
  box.append(question, " ", yes, " ", keep);
  li.append(box);
  const close = () => { box.remove(); li.querySelector(".delete").focus(); };
  keep.addEventListener("click", close);
  box.addEventListener("keydown", (e) => { if (e.key === "Escape") { e.preventDefault(); close(); } });
  yes.addEventListener("click", async () => {
    if (li.dataset.busy) return;
    li.dataset.busy = "1";
    fileNote(li, t("Deleting…"));
    try {
      await deleteFile(state.signatureUrl, file.upload_id, { getToken: state.getToken });
    } catch (err) {
      delete li.dataset.busy;
      box.remove();
      fileNote(li, err?.sentence || String(err));
      li.querySelector(".delete").focus();
      announce(`${name}: ${err?.sentence || String(err)}`);
      return;
    }
    const next = li.nextElementSibling || li.previousElementSibling;
    li.remove();
    filesCount();
    (next?.querySelector("button:not([hidden])") || $("files-refresh")).focus();
    announce(t("{name} deleted.", { name }));
  });
  keep.focus();
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
window.addEventListener("focus", recheckSignIn);
document.addEventListener("visibilitychange", recheckSignIn);
$("developer").addEventListener("change", (e) => setDeveloper(e.target.checked, { remember: true }));
$("cancel-all").addEventListener("click", () => [...state.items].forEach(cancel));
$("files-refresh").addEventListener("click", () => loadFiles());
$("files-more").addEventListener("click", () => loadFiles({ more: true }));
// Paste: files (or a screenshot) on the clipboard, pasted anywhere on the page but into a text field.
document.addEventListener("paste", (e) => {
  const files = [...(e.clipboardData?.files || [])];
  if (!files.length) return;
  const field = e.target?.closest?.("input, textarea, [contenteditable]");
  if (field && e.clipboardData.types.includes("text/plain")) return; // pasting text into the field
  e.preventDefault();
  addFiles(files.map(namePasted), "from the clipboard");
});
if (/Mac|iPhone|iPad/.test(navigator.platform || "")) {
  for (const el of document.querySelectorAll(".paste-keys")) el.textContent = "\u2318V";
}
$("test-user-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  state.testUser = $("test-user").value.trim();
  state.getToken?.reset?.();
  state.account = "unknown";
  await refreshAccount();
});
localizePage(document);
init().then(() => { document.body.dataset.ready = "true"; });
