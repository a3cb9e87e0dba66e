import type { GetToken } from "../common.js";
import type { Limits } from "../uploader.js";
import type { SuccessBody } from "./common.js";

export interface RequestArgs {
  file: File;
  onProgress?: (event: { percent: number; loaded: number; total: number }) => void;
  onSuccess?: (body: SuccessBody, xhr: XMLHttpRequest) => void;
  onError?: (error: Error) => void;
  [field: string]: unknown;
}

/** antd `customRequest` / Element Plus `http-request`. */
export declare function ossRequest(signatureUrl: string, options?: { getToken?: GetToken; naming?: string; folder?: string }):
  (args: RequestArgs) => XMLHttpRequest;
export declare function acceptFromLimits(limits: Partial<Limits> | null | undefined): string;
