// CRC-64/ECMA of a file or its parts, as OSS computes it (x-oss-hash-crc64ecma: an unsigned decimal
// string), read in the browser before the bytes are sent: the signed form (crc64 parameter) or the
// multipart session pins it, and the service compares it with what OSS computed from what it received.
// WebAssembly (web/crc64.wat, slicing-by-16, compiled below: GB/s); where WebAssembly is unavailable
// (e.g. a Content-Security-Policy without 'wasm-unsafe-eval') a table-driven JavaScript fallback with
// 32-bit halves gives the same values, more slowly. No dependency, no build step.
//
//   const crc = new Crc64().update(bytes).update(more).toString();   // "5992893637417389050"
//   const crc = await crc64OfBlob(file, { signal });                 // the same, read in slices

// wat2wasm web/crc64.wat --output=- | base64 -w0
const WASM = "AGFzbQEAAAABCgJgAABgAn5/AX4DAwIAAQUDAQABBxoDBm1lbW9yeQIABGluaXQAAAZ1cGRhdGUAAQrpBAKJAQIDfwF+A0AgAK0hA0EIIQEDQCADQgGIQsKenLzd8pW2SUIAIANCAYN9g4UhAyABQQFrIgENAAsgAEEDdCADNwMAIABBAWoiAEGAAkkNAAtBgBAhAgNAIAJBgBBrKQMAIQMgAiADQgiIIANC/wGDp0EDdCkDAIU3AwAgAkEIaiICQYCAAkkNAAsL2wMCAn8CfiAAQn+FIQBBgIACIQJBgIACIAFBcHFqIQMCQANAIAIgA08NASAAIAIpAwCFIQQgAikDCCEFIASnQf8BcUEDdCkDgPABIQAgACAEQgiIp0H/AXFBA3QpA4DgAYUhACAAIARCEIinQf8BcUEDdCkDgNABhSEAIAAgBEIYiKdB/wFxQQN0KQOAwAGFIQAgACAEQiCIp0H/AXFBA3QpA4CwAYUhACAAIARCKIinQf8BcUEDdCkDgKABhSEAIAAgBEIwiKdB/wFxQQN0KQOAkAGFIQAgACAEQjiIp0EDdCkDgIABhSEAIAAgBadB/wFxQQN0KQOAcIUhACAAIAVCCIinQf8BcUEDdCkDgGCFIQAgACAFQhCIp0H/AXFBA3QpA4BQhSEAIAAgBUIYiKdB/wFxQQN0KQOAQIUhACAAIAVCIIinQf8BcUEDdCkDgDCFIQAgACAFQiiIp0H/AXFBA3QpA4AghSEAIAAgBUIwiKdB/wFxQQN0KQOAEIUhACAAIAVCOIinQQN0KQMAhSEAIAJBEGohAgwACwtBgIACIAFqIQMCQANAIAIgA08NASAAQgiIIACnIAItAABzQf8BcUEDdCkDAIUhACACQQFqIQIMAAsLIABCf4UL";
const TABLES = 32768; // the module's 16 tables (bytes); what is digested is copied after them
const WINDOW = 1 << 20; // bytes copied into the module per call
const SLICE = 8 << 20; // bytes read from a Blob at a time
const POLY_HI = 0xc96c5795, POLY_LO = 0xd7870f42;

let engine; // {update(crc: bigint, bytes: Uint8Array) → bigint} once chosen

function wasmEngine() {
  // a module this small may be compiled synchronously, on the main thread too
  const bytes = Uint8Array.from(atob(WASM), (c) => c.charCodeAt(0));
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
  exports.memory.grow(Math.ceil((TABLES + WINDOW) / 65536) - 1);
  exports.init();
  const memory = new Uint8Array(exports.memory.buffer);
  return {
    kind: "wasm",
    update(crc, data) {
      for (let at = 0; at < data.length; at += WINDOW) {
        const part = data.subarray(at, at + WINDOW);
        memory.set(part, TABLES);
        crc = exports.update(crc, part.length);
      }
      return crc;
    },
  };
}

/** Byte-at-a-time with the table split into 32-bit halves (no BigInt in the loop). */
function jsEngine() {
  const hi = new Uint32Array(256), lo = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let h = 0, l = i;
    for (let b = 0; b < 8; b++) {
      const odd = l & 1;
      l = ((l >>> 1) | ((h & 1) << 31)) >>> 0;
      h >>>= 1;
      if (odd) { h = (h ^ POLY_HI) >>> 0; l = (l ^ POLY_LO) >>> 0; }
    }
    hi[i] = h; lo[i] = l;
  }
  return {
    kind: "js",
    update(crc, data) {
      let h = ~Number(crc >> 32n) >>> 0, l = ~Number(crc & 0xffffffffn) >>> 0;
      for (let i = 0; i < data.length; i++) {
        const x = (l ^ data[i]) & 255;
        l = (((l >>> 8) | (h << 24)) ^ lo[x]) >>> 0;
        h = ((h >>> 8) ^ hi[x]) >>> 0;
      }
      return (BigInt(~h >>> 0) << 32n) | BigInt(~l >>> 0);
    },
  };
}

/** The engine in use: "wasm", or "js" where WebAssembly cannot run (options.engine forces one, for tests). */
export function crc64Engine(kind) {
  if (kind === "js") return jsEngine();
  if (kind === "wasm") return wasmEngine();
  if (!engine) {
    try { engine = wasmEngine(); } catch { engine = jsEngine(); }
  }
  return engine;
}

export class Crc64 {
  constructor({ engine: kind } = {}) {
    this.engine = crc64Engine(kind);
    this.crc = 0n;
  }

  /** Add bytes (Uint8Array, ArrayBuffer or a typed array view). */
  update(data) {
    const bytes = data instanceof Uint8Array ? data
      : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
    this.crc = BigInt.asUintN(64, this.engine.update(this.crc, bytes));
    return this;
  }

  /** The CRC as OSS writes it: an unsigned decimal string. */
  toString() { return this.crc.toString(); }
}

/** The CRC-64 of a Blob (a File or a slice of one), read in slices; rejects with an AbortError when signalled. */
export async function crc64OfBlob(blob, { signal, engine: kind } = {}) {
  const crc = new Crc64({ engine: kind });
  for (let at = 0; at < blob.size; at += SLICE) {
    if (signal?.aborted) throw new DOMException("Aborted", "AbortError");
    crc.update(new Uint8Array(await blob.slice(at, at + SLICE).arrayBuffer()));
  }
  return crc.toString();
}
