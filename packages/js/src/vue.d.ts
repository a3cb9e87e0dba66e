import type { DefineComponent, PropType, ShallowRef } from "vue";
import type { GetToken, UploadError } from "./common.js";
import type { UploadResult } from "./uploader.js";
import type { UploadItem, UploadListOptions } from "./upload-list.js";

export type { UploadItem } from "./upload-list.js";

export declare function useOssDirectUpload(getOptions: () => UploadListOptions): {
  items: ShallowRef<UploadItem[]>;
  upload(files: FileList | File[]): Promise<Array<UploadResult | null>>;
  cancel(id?: number): void;
  clear(): void;
};

export declare const OssDirectUpload: DefineComponent<{
  signatureUrl: { type: StringConstructor; required: true };
  getToken: { type: PropType<GetToken>; default: undefined };
  naming: { type: PropType<"random" | "original">; default: undefined };
  folder: { type: StringConstructor; default: undefined };
  accept: { type: StringConstructor; default: undefined };
  multiple: { type: BooleanConstructor; default: true };
  label: { type: StringConstructor; default: undefined };
}, {}, {}, {}, {}, {}, {}, {
  uploaded: (result: UploadResult, file: File) => true;
  error: (error: UploadError, file: File) => true;
}>;
