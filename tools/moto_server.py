"""moto_server for the tests and the demo, with one change: requests are
applied one at a time, as AWS applies each request atomically.

moto's threaded server checks a condition and writes in two steps, so two
concurrent conditional writes (DynamoDB `attribute_not_exists`, S3
`If-None-Match`) can both succeed, which AWS never allows: the
page-once test saw two runs both win the same alert item. SQS is left
concurrent, because a long-polling ReceiveMessage would hold every other
request up. Usage as moto_server: `moto_server.py -H 127.0.0.1 -p 0`
(port 0: the kernel picks one, printed as "Running on http://...:PORT").
"""

import argparse
import threading

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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=0)
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    run_simple(args.host, args.port, serialized(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
