// What the Uppy test page loads: the real @uppy/core and @uppy/aws-s3 from npm, as one ES module.
export { default as Uppy } from "@uppy/core";
export { default as AwsS3 } from "@uppy/aws-s3";
