"""moto server, one request at a time.

moto's threaded server is not atomic for concurrent DynamoDB TransactWriteItems (it
checks and writes item by item), so concurrent conditional transactions could both
succeed. Serving requests one at a time gives DynamoDB's all-or-nothing semantics.

It also keeps how long it spent serving each kind of call, which the load benchmark
reads to tell how busy the emulator was: GET /_dishpatch/busy answers
{"service.Action": [calls, seconds], ...} since the start.
Usage: python moto_serial.py PORT
"""
import io
import json
import sys
import time
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

BUSY_PATH = "/_dishpatch/busy"


def kind(environ):
    """"service.Action" of a request, from its target header, its form or its path."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        service, _, action = target.partition(".")
        return f"{service.split('_')[0]}.{action}"
    scope = environ.get("HTTP_AUTHORIZATION", "").split("Credential=")[-1].split("/")
    service = scope[3] if len(scope) > 3 else "other"
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action", [""])[0]
    if not action and environ.get("CONTENT_TYPE", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
    return f"{service}.{action or environ.get('REQUEST_METHOD', '')}"


class Timed:
    """Wraps the moto app and adds up the time spent in it per kind of call."""

    def __init__(self, app):
        self.app = app
        self.busy = {}

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == BUSY_PATH:
            body = json.dumps(self.busy).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        label = kind(environ)
        started = time.perf_counter()
        # The body is produced inside the app call for moto's responses, so timing the
        # call and joining the chunks covers the whole of the work.
        chunks = list(self.app(environ, start_response))
        calls, seconds = self.busy.get(label, (0, 0.0))
        self.busy[label] = (calls + 1, seconds + time.perf_counter() - started)
        return chunks


run_simple(
    "127.0.0.1",
    int(sys.argv[1]),
    Timed(DomainDispatcherApplication(create_backend_app)),
    threaded=False,
    request_handler=MotoRequestHandler,
)
