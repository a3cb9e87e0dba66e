// ossdirect: the browser clients of web/ (copied into dist/ by build.mjs) under one entry point.
// Frameworks: "ossdirect/react", "ossdirect/vue"; widgets: "ossdirect/adapters/…".
export * from "./uploader.js";
export { discardResumable, findResumable, forgetResumable, listResumable, MultipartUpload, resumeKey,
  uploadMultipart } from "./multipart.js";
export { getLocale, pickLocale, setLocale, t } from "./i18n.js";
export { createUploadList, statusText } from "./upload-list.js";
