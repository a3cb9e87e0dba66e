// ossdirect × antd Upload (React) and Element Plus el-upload (Vue): one request function for both.
//
//   import { ossRequest } from "./adapters/antd.js";
//   <Upload customRequest={ossRequest(signatureUrl, { getToken })} onChange={...} />        // antd
//   <el-upload :http-request="ossRequest(signatureUrl)" action="#" :on-success="..." />       // Element Plus
//
// Why customRequest and not action/data: antd can take `action` and `data` as functions, but its built-in
// request cannot tell OSS's 203 (stored, not recorded) from a success, parses OSS's XML errors as text,
// and adds an X-Requested-With header (a CORS preflight on every upload); a form fetched in `action`
// that fails leaves the file stuck. ossRequest fetches the form (Bearer token, one refresh on
// TokenExpired), POSTs its fields in order with `file` last, re-fetches once if the form expired, and calls
//   onProgress({percent}), onSuccess(body, xhr) — body is the callback's record ({ok: true, record_id, url, …}),
//   or {ok: false, code: "CallbackFailed", unrecorded: true, upload_id, key} for OSS's 203 — and
//   onError(err) with err.message a sentence for a person (err.status, err.code as OSS/the service said).
// It returns an XMLHttpRequest whose abort() cancels the upload: antd's and Element Plus's abort both call it
// (Element Plus only aborts what is an XMLHttpRequest).
import { uploadFile } from "../uploader.js";
import { successBody } from "./common.js";

/** antd `customRequest` / Element Plus `http-request`. options: getToken, naming, folder. */
export function ossRequest(signatureUrl, { getToken, naming, folder } = {}) {
  return function request({ file, onProgress, onSuccess, onError }) {
    const controller = new AbortController();
    const handle = new XMLHttpRequest(); // never sent: the handle the widgets abort through
    handle.abort = () => controller.abort();
    uploadFile(signatureUrl, file, {
      getToken, naming, folder, signal: controller.signal,
      onProgress: (loaded, total) => onProgress?.({ percent: total ? (loaded / total) * 100 : 0, loaded, total }),
    }).then(
      (result) => onSuccess?.(successBody(result), handle),
      (err) => { if (!err?.cancelled) onError?.(err); },
    );
    return handle;
  };
}

/** /limits → antd/Element `accept` attribute ("image/*,application/pdf"); "" accepts anything. */
export function acceptFromLimits(limits) {
  const types = limits?.content_types || [];
  return types.includes("*") ? "" : types.join(",");
}
