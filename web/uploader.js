// ossdirect uploader: one File → signed form from the signature function → POST straight to OSS.
// No framework, no build step. Usage:
//   const result = await uploadFile(signatureUrl, file, { onProgress, signal, naming, folder });
//   result.state is "done" (stored and recorded, or stored with no callback configured)
//   or "unrecorded" (stored, but the server did not record it: OSS answered 203 CallbackFailed).
// Failures reject with an UploadError whose .sentence is written for a person.

export class UploadError extends Error {
  constructor(sentence, { code = "", status = 0, retryable = false, cancelled = false, expired = false,
    detail = "" } = {}) {
    super(sentence);
    this.name = "UploadError";
    Object.assign(this, { sentence, code, status, retryable, cancelled, expired, detail });
  }
}

const SERVER_SENTENCES = {
  EntityTooLarge: "This file is larger than the site accepts.",
  EntityTooSmall: "This file is smaller than the site accepts.",
  UnsupportedContentType: "Files of this type are not accepted here.",
  InvalidContentType: "The browser could not tell this file's type.",
  ContentTypeRequired: "The browser could not tell this file's type.",
  CredentialsUnavailable: "The upload service is not set up yet (it has no credentials). Try again later.",
  ConfigInvalid: "The upload service is misconfigured. Try again later.",
  OriginNotAllowed: "This page is not allowed to upload to this service.",
  FoldersNotAllowed: "Choosing a folder is not allowed here.",
  InvalidFolder: "That folder name cannot be used.",
  InvalidFilename: "That file name cannot be used.",
};

function ossSentence(code, message) {
  switch (code) {
    case "EntityTooLarge": return "The storage refused the file: it is larger than allowed.";
    case "EntityTooSmall": return "The storage refused the file: it is smaller than allowed.";
    case "FileAlreadyExists": return "A file with this name already exists; it was not replaced.";
    case "SignatureDoesNotMatch": return "The storage rejected the upload signature. Reload the page and try again.";
    case "RequestTimeTooSkewed": return "The storage and the upload service disagree about the time. Try again later.";
    case "InvalidAccessKeyId": return "The upload credentials were not accepted. Reload the page and try again.";
    case "AccessDenied":
      if (/content-type/i.test(message)) return "The storage refused the file: this type of file is not accepted.";
      if (/Policy expired/i.test(message)) return "The upload form expired before the file was sent.";
      return "The storage refused the upload: the file does not match what the form allows.";
    default: return `The storage refused the upload (${code || "unknown error"}).`;
  }
}

function parseOssXml(text) {
  try {
    const doc = new DOMParser().parseFromString(text || "", "application/xml");
    const pick = (tag) => doc.getElementsByTagName(tag)[0]?.textContent ?? "";
    return { code: pick("Code"), message: pick("Message"), key: pick("Key"), etag: pick("ETag") };
  } catch {
    return { code: "", message: "", key: "", etag: "" };
  }
}

/** GET a signed form for this file from the signature function. */
export async function fetchForm(signatureUrl, file, { naming, folder, signal } = {}) {
  const url = new URL(signatureUrl, document.baseURI);
  url.searchParams.set("filename", file.name);
  url.searchParams.set("size", String(file.size));
  url.searchParams.set("content_type", file.type || "application/octet-stream");
  if (naming) url.searchParams.set("naming", naming);
  if (folder) url.searchParams.set("folder", folder);
  let response;
  try {
    response = await fetch(url, { signal, cache: "no-store" });
  } catch (err) {
    if (signal?.aborted) throw new UploadError("Cancelled.", { cancelled: true });
    throw new UploadError("Could not reach the upload service. Check your connection and retry.", { retryable: true });
  }
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) {
    const code = body?.code || "";
    const sentence = SERVER_SENTENCES[code] || body?.message || `The upload service answered ${response.status}.`;
    throw new UploadError(sentence, { code, status: response.status, detail: body?.message || "",
      retryable: response.status >= 500 });
  }
  return body;
}

/** POST the file with the form's fields (in order, file last). Resolves with the raw outcome. */
export function postForm(form, file, { onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const data = new FormData();
    for (const [name, value] of form.fields) data.append(name, value);
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
      reject(new UploadError("The connection to the storage failed. Check your connection and retry.",
        { retryable: true }));
    };
    xhr.onabort = () => reject(new UploadError("Cancelled.", { cancelled: true }));
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
      sentence: "Stored, but the server did not record it." };
  }
  throw new UploadError(ossSentence(error.code, error.message), {
    code: error.code, status: outcome.status, detail: error.message, retryable: outcome.status >= 500,
    expired: outcome.status === 403 && /Policy expired/i.test(error.message) });
}

/** Upload one file end to end; an expired form is replaced by a fresh one, once. */
export async function uploadFile(signatureUrl, file, options = {}) {
  const started = performance.now();
  for (let attempt = 0; ; attempt++) {
    const form = await fetchForm(signatureUrl, file, options);
    const outcome = await postForm(form, file, options);
    try {
      return readOutcome(form, file, outcome, Math.round(performance.now() - started));
    } catch (err) {
      if (!(err.expired && attempt === 0)) throw err;
    }
  }
}

/** Client-side pre-check against the limits the server publishes; returns a sentence or "". */
export function precheck(file, limits) {
  if (!limits) return "";
  const mib = (n) => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MiB` : `${n} bytes`);
  if (file.size > limits.max_bytes) return `Too large: ${mib(file.size)}; the limit is ${mib(limits.max_bytes)}.`;
  if (file.size < limits.min_bytes) return `Too small: ${mib(file.size)}; the minimum is ${mib(limits.min_bytes)}.`;
  const types = limits.content_types || [];
  const type = (file.type || "application/octet-stream").toLowerCase();
  const ok = !types.length || types.some((t) => (t.endsWith("/*") ? type.startsWith(t.slice(0, -1)) : type === t));
  return ok ? "" : `Files of type ${type} are not accepted (allowed: ${types.join(", ")}).`;
}
