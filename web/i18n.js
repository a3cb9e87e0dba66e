// The page's and the clients' language: English, or Simplified Chinese (zh-CN) when the browser prefers
// it (navigator.languages, first match wins). t(english, params) looks the English sentence up in the
// chosen catalog (English itself when it has none) and fills {name} placeholders. localizePage(document)
// translates the static page (text, placeholder, aria-label, alt, title) and sets <html lang>.
// setLocale("en" | "zh-CN") overrides the browser's choice (before the sentences are made).

const ZH_CN = {
  // index.html
  "Upload files": "上传文件",
  "Sign-in": "登录",
  "Test user": "测试用户",
  "e.g. alice": "例如 alice",
  "Sign in": "登录",
  "Local stack only: any name gets a short-lived test token.": "仅限本地环境:任何名字都会得到一个短期测试令牌。",
  "Upload options": "上传选项",
  "File names": "文件名",
  "Let the server name them": "由服务器命名",
  "Keep the original names": "保留原始文件名",
  "Folder (optional)": "文件夹(可选)",
  "e.g. photos/2026": "例如 photos/2026",
  "Drop files here": "将文件拖放到这里",
  ", paste them": ",粘贴",
  "or": "或",
  "Choose files": "选择文件",
  "Press Enter to choose files, or paste files or a screenshot with": "按 Enter 选择文件,或粘贴文件或截图,快捷键",
  ".": "。",
  "Unfinished uploads": "未完成的上传",
  "Uploads": "上传列表",
  "Cancel all": "全部取消",
  "Overall progress": "总进度",
  "Loading limits…": "正在读取上传限制…",
  "Developer details": "开发者详情",
  "Your files": "你的文件",
  "Refresh": "刷新",
  "Show more files": "显示更多文件",
  // app.js
  "The sign-in service answered {status}. Try again later.": "登录服务返回了 {status}。请稍后再试。",
  "Could not reach the sign-in service. Check your connection and retry.": "无法连接登录服务。请检查网络后重试。",
  "1 upload": "1 次上传",
  "{n} uploads": "{n} 次上传",
  "Remaining: {parts}": "剩余:{parts}",
  " and ": " 和 ",
  " (resets {when})": "({when} 重置)",
  "Signed in as ": "已登录:",
  "Signed in as {user}.": "已登录:{user}。",
  "Your uploads go to ": "你的文件将上传到 ",
  "Your uploads go to {folder}.": "你的文件将上传到 {folder}。",
  "Sign in to upload": "登录后上传",
  "Sign-in is not required here.": "此处无需登录。",
  "The upload service could not be reached. Reload the page to try again.": "无法连接上传服务。请刷新页面重试。",
  "any type": "任意类型",
  "Up to {max} per file. Accepted: {types}.": "每个文件最大 {max}。接受:{types}。",
  "images": "图片",
  "videos": "视频",
  "audio": "音频",
  "text files": "文本文件",
  "{kind} images": "{kind} 图片",
  "{kind} files": "{kind} 文件",
  ", ": "、",
  "Files of this type are not accepted here. Accepted: {types}.": "此处不接受这种类型的文件。接受:{types}。",
  "Up to {max} per file (at least {min}). Accepted: {types}.": "每个文件最大 {max}(至少 {min})。接受的类型:{types}。",
  "{name} ({size}): choose or drop this file again to resume it.": "{name}({size}):再次选择或拖入此文件即可继续上传。",
  "Discard": "放弃",
  "Discard the unfinished upload of {name}": "放弃 {name} 未完成的上传",
  "{name}: unfinished upload discarded.": "{name}:已放弃未完成的上传。",
  "Resuming…": "正在继续…",
  "{name}: resumed.": "{name}:已继续。",
  "Paused: {done} of {count} parts uploaded.": "已暂停:已上传 {done}/{count} 个分片。",
  "{name}: paused.": "{name}:已暂停。",
  "{files} added {how}.": "已{how}添加 {files}。",
  "1 file": "1 个文件",
  "{n} files": "{n} 个文件",
  "from the clipboard": "从剪贴板",
  "It is {size}; the limit is {limit}.": "文件大小为 {size};上限为 {limit}。",
  "It is {size}; the minimum is {minimum}.": "文件大小为 {size};下限为 {minimum}。",
  "Uploading… {pct}%": "正在上传… {pct}%",
  "Resuming the unfinished upload…": "正在继续未完成的上传…",
  "callback failed": "回调失败",
  "Uploaded and recorded": "已上传并记录",
  "Uploaded": "已上传",
  "Cancelled": "已取消",
  "(Tried {n} times.)": "(已尝试 {n} 次。)",
  "Retrying automatically (retry {n} of {count}).": "正在自动重试(第 {n} 次,共 {count} 次)。",
  "Waiting…": "等待中…",
  "Next try in {n} s.": "{n} 秒后重试。",
  "Checking whether it gets recorded…": "正在检查是否已记录…",
  "This service cannot look records up; the file is stored.": "此服务无法查询记录;文件已保存。",
  "The record cannot be checked from this page; the file is stored.": "无法在此页面检查记录;文件已保存。",
  "Still not recorded after a minute. The file is stored; the site can record it later.":
    "一分钟后仍未记录。文件已保存;网站稍后可以记录它。",
  " (by the storage event)": "(由存储事件记录)",
  "Stored and recorded{by}.": "已保存并记录{by}。",
  "{name}: recorded now{by}, record {id}.": "{name}:现已记录{by},记录 {id}。",
  "saved": "已保存",
  "Resume": "继续",
  "Pause": "暂停",
  "Retry now": "立即重试",
  "Retry": "重试",
  "Remove from list": "从列表移除",
  "Remove": "移除",
  "Remove from list: {name} (the stored file is kept)": "从列表移除:{name}(已保存的文件会保留)",
  "Remove {name}": "移除 {name}",
  "It uploads once you sign in.": "登录后会自动上传。",
  "Signed in: uploading the file that waited.": "已登录:正在上传等待中的文件。",
  "Signed in: uploading the {n} files that waited.": "已登录:正在上传等待中的 {n} 个文件。",
  "Preview of {name}": "{name} 的预览",
  "Progress of {name}": "{name} 的进度",
  "Cancel": "取消",
  "Cancel {name}": "取消 {name}",
  "{name} removed; its upload was cancelled.": "已移除 {name};其上传已取消。",
  "{name} removed from the list; the stored file is kept.": "已从列表移除 {name};已保存的文件会保留。",
  "{name} removed from the list.": "已从列表移除 {name}。",
  "Key": "对象键",
  "Size": "大小",
  "Record": "记录",
  "Time": "耗时",
  "User": "用户",
  "Recorded by": "记录来源",
  "Link": "链接",
  "Open file": "打开文件",
  "Open file {name}": "打开文件 {name}",
  "Stored privately: there is no public link.": "已私有保存:没有公开链接。",
  "Loading your files…": "正在读取你的文件…",
  "You have no files yet.": "你还没有文件。",
  "Showing 1 file.": "显示 1 个文件。",
  "Showing {n} files.": "显示 {n} 个文件。",
  "It arrived changed on the way: it cannot be downloaded.": "文件在传输中被改变:无法下载。",
  "Held back by a content check: it cannot be downloaded.": "内容检查未通过,已被扣留:无法下载。",
  "Flagged by a content check.": "内容检查标记了此文件。",
  "It cannot be downloaded.": "无法下载。",
  "Download": "下载",
  "Download {name}": "下载 {name}",
  "Delete": "删除",
  "Delete {name}": "删除 {name}",
  "{name}: download started.": "{name}:已开始下载。",
  "Delete {name}? This cannot be undone.": "删除 {name}?此操作无法撤销。",
  "Yes, delete": "确认删除",
  "Yes, delete {name}": "确认删除 {name}",
  "Keep": "保留",
  "Keep {name}": "保留 {name}",
  "Deleting…": "正在删除…",
  "{name} deleted.": "已删除 {name}。",
  // common.js, uploader.js, multipart.js
  "This file is larger than the site accepts.": "此文件超过了网站允许的大小。",
  "This file is smaller than the site accepts.": "此文件小于网站要求的大小。",
  "Files of this type are not accepted here.": "此处不接受这种类型的文件。",
  "The browser could not tell this file's type.": "浏览器无法识别此文件的类型。",
  "The upload service is not set up yet (it has no credentials). Try again later.": "上传服务尚未配置(没有凭证)。请稍后再试。",
  "The upload service is misconfigured. Try again later.": "上传服务配置有误。请稍后再试。",
  "The upload service is misconfigured: {detail}": "上传服务配置有误:{detail}",
  "This page is not allowed to upload to this service.": "此页面不允许向该服务上传。",
  "Choosing a folder is not allowed here.": "此处不允许选择文件夹。",
  "That folder name cannot be used.": "不能使用该文件夹名。",
  "That file name cannot be used.": "不能使用该文件名。",
  "Sign-in cannot be checked right now. Try again in a moment.": "暂时无法验证登录。请稍后再试。",
  "You have reached your upload allowance.": "你已用完上传额度。",
  "This file is not there any more.": "此文件已不存在。",
  "Sign in to upload.": "登录后才能上传。",
  "Cancelled.": "已取消。",
  "Try again later.": "请稍后再试。",
  "Try again in {n} seconds.": "请在 {n} 秒后再试。",
  "Try again in {n} minutes.": "请在 {n} 分钟后再试。",
  "Try again in {n} hours.": "请在 {n} 小时后再试。",
  "Could not reach the upload service. Check your connection and retry.": "无法连接上传服务。请检查网络后重试。",
  "Too many uploads right now.": "当前上传过多。",
  "The upload service answered {status}.": "上传服务返回了 {status}。",
  "unknown error": "未知错误",
  "The storage refused the file: it is larger than allowed.": "存储拒绝了此文件:文件超过允许的大小。",
  "The storage refused the file: it is smaller than allowed.": "存储拒绝了此文件:文件小于允许的大小。",
  "A file with this name already exists; it was not replaced.": "同名文件已存在;未被替换。",
  "The storage rejected the upload signature. Reload the page and try again.": "存储拒绝了上传签名。请刷新页面重试。",
  "The storage and the upload service disagree about the time. Try again later.": "存储与上传服务的时间不一致。请稍后再试。",
  "The upload credentials were not accepted. Reload the page and try again.": "上传凭证未被接受。请刷新页面重试。",
  "The storage refused the file: this type of file is not accepted.": "存储拒绝了此文件:不接受这种类型的文件。",
  "The upload form expired before the file was sent.": "上传表单在文件发送前已过期。",
  "The storage refused the upload: the file does not match what the form allows.": "存储拒绝了上传:文件与表单的限制不符。",
  "The storage refused the upload ({code}).": "存储拒绝了上传({code})。",
  "The connection to the storage failed. Check your connection and retry.": "与存储的连接失败。请检查网络后重试。",
  "Stored, but the server did not record it.": "已保存,但服务器未记录。",
  "Too large: {size}; the limit is {limit}.": "文件过大:{size};上限为 {limit}。",
  "Too small: {size}; the minimum is {minimum}.": "文件过小:{size};下限为 {minimum}。",
  "Files of type {type} are not accepted (allowed: {types}).": "不接受 {type} 类型的文件(允许:{types})。",
  "1 byte": "1 字节",
  "{n} bytes": "{n} 字节",
  "Large uploads are not available on this service.": "此服务不支持大文件上传。",
  "This upload no longer exists on the server. Start it again.": "服务器上已不存在此上传。请重新开始。",
  "This upload was cancelled. Start it again.": "此上传已取消。请重新开始。",
  "The upload was incomplete when it was finished, and was discarded. Start it again.": "完成时上传不完整,已被丢弃。请重新开始。",
  "A part of the upload did not match the plan, and the upload was discarded. Start it again.": "上传的某个分片与计划不符,上传已被丢弃。请重新开始。",
  "A part of the upload changed while it was finished, and the upload was discarded.": "上传的某个分片在完成时发生了变化,上传已被丢弃。",
  "The uploaded size did not match the file, and the upload was discarded. Start it again.": "上传的大小与文件不符,上传已被丢弃。请重新开始。",
  "The upload service did not sign a part.": "上传服务没有为某个分片签名。",
  "The file arrived changed on the way (its checksum differs) and was not accepted. Upload it again.":
    "文件在传输中被改变(校验值不一致),未被接受。请重新上传。",
  "The file could not be read. Choose it again.": "无法读取此文件。请重新选择。",
  "The storage hides the upload receipts (ETag) from this page: its CORS rules must expose the ETag header.":
    "存储对此页面隐藏了上传回执(ETag):其 CORS 规则必须暴露 ETag 头。",
  // React and Vue components (packages/js)
  "Choose files to upload": "选择要上传的文件",
};

export const CATALOGS = { "zh-CN": ZH_CN };

/** The locale for a list of language tags (navigator.languages): "zh-CN" for any zh-Hans/zh-CN/zh-SG/zh, else "en". */
export function pickLocale(languages = globalThis.navigator?.languages ?? [globalThis.navigator?.language]) {
  for (const tag of languages || []) {
    const lang = String(tag || "").toLowerCase();
    if (lang === "zh" || lang.startsWith("zh-cn") || lang.startsWith("zh-hans") || lang.startsWith("zh-sg")) return "zh-CN";
    if (lang.startsWith("en")) return "en";
  }
  return "en";
}

let current = pickLocale();

export function getLocale() { return current; }

export function setLocale(locale) {
  current = CATALOGS[locale] ? locale : "en";
  return current;
}

/** The sentence in the current language, {placeholders} filled from params. */
export function t(english, params) {
  const text = CATALOGS[current]?.[english] ?? english;
  return params ? text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m)) : text;
}

const ATTRIBUTES = ["placeholder", "aria-label", "alt", "title"];

/** Translate a static page in place: its text nodes (whitespace kept around them) and labelling attributes. */
export function localizePage(doc = document) {
  doc.documentElement.lang = current;
  if (current === "en") return;
  doc.title = t(doc.title.trim());
  const walker = doc.createTreeWalker(doc.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue.replace(/\s+/g, " ");
    const key = text.trim();
    if (!key || !(key in CATALOGS[current])) continue;
    node.nodeValue = text.slice(0, text.indexOf(key)) + t(key) + text.slice(text.indexOf(key) + key.length);
  }
  for (const el of doc.body.querySelectorAll(ATTRIBUTES.map((a) => `[${a}]`).join(","))) {
    for (const name of ATTRIBUTES) {
      const value = el.getAttribute(name);
      if (value && value in CATALOGS[current]) el.setAttribute(name, t(value));
    }
  }
}
