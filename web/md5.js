// MD5 (RFC 1321) in the browser, for a part's Content-MD5: WebCrypto has no MD5. Plain JavaScript on
// 32-bit integers, incremental, no dependency, no build step. Not for security: OSS uses the digest to
// refuse a part whose bytes changed on the way (the part URL signs it).
//
//   const b64 = new Md5().update(bytes).update(more).base64();   // "XUFAKrxLKna5cZ2REBfFkg==" for "hello"
//   const b64 = await md5OfBlob(file.slice(a, b), { signal });   // the same, read in slices

const S = Int32Array.of(7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21);
const K = new Int32Array(64).map((_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0);
const SLICE = 8 << 20; // bytes read from a Blob at a time

/** One 64-byte block at `at` of `bytes` into the state `h` (Int32Array(4)); `x` is scratch (Int32Array(16)). */
function block(h, bytes, at, x) {
  for (let i = 0; i < 16; i++, at += 4) {
    x[i] = bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24);
  }
  let a = h[0], b = h[1], c = h[2], d = h[3], t;
  // four rounds of 16 steps, one loop each (no branch per step)
  for (let i = 0; i < 16; i++) {
    t = (a + ((b & c) | (~b & d)) + K[i] + x[i]) | 0;
    a = d; d = c; c = b; b = (b + ((t << S[i & 3]) | (t >>> (32 - S[i & 3])))) | 0;
  }
  for (let i = 16; i < 32; i++) {
    t = (a + ((d & b) | (~d & c)) + K[i] + x[(5 * i + 1) & 15]) | 0;
    a = d; d = c; c = b; b = (b + ((t << S[4 + (i & 3)]) | (t >>> (32 - S[4 + (i & 3)])))) | 0;
  }
  for (let i = 32; i < 48; i++) {
    t = (a + (b ^ c ^ d) + K[i] + x[(3 * i + 5) & 15]) | 0;
    a = d; d = c; c = b; b = (b + ((t << S[8 + (i & 3)]) | (t >>> (32 - S[8 + (i & 3)])))) | 0;
  }
  for (let i = 48; i < 64; i++) {
    t = (a + (c ^ (b | ~d)) + K[i] + x[(7 * i) & 15]) | 0;
    a = d; d = c; c = b; b = (b + ((t << S[12 + (i & 3)]) | (t >>> (32 - S[12 + (i & 3)])))) | 0;
  }
  h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
}

export class Md5 {
  constructor() {
    this.h = Int32Array.of(0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476);
    this.buffer = new Uint8Array(64); // a block's bytes not yet digested
    this.held = 0;
    this.length = 0; // bytes seen
    this.x = new Int32Array(16);
  }

  /** Digest more bytes (a Uint8Array or an ArrayBuffer); returns this. */
  update(data) {
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    let at = 0;
    this.length += bytes.length;
    if (this.held) {
      const take = Math.min(64 - this.held, bytes.length);
      this.buffer.set(bytes.subarray(0, take), this.held);
      this.held += take;
      at = take;
      if (this.held < 64) return this;
      block(this.h, this.buffer, 0, this.x);
      this.held = 0;
    }
    for (; at + 64 <= bytes.length; at += 64) block(this.h, bytes, at, this.x);
    this.buffer.set(bytes.subarray(at), 0);
    this.held = bytes.length - at;
    return this;
  }

  /** The 16-byte digest (the state is finished: make a new Md5 for another). */
  digest() {
    const bits = this.length * 8;
    const tail = new Uint8Array(this.held < 56 ? 64 : 128);
    tail.set(this.buffer.subarray(0, this.held));
    tail[this.held] = 0x80;
    const view = new DataView(tail.buffer);
    view.setUint32(tail.length - 8, bits >>> 0, true);
    view.setUint32(tail.length - 4, Math.floor(bits / 2 ** 32), true);
    for (let at = 0; at < tail.length; at += 64) block(this.h, tail, at, this.x);
    const out = new Uint8Array(16);
    new DataView(out.buffer).setInt32(0, this.h[0], true);
    new DataView(out.buffer).setInt32(4, this.h[1], true);
    new DataView(out.buffer).setInt32(8, this.h[2], true);
    new DataView(out.buffer).setInt32(12, this.h[3], true);
    return out;
  }

  hex() {
    return Array.from(this.digest(), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** Base64, as Content-MD5 carries it. */
  base64() {
    return btoa(String.fromCharCode(...this.digest()));
  }
}

/** The base64 MD5 of a Blob (a part: `file.slice(start, end)`), read in 8 MiB slices. */
export async function md5OfBlob(blob, { signal } = {}) {
  const md5 = new Md5();
  for (let at = 0; at < blob.size; at += SLICE) {
    if (signal?.aborted) throw signal.reason ?? new DOMException("aborted", "AbortError");
    md5.update(new Uint8Array(await blob.slice(at, at + SLICE).arrayBuffer()));
  }
  return md5.base64();
}
