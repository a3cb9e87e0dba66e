// Uppy (@uppy/aws-s3, v5 or later) against ossdirect's signature function: large files in parts through
// its /multipart routes, smaller ones as one signed PostObject form. No dependency of its own: the page
// brings Uppy, this file only builds the plugin's options.
//
//   import Uppy from "@uppy/core";
//   import AwsS3 from "@uppy/aws-s3";
//   import { ossdirectAwsS3Options } from "./adapters/uppy-multipart.js";
//   const uppy = new Uppy();
//   uppy.use(AwsS3, ossdirectAwsS3Options(uppy, "https://…/", { getToken }));   // getToken optional
//   uppy.on("upload-success", (file, response) => console.log(response.body));  // the callback's record
//
// The options: shouldUseMultipart (above multipart_threshold: pass {threshold} from GET <sig>/limits,
// default 64 MiB), getChunkSize (exactly the server's part plan, or each part URL — bound to its
// size — would be refused), limit (4 requests at a time), and the hooks createMultipartUpload,
// signPart, listParts, completeMultipartUpload, abortMultipartUpload and getUploadParameters.
// A completed upload's response.body is the callback's record plus "location"; when OSS stored the
// object but the callback failed it is {ok: false, code: "CallbackFailed", …} (stored, not recorded).
// Our own upload id (the record's) is kept in the file's meta as `upload_id`; Uppy's key and uploadId
// are OSS's. The file's CRC-64/ECMA is read before the upload starts and pinned by the session or the
// form (crc64): a file that reaches OSS changed is refused at completion (body.code ChecksumMismatch).
// Each part's MD5 goes with signPart (md5: false skips it): the URL signs Content-MD5, which Uppy sends
// from signPart's headers, so OSS refuses a part changed on the way (400 InvalidDigest).
import { fileCrc64, requestJson, serviceBase } from "../common.js";
import { md5OfBlob } from "../md5.js";

const MiB = 1048576;

/** The server's part size for a file of `size` bytes (shared/ossdirect/core/multipart.py: plan). */
export function partSize(size) {
  return Math.max(8 * MiB, Math.ceil(size / 10000 / MiB) * MiB);
}

export function ossdirectAwsS3Options(uppy, signatureUrl, { getToken, threshold = 64 * MiB, limit = 4,
  md5 = true } = {}) {
  const base = serviceBase(signatureUrl);
  const ours = new Map(); // OSS uploadId → our upload_id (also in the file's meta, for restored files)

  async function call(path, { method = "GET", json, signal, query = {} } = {}) {
    const url = new URL(path, base);
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
    const { response, body } = await requestJson(url, { method, json, getToken, signal });
    if (!response.ok) {
      const error = new Error(body?.message || `the upload service answered ${response.status}`);
      error.code = body?.code;
      error.source = { status: response.status }; // Uppy reads it to decide on retries
      throw error;
    }
    return body;
  }

  function session(file, { uploadId, key }) {
    const uploadIdOurs = ours.get(uploadId) ?? uppy.getFile(file.id)?.meta?.upload_id ?? file.meta?.upload_id;
    return { key, upload_id: uploadIdOurs };
  }

  const route = (uploadId, suffix = "") => `multipart/${encodeURIComponent(uploadId)}${suffix}`;

  return {
    limit,
    shouldUseMultipart: (file) => (file.size || 0) > threshold,
    getChunkSize: (data) => partSize(data.size),

    async createMultipartUpload(file, signal) {
      const json = { filename: file.name, size: file.size, content_type: file.type || "application/octet-stream" };
      const crc64 = await fileCrc64(file, { signal });
      if (crc64) json.crc64 = crc64;
      const body = await call("multipart", { method: "POST", signal, json });
      ours.set(body.uploadId, body.upload_id);
      uppy.setFileMeta(file.id, { upload_id: body.upload_id });
      return body; // {uploadId, key, upload_id, part_size, part_count, …}
    },

    async signPart(file, { uploadId, key, partNumber, body, signal }) {
      const query = session(file, { uploadId, key });
      if (md5 && body instanceof Blob) query.md5 = await md5OfBlob(body, { signal });
      return call(route(uploadId, `/${partNumber}`), { signal, query }); // {url, headers: {Content-MD5}, …}
    },

    listParts(file, { uploadId, key, signal }) {
      return call(route(uploadId), { signal, query: session(file, { uploadId, key }) });
    },

    completeMultipartUpload(file, { uploadId, key, parts, signal }) {
      return call(route(uploadId, "/complete"), { method: "POST", signal, query: session(file, { uploadId, key }),
        json: { parts: parts.map(({ PartNumber, ETag }) => ({ PartNumber, ETag })) } });
    },

    async abortMultipartUpload(file, { uploadId, key, signal }) {
      await call(route(uploadId), { method: "DELETE", signal, query: session(file, { uploadId, key }) });
      ours.delete(uploadId);
    },

    async getUploadParameters(file, options) {
      const query = { filename: file.name, size: String(file.size), content_type: file.type || "application/octet-stream" };
      const crc64 = await fileCrc64(file, { signal: options?.signal });
      if (crc64) query.crc64 = crc64;
      const form = await call("", { signal: options?.signal, query });
      uppy.setFileMeta(file.id, { upload_id: form.upload_id });
      return { method: form.method, url: form.url, fields: form.fields, headers: {} };
    },
  };
}
