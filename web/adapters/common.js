// Shared by the widget adapters: what a widget gets as the upload's answer, and the record poll.
import { requestJson, serviceBase } from "../common.js";
import { t } from "../i18n.js";
import { fetchForm, readOutcome, UploadError } from "../uploader.js";

export { fetchForm, readOutcome, UploadError };

/** Where a form is POSTed (the OSS host; a trailing slash, as the uploader sends it). */
export function formUrl(form) {
  const url = form.url || form.host;
  return url.endsWith("/") ? url : `${url}/`;
}

/**
 * The body a widget hands to its success hook, from uploader.js's result:
 * - recorded (OSS relayed the callback's 200): the callback's record itself ({ok: true, record_id, url, …});
 * - OSS answered 203 CallbackFailed: {ok: false, code: "CallbackFailed", unrecorded: true, upload_id, key,
 *   message}: the object IS stored (a retry would store it twice), the record may still come (the process
 *   function writes it from OSS's event): poll fetchRecord(signatureUrl, upload_id);
 * - no callback configured (204/201): {ok: true, record_id: null, upload_id, key, etag}.
 */
export function successBody(result) {
  if (result.state === "unrecorded") {
    return { ok: false, code: "CallbackFailed", unrecorded: true, upload_id: result.uploadId, key: result.key,
      message: result.sentence };
  }
  if (result.record) return result.record;
  return { ok: true, record_id: null, upload_id: result.uploadId, key: result.key, etag: result.etag };
}

/** GET <signatureUrl>/records/<uploadId>: the record (public fields; all of them for its signed-in owner). */
export async function fetchRecord(signatureUrl, uploadId, { getToken, signal } = {}) {
  const url = new URL(`records/${encodeURIComponent(uploadId)}`, serviceBase(signatureUrl));
  const { response, body } = await requestJson(url, { getToken, signal });
  if (!response.ok) {
    throw new UploadError(body?.message || t("The upload service answered {status}.", { status: response.status }),
      { code: body?.code || "", status: response.status, retryable: response.status === 404 || response.status >= 500 });
  }
  return body;
}
