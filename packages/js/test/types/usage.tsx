// Typed use of the published entry points (resolved through package.json "exports", as an app would):
// `tsc --noEmit -p test/types` fails if a declaration is missing, wrong, or disagrees with this use.
import { fetchLimits, formatBytes, getLocale, MultipartUpload, pickLocale, setLocale, t, uploadFile, UploadError,
  uploadMultipart, type Limits, type UploadResult } from "ossdirect";
import { ossRequest } from "ossdirect/adapters/antd";
import { filepondServer } from "ossdirect/adapters/filepond";
import { restrictionsFromLimits } from "ossdirect/adapters/uppy";
import { ossdirectAwsS3Options, partSize } from "ossdirect/adapters/uppy-multipart";
import { OssDirectUpload, useOssDirectUpload } from "ossdirect/react";
import { OssDirectUpload as VueUpload } from "ossdirect/vue";
import { createApp, h } from "vue";

const sig = "https://sig.example/";
const getToken = async ({ refresh }: { refresh: boolean }) => (refresh ? "fresh" : "cached");

export async function send(file: File): Promise<string> {
  const limits: Limits = await fetchLimits(sig, { getToken });
  const max: number = limits.max_bytes;
  let controller: MultipartUpload | null = null;
  try {
    const result: UploadResult = await uploadFile(sig, file, { getToken, limits, naming: "original",
      onProgress: (loaded: number, total: number) => console.log(loaded / total),
      onMultipart: (upload) => { controller = upload; upload.pause(); } });
    const id: string | null | undefined = result.record?.record_id;
    return `${result.state} ${id} ${formatBytes(max)} ${controller}`;
  } catch (err) {
    if (err instanceof UploadError && err.signIn) return t("Sign in to upload.");
    throw err;
  }
}

export async function parts(file: File): Promise<number> {
  const upload = uploadMultipart(sig, file, { concurrency: 2, onState: (state) => console.log(state) });
  const result = await upload;
  return (result.multipart?.partCount ?? 0) + partSize(file.size) + upload.partsDone;
}

export const locale: "en" | "zh-CN" = setLocale(pickLocale(["zh-CN"])) && getLocale();
export const request = ossRequest(sig, { getToken });
export const server = filepondServer(sig, { serverId: (body) => JSON.stringify(body) });
export const restrictions = restrictionsFromLimits({ max_bytes: 10, min_bytes: 1, content_types: ["image/*"] });
export const awsOptions = ossdirectAwsS3Options({}, sig, { threshold: 64 * 1048576 });

export function Uploader() {
  const { items, upload, busy } = useOssDirectUpload(sig, { getToken, onUploaded: (r) => console.log(r.key) });
  return (
    <div>
      <OssDirectUpload signatureUrl={sig} getToken={getToken} accept="image/*"
        onError={(error) => console.log(error.sentence)} />
      <button disabled={busy} onClick={() => upload([])}>{items.length}</button>
    </div>
  );
}

createApp({ render: () => h(VueUpload, { signatureUrl: sig, multiple: false,
  onUploaded: (result: UploadResult) => console.log(result.key) }) });
