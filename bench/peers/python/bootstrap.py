"""A minimal Lambda runtime loop: import the handler (init), then GET next / POST
response against AWS_LAMBDA_RUNTIME_API, as the managed runtime does."""

import http.client
import json
import os
import time

import handler as function

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = "/2018-06-01/runtime/invocation"


class Context:
    """The attributes Powertools reads from the Lambda context."""

    def __init__(self, request_id, deadline_ms, arn):
        self.aws_request_id = request_id
        self.invoked_function_arn = arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "peer")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))


def main():
    conn = http.client.HTTPConnection(API)
    while True:
        conn.request("GET", f"{BASE}/next")
        resp = conn.getresponse()
        event = json.loads(resp.read())
        request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id")
        ctx = Context(
            request_id,
            int(resp.getheader("Lambda-Runtime-Deadline-Ms", "0")),
            resp.getheader("Lambda-Runtime-Invoked-Function-Arn", ""),
        )
        result = function.handler(event, ctx)
        body = json.dumps(result).encode()
        conn.request(
            "POST",
            f"{BASE}/{request_id}/response",
            body=body,
            headers={"Content-Type": "application/json"},
        )
        conn.getresponse().read()


if __name__ == "__main__":
    main()
