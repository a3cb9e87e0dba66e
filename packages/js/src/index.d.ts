export * from "./uploader.js";
export { discardResumable, findResumable, forgetResumable, listResumable, MultipartUpload, resumeKey,
  uploadMultipart } from "./multipart.js";
export type { MultipartInfo, MultipartOptions, MultipartState, ResumeEntry } from "./multipart.js";
export { getLocale, pickLocale, setLocale, t } from "./i18n.js";
export type { Locale } from "./i18n.js";
export { createUploadList, statusText } from "./upload-list.js";
export type { UploadItem, UploadItemState, UploadList, UploadListOptions } from "./upload-list.js";
