// Vue 3 bindings: the useOssDirectUpload composable and the <OssDirectUpload> component (render function:
// no SFC compiler needed). Events: "uploaded" (result, file), "error" (error, file).
import { defineComponent, h, onBeforeUnmount, shallowRef } from "vue";
import { t } from "./i18n.js";
import { createUploadList, statusText } from "./upload-list.js";

/** { items (a shallow ref), upload, cancel, clear }; getOptions() is read when each file starts. */
export function useOssDirectUpload(getOptions) {
  const items = shallowRef([]);
  const list = createUploadList(getOptions, (next) => { items.value = next; });
  onBeforeUnmount(() => list.dispose());
  return { items, upload: list.upload, cancel: list.cancel, clear: list.clear };
}

let counter = 0;

export const OssDirectUpload = defineComponent({
  name: "OssDirectUpload",
  props: {
    signatureUrl: { type: String, required: true },
    getToken: { type: Function, default: undefined },
    naming: { type: String, default: undefined },
    folder: { type: String, default: undefined },
    accept: { type: String, default: undefined },
    multiple: { type: Boolean, default: true },
    label: { type: String, default: undefined },
  },
  emits: ["uploaded", "error"],
  setup(props, { emit, expose }) {
    const { items, upload, cancel, clear } = useOssDirectUpload(() => ({
      signatureUrl: props.signatureUrl, getToken: props.getToken, naming: props.naming, folder: props.folder,
      onUploaded: (result, file) => emit("uploaded", result, file),
      onError: (error, file) => emit("error", error, file),
    }));
    expose({ upload, cancel, clear, items });
    const inputId = `ossdirect-vue-${++counter}`;
    return () => h("div", { class: "ossdirect-upload" }, [
      h("label", { for: inputId }, props.label ?? t("Choose files to upload")),
      h("input", { id: inputId, type: "file", accept: props.accept, multiple: props.multiple, onChange: (e) => {
        const files = [...e.target.files];
        e.target.value = "";
        upload(files);
      } }),
      h("ul", null, items.value.map((item) => h("li", { key: item.id, "data-state": item.state }, [
        h("span", { class: "name" }, item.name),
        " ",
        h("progress", { max: item.size || 1, value: item.loaded, "aria-label": t("Progress of {name}", { name: item.name }) }),
        " ",
        h("span", { class: "status", role: "status" }, statusText(item)),
        item.state === "uploading" ? h("button", { type: "button", onClick: () => cancel(item.id),
          "aria-label": t("Cancel {name}", { name: item.name }) }, t("Cancel")) : null,
      ]))),
    ]);
  },
});
