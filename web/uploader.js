// ossdirect uploader: one File → signed form from the signature function → POST straight to OSS.
// No framework, no build step. Usage:
//   const result = await uploadFile(signatureUrl, file, { onProgress, signal, naming, folder, getToken });
//   The file's CRC-64/ECMA is read first (crc64.js) and pinned by the form (crc64 parameter): OSS's own
//   value is compared with it, and a file changed on the way is refused (code ChecksumMismatch), never
//   recorded as a good upload. checksum: false sends none; crc64: "<decimal>" gives one already known.
//   result.state is "done" (stored and recorded, or stored with no callback configured)
//   or "unrecorded" (stored, but the server did not record it: OSS answered 203 CallbackFailed).
// Failures reject with an UploadError whose .sentence is written for a person.
//
// Sign-in: getToken({refresh}) (sync or async) is called for every request to the signature function
// and its answer sent as "Authorization: Bearer <token>" (null/"" sends none). When the service answers
// 401 TokenExpired it is called once more with {refresh: true} and the request retried once; any other
// 401 rejects with .signIn set (sentence "Sign in to upload.").

import { cancelledError, checksumError, fileCrc64, ossSentence, parseOssXml, requestJson, serviceBase,
  serviceError, SIGN_IN_SENTENCE, UploadError } from "./common.js";
import { t } from "./i18n.js";

export { fileCrc64, ossSentence, parseOssXml, serviceError, SIGN_IN_SENTENCE, UploadError };

/** GET a signed form for this file from the signature function (its CRC-64 read first: see fileCrc64). */
export async function fetchForm(signatureUrl, file, { naming, folder, signal, getToken, crc64, checksum } = {}) {
  const url = new URL(signatureUrl, document.baseURI);
  url.searchParams.set("filename", file.name);
  url.searchParams.set("size", String(file.size));
  url.searchParams.set("content_type", file.type || "application/octet-stream");
  if (naming) url.searchParams.set("naming", naming);
  if (folder) url.searchParams.set("folder", folder);
  const crc = await fileCrc64(file, { crc64, checksum, signal });
  if (crc) url.searchParams.set("crc64", crc);
  const { response, body } = await requestJson(url, { getToken, signal });
  if (!response.ok) throw serviceError(response, body);
  return body;
}

/**
 * GET <signatureUrl>/limits: the public limits, plus (with a valid token) "user", "folder" and
 * "remaining". A token the service refuses does not hide the public limits: they are fetched again
 * without it and returned with accountProblem set to that refusal (an UploadError; .signIn for a 401).
 */
export async function fetchLimits(signatureUrl, { getToken, signal } = {}) {
  const url = new URL("limits", serviceBase(signatureUrl));
  let answer = null;
  let accountProblem = null;
  if (getToken) {
    try {
      answer = await requestJson(url, { getToken, signal });
      if (!answer.response.ok) {
        accountProblem = serviceError(answer.response, answer.body);
        answer = null;
      }
    } catch (err) {
      if (err?.cancelled) throw err;
      accountProblem = err instanceof UploadError ? err : new UploadError(String(err));
    }
  }
  if (!answer) answer = await requestJson(url, { signal });
  if (!answer.response.ok || !answer.body) throw serviceError(answer.response, answer.body);
  return { ...answer.body, accountProblem };
}

/** POST the file with the form's fields (in order, file last). Resolves with the raw outcome. */
export function postForm(form, file, { onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const data = new FormData();
    for (const [name, value] of form.field_list) data.append(name, value);
    data.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.host.endsWith("/") ? form.host : form.host + "/");
    const abort = () => xhr.abort();
    signal?.addEventListener("abort", abort, { once: true });
    if (onProgress) {
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
    }
    xhr.onload = () => {
      signal?.removeEventListener("abort", abort);
      resolve({ status: xhr.status, text: xhr.responseText, etag: xhr.getResponseHeader("ETag") || "" });
    };
    xhr.onerror = () => {
      signal?.removeEventListener("abort", abort);
      reject(new UploadError(t("The connection to the storage failed. Check your connection and retry."),
        { retryable: true }));
    };
    xhr.onabort = () => reject(cancelledError());
    xhr.send(data);
  });
}

/** What OSS's answer to the POST means: a result, or a thrown UploadError. */
export function readOutcome(form, file, outcome, ms = 0) {
  const base = { key: form.key, uploadId: form.upload_id, size: file.size, ms,
    etag: (outcome.etag || "").replaceAll('"', "") };
  if (outcome.status === 200) {
    let record = null;
    try { record = outcome.text ? JSON.parse(outcome.text) : null; } catch { /* not JSON */ }
    if (record?.code === "ChecksumMismatch") throw checksumError(record);
    return { ...base, state: "done", record };
  }
  if (outcome.status === 201) { // XML PostResponse names the stored key and its ETag
    const xml = parseOssXml(outcome.text);
    return { ...base, key: xml.key || base.key, etag: (xml.etag || base.etag).replaceAll('"', ""),
      state: "done", record: null };
  }
  if (outcome.status === 204) return { ...base, state: "done", record: null };
  const error = parseOssXml(outcome.text);
  if (outcome.status === 203) {
    return { ...base, state: "unrecorded", record: null, detail: error.message,
      sentence: t("Stored, but the server did not record it.") };
  }
  throw new UploadError(ossSentence(error.code, error.message), {
    code: error.code, status: outcome.status, detail: error.message, retryable: outcome.status >= 500,
    expired: outcome.status === 403 && /Policy expired/i.test(error.message) });
}

/**
 * Upload one file end to end; an expired form is replaced by a fresh one, once. A file larger than the
 * server's multipart_threshold (options.limits from fetchLimits, else GET /limits once per service) goes
 * in parts through multipart.js instead: same outcome shape; options.onMultipart(upload) receives its
 * controller (pause/resume/cancel); a kept unfinished upload of the same file is resumed; signal aborts it
 * on OSS. options.multipart === false always sends one form.
 */
export async function uploadFile(signatureUrl, file, options = {}) {
  const threshold = options.multipart === false ? null : await multipartThreshold(signatureUrl, file, options);
  if (threshold != null && file.size > threshold) {
    const { uploadMultipart } = await import("./multipart.js");
    const upload = uploadMultipart(signatureUrl, file, options);
    options.onMultipart?.(upload);
    return upload.promise;
  }
  const started = performance.now();
  const crc64 = await fileCrc64(file, options); // read once: a second form (expired) pins the same value
  for (let attempt = 0; ; attempt++) {
    const form = await fetchForm(signatureUrl, file, { ...options, crc64 });
    const outcome = await postForm(form, file, options);
    try {
      return readOutcome(form, file, outcome, Math.round(performance.now() - started));
    } catch (err) {
      if (!(err.expired && attempt === 0)) throw err;
    }
  }
}

const publicLimits = new Map(); // signature URL → promise of its public limits (multipart_threshold)

/** The multipart threshold in bytes, or null (multipart unavailable, or no file large enough to need it). */
async function multipartThreshold(signatureUrl, file, { limits } = {}) {
  if (limits !== undefined) return limits?.multipart_threshold ?? null;
  if (file.size <= 8 * 1048576) return null; // a file up to one 8 MiB part gains nothing from parts
  const key = String(signatureUrl);
  if (!publicLimits.has(key)) {
    publicLimits.set(key, fetchLimits(signatureUrl).catch(() => { publicLimits.delete(key); return null; }));
  }
  return (await publicLimits.get(key))?.multipart_threshold ?? null;
}

/** Client-side pre-check against the limits the server publishes; returns a sentence or "". */
export function precheck(file, limits) {
  if (!limits) return "";
  if (file.size > limits.max_bytes) {
    const [size, limit] = formatSizes(file.size, limits.max_bytes);
    return t("Too large: {size}; the limit is {limit}.", { size, limit });
  }
  if (file.size < limits.min_bytes) {
    const [size, minimum] = formatSizes(file.size, limits.min_bytes);
    return t("Too small: {size}; the minimum is {minimum}.", { size, minimum });
  }
  const types = limits.content_types || [];
  const type = (file.type || "application/octet-stream").toLowerCase();
  const ok = !types.length || types.some((t) => (t.endsWith("/*") ? type.startsWith(t.slice(0, -1)) : type === t));
  return ok ? "" : t("Files of type {type} are not accepted (allowed: {types}).", { type, types: types.join(", ") });
}

/** One unit convention for every size the page shows: bytes below 1 KiB, then KiB, MiB, GiB (1024-based). */
export function formatBytes(n) {
  if (n >= 1073741824) return `${(n / 1073741824).toFixed(1)} GiB`;
  if (n >= 1048576) return `${(n / 1048576).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return n === 1 ? t("1 byte") : t("{n} bytes", { n });
}

/** Two sizes to compare in one sentence; when they would read the same (1.0 MiB vs 1.0 MiB), exact bytes too. */
export function formatSizes(a, b) {
  const [x, y] = [formatBytes(a), formatBytes(b)];
  return x === y && a !== b ? [`${x} (${t("{n} bytes", { n: a })})`, `${y} (${t("{n} bytes", { n: b })})`] : [x, y];
}

/**
 * GET <signatureUrl>/records/<uploadId>: the record once the callback or the event path has written it
 * (scoped to the caller: with sign-in on, only the uploader's own). Resolves with the record, or null while
 * there is none (404 RecordNotFound). Other answers reject with an UploadError: .status 501
 * (RecordLookupUnsupported: an append-only store), 401 (.signIn), 403, 5xx (.retryable).
 */
export async function fetchRecord(signatureUrl, uploadId, { getToken, signal } = {}) {
  const url = new URL(`records/${encodeURIComponent(uploadId)}`, serviceBase(signatureUrl));
  const { response, body } = await requestJson(url, { getToken, signal });
  if (response.status === 404 && body?.code === "RecordNotFound") return null;
  if (!response.ok) throw serviceError(response, body);
  return body;
}
