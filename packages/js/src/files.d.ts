import type { GetToken } from "./common.js";

export interface OwnFile {
  upload_id: string;
  key: string;
  size: number;
  content_type?: string;
  filename?: string | null;
  created_at: string;
  status: string;
  payload?: unknown;
}

interface FilesOptions { getToken?: GetToken; signal?: AbortSignal }

export declare function listFiles(signatureUrl: string, options?: FilesOptions & { pageToken?: string | null; limit?: number }):
  Promise<{ files: OwnFile[]; next_page_token: string | null }>;
export declare function fileDownloadUrl(signatureUrl: string, uploadId: string, options?: FilesOptions):
  Promise<{ url: string; expires_at: number; filename: string | null; upload_id: string }>;
export declare function deleteFile(signatureUrl: string, uploadId: string, options?: FilesOptions):
  Promise<{ deleted: true; upload_id: string; key: string }>;
export declare function startDownload(url: string, filename?: string): void;
