"""The product's rules: forms, sign-in, limits, callbacks, multipart, files, events."""
