import type { UploadResult, SignedForm, UploadRecord, RequestOptions } from "../uploader.js";
export { fetchForm, readOutcome, UploadError } from "../uploader.js";

/** What a widget gets as the upload's answer: the record, or {ok: false, code: "CallbackFailed", unrecorded: true, …}. */
export type SuccessBody = UploadRecord | { ok: false; code: "CallbackFailed"; unrecorded: true; upload_id: string;
  key: string; message?: string } | { ok: true; record_id: null; upload_id: string; key: string; etag: string };

export declare function formUrl(form: SignedForm): string;
export declare function successBody(result: UploadResult): SuccessBody;
export declare function fetchRecord(signatureUrl: string, uploadId: string, options?: RequestOptions): Promise<UploadRecord>;
