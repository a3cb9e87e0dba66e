"""Function Compute 3.0 entry point (`handler: index.handler`), invoked by the OSS trigger."""

from ossdirect.app.handlers import ProcessApp

app = ProcessApp()  # configuration (and the OSSDIRECT_ON_UPLOAD hook) is read once, at cold start


def handler(event, context):
    return app(event, context)
