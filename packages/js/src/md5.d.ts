/** MD5 (a part's Content-MD5; WebCrypto has none), in plain JavaScript. Not for security. */
export declare class Md5 {
  constructor();
  update(data: Uint8Array | ArrayBuffer): this;
  /** The 16-byte digest (finishes this Md5). */
  digest(): Uint8Array;
  hex(): string;
  /** Base64, as Content-MD5 carries it. */
  base64(): string;
}
export declare function md5OfBlob(blob: Blob, options?: { signal?: AbortSignal }): Promise<string>;
