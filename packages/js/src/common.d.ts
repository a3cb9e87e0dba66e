/** A failure, with a sentence written for a person (in the page's language). */
export declare class UploadError extends Error {
  constructor(sentence: string, options?: Partial<Pick<UploadError,
    "code" | "status" | "retryable" | "cancelled" | "expired" | "signIn" | "retryAfter" | "detail">>);
  readonly name: "UploadError";
  sentence: string;
  /** The service's or OSS's machine-readable code ("" when there was no answer). */
  code: string;
  /** The HTTP status (0: no answer). */
  status: number;
  retryable: boolean;
  cancelled: boolean;
  /** The signed form expired before the file was sent. */
  expired: boolean;
  /** Sign-in is needed (or the token was refused). */
  signIn: boolean;
  /** Seconds from Retry-After (429), or null. */
  retryAfter: number | null;
  detail: string;
  /** Multipart: calling uploadMultipart again with the same file picks the upload up. */
  resumable?: boolean;
}

/** Called for every request to the signature function; {refresh: true} after a TokenExpired answer. */
export type GetToken = (options: { refresh: boolean }) => string | null | undefined | Promise<string | null | undefined>;

export declare const SIGN_IN_SENTENCE: string;
export declare function serviceError(response: Response, body: unknown): UploadError;
export declare function ossSentence(code: string, message: string): string;
export declare function parseOssXml(text: string): { code: string; message: string; key: string; etag: string };
