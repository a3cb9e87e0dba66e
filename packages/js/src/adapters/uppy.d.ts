import type { GetToken } from "../common.js";
import type { Limits } from "../uploader.js";
export { fetchRecord } from "./common.js";

export interface UppyRestrictions { minFileSize?: number | null; maxFileSize?: number | null; allowedFileTypes?: string[] | null }

export declare function restrictionsFromLimits(limits: Partial<Limits> | null | undefined): UppyRestrictions;
/** Install the XHRUpload plugin class you pass so that every file is sent with its own signed form; returns uppy. */
export declare function useXhrUpload<U>(uppy: U, XHRUpload: unknown, signatureUrl: string,
  options?: { getToken?: GetToken; naming?: string; folder?: string; [xhrOption: string]: unknown }): U;
/** @uppy/aws-s3 options (one signed POST form per file). */
export declare function awsS3Options(uppy: unknown, signatureUrl: string,
  options?: { getToken?: GetToken; naming?: string; folder?: string }): Record<string, unknown>;
