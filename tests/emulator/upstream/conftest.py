# The downloaded upstream suite (cache/) runs only through tests/emulator/test_upstream_oss2.py, in its own
# process against an emulator: never collected with the project's tests.
collect_ignore = ["cache"]
