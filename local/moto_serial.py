"""moto server, one request at a time.

moto's threaded server is not atomic for concurrent DynamoDB TransactWriteItems (it
checks and writes item by item), so concurrent conditional transactions could both
succeed. Serving requests one at a time gives DynamoDB's all-or-nothing semantics.
Usage: python moto_serial.py PORT
"""
import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

run_simple(
    "127.0.0.1",
    int(sys.argv[1]),
    DomainDispatcherApplication(create_backend_app),
    threaded=False,
    request_handler=MotoRequestHandler,
)
