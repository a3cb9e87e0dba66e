export * from "filepond/dist/filepond.esm.js"; // the ESM build (the package.json "browser" field names the UMD one)
import "filepond/dist/filepond.min.css"; // → dist/filepond.css
