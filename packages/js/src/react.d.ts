import type { ReactElement } from "react";
import type { UploadOptions } from "./uploader.js";
import type { UploadItem, UploadListOptions } from "./upload-list.js";

export type { UploadItem } from "./upload-list.js";

export type OssDirectUploadOptions = Omit<UploadListOptions, "signatureUrl">;

export interface OssDirectUploadState {
  items: UploadItem[];
  upload(files: FileList | File[]): Promise<Array<import("./uploader.js").UploadResult | null>>;
  cancel(id?: number): void;
  clear(): void;
  busy: boolean;
}

export declare function useOssDirectUpload(signatureUrl: string, options?: OssDirectUploadOptions): OssDirectUploadState;

export interface OssDirectUploadProps extends OssDirectUploadOptions {
  signatureUrl: string;
  accept?: string;
  multiple?: boolean;
  label?: string;
  className?: string;
}

export declare function OssDirectUpload(props: OssDirectUploadProps): ReactElement;
export type { UploadOptions };
