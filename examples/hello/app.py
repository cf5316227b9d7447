"""Minimal WSGI application: the hello-world of `make run` and the benchmark."""

BODY = b"Hello World"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
