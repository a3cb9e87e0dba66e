"""OSS-style XML errors."""

import os
from xml.sax.saxutils import escape


def request_id():
    return os.urandom(12).hex().upper()


# x-oss-ec for errors raised without their own: OSS's EC where it is known here, else one generic EC, so
# clients that read x-oss-ec (oss2's .ec, v2's ec) always get one
DEFAULT_EC = {"NoSuchKey": "0026-00000001", "NoSuchBucket": "0015-00000101", "AccessDenied": "0003-00000001",
              "SignatureDoesNotMatch": "0002-00000040", "InvalidDigest": "0002-00000019"}
GENERIC_EC = "0000-00000000"


class OSSError(Exception):
    def __init__(self, status, code, message, ec=None, **extra):
        super().__init__(message)
        ec = ec or DEFAULT_EC.get(code, GENERIC_EC)
        self.status, self.code, self.message, self.ec, self.extra = status, code, message, ec, extra

    def xml(self, req_id, host_id):
        parts = [f"<Code>{escape(self.code)}</Code>", f"<Message>{escape(self.message)}</Message>",
                 f"<RequestId>{req_id}</RequestId>", f"<HostId>{escape(host_id)}</HostId>"]
        for name, value in self.extra.items():
            parts.append(f"<{name}>{escape(str(value))}</{name}>")
        if self.ec:
            parts.append(f"<EC>{self.ec}</EC>")
            parts.append(f"<RecommendDoc>https://api.aliyun.com/troubleshoot?q={self.ec}</RecommendDoc>")
        return '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  ' + "\n  ".join(parts) + "\n</Error>\n"


def policy_failed(condition_text):
    return OSSError(403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {condition_text}",
                    "0006-00000227")


def invalid_policy(detail):
    return OSSError(400, "InvalidPolicyDocument", f"Invalid Policy: {detail}", "0006-00000201")


MALFORMED_XML = "The XML you provided was not well-formed or did not validate against our published schema."


def parse_xml(body, root_tag=None, ec=None):
    """A request's XML body as an element: no DTD or entity (no expansion tricks), well-formed, and rooted
    at ``root_tag`` when one is named; else 400 MalformedXML, as OSS answers."""
    import xml.etree.ElementTree as ET

    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise OSSError(400, "MalformedXML", MALFORMED_XML, ec)
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise OSSError(400, "MalformedXML", MALFORMED_XML, ec) from None
    if root_tag is not None and root.tag != root_tag:
        raise OSSError(400, "MalformedXML", MALFORMED_XML, ec)
    return root
