"""Flask example with the same routes as the Django project (examples/django).

Unlike Django, this app lets exceptions reach the server
(PROPAGATE_EXCEPTIONS): /boom tests the worker's own 500 path, which must
log the traceback and keep serving. Load it with `wsgi-file = app.py`
(callable `application`, also exported as `app`).
"""
import hashlib
import os
import signal
import threading
import time

from flask import Flask, Response, jsonify, request

app = Flask(__name__)
app.config["PROPAGATE_EXCEPTIONS"] = True
application = app

UPLOAD_CHUNK = 64 * 1024
STREAM_CHUNKS = 5

# Calls of /feedback in this worker process (see the Django twin).
_feedback_calls = 0
_feedback_lock = threading.Lock()


@app.route("/")
def hello():
    return Response("Hello World", content_type="text/plain")


@app.route("/feedback")
def feedback():
    global _feedback_calls
    with _feedback_lock:
        _feedback_calls += 1
        calls = _feedback_calls
    response = jsonify(calls=calls, pid=os.getpid())
    response.headers["X-Calls"] = str(calls)
    return response


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


@app.route("/meta")
def meta():
    """The WSGI environ as JSON: what nginx (uwsgi_param) and the server sent."""
    return jsonify({k: _jsonable(v) for k, v in request.environ.items()})


@app.route("/upload", methods=["POST"])
def upload():
    """Reads the body in chunks, as a large upload must be streamed."""
    digest = hashlib.sha256()
    length = 0
    while True:
        chunk = request.stream.read(UPLOAD_CHUNK)
        if not chunk:
            break
        digest.update(chunk)
        length += len(chunk)
    return jsonify(sha256=digest.hexdigest(), length=length)


@app.route("/stream")
def stream():
    chunks = (f"chunk {i}\n".encode() for i in range(STREAM_CHUNKS))
    return Response(chunks, content_type="text/plain")


@app.route("/unicode")
def unicode():
    response = Response("héllo wörld ✓ 你好\n", content_type="text/plain; charset=utf-8")
    # Outside ASCII but inside latin-1: PEP 3333 header values are latin-1.
    response.headers["X-Latin"] = "café crème"
    return response


@app.route("/boom")
def boom():
    raise RuntimeError("boom: raised on purpose by the example app")


@app.route("/sleep")
def sleep():
    seconds = float(request.args.get("s", "1"))
    time.sleep(seconds)
    return Response(f"slept {seconds}\n", content_type="text/plain")


@app.route("/segv")
def segv():
    os.kill(os.getpid(), signal.SIGSEGV)
    return Response("unreachable\n", content_type="text/plain")
