"""Function Compute 3.0 entry point (`handler: index.handler`)."""

from ossdirect.app.handlers import SignatureApp

app = SignatureApp()  # configuration is read once, at cold start


def handler(event, context):
    return app(event, context)
