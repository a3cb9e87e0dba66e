import type { GetToken, UploadError } from "./common.js";
import type { UploadResult } from "./uploader.js";

export interface MultipartInfo { uploadId: string; partCount: number; partsSent: number; resumed: boolean }

/** What is kept in storage to resume an upload after a reload. */
export interface ResumeEntry {
  name: string;
  size: number;
  lastModified: number;
  uploadId: string;
  key: string;
  upload_id: string;
  part_size: number;
  part_count: number;
  savedAt: number;
  signatureUrl: string;
  [field: string]: unknown;
}

export type MultipartState = "starting" | "uploading" | "paused" | "completing" | "done" | "unrecorded" | "failed"
  | "cancelled";

export interface MultipartOptions {
  getToken?: GetToken;
  /** false: no CRC-64 declared for the file nor checked for its parts. */
  checksum?: boolean;
  /** false: no part MD5 sent when its URL is signed (no Content-MD5, so OSS does not refuse a changed part itself). */
  md5?: boolean;
  crc64?: string | null;
  onProgress?: (loaded: number, total: number, info: { partsDone: number; partCount: number; state: MultipartState }) => void;
  onState?: (state: MultipartState, upload: MultipartUpload) => void;
  signal?: AbortSignal;
  naming?: "random" | "original";
  folder?: string;
  storage?: Storage | null;
  resume?: boolean;
  concurrency?: number;
  retries?: number;
  now?: () => number;
}

export declare class MultipartUpload implements PromiseLike<UploadResult> {
  constructor(signatureUrl: string, file: File, options?: MultipartOptions);
  readonly promise: Promise<UploadResult>;
  state: MultipartState;
  loaded: number;
  resumed: boolean;
  readonly uploadId: string | null;
  readonly key: string | null;
  readonly partCount: number;
  readonly partsDone: number;
  readonly partsInFlight: number;
  pause(options?: { finishParts?: boolean }): boolean;
  resume(): boolean;
  cancel(): Promise<boolean>;
  then<A = UploadResult, B = never>(onFulfilled?: ((value: UploadResult) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: UploadError) => B | PromiseLike<B>) | null): Promise<A | B>;
  catch<B = never>(onRejected?: ((reason: UploadError) => B | PromiseLike<B>) | null): Promise<UploadResult | B>;
  finally(onFinally?: (() => void) | null): Promise<UploadResult>;
}

export declare function uploadMultipart(signatureUrl: string, file: File, options?: MultipartOptions): MultipartUpload;
export declare function resumeKey(file: { name: string; size: number; lastModified?: number }): string;
export declare function findResumable(file: File, options?: { storage?: Storage | null; signatureUrl?: string }): ResumeEntry | null;
export declare function listResumable(options?: { storage?: Storage | null; signatureUrl?: string }): ResumeEntry[];
export declare function forgetResumable(fileOrEntry: File | ResumeEntry, options?: { storage?: Storage | null }): void;
export declare function discardResumable(signatureUrl: string, entry: ResumeEntry,
  options?: { getToken?: GetToken; storage?: Storage | null }): Promise<boolean>;
