/** CRC-64/ECMA as OSS computes it (x-oss-hash-crc64ecma), in WebAssembly (a JavaScript fallback). */
export declare class Crc64 {
  constructor(options?: { engine?: "wasm" | "js" });
  readonly crc: bigint;
  update(data: Uint8Array | ArrayBuffer | ArrayBufferView): this;
  /** Unsigned decimal, as OSS writes it. */
  toString(): string;
}
export declare function crc64OfBlob(blob: Blob, options?: { signal?: AbortSignal; engine?: "wasm" | "js" }): Promise<string>;
export declare function crc64Engine(kind?: "wasm" | "js"): { kind: "wasm" | "js"; update(crc: bigint, data: Uint8Array): bigint };
