// ossdirect × FilePond 4: a `server` whose `process` gets a signed form per file and POSTs it to OSS.
//
//   import { filepondServer } from "./adapters/filepond.js";
//   FilePond.create(input, { server: filepondServer(signatureUrl, { getToken }), allowRevert: false });
//   pond.on("processfile", (error, item) => JSON.parse(item.serverId));   // the callback's record
//
// The item's serverId is the callback's record as JSON text (load(JSON)); OSS's 203 (stored, not
// recorded) loads {ok: false, code: "CallbackFailed", unrecorded: true, upload_id, key}. Refusals call
// error(sentence) (labelFileProcessingError may be a function: it gets {body: sentence}). FilePond's
// abort stops the form request or the POST. Objects cannot be deleted from the browser: set allowRevert: false.
import { uploadFile } from "../uploader.js";
import { successBody } from "./common.js";

/** FilePond `server` option. options: getToken, naming, folder (as uploadFile's), serverId(body) → string. */
export function filepondServer(signatureUrl, { getToken, naming, folder, serverId = JSON.stringify } = {}) {
  return {
    process(fieldName, file, metadata, load, error, progress, abort) {
      const controller = new AbortController();
      uploadFile(signatureUrl, file, {
        getToken, naming, folder, signal: controller.signal,
        onProgress: (loaded, total) => progress(true, loaded, total),
      }).then(
        (result) => load(serverId(successBody(result))),
        (err) => { if (!err?.cancelled) error(err?.sentence || String(err)); },
      );
      return { abort: () => { controller.abort(); abort(); } };
    },
    revert: null, // nothing to undo from the browser: the upload is stored and recorded
  };
}
