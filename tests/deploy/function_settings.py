"""Which settings each function gets: the one statement both s.yaml (tests/deploy/test_s_yaml.py, and what
FC received in the rehearsal) and the local stack (devstack; tests/deploy/test_settings_parity.py) are
checked against. It is the settings table itself (ossdirect.settings.SETTINGS: each row names the functions
that read it, and whether they must all get one value); names are without the OSSDIRECT_ prefix."""

from ossdirect.settings import FUNCTIONS, SHARED as _SHARED, names_for

READS = {fn: set(names_for(fn)) for fn in FUNCTIONS}
SIGNATURE, CALLBACK, PROCESS = READS["signature"], READS["callback"], READS["process"]

# Settings that must have ONE value in every function that gets them: the same bucket, prefix and
# endpoint, and above all one record store (a per-function store would lose records and sessions).
SHARED = set(_SHARED)

# The deployed functions' own extra variables (FC-specific, not settings of ossdirect).
FC_ONLY = {"PYTHONPATH", "ALIBABA_CLOUD_ECS_METADATA_DISABLED"}


def names(fn):
    return {"OSSDIRECT_" + n for n in READS[fn]}
