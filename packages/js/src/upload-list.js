// The list behind the React and Vue components: one entry per file, updated as uploadFile reports.
// Framework-free: onChange(items) gets a new array (never mutated) after every change.
import { t } from "./i18n.js";
import { uploadFile } from "./uploader.js";

/**
 * getOptions() → {signatureUrl, getToken, naming, folder, limits, multipart, onUploaded, onError}, read when
 * a file starts (so the latest props apply). Items: {id, name, size, type, state, loaded, result, error}
 * with state "uploading" | "done" | "unrecorded" | "failed" | "cancelled".
 */
export function createUploadList(getOptions, onChange) {
  let items = [];
  let nextId = 1;
  const controllers = new Map();
  const update = (id, patch) => {
    items = items.map((item) => (item.id === id ? { ...item, ...patch } : item));
    onChange(items);
  };

  async function uploadOne(file) {
    const id = nextId++;
    const controller = new AbortController();
    controllers.set(id, controller);
    items = [...items, { id, name: file.name, size: file.size, type: file.type, state: "uploading", loaded: 0,
      result: null, error: null }];
    onChange(items);
    const { signatureUrl, onUploaded, onError, ...options } = getOptions();
    try {
      const result = await uploadFile(signatureUrl, file, { ...options, signal: controller.signal,
        onProgress: (loaded) => update(id, { loaded: Math.min(loaded, file.size) }) });
      update(id, { state: result.state, loaded: file.size, result });
      onUploaded?.(result, file);
      return result;
    } catch (error) {
      update(id, { state: error?.cancelled ? "cancelled" : "failed", error });
      if (!error?.cancelled) onError?.(error, file);
      return null;
    } finally {
      controllers.delete(id);
    }
  }

  return {
    get items() { return items; },
    /** Upload files (a FileList or an array), all at once; resolves with their results (null: failed). */
    upload: (files) => Promise.all([...files].map(uploadOne)),
    /** Cancel one upload by item id, or every running one. */
    cancel(id) {
      for (const [key, controller] of controllers) if (id === undefined || key === id) controller.abort();
    },
    /** Forget the finished items. */
    clear() {
      items = items.filter((item) => item.state === "uploading");
      onChange(items);
    },
    dispose() { for (const controller of controllers.values()) controller.abort(); },
  };
}

/** The item's status, a sentence for a person in the page's language. */
export function statusText(item) {
  switch (item.state) {
    case "uploading": return t("Uploading… {pct}%", { pct: Math.floor((100 * item.loaded) / (item.size || 1)) });
    case "done": return item.result?.record ? t("Uploaded and recorded") : t("Uploaded");
    case "unrecorded": return item.result?.sentence || t("Stored, but the server did not record it.");
    case "cancelled": return t("Cancelled");
    default: return item.error?.sentence || String(item.error?.message || item.error || "");
  }
}
