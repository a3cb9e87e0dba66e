import type { UploadError } from "./common.js";
import type { UploadOptions, UploadResult } from "./uploader.js";

export type UploadItemState = "uploading" | "done" | "unrecorded" | "failed" | "cancelled";

export interface UploadItem {
  id: number;
  name: string;
  size: number;
  type: string;
  state: UploadItemState;
  loaded: number;
  result: UploadResult | null;
  error: UploadError | null;
}

export interface UploadListOptions extends Omit<UploadOptions, "signal" | "onProgress"> {
  signatureUrl: string;
  onUploaded?: (result: UploadResult, file: File) => void;
  onError?: (error: UploadError, file: File) => void;
}

export interface UploadList {
  readonly items: UploadItem[];
  upload(files: FileList | File[]): Promise<Array<UploadResult | null>>;
  cancel(id?: number): void;
  clear(): void;
  dispose(): void;
}

export declare function createUploadList(getOptions: () => UploadListOptions, onChange: (items: UploadItem[]) => void): UploadList;
export declare function statusText(item: UploadItem): string;
