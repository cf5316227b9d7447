"""Test app for node/worker: one endpoint per behaviour the pool handles."""
import os
import signal
import time


def application(env, sr):
    path = env["PATH_INFO"]
    query = env.get("QUERY_STRING", "")
    if path == "/hello":
        sr("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "11")])
        return [b"Hello World"]
    if path == "/echo":
        body = env["wsgi.input"].read()
        sr("200 OK", [("X-Len", str(len(body)))])
        return [body]
    if path == "/pid":
        sr("200 OK", [])
        return [str(os.getpid()).encode()]
    if path == "/sleep":
        # ?ms=N
        time.sleep(int(query.partition("=")[2] or "0") / 1000)
        sr("200 OK", [])
        return [("slept %d" % os.getpid()).encode()]
    if path == "/crash":
        # ?ms=N: die by SIGKILL after N milliseconds, mid-request.
        time.sleep(int(query.partition("=")[2] or "0") / 1000)
        os.kill(os.getpid(), signal.SIGKILL)
    sr("404 Not Found", [])
    return [b"not found"]
