// Shared by uploader.js and multipart.js (each imports this; neither imports the other statically):
// the error type, the service's refusal sentences, the bearer token, the JSON request to the
// signature function and the file's CRC-64 (crc64.js). Every sentence for a person goes through i18n.js's t() (English unless the
// browser prefers a language it has).

import { crc64OfBlob } from "./crc64.js";
import { t } from "./i18n.js";

export class UploadError extends Error {
  constructor(sentence, { code = "", status = 0, retryable = false, cancelled = false, expired = false,
    signIn = false, retryAfter = null, detail = "" } = {}) {
    super(sentence);
    this.name = "UploadError";
    Object.assign(this, { sentence, code, status, retryable, cancelled, expired, signIn, retryAfter, detail });
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
  AuthKeysUnavailable: "Sign-in cannot be checked right now. Try again in a moment.",
  UserLimitExceeded: "You have reached your upload allowance.",
  FileNotFound: "This file is not there any more.",
  FileNotDownloadable: "It cannot be downloaded.",
};

/** "Sign in to upload." in the language chosen when the page loaded. */
export const SIGN_IN_SENTENCE = t("Sign in to upload.");

export function cancelledError() {
  return new UploadError(t("Cancelled."), { cancelled: true });
}

/** The signature function's base URL, with a trailing slash (its routes are relative to it). */
export function serviceBase(signatureUrl) {
  const base = new URL(signatureUrl, document.baseURI);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  return base;
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), or null. */
function retryAfterSeconds(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, Math.round((when - Date.now()) / 1000));
}

function waitSentence(seconds) {
  if (seconds == null) return t("Try again later.");
  if (seconds < 90) return t("Try again in {n} seconds.", { n: Math.max(1, seconds) });
  if (seconds < 5400) return t("Try again in {n} minutes.", { n: Math.round(seconds / 60) });
  return t("Try again in {n} hours.", { n: Math.round(seconds / 3600) });
}

/** Ask the page's token provider; a provider that throws means "not signed in" unless it says otherwise. */
export async function tokenFrom(getToken, refresh, signal) {
  if (!getToken) return "";
  let token;
  try {
    token = await getToken({ refresh });
  } catch (err) {
    if (err instanceof UploadError) throw err;
    throw new UploadError(SIGN_IN_SENTENCE, { code: "TokenUnavailable", signIn: true, detail: String(err?.message || err) });
  }
  if (signal?.aborted) throw cancelledError();
  return typeof token === "string" ? token.trim() : "";
}

/**
 * fetch a JSON answer from the signature function, with the bearer token when there is one; a
 * TokenExpired answer gets one refreshed token and one retry. Resolves with {response, body} (body null
 * when not JSON). A network failure rejects with a retryable UploadError, passed through
 * onNetworkError(err) first (multipart marks it resumable).
 */
export async function requestJson(url, { method = "GET", json, getToken, signal, onNetworkError = (e) => e } = {}) {
  let token = await tokenFrom(getToken, false, signal);
  for (let refreshed = false; ; refreshed = true) {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    if (json !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, { method, headers, signal, cache: "no-store",
        body: json === undefined ? undefined : JSON.stringify(json) });
    } catch {
      if (signal?.aborted) throw cancelledError();
      throw onNetworkError(new UploadError(t("Could not reach the upload service. Check your connection and retry."),
        { retryable: true }));
    }
    let body = null;
    try { body = await response.json(); } catch { /* not JSON */ }
    if (response.status === 401 && body?.code === "TokenExpired" && getToken && !refreshed) {
      token = await tokenFrom(getToken, true, signal);
      continue;
    }
    return { response, body };
  }
}

/** The UploadError for a refusal from the signature function. */
export function serviceError(response, body) {
  const code = body?.code || "";
  const detail = body?.message || "";
  if (response.status === 401) {
    return new UploadError(SIGN_IN_SENTENCE, { code: code || "Unauthorized", status: 401, signIn: true, detail });
  }
  if (response.status === 429) {
    const retryAfter = retryAfterSeconds(response.headers.get("Retry-After"));
    const first = t(SERVER_SENTENCES[code] || "Too many uploads right now.");
    return new UploadError(`${first} ${waitSentence(retryAfter)}`, { code, status: 429, retryAfter, detail,
      retryable: true });
  }
  // a misconfigured service says which setting is wrong: the person running the site needs that sentence
  const sentence = (code === "ConfigInvalid" && detail && t("The upload service is misconfigured: {detail}", { detail }))
    || (SERVER_SENTENCES[code] && t(SERVER_SENTENCES[code])) || detail
    || t("The upload service answered {status}.", { status: response.status });
  return new UploadError(sentence, { code, status: response.status, detail, retryable: response.status >= 500 });
}

/**
 * The file's CRC-64/ECMA (decimal, as OSS writes x-oss-hash-crc64ecma), or null: options.crc64 when given,
 * none with checksum: false. `file` is a File/Blob, or a widget's file object with the Blob as .data (Uppy).
 */
export async function fileCrc64(file, { crc64, checksum = true, signal } = {}) {
  if (crc64 != null) return String(crc64);
  const blob = file instanceof Blob ? file : file?.data instanceof Blob ? file.data : null;
  if (!checksum || !blob) return null;
  try {
    return await crc64OfBlob(blob, { signal });
  } catch (err) {
    if (signal?.aborted) throw cancelledError();
    throw new UploadError(t("The file could not be read. Choose it again."), { code: "FileUnreadable",
      detail: String(err?.message || err) });
  }
}

/** OSS received other bytes than the page read (the callback or the completion says so): not a good upload. */
export function checksumError(body, status = 200) {
  return new UploadError(t("The file arrived changed on the way (its checksum differs) and was not accepted. " +
    "Upload it again."), { code: "ChecksumMismatch", status, detail: body?.message || "" });
}

export function ossSentence(code, message) {
  return t(ossEnglish(code, message), { code: code || t("unknown error") });
}

function ossEnglish(code, message) {
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
    default: return "The storage refused the upload ({code}).";
  }
}

export function parseOssXml(text) {
  try {
    const doc = new DOMParser().parseFromString(text || "", "application/xml");
    const pick = (tag) => doc.getElementsByTagName(tag)[0]?.textContent ?? "";
    return { code: pick("Code"), message: pick("Message"), key: pick("Key"), etag: pick("ETag") };
  } catch {
    return { code: "", message: "", key: "", etag: "" };
  }
}
