export { default as React } from "react";
export { createRoot } from "react-dom/client";
export { Upload, Button, message } from "antd";
