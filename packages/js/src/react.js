// React bindings: useOssDirectUpload (the list as state) and <OssDirectUpload> (a file input and the list).
// No JSX: it runs as is in any bundler or from an import map.
import { createElement as h, useEffect, useMemo, useRef, useState } from "react";
import { t } from "./i18n.js";
import { createUploadList, statusText } from "./upload-list.js";

/**
 * const { items, upload, cancel, clear, busy } = useOssDirectUpload(signatureUrl, { getToken, naming, folder,
 *   onUploaded(result, file), onError(error, file) });
 * Unmounting cancels the uploads still running.
 */
export function useOssDirectUpload(signatureUrl, options = {}) {
  const [items, setItems] = useState([]);
  const latest = useRef(null);
  latest.current = { ...options, signatureUrl };
  const list = useMemo(() => createUploadList(() => latest.current, setItems), []);
  useEffect(() => () => list.dispose(), [list]);
  return { items, upload: list.upload, cancel: list.cancel, clear: list.clear,
    busy: items.some((item) => item.state === "uploading") };
}

/** <OssDirectUpload signatureUrl getToken naming folder accept multiple label onUploaded onError /> */
export function OssDirectUpload({ signatureUrl, accept, multiple = true, label, className = "ossdirect-upload",
  ...options }) {
  const { items, upload, cancel } = useOssDirectUpload(signatureUrl, options);
  const inputId = `ossdirect-${useMemo(() => Math.random().toString(36).slice(2), [])}`;
  return h("div", { className },
    h("label", { htmlFor: inputId }, label ?? t("Choose files to upload")),
    h("input", { id: inputId, type: "file", accept, multiple, onChange: (e) => {
      const files = [...e.target.files];
      e.target.value = "";
      upload(files);
    } }),
    h("ul", null, items.map((item) => h("li", { key: item.id, "data-state": item.state },
      h("span", { className: "name" }, item.name),
      " ",
      h("progress", { max: item.size || 1, value: item.loaded, "aria-label": t("Progress of {name}", { name: item.name }) }),
      " ",
      h("span", { className: "status", role: "status" }, statusText(item)),
      item.state === "uploading" ? h("button", { type: "button", onClick: () => cancel(item.id),
        "aria-label": t("Cancel {name}", { name: item.name }) }, t("Cancel")) : null))));
}
