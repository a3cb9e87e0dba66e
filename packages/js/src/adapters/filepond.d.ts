import type { GetToken } from "../common.js";
import type { SuccessBody } from "./common.js";

export interface FilePondServer {
  process(fieldName: string, file: File, metadata: unknown, load: (serverId: string) => void,
    error: (sentence: string) => void, progress: (computable: boolean, loaded: number, total: number) => void,
    abort: () => void): { abort: () => void };
  revert: null;
}

export declare function filepondServer(signatureUrl: string, options?: { getToken?: GetToken; naming?: string;
  folder?: string; serverId?: (body: SuccessBody) => string }): FilePondServer;
