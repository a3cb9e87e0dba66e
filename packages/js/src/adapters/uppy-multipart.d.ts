import type { GetToken } from "../common.js";

/** The server's part size for a file of `size` bytes. */
export declare function partSize(size: number): number;
/** @uppy/aws-s3 (v5+) options: parts above `threshold` through the /multipart routes, else one signed form. */
export declare function ossdirectAwsS3Options(uppy: unknown, signatureUrl: string,
  options?: { getToken?: GetToken; threshold?: number; limit?: number; md5?: boolean }): Record<string, unknown> & {
    limit: number; shouldUseMultipart(file: { size?: number | null }): boolean; getChunkSize(data: { size: number }): number };
