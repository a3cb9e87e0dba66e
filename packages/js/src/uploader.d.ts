import type { GetToken, UploadError } from "./common.js";
import type { MultipartUpload, MultipartInfo } from "./multipart.js";

export { GetToken, ossSentence, parseOssXml, serviceError, SIGN_IN_SENTENCE, UploadError } from "./common.js";

/** GET <signatureUrl>/limits: what the service accepts (and, signed in, who and how much is left). */
export interface Limits {
  max_bytes: number;
  min_bytes: number;
  content_types: string[];
  naming: Array<"random" | "original">;
  default_naming: "random" | "original";
  folders: boolean;
  auth?: string;
  multipart_threshold?: number | null;
  user?: string;
  folder?: string;
  remaining?: { forms?: number | null; bytes?: number | null; resets_at?: string | number | null };
  accountProblem: UploadError | null;
  [field: string]: unknown;
}

/** The callback's record: {ok: true, record_id, url, key, size, …}. */
export interface UploadRecord {
  ok?: boolean;
  record_id?: string | null;
  upload_id?: string;
  key?: string;
  url?: string;
  size?: number;
  user?: string;
  source?: string;
  [field: string]: unknown;
}

export interface UploadResult {
  /** "done": stored (and recorded when a callback is configured); "unrecorded": stored, OSS answered 203. */
  state: "done" | "unrecorded";
  key: string;
  uploadId: string;
  size: number;
  ms: number;
  etag: string;
  record: UploadRecord | null;
  sentence?: string;
  detail?: string;
  location?: string;
  multipart?: MultipartInfo;
}

export interface SignedForm {
  host: string;
  url?: string;
  method?: string;
  key: string;
  upload_id: string;
  field_list: Array<[string, string]>;
  fields?: Record<string, string>;
  [field: string]: unknown;
}

export interface RequestOptions {
  getToken?: GetToken;
  signal?: AbortSignal;
}

/** The file's CRC-64/ECMA (crc64.js), pinned by the form or the multipart session. */
export interface ChecksumOptions {
  /** false: declare none (default: read the file first and declare it). */
  checksum?: boolean;
  /** A CRC-64/ECMA already known (unsigned decimal, as OSS's x-oss-hash-crc64ecma). */
  crc64?: string | null;
}

export interface UploadOptions extends RequestOptions, ChecksumOptions {
  naming?: "random" | "original";
  folder?: string;
  onProgress?: (loaded: number, total: number) => void;
  /** Limits from fetchLimits (its multipart_threshold picks parts); null: never parts. */
  limits?: Partial<Limits> | null;
  /** false: always one form. */
  multipart?: boolean;
  onMultipart?: (upload: MultipartUpload) => void;
}

export declare function uploadFile(signatureUrl: string, file: File, options?: UploadOptions): Promise<UploadResult>;
export declare function fetchForm(signatureUrl: string, file: File,
  options?: RequestOptions & ChecksumOptions & { naming?: string; folder?: string }): Promise<SignedForm>;
export declare function fileCrc64(file: Blob | { data: Blob }, options?: ChecksumOptions & { signal?: AbortSignal }):
  Promise<string | null>;
export declare function fetchLimits(signatureUrl: string, options?: RequestOptions): Promise<Limits>;
export declare function fetchRecord(signatureUrl: string, uploadId: string, options?: RequestOptions): Promise<UploadRecord | null>;
export declare function postForm(form: SignedForm, file: File,
  options?: { onProgress?: (loaded: number, total: number) => void; signal?: AbortSignal }):
  Promise<{ status: number; text: string; etag: string }>;
export declare function readOutcome(form: SignedForm, file: File, outcome: { status: number; text: string; etag: string },
  ms?: number): UploadResult;
/** A sentence when the file breaks the published limits, else "". */
export declare function precheck(file: File, limits: Partial<Limits> | null | undefined): string;
export declare function formatBytes(n: number): string;
export declare function formatSizes(a: number, b: number): [string, string];
