// ossdirect multipart: one large File → parts PUT straight to OSS on presigned URLs, resumable.
// No framework, no build step. The signature function plans the upload and signs each part's URL; the
// browser never holds credentials. Usage:
//
//   import { uploadMultipart, findResumable } from "./multipart.js";
//   const upload = uploadMultipart(signatureUrl, file, { getToken, onProgress, onState, signal });
//   pauseButton.onclick = () => upload.pause();      // parts in flight are dropped (sent again on resume)
//   resumeButton.onclick = () => upload.resume();    // re-lists the parts OSS holds, sends only the missing
//   cancelButton.onclick = () => upload.cancel();    // aborts the upload on OSS (DELETE route), forgets it
//   const result = await upload.promise;             // or `await upload` (it is thenable)
//
// result is uploader.js's outcome shape: {state: "done", record, key, uploadId, size, ms, etag, location}
// or {state: "unrecorded", sentence, detail, …} when OSS answered 203 (stored, not recorded), plus
// result.multipart = {uploadId (OSS's), partCount, partsSent, resumed}. Failures reject with uploader.js's
// UploadError (.sentence for a person; .cancelled after cancel(); .retryable for network trouble, and then
// .resumable: calling uploadMultipart again with the same file picks the upload up where it stopped).
//
// Resume after a reload or a dropped network: {uploadId, key, upload_id, part_size, …} is kept in
// localStorage (options.storage) under the file's name + size + lastModified from create until the upload
// completes, is cancelled or is refused. uploadMultipart() with a file that has such an entry (and the same
// signature URL) resumes it: it lists the parts OSS holds and sends only the missing ones. A page offers
// this with listResumable() (names and sizes, before a file is chosen again) and findResumable(file);
// discardResumable() aborts an upload the person does not want back.
//
// Integrity: the file's CRC-64/ECMA is read before the session is created and pinned by it (crc64: the
// completion compares it with OSS's value and refuses a changed file, code ChecksumMismatch); each part's
// own CRC-64 is read as the part is sent and compared with the x-oss-hash-crc64ecma OSS answers for it
// (when CORS exposes it): a part changed on the way is sent again. checksum: false sends none.
// Before that, each part's MD5 (web/md5.js) goes with the request for its URL, which then signs Content-MD5:
// OSS itself refuses a part changed on the way (400 InvalidDigest) and it is sent again. md5: false skips it
// (a part is then read once less; the CRC-64 check stays).

import { cancelledError, checksumError, fileCrc64, ossSentence, parseOssXml, requestJson as request, serviceBase,
  serviceError, UploadError } from "./common.js";
import { Crc64 } from "./crc64.js";
import { md5OfBlob } from "./md5.js";
import { t } from "./i18n.js";

const PREFIX = "ossdirect:multipart:";
const RETRY_DELAYS = [1000, 3000, 8000]; // a part that fails on the network (or 5xx) is tried 3 more times
const MAX_BATCH = 100; // the signature function's limit of part URLs per request
const STALE = new Set(["NoSuchUpload", "UploadAborted", "UploadNotYours"]); // a kept entry that cannot resume
const SENTENCES = {
  MultipartUnavailable: "Large uploads are not available on this service.",
  NoSuchUpload: "This upload no longer exists on the server. Start it again.",
  UploadAborted: "This upload was cancelled. Start it again.",
  MissingParts: "The upload was incomplete when it was finished, and was discarded. Start it again.",
  PartSizeMismatch: "A part of the upload did not match the plan, and the upload was discarded. Start it again.",
  PartTooLarge: "A part of the upload did not match the plan, and the upload was discarded. Start it again.",
  PartETagMismatch: "A part of the upload changed while it was finished, and the upload was discarded.",
  SizeMismatch: "The uploaded size did not match the file, and the upload was discarded. Start it again.",
};

// ---- resume entries --------------------------------------------------------------------------------

function defaultStorage() {
  try { return globalThis.localStorage ?? null; } catch { return null; } // disabled storage: no resume
}

/** The storage key of a file: its name, size and last-modified time (what survives a reload). */
export function resumeKey(file) {
  return PREFIX + JSON.stringify([file.name, file.size, file.lastModified ?? 0]);
}

function read(storage, key) {
  try {
    const value = JSON.parse(storage?.getItem(key) || "null");
    return value && typeof value === "object" && value.uploadId && value.key && value.upload_id ? value : null;
  } catch { return null; }
}

function write(storage, key, value) {
  try { storage?.setItem(key, JSON.stringify(value)); } catch { /* full or disabled: no resume, still uploads */ }
}

function remove(storage, key) {
  try { storage?.removeItem(key); } catch { /* nothing kept */ }
}

function endpoint(signatureUrl) {
  return serviceBase(signatureUrl).href;
}

/**
 * The kept entry for this file ({name, size, lastModified, uploadId, key, upload_id, part_size, part_count,
 * savedAt, signatureUrl}), or null. With signatureUrl, only an entry for that service.
 */
export function findResumable(file, { storage = defaultStorage(), signatureUrl } = {}) {
  const entry = read(storage, resumeKey(file));
  if (!entry || (signatureUrl && entry.signatureUrl !== endpoint(signatureUrl))) return null;
  return entry;
}

/** Every kept entry, newest first: what a page offers to resume after a reload (the file must be chosen again). */
export function listResumable({ storage = defaultStorage(), signatureUrl } = {}) {
  const entries = [];
  try {
    for (let i = 0; i < (storage?.length ?? 0); i++) {
      const key = storage.key(i);
      if (!key?.startsWith(PREFIX)) continue;
      const entry = read(storage, key);
      if (entry && (!signatureUrl || entry.signatureUrl === endpoint(signatureUrl))) entries.push(entry);
    }
  } catch { /* unreadable storage: nothing to offer */ }
  return entries.sort((a, b) => (b.savedAt || 0) - (a.savedAt || 0));
}

/** Forget the entry of a file (or of an entry from listResumable) without touching the server. */
export function forgetResumable(fileOrEntry, { storage = defaultStorage() } = {}) {
  remove(storage, resumeKey(fileOrEntry));
}

/** Abort a kept upload on OSS (DELETE route) and forget it. Resolves true when the server aborted it. */
export async function discardResumable(signatureUrl, entry, { getToken, storage = defaultStorage() } = {}) {
  forgetResumable(entry, { storage });
  try {
    const { response } = await requestJson(routeUrl(entry.signatureUrl || endpoint(signatureUrl), entry), {
      method: "DELETE", getToken });
    return response.ok;
  } catch { return false; }
}

// ---- requests to the signature function ------------------------------------------------------------

function routeUrl(base, session, suffix = "", params = {}) {
  const url = new URL(`multipart/${encodeURIComponent(session.uploadId)}${suffix}`, base);
  url.searchParams.set("key", session.key);
  url.searchParams.set("upload_id", session.upload_id);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url;
}

/** common.js's request; a network failure leaves the upload resumable. */
function requestJson(url, options) {
  return request(url, { ...options, onNetworkError: resumable });
}

function refusal(response, body) {
  const err = serviceError(response, body);
  if (SENTENCES[err.code]) err.sentence = err.message = t(SENTENCES[err.code]);
  if (err.retryable || err.signIn) resumable(err); // 5xx, 429, sign-in: the upload itself is intact
  return err;
}

/** Mark an error as one after which uploadMultipart() with the same file goes on (the entry is kept). */
function resumable(err) {
  err.resumable = true;
  return err;
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); signal?.removeEventListener("abort", done); resolve(); };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

// ---- one upload ------------------------------------------------------------------------------------

/**
 * Upload `file` in parts. Returns a MultipartUpload at once (thenable; .promise is the outcome).
 * Options: getToken, onProgress(loaded, total, info), onState(state), signal (abort = cancel()), naming,
 * folder, storage (default localStorage; null keeps nothing), resume (false: ignore a kept entry and start
 * over), concurrency (default: the server's plan), retries (default 3), now (clock, for tests).
 */
export function uploadMultipart(signatureUrl, file, options = {}) {
  return new MultipartUpload(signatureUrl, file, options);
}

export class MultipartUpload {
  constructor(signatureUrl, file, options = {}) {
    this.base = endpoint(signatureUrl);
    this.file = file;
    this.options = options;
    this.storage = "storage" in options ? options.storage : defaultStorage();
    this.storageKey = resumeKey(file);
    this.state = "starting"; // starting → uploading ⇄ paused → completing → done | unrecorded | failed | cancelled
    this.session = null; // {uploadId, key, upload_id, part_size, part_count, concurrency, url_lifetime}
    this.done = new Map(); // part number → {etag, size}: what OSS holds
    this.inflight = new Map(); // part number → bytes sent so far
    this.urls = new Map(); // part number → {url, headers, until}
    this.signing = new Map(); // part number → promise of a batch being signed
    this.sent = []; // part numbers PUT successfully by this page
    this.resumed = false;
    this.loaded = 0;
    this._paused = false;
    this._cancelled = false;
    this._wake = null;
    this._round = new AbortController();
    this._life = new AbortController(); // aborted by cancel(): every request of this upload
    this._settled = false;
    this.promise = new Promise((resolve, reject) => { this._resolve = resolve; this._reject = reject; });
    this.promise.catch(() => {}); // a caller that only uses events is not an unhandled rejection
    const signal = options.signal;
    if (signal?.aborted) queueMicrotask(() => this.cancel());
    else signal?.addEventListener("abort", () => this.cancel(), { once: true });
    this._run();
  }

  then(onFulfilled, onRejected) { return this.promise.then(onFulfilled, onRejected); }
  catch(onRejected) { return this.promise.catch(onRejected); }
  finally(onFinally) { return this.promise.finally(onFinally); }

  get uploadId() { return this.session?.upload_id ?? null; }
  get key() { return this.session?.key ?? null; }
  get partCount() { return this.session?.part_count ?? 0; }
  get partsDone() { return this.done.size; }
  get partsInFlight() { return this.inflight.size; }

  /**
   * Stop sending. The parts in flight are dropped at once (sent again on resume), or with
   * {finishParts: true} they finish first and no byte is sent twice.
   */
  pause({ finishParts = false } = {}) {
    if (this._settled || this._paused || this.state === "completing") return false;
    this._paused = true;
    this._relistDue = true; // resume asks OSS what it holds, even if it comes before the dropped parts settle
    if (!finishParts) this._round.abort();
    this._setState("paused");
    return true;
  }

  /** Go on after pause(): re-lists the parts OSS holds and sends only the missing ones. */
  resume() {
    if (this._settled || !this._paused) return false;
    this._paused = false;
    this._wake?.();
    return true;
  }

  /** Abort the upload on OSS (the DELETE route) and forget it. Resolves true when the server aborted it. */
  async cancel() {
    if (this._settled && this.state !== "failed") return false;
    this._cancelled = true;
    this._life.abort();
    this._round.abort();
    this._wake?.();
    remove(this.storage, this.storageKey);
    this._setState("cancelled");
    this._fail(cancelledError());
    return this.session ? this._abortOnServer() : false;
  }

  // -- the run ---------------------------------------------------------------------------------------

  async _run() {
    const started = performance.now();
    try {
      const kept = this.options.resume === false ? null : findResumable(this.file,
        { storage: this.storage, signatureUrl: this.base });
      if (kept && kept.size === this.file.size) {
        this.session = kept;
        this.resumed = true;
        if (!(await this._relist())) this.session = null; // gone on the server: start over
      }
      if (!this.session) await this._create();
      if (this._cancelled) return;
      const finished = this.session.completed ? null : await this._sendAll();
      if (this._cancelled || finished === false) return;
      this._setState("completing");
      const outcome = await this._complete(Math.round(performance.now() - started));
      remove(this.storage, this.storageKey);
      this._settled = true;
      this._setState(outcome.state);
      this._resolve(outcome);
    } catch (err) {
      if (this._cancelled) return;
      const e = err instanceof UploadError ? err : new UploadError(String(err?.message || err));
      if (!e.resumable) remove(this.storage, this.storageKey);
      this._setState("failed");
      this._fail(e);
    }
  }

  _fail(err) {
    if (this._settled && this.state !== "cancelled") return;
    if (this._rejected) return;
    this._settled = this._rejected = true;
    this._reject(err);
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    try { this.options.onState?.(state, this); } catch { /* the page's handler */ }
  }

  _progress() {
    let loaded = 0;
    for (const part of this.done.values()) loaded += part.size;
    for (const bytes of this.inflight.values()) loaded += bytes;
    this.loaded = Math.min(loaded, this.file.size);
    try {
      this.options.onProgress?.(this.loaded, this.file.size, { partsDone: this.done.size,
        partCount: this.partCount, state: this.state });
    } catch { /* the page's handler */ }
  }

  _sizeOf(n) {
    const { part_size: size, part_count: count } = this.session;
    return n < count ? size : this.file.size - (count - 1) * size;
  }

  async _create() {
    const { naming, folder, getToken } = this.options;
    const json = { filename: this.file.name, size: this.file.size,
      content_type: this.file.type || "application/octet-stream" };
    if (naming) json.naming = naming;
    if (folder) json.folder = folder;
    const crc64 = await fileCrc64(this.file, { ...this.options, signal: this._life.signal });
    if (crc64) json.crc64 = crc64;
    const { response, body } = await requestJson(new URL("multipart", this.base), { method: "POST", json,
      getToken, signal: this._life.signal });
    if (response.status !== 201 || !body?.uploadId) throw refusal(response, body);
    this.session = { uploadId: body.uploadId, key: body.key, upload_id: body.upload_id,
      part_size: body.part_size, part_count: body.part_count, concurrency: body.concurrency,
      url_lifetime: body.url_lifetime, size: this.file.size, name: this.file.name,
      lastModified: this.file.lastModified ?? 0, signatureUrl: this.base, savedAt: Date.now() };
    if (this._cancelled) { await this._abortOnServer(); return; }
    write(this.storage, this.storageKey, this.session);
    this._progress();
  }

  /** Ask OSS (through the function) which parts it holds. False: the kept upload cannot go on. */
  async _relist() {
    const { response, body } = await requestJson(routeUrl(this.base, this.session),
      { getToken: this.options.getToken, signal: this._life.signal });
    if (response.status === 409 && body?.code === "UploadCompleted") {
      this.session.completed = true; // finished before (e.g. the answer was lost): complete answers the record
      return true;
    }
    if (!response.ok || !Array.isArray(body)) {
      if (STALE.has(body?.code) || (response.status === 404)) {
        remove(this.storage, this.storageKey);
        this.done.clear();
        this.resumed = false;
        return false;
      }
      throw refusal(response, body);
    }
    this.done.clear();
    for (const part of body) {
      const n = Number(part.PartNumber);
      if (n >= 1 && n <= this.session.part_count && Number(part.Size) === this._sizeOf(n)) {
        this.done.set(n, { etag: String(part.ETag), size: Number(part.Size) });
      }
    }
    this._progress();
    return true;
  }

  _missing() {
    const missing = [];
    for (let n = 1; n <= this.session.part_count; n++) if (!this.done.has(n)) missing.push(n);
    return missing;
  }

  /** Send every missing part, `concurrency` at a time. Resolves true when all are held, false if cancelled. */
  async _sendAll() {
    for (;;) {
      if (this._cancelled) return false;
      if (this._paused) {
        await new Promise((resolve) => { this._wake = resolve; });
        this._wake = null;
      }
      if (this._cancelled) return false;
      if (this._relistDue) {
        this._relistDue = false;
        if (!(await this._relist())) {
          throw new UploadError(t(SENTENCES.NoSuchUpload), { code: "NoSuchUpload", status: 404 });
        }
        if (this.session.completed) return true;
        continue;
      }
      const queue = this._missing();
      if (!queue.length) return true;
      this._setState("uploading");
      this._round = new AbortController();
      this._failure = null;
      const round = this._round;
      const width = Math.max(1, Math.min(this.options.concurrency || this.session.concurrency || 4, queue.length));
      const worker = async () => {
        while (queue.length && !round.signal.aborted && !this._paused) {
          const n = queue.shift();
          try {
            await this._sendPart(n, round.signal, queue);
          } catch (err) {
            if (round.signal.aborted) return; // paused, cancelled, or another part failed first
            this._failure = err;
            round.abort();
            return;
          }
        }
      };
      await Promise.all(Array.from({ length: width }, worker));
      if (this._cancelled) return false;
      if (this._failure) throw this._failure;
      this._progress();
    }
  }

  async _sendPart(n, signal, queue) {
    const retries = this.options.retries ?? RETRY_DELAYS.length;
    let resigned = false;
    for (let attempt = 0; ; ) {
      try {
        const signed = await this._urlFor(n, queue);
        if (signal.aborted) throw cancelledError();
        const etag = await this._put(n, signed, signal);
        this.done.set(n, { etag, size: this._sizeOf(n) });
        this.sent.push(n);
        return;
      } catch (err) {
        this.inflight.delete(n);
        this._progress();
        if (signal.aborted) throw err;
        this.urls.delete(n);
        if (err.status === 403 && !resigned) { resigned = true; continue; } // expired URL: sign it again, once
        if (!err.retryable || attempt >= retries) throw err;
        await sleep(RETRY_DELAYS[Math.min(attempt, RETRY_DELAYS.length - 1)], signal);
        attempt++;
        if (signal.aborted) throw err;
      }
    }
  }

  /** A fresh URL for part n, signing it with the next parts of the queue in one request. */
  async _urlFor(n, queue) {
    const now = (this.options.now ?? Date.now)();
    const cached = this.urls.get(n);
    if (cached && cached.until > now) return cached;
    if (this.signing.has(n)) {
      await this.signing.get(n);
      const fresh = this.urls.get(n);
      if (fresh && fresh.until > (this.options.now ?? Date.now)()) return fresh;
    }
    const width = this.options.concurrency || this.session.concurrency || 4;
    const batch = [n];
    for (const m of queue) {
      if (batch.length >= Math.min(MAX_BATCH, width * 2)) break;
      const c = this.urls.get(m);
      if (!(c && c.until > now) && !this.signing.has(m)) batch.push(m);
    }
    const lifetime = (this.session.url_lifetime || 300) * 1000;
    const margin = Math.min(30000, lifetime / 4); // OSS checks the expiry when the PUT starts
    const job = (async () => {
      const params = { partNumbers: batch.join(",") };
      if (this.options.md5 !== false) { // one part at a time: at most one part's bytes held
        const digests = [];
        for (const m of batch) digests.push(await md5OfBlob(this._slice(m), { signal: this._life.signal }));
        params.md5 = digests.join(",");
      }
      const { response, body } = await requestJson(routeUrl(this.base, this.session, "/parts", params),
        { getToken: this.options.getToken, signal: this._life.signal });
      if (!response.ok || !body?.presignedUrls) throw refusal(response, body);
      const until = now + lifetime - margin;
      for (const [number, url] of Object.entries(body.presignedUrls)) {
        // headers per part ({"3": {"Content-MD5": …}}): what the service signed into that part's URL
        this.urls.set(Number(number), { url, headers: body.headers?.[number] || {}, until });
      }
    })();
    for (const m of batch) this.signing.set(m, job);
    try {
      await job;
    } finally {
      for (const m of batch) if (this.signing.get(m) === job) this.signing.delete(m);
    }
    const signed = this.urls.get(n);
    if (!signed) throw new UploadError(t("The upload service did not sign a part."), { code: "PartNotSigned" });
    return signed;
  }

  /**
   * PUT one part (XMLHttpRequest: upload progress). No Content-Type: a slice of a File has none. The part's
   * CRC-64 is read beside the PUT (the request goes out at once, as without it) and compared with the one OSS
   * answers: a mismatch is retryable (the part is sent again).
   */
  _slice(n) {
    const start = (n - 1) * this.session.part_size;
    return this.file.slice(start, start + this._sizeOf(n));
  }

  _put(n, signed, signal) {
    const size = this._sizeOf(n);
    const body = this._slice(n);
    const reading = this.options.checksum === false ? null : body.arrayBuffer()
      .then((bytes) => new Crc64().update(new Uint8Array(bytes)).toString(), () => null); // unreadable: OSS's check stays
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", signed.url);
      for (const [name, value] of Object.entries(signed.headers || {})) xhr.setRequestHeader(name, value);
      const abort = () => xhr.abort();
      signal.addEventListener("abort", abort, { once: true });
      const cleanup = () => signal.removeEventListener("abort", abort);
      this.inflight.set(n, 0);
      xhr.upload.onprogress = (e) => {
        if (!this.inflight.has(n)) return;
        this.inflight.set(n, Math.min(e.loaded, size));
        this._progress();
      };
      xhr.onload = () => {
        cleanup();
        this.inflight.delete(n);
        if (xhr.status === 200) {
          const etag = xhr.getResponseHeader("ETag");
          const stored = xhr.getResponseHeader("x-oss-hash-crc64ecma");
          if (!etag) {
            reject(new UploadError(t("The storage hides the upload receipts (ETag) from this page: its CORS rules " +
              "must expose the ETag header."), { code: "ETagNotExposed", status: 200 }));
            return;
          }
          if (!reading || !stored) { resolve(etag); return; }
          reading.then((crc) => {
            if (!crc || crc === stored) { resolve(etag); return; }
            const err = checksumError({ message: `part ${n}: OSS computed ${stored}, the page read ${crc}` });
            err.retryable = true;
            reject(resumable(err));
          });
          return;
        }
        const xml = parseOssXml(xhr.responseText);
        const status = xhr.status;
        if (xml.code === "InvalidDigest") { // OSS refused a part that changed on the way (its URL signs the MD5)
          const err = checksumError({ message: `part ${n}: ${xml.message || "InvalidDigest"}` }, status);
          err.retryable = true; // sent again, like a CRC-64 mismatch; the page's sentence if it keeps failing
          reject(resumable(err));
          return;
        }
        reject(resumable(new UploadError(ossSentence(xml.code, xml.message), { code: xml.code, status,
          detail: xml.message, retryable: status >= 500 || status === 408 || status === 429 })));
      };
      xhr.onerror = () => {
        cleanup();
        reject(resumable(new UploadError(t("The connection to the storage failed. Check your connection and retry."),
          { retryable: true })));
      };
      // not our signal: the browser dropped it (a reload or navigation), so the upload stays resumable
      xhr.onabort = () => { cleanup(); reject(signal.aborted ? cancelledError() : resumable(cancelledError())); };
      xhr.send(body);
    });
  }

  async _complete(ms) {
    const parts = [...this.done.entries()].sort((a, b) => a[0] - b[0])
      .map(([PartNumber, part]) => ({ PartNumber, ETag: part.etag }));
    const { response, body } = await requestJson(routeUrl(this.base, this.session, "/complete"),
      { method: "POST", json: { parts }, getToken: this.options.getToken, signal: this._life.signal });
    const base = { key: this.session.key, uploadId: this.session.upload_id, size: this.file.size, ms,
      etag: String(body?.etag || "").replaceAll('"', ""), location: body?.location || "",
      multipart: { uploadId: this.session.uploadId, partCount: this.session.part_count,
        partsSent: this.sent.length, resumed: this.resumed } };
    if (response.status === 200 && body?.code === "ChecksumMismatch") throw checksumError(body);
    if (response.status === 200) return { ...base, state: "done", record: body };
    if (response.status === 203) {
      return { ...base, state: "unrecorded", record: null, detail: body?.message || "",
        sentence: t("Stored, but the server did not record it.") };
    }
    throw refusal(response, body); // 400 MissingParts & co: the server aborted it (not resumable)
  }

  async _abortOnServer() {
    try {
      const { response } = await requestJson(routeUrl(this.base, this.session), { method: "DELETE",
        getToken: this.options.getToken });
      return response.ok;
    } catch { return false; }
  }
}
