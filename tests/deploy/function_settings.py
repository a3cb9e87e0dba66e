"""Which settings each function gets: the one statement both s.yaml (tests/deploy/test_s_yaml.py, and what
FC received in the rehearsal) and the local stack (devstack; tests/deploy/test_settings_parity.py) are
checked against. Names are ossdirect.settings.ENV_NAMES without the OSSDIRECT_ prefix.

(Meant to move into the settings table the lead is building in shared/ossdirect.)"""

from ossdirect.settings import ENV_NAMES

CALLBACK = {"BUCKET", "REGION", "PREFIX", "PUBLIC_BASE_URL", "OSS_ENDPOINT", "RECORDS", "RECORD_LOG",
            "TRUSTED_KEY_PREFIXES", "COMPAT"}
PROCESS = {"BUCKET", "REGION", "PREFIX", "OSS_ENDPOINT", "RECORDS", "RECORD_LOG", "QUARANTINE",
           "QUARANTINE_PREFIX", "ON_UPLOAD", "HOOK_MAX_ATTEMPTS"}
# the signature function reads the records too: multipart sessions live there, and GET /records/<id>
# (the page's poll) reads what the callback and process functions wrote; it calls OSS for multipart
SIGNATURE = set(ENV_NAMES) - {"RECORD_LOG", "TRUSTED_KEY_PREFIXES", "QUARANTINE", "QUARANTINE_PREFIX",
                              "ON_UPLOAD", "HOOK_MAX_ATTEMPTS"}
READS = {"signature": SIGNATURE, "callback": CALLBACK, "process": PROCESS}

# Settings that must have ONE value in every function that gets them: the same bucket, prefix and
# endpoint, and above all one record store (a per-function store would lose records and sessions).
SHARED = {"BUCKET", "REGION", "PREFIX", "PUBLIC_BASE_URL", "OSS_ENDPOINT", "RECORDS", "RECORD_LOG", "COMPAT"}

# The deployed functions' own extra variables (FC-specific, not settings of ossdirect).
FC_ONLY = {"PYTHONPATH", "ALIBABA_CLOUD_ECS_METADATA_DISABLED"}


def names(fn):
    return {"OSSDIRECT_" + n for n in READS[fn]}
