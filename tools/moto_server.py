"""moto_server for the tests and the demo, with one change: requests are
applied one at a time, as AWS applies each request atomically.

moto's threaded server checks a condition and writes in two steps, so two
concurrent conditional writes (DynamoDB `attribute_not_exists`, S3
`If-None-Match`) can both succeed, which AWS never allows: the
page-once test saw two runs both win the same alert item. SQS is left
concurrent, because a long-polling ReceiveMessage would hold every other
request up. Usage as moto_server: `moto_server.py -H 127.0.0.1 -p 0`
(port 0: the kernel picks one, printed as "Running on http://...:PORT").

One fault moto cannot make by itself, for the organisation tests: the role
ARNs listed (one per line) in the file MOTO_UNASSUMABLE_ROLES_FILE names
cannot be assumed: sts:AssumeRole answers AccessDenied, as AWS does for a
role that does not exist or does not trust the caller. The file is read on
every AssumeRole, so a test can refuse a role once it knows the account.

With MOTO_OPERATION_LOG=<file>, the operation of every request (the JSON
protocols' X-Amz-Target, the query protocols' Action, or the method and
path for S3) is appended to that file, one line each, for `make bench-org`.
"""

import argparse
import io
import os
import threading
from urllib.parse import parse_qs

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

ONE_AT_A_TIME = threading.Lock()


def serialized(app):
    def handle(environ, start_response):
        if "/sqs/aws4_request" in environ.get("HTTP_AUTHORIZATION", ""):
            return app(environ, start_response)
        with ONE_AT_A_TIME:
            # The whole response is produced under the lock.
            return list(app(environ, start_response))

    return handle


UNASSUMABLE_FILE = os.environ.get("MOTO_UNASSUMABLE_ROLES_FILE")


def unassumable():
    try:
        with open(UNASSUMABLE_FILE, encoding="utf-8") as f:
            return {line.strip() for line in f if line.strip()}
    except (OSError, TypeError):
        return set()

DENIED = (
    b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
    b"<Code>AccessDenied</Code><Message>User is not authorized to perform: sts:AssumeRole</Message>"
    b"</Error><RequestId>denied</RequestId></ErrorResponse>"
)


def unassumable_roles(app):
    def handle(environ, start_response):
        if UNASSUMABLE_FILE and environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            form = parse_qs(body.decode("utf-8", "replace"))
            if form.get("Action") == ["AssumeRole"] and form.get("RoleArn", [""])[0] in unassumable():
                start_response("403 Forbidden", [("Content-Type", "text/xml"), ("Content-Length", str(len(DENIED)))])
                return [DENIED]
        return app(environ, start_response)

    return handle


OPERATION_LOG = os.environ.get("MOTO_OPERATION_LOG")
OPERATION_LOCK = threading.Lock()


def operation_of(environ, body):
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action") or parse_qs(
        body.decode("utf-8", "replace")
    ).get("Action")
    if action:
        return action[0]
    return f"{environ.get('REQUEST_METHOD')} s3"


def logged_operations(app):
    def handle(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        with OPERATION_LOCK, open(OPERATION_LOG, "a", encoding="utf-8") as f:
            f.write(operation_of(environ, body) + "\n")
        return app(environ, start_response)

    return handle


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=0)
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    handler = unassumable_roles(serialized(app))
    if OPERATION_LOG:
        handler = logged_operations(handler)
    run_simple(args.host, args.port, handler, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
