"""Alibaba Cloud OSS, in the layers of ``alibabacloud-oss-python-sdk-v2``.

``signer`` (pure signing: V4 header, V4 query presign, POST policy V4 and V1; no I/O),
``transport`` (one connection pool, one request function, one error parser), ``errors``
(``OssError``), ``client`` (``OssClient``: every OSS operation ossdirect uses); beside them
``policy`` (POST policy documents), ``credentials`` (the function's role keys) and
``callback_auth`` (OSS upload callback signatures). Nothing is imported here: the signature
function signs forms through ``signer`` alone, without the transport.
"""
