"""``make stack`` / ``python -m devstack``: run the whole stack locally until Ctrl-C."""

import argparse
import logging
import os
import signal
import threading

os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")  # never reach out

from devstack import LocalStack, default_data_dir  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the OSS emulator, both functions and the web page locally.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--emulator-port", type=int, default=9100)
    parser.add_argument("--signature-port", type=int, default=9101)
    parser.add_argument("--callback-port", type=int, default=9102)
    parser.add_argument("--data-dir", default=str(default_data_dir()))
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(name)s %(message)s")

    stack = LocalStack(args.data_dir, args.host, args.emulator_port, args.signature_port, args.callback_port)
    stack.start()
    print(f"""
ossdirect local stack is running
  upload page:        {stack.page_url}
  signature function: {stack.signature_url}
  callback function:  {stack.callback_url}
  OSS emulator:       {stack.emulator.url}  (bucket {stack.bucket_url})
  records (SQLite):   {stack.records_path}
Open the upload page in a browser. Ctrl-C stops everything.
""", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        print("stopped", flush=True)


if __name__ == "__main__":
    main()
