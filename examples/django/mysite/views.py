"""Views that exercise one server behaviour each (used by e2e and bench)."""
import hashlib
import json
import os
import signal
import threading
import time

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

# Calls of /feedback in this worker process: a cached response shows a stale
# count, a fresh one a higher count.
_feedback_calls = 0
_feedback_lock = threading.Lock()

UPLOAD_CHUNK = 64 * 1024
STREAM_CHUNKS = 5


def hello(request):
    return HttpResponse("Hello World", content_type="text/plain")


def feedback(request):
    global _feedback_calls
    with _feedback_lock:
        _feedback_calls += 1
        calls = _feedback_calls
    response = JsonResponse({"calls": calls, "pid": os.getpid()})
    response["X-Calls"] = str(calls)
    return response


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def meta(request):
    """request.META as JSON: what nginx (uwsgi_param) and the server sent."""
    return JsonResponse({k: _jsonable(v) for k, v in request.META.items()})


def upload(request):
    """Reads the body in chunks, as a large upload must be streamed."""
    if request.method != "POST":
        return HttpResponse("POST a body\n", status=405, content_type="text/plain")
    digest = hashlib.sha256()
    length = 0
    while True:
        chunk = request.read(UPLOAD_CHUNK)
        if not chunk:
            break
        digest.update(chunk)
        length += len(chunk)
    return JsonResponse({"sha256": digest.hexdigest(), "length": length})


def stream(request):
    chunks = (f"chunk {i}\n".encode() for i in range(STREAM_CHUNKS))
    return StreamingHttpResponse(chunks, content_type="text/plain")


def unicode(request):
    # A header value outside ASCII but inside latin-1 (PEP 3333 headers are
    # latin-1 strings) and a UTF-8 body.
    response = HttpResponse("héllo wörld ✓ 你好\n", content_type="text/plain; charset=utf-8")
    response["X-Latin"] = "café crème"
    return response


def boom(request):
    raise RuntimeError("boom: raised on purpose by the example app")


def sleep(request):
    seconds = float(request.GET.get("s", "1"))
    time.sleep(seconds)
    return HttpResponse(f"slept {seconds}\n", content_type="text/plain")


def segv(request):
    os.kill(os.getpid(), signal.SIGSEGV)
    return HttpResponse("unreachable\n", content_type="text/plain")
