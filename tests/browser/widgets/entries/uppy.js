export { default as Uppy } from "@uppy/core";
export { default as XHRUpload } from "@uppy/xhr-upload";
export { default as AwsS3 } from "@uppy/aws-s3";
