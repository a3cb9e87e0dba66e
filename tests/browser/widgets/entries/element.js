export { createApp, h, ref } from "vue";
export { ElUpload, ElButton } from "element-plus";
