// ossdirect files: a signed-in person's own uploads, through the signature function (with sign-in on).
//   const { files, next_page_token } = await listFiles(signatureUrl, { getToken, pageToken, limit });
//   const { url, filename } = await fileDownloadUrl(signatureUrl, uploadId, { getToken });   // short-lived
//   await deleteFile(signatureUrl, uploadId, { getToken });    // the object and its record (marked deleted)
// Newest first; only the caller's own (someone else's upload id answers 404 FileNotFound, as an unknown one).
// Refusals reject with common.js's UploadError, whose .sentence is the service's own sentence.

import { requestJson, serviceBase, serviceError } from "./common.js";

function filesUrl(signatureUrl, path = "") {
  return new URL(`files${path}`, serviceBase(signatureUrl));
}

async function call(url, { method = "GET", getToken, signal } = {}) {
  const { response, body } = await requestJson(url, { method, getToken, signal });
  if (!response.ok || !body) throw serviceError(response, body);
  return body;
}

/** One page of the caller's files, newest first: {files: [{upload_id, key, size, filename, created_at, status, …}], next_page_token}. */
export function listFiles(signatureUrl, { getToken, signal, pageToken, limit } = {}) {
  const url = filesUrl(signatureUrl);
  if (pageToken) url.searchParams.set("page_token", pageToken);
  if (limit) url.searchParams.set("limit", String(limit));
  return call(url, { getToken, signal });
}

/** A short-lived signed URL that downloads the file under its original name: {url, expires_at, filename}. */
export function fileDownloadUrl(signatureUrl, uploadId, { getToken, signal } = {}) {
  return call(filesUrl(signatureUrl, `/${encodeURIComponent(uploadId)}/url`), { getToken, signal });
}

/** Delete the file (its object; its record stays, marked deleted): {deleted: true, upload_id, key}. */
export function deleteFile(signatureUrl, uploadId, { getToken, signal } = {}) {
  return call(filesUrl(signatureUrl, `/${encodeURIComponent(uploadId)}`), { method: "DELETE", getToken, signal });
}

/** Download through a signed URL: the browser saves it (the URL answers Content-Disposition: attachment). */
export function startDownload(url, filename = "") {
  const a = document.createElement("a");
  a.href = url;
  if (filename) a.download = filename; // cross-origin the header's name wins; same-origin this one
  a.rel = "noopener";
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
}
