// ossdirect × Uppy 5 (no build step: pass in the Uppy plugin classes you already load).
//
//   import { useXhrUpload, restrictionsFromLimits } from "./adapters/uppy.js";
//   import { fetchLimits } from "./uploader.js";
//   const uppy = new Uppy({ restrictions: restrictionsFromLimits(await fetchLimits(signatureUrl)) });
//   useXhrUpload(uppy, XHRUpload, signatureUrl, { getToken });
//   uppy.on("upload-success", (file, response) => response.body.record_id);   // the callback's record
//
// useXhrUpload: a pre-processor gets each file its form (the signature function), then XHRUpload POSTs
// the form's fields in order with `file` last to the OSS host; the callback's JSON record is the
// `upload-success` response body. OSS's 203 (stored, not recorded) is a flagged success:
// body {ok: false, code: "CallbackFailed", unrecorded: true, upload_id, key}. Refusals are `upload-error`s
// whose message is a sentence for a person (uploader.js's). Retrying a failed file gets a fresh form.
//
// awsS3Options: for @uppy/aws-s3's POST mode (getUploadParameters → {method, url, fields, headers}).
// AwsS3 hands `upload-success` only the response headers: the record is lost there. Use useXhrUpload
// when you need it, or fetchRecord(signatureUrl, file.ossdirect.upload_id).
import { fetchForm, fetchRecord, formUrl, readOutcome, successBody, UploadError } from "./common.js";

export { fetchRecord };

/** /limits → Uppy `restrictions` ({minFileSize, maxFileSize, allowedFileTypes}; `type/*` kept as is). */
export function restrictionsFromLimits(limits) {
  if (!limits) return {};
  const types = (limits.content_types || []).filter(Boolean);
  return {
    minFileSize: limits.min_bytes ?? null,
    maxFileSize: limits.max_bytes ?? null,
    allowedFileTypes: !types.length || types.includes("*") || types.includes("*/*") ? null : types,
  };
}

/** Remember the form a file is about to be sent with (file state `ossdirect`). */
function keepForm(uppy, fileID, form) {
  uppy.setFileState(fileID, { ossdirect: { upload_id: form.upload_id, key: form.key, url: formUrl(form), form } });
}

/**
 * Install XHRUpload (the class you pass) so that every file is sent with its own signed form.
 * options: getToken, naming, folder (as uploadFile's), limit, timeout, and any other XHRUpload option.
 */
export function useXhrUpload(uppy, XHRUpload, signatureUrl, options = {}) {
  const { getToken, naming, folder, ...xhrOptions } = options;
  const sending = new WeakMap(); // xhr → file id

  const formFor = (xhr) => {
    const file = uppy.getFile(sending.get(xhr));
    return { file, form: file?.ossdirect?.form };
  };

  uppy.addPreProcessor(async (fileIDs) => {
    await Promise.all(fileIDs.map(async (id) => {
      const file = uppy.getFile(id);
      if (!file || file.isRemote || file.progress?.uploadComplete) return;
      try {
        const form = await fetchForm(signatureUrl, file, { getToken, naming, folder });
        keepForm(uppy, id, form);
        uppy.setFileMeta(id, form.fields || Object.fromEntries(form.field_list));
        uppy.setFileState(id, { xhrUpload: { endpoint: formUrl(form),
          allowedMetaFields: form.field_list.map(([name]) => name) } }); // the form's order; file last
      } catch (err) {
        uppy.emit("upload-error", uppy.getFile(id), err instanceof UploadError ? err : new UploadError(String(err)));
      }
    }));
  });

  return uppy.use(XHRUpload, {
    endpoint: (file) => file.ossdirect.url, // per file; the per-file xhrUpload state sets it too
    method: "POST",
    formData: true,
    fieldName: "file",
    limit: 3,
    ...xhrOptions,
    onBeforeRequest: (xhr, retryCount, files) => {
      if (files?.[0]) sending.set(xhr, files[0].id);
      return xhrOptions.onBeforeRequest?.(xhr, retryCount, files);
    },
    // network errors and 5xx only: a 4xx is OSS refusing this form, sending it again changes nothing
    shouldRetry: xhrOptions.shouldRetry || ((xhr) => xhr.status === 0 || xhr.status >= 500),
    onAfterResponse: async (xhr, retryCount) => {
      await xhrOptions.onAfterResponse?.(xhr, retryCount);
      if (xhr.status >= 200 && xhr.status < 300) return;
      const { file, form } = formFor(xhr);
      if (form) readOutcome(form, file, { status: xhr.status, text: xhr.responseText, etag: "" }); // throws the sentence
    },
    getResponseData: (xhr) => {
      const { file, form } = formFor(xhr);
      if (!form) return undefined;
      return successBody(readOutcome(form, file, { status: xhr.status, text: xhr.responseText,
        etag: xhr.getResponseHeader("ETag") || "" }));
    },
  });
}

/**
 * Options for @uppy/aws-s3 v5 in POST (form) mode: `uppy.use(AwsS3, awsS3Options(uppy, signatureUrl))`.
 * The form's upload_id and key are kept on the file (`uppy.getFile(id).ossdirect`).
 */
export function awsS3Options(uppy, signatureUrl, { getToken, naming, folder } = {}) {
  return {
    shouldUseMultipart: false,
    async getUploadParameters(file, { signal } = {}) {
      const form = await fetchForm(signatureUrl, file, { getToken, naming, folder, signal });
      keepForm(uppy, file.id, form);
      // `fields` keeps the form's order (JSON objects do); AwsS3 appends `file` last
      return { method: "POST", url: formUrl(form), fields: form.fields || Object.fromEntries(form.field_list),
        headers: {} };
    },
  };
}
