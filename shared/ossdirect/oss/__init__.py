"""Alibaba Cloud OSS wire protocol: signer, credentials, client."""
