"""Test app for node/wsgi: one endpoint per behaviour under test."""
import hashlib
import os
import sys
import threading
import time
import resource

import uwsgi

CLOSED = []
barrier = threading.Barrier(4, timeout=10)


def hello(env, sr):
    sr("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello World"]


def upload(env, sr):
    # Read in chunks and hash, so a 5 MB body never sits in memory whole.
    h = hashlib.sha256()
    n = 0
    inp = env["wsgi.input"]
    while True:
        chunk = inp.read(32768)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sr("200 OK", [("X-Len", str(n)), ("X-Maxrss-Kb", str(rss_kb))])
    return [h.hexdigest().encode()]


def readline(env, sr):
    inp = env["wsgi.input"]
    first = inp.readline()
    limited = inp.readline(3)
    rest = inp.readlines()
    sr("200 OK", [])
    return [repr([first, limited, rest]).encode()]


def iterate(env, sr):
    sr("200 OK", [])
    return [b"|".join(line.rstrip(b"\n") for line in env["wsgi.input"])]


def write_cb(env, sr):
    write = sr("200 OK", [("Content-Type", "text/plain")])
    write(b"one ")
    write(b"two ")
    return [b"three"]


class Closing:
    def __init__(self, tag):
        self.tag = tag

    def __iter__(self):
        yield b"gen-"
        yield b"body"

    def close(self):
        CLOSED.append(self.tag)


def closing(env, sr):
    sr("200 OK", [])
    return Closing(env.get("QUERY_STRING", ""))


def closed(env, sr):
    sr("200 OK", [])
    return [",".join(CLOSED).encode()]


def exc_info(env, sr):
    sr("200 OK", [("X-Before", "1")])
    try:
        raise ValueError("boom")
    except ValueError:
        sr("503 Service Unavailable", [("X-After", "1")], sys.exc_info())
    return [b"recovered"]


def exc_info_late(env, sr):
    write = sr("200 OK", [])
    write(b"partial")
    try:
        raise ValueError("too late")
    except ValueError:
        sr("500 Oops", [], sys.exc_info())
    return [b"never"]


def raise_(env, sr):
    raise RuntimeError("app exploded")


def raise_mid(env, sr):
    sr("200 OK", [])

    def gen():
        yield b"first"
        raise RuntimeError("mid-stream")

    return gen()


def unicode_header(env, sr):
    sr("200 OK", [("X-Latin", "caf\u00e9"), ("X-Bytes", "plain")])
    return [b"ok"]


def bad_header(env, sr):
    sr("200 OK", [("X-Snow", "\u2603")])
    return [b"never"]


def stream(env, sr):
    sr("200 OK", [])

    def gen():
        for i in range(3):
            yield b"chunk%d" % i
            # The test answers on the "go" file once it saw the chunk.
            path = env["HTTP_X_GO"] + str(i)
            deadline = time.time() + 10
            while not os.path.exists(path) and time.time() < deadline:
                time.sleep(0.005)

    return gen()


def concurrent(env, sr):
    # Four requests must be inside the app at once for the barrier to open.
    barrier.wait()
    sr("200 OK", [])
    return [threading.current_thread().name.encode()]


def cache(env, sr):
    out = [
        uwsgi.cache_set("k", "v1"),
        uwsgi.cache_set("k", "v2"),
        uwsgi.cache_get("k"),
        uwsgi.cache_update("k", b"v3", 10, "other"),
        uwsgi.cache_get("k", "other"),
        uwsgi.cache_exists("nope"),
        uwsgi.cache_inc("n", 5),
        uwsgi.cache_num("n"),
        uwsgi.cache_keys(),
        uwsgi.cache_del("k"),
        uwsgi.cache_get("k"),
        uwsgi.cache_clear(),
        uwsgi.alarm("pager", "disk full"),
        uwsgi.worker_id(),
        uwsgi.numproc,
        uwsgi.opt.get("master"),
        uwsgi.opt.get("socket"),
    ]
    uwsgi.set_logvar("user", "alice")
    sr("200 OK", [])
    return [repr(out).encode()]


def environ(env, sr):
    keys = ["wsgi.url_scheme", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once",
            "wsgi.input_terminated", "wsgi.version", "REQUEST_METHOD", "PATH_INFO", "HTTP_X_LATIN"]
    sr("200 OK", [])
    return [repr({k: env.get(k) for k in keys}).encode()]


def filewrap(env, sr):
    path = env["HTTP_X_FILE"]
    sr("200 OK", [])
    return env["wsgi.file_wrapper"](open(path, "rb"), 1000)


def no_read(env, sr):
    sr("413 Request Entity Too Large", [])
    return [b"nope"]


def getenv(env, sr):
    sr("200 OK", [])
    return [os.environ.get(env["QUERY_STRING"], "<unset>").encode()]


def no_start(env, sr):
    return [b"body without start_response"]


def empty(env, sr):
    sr("204 No Content", [("X-Empty", "yes")])
    return []


def pid(env, sr):
    sr("200 OK", [])
    return [b"%d" % os.getpid()]


COUNTER_HEADERS = [("X-Count", "0")]


def counter(env, sr):
    # The same list object every time, changed in place: a cache of
    # encoded heads must not hand out the previous request's.
    COUNTER_HEADERS[0] = ("X-Count", str(int(COUNTER_HEADERS[0][1]) + 1))
    sr("200 OK", COUNTER_HEADERS)
    return [b"counted"]


def echo(env, sr):
    sr("200 OK", [])
    return [env["wsgi.input"].read()]


ROUTES = {
    "/": hello, "/upload": upload, "/readline": readline, "/iterate": iterate,
    "/write": write_cb, "/closing": closing, "/closed": closed, "/exc_info": exc_info,
    "/exc_info_late": exc_info_late, "/raise": raise_, "/raise_mid": raise_mid,
    "/unicode": unicode_header, "/bad_header": bad_header, "/stream": stream,
    "/concurrent": concurrent, "/cache": cache, "/environ": environ,
    "/filewrap": filewrap, "/no_read": no_read, "/pid": pid, "/getenv": getenv,
    "/no_start": no_start, "/empty": empty, "/counter": counter, "/echo": echo,
}


def application(env, sr):
    return ROUTES[env["PATH_INFO"]](env, sr)
