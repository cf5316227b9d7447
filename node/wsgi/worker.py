"""gouwsgi's bundled Python worker (standard library only).

The Go master starts this file with the worker configuration as JSON in the
GOUWSGI_WORKER environment variable. It loads the WSGI application the way
uWSGI does, then serves requests that arrive as uwsgi packets on one
persistent data connection per thread and talks to the master on a control
connection. The protocol is documented in node/wire/frame.go; every message
is a uwsgi packet: modifier1, little-endian uint16 size, modifier2, payload.
"""

# Only modules the interpreter has loaded anyway or that are written in C:
# whatever the zygote imports sits in every worker. socket, signal,
# threading, json and traceback would pull in enum, re, collections and
# more, a megabyte or two the hello-world app never needs.
import _signal
import _socket
import _thread
import array
import atexit
import gc
import io
import os
import sys
import time

MOD_REQUEST = 0
MOD_BODY = 240
MOD_HEADERS = 241
MOD_END = 242
MOD_CALL = 243
MOD_REPLY = 244
MOD_HELLO = 245
MOD_SPAWN = 246
MOD_SPAWNED = 247

BODY_DATA = 0
BODY_END = 1
BODY_ABORT = 2

REPLY_OK = 0
REPLY_NONE = 1
REPLY_ERROR = 2
REPLY_NOT_FOUND = 3

MAX_PAYLOAD = 0xFFFF
# A buffered response is flushed once this much is pending, so a large
# list-of-bytes body never sits whole in the output buffer.
FLUSH_AT = 256 * 1024

VERSION = b"2.0.21-gouwsgi"

BODY_END_FRAME = bytes((MOD_BODY, 0, 0, BODY_END))
END_FRAME = bytes((MOD_END, 0, 0, 0))

# Iterators over an already complete body: the whole response can go out in
# one sendall. Django's HttpResponse iterates as a list_iterator too.
COMPLETE_ITERS = (type(iter([])), type(iter(())))


class ProtocolError(Exception):
    """The peer sent something the protocol does not allow."""


class ConnectionLost(ConnectionError):
    """The master closed the connection in the middle of a message."""


def print_exc():
    import traceback
    traceback.print_exc()


def format_exc():
    import traceback
    return traceback.format_exc()


def socket_reader(fd, size):
    """A buffered reader on a socket fd (what socket.makefile gives)."""
    return io.BufferedReader(io.FileIO(fd, "rb", closefd=False), size)


def parse_config(raw):
    """Decode the JSON config with the C scanner json itself uses."""
    try:
        import _json
    except ImportError:
        import json
        return json.loads(raw)

    class Context:
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = None
        memo = {}

    value, end = _json.make_scanner(Context())(raw, 0)
    if raw[end:].strip():
        raise ValueError("extra data after the worker config at %d" % end)
    return value


def frame_header(mod1, size, mod2):
    return bytes((mod1, size & 0xFF, size >> 8, mod2))


def encode_vars(pairs):
    """Encode (bytes, bytes) pairs as a uwsgi vars block."""
    parts = []
    for k, v in pairs:
        parts.append(len(k).to_bytes(2, "little"))
        parts.append(k)
        parts.append(len(v).to_bytes(2, "little"))
        parts.append(v)
    return b"".join(parts)


def packet(mod1, mod2, pairs):
    payload = encode_vars(pairs)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("vars block of %d bytes exceeds %d" % (len(payload), MAX_PAYLOAD))
    return frame_header(mod1, len(payload), mod2) + payload


def parse_vars(b, env=None):
    """Decode a vars block into env (a new dict by default) as latin-1 str,
    as PEP 3333 wants."""
    # Decoding the block once and slicing the str is twice as fast as
    # decoding every key and value on its own.
    s = str(b, "latin-1")
    if env is None:
        env = {}
    i = 0
    n = len(b)
    try:
        while i < n:
            k = i + 2
            j = k + (b[i] | b[i + 1] << 8)
            v = j + 2
            i = v + (b[j] | b[j + 1] << 8)
            env[s[k:j]] = s[v:i]
    except IndexError:
        raise ProtocolError("truncated vars block") from None
    if i != n:
        raise ProtocolError("truncated vars block")
    return env


def parse_pairs(b):
    """Decode a vars block into a list of (bytes, bytes)."""
    out = []
    i = 0
    n = len(b)
    while i + 2 <= n:
        kl = b[i] | b[i + 1] << 8
        k = bytes(b[i + 2:i + 2 + kl])
        i += 2 + kl
        if i + 2 > n:
            raise ProtocolError("truncated vars block")
        vl = b[i] | b[i + 1] << 8
        out.append((k, bytes(b[i + 2:i + 2 + vl])))
        i += 2 + vl
    if i != n:
        raise ProtocolError("truncated vars block")
    return out


def read_packet(read):
    """Read one packet from a buffered reader; None on a clean EOF."""
    h = read(4)
    if len(h) < 4:
        if h:
            raise ConnectionLost("connection closed inside a packet header")
        return None
    size = h[1] | h[2] << 8
    payload = read(size) if size else b""
    if len(payload) < size:
        raise ConnectionLost("connection closed inside a %d-byte packet" % size)
    return h[0], h[3], payload


def read_body_stream(read):
    """Read ModBody packets up to and including BodyEnd; return the bytes."""
    parts = []
    while True:
        p = read_packet(read)
        if p is None:
            raise ConnectionLost("connection closed inside a body stream")
        mod1, mod2, payload = p
        if mod1 != MOD_BODY:
            raise ProtocolError("expected a body packet, got modifier %d" % mod1)
        parts.append(payload)
        if mod2 != BODY_DATA:
            return b"".join(parts)


def body_frames(data):
    """Yield ModBody frames for data, split at the packet size limit."""
    n = len(data)
    if n <= MAX_PAYLOAD:
        return frame_header(MOD_BODY, n, BODY_DATA) + data
    parts = []
    mv = memoryview(data)
    for off in range(0, n, MAX_PAYLOAD):
        chunk = mv[off:off + MAX_PAYLOAD]
        parts.append(frame_header(MOD_BODY, len(chunk), BODY_DATA))
        parts.append(chunk)
    return b"".join(parts)


def to_bytes(v):
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    return str(v).encode("utf-8")


# ---------------------------------------------------------------------------
# Control connection and the uwsgi module


class Control:
    """The control connection, shared by every thread of the worker."""

    def __init__(self, fd):
        self.sock = _socket.socket(fileno=fd)
        self.read = socket_reader(fd, 8192).read
        self.lock = _thread.allocate_lock()

    def send(self, data):
        with self.lock:
            self.sock.sendall(data)

    def call(self, op, key=None, cache=None, expires=None, value=None, body=None):
        pairs = [(b"op", op.encode())]
        if key is not None:
            pairs.append((b"key", to_bytes(key)))
        if cache is not None:
            pairs.append((b"cache", to_bytes(cache)))
        if expires:
            pairs.append((b"expires", b"%d" % int(expires)))
        if value is not None:
            pairs.append((b"value", b"%d" % int(value)))
        msg = packet(MOD_CALL, 0, pairs)
        if body:
            msg += body_frames(body)
        msg += BODY_END_FRAME
        with self.lock:
            self.sock.sendall(msg)
            p = read_packet(self.read)
            if p is None:
                raise ConnectionLost("master closed the control connection")
            mod1, status, payload = p
            if mod1 != MOD_REPLY:
                raise ProtocolError("expected a reply packet, got modifier %d" % mod1)
            rvars = parse_pairs(payload)
            rbody = read_body_stream(self.read)
        if status == REPLY_ERROR:
            msg = dict(rvars).get(b"error", b"unknown error").decode("utf-8", "replace")
            sys.stderr.write("[uwsgi] %s failed: %s\n" % (op, msg))
        return status, rbody


class UwsgiModule(type(sys)):
    """The `uwsgi` module apps import, backed by the control connection."""

    def __init__(self, cfg):
        super().__init__("uwsgi", "gouwsgi's uwsgi API")
        self.version = VERSION
        self.numproc = int(cfg.get("numproc") or 1)
        self.opt = {k: (True if v == "" else v.encode()) for k, v in (cfg.get("opt") or {}).items()}
        self.magic_table = {}
        self._wid = int(cfg.get("wid") or 0)
        self._masterpid = int(cfg.get("masterpid") or os.getppid())
        self._ctl = None
        self._tls = _thread._local()

    def worker_id(self):
        return self._wid

    def masterpid(self):
        return self._masterpid

    def log(self, msg):
        sys.stderr.write("%s\n" % (msg,))
        return True

    def set_logvar(self, key, value):
        conn = getattr(self._tls, "conn", None)
        if conn is not None:
            conn.logvars.append((to_bytes("logvar." + key), to_bytes(value)))

    def _call(self, op, **kw):
        if self._ctl is None:
            raise RuntimeError("uwsgi.%s is not available before the app is loaded" % op)
        return self._ctl.call(op, **kw)

    def _ok(self, op, **kw):
        return True if self._call(op, **kw)[0] == REPLY_OK else None

    def cache_get(self, key, cache=None):
        status, body = self._call("cache_get", key=key, cache=cache)
        return body if status == REPLY_OK else None

    def cache_set(self, key, value, expires=0, cache=None):
        return self._ok("cache_set", key=key, cache=cache, expires=expires, body=to_bytes(value))

    def cache_update(self, key, value, expires=0, cache=None):
        return self._ok("cache_update", key=key, cache=cache, expires=expires, body=to_bytes(value))

    def cache_del(self, key, cache=None):
        return self._ok("cache_del", key=key, cache=cache)

    def cache_exists(self, key, cache=None):
        return self._ok("cache_exists", key=key, cache=cache)

    def cache_clear(self, cache=None):
        return self._ok("cache_clear", cache=cache)

    def cache_inc(self, key, value=1, expires=0, cache=None):
        return self._ok("cache_inc", key=key, cache=cache, expires=expires, value=value)

    def cache_dec(self, key, value=1, expires=0, cache=None):
        return self._ok("cache_dec", key=key, cache=cache, expires=expires, value=value)

    def cache_mul(self, key, value=2, expires=0, cache=None):
        return self._ok("cache_mul", key=key, cache=cache, expires=expires, value=value)

    def cache_div(self, key, value=2, expires=0, cache=None):
        return self._ok("cache_div", key=key, cache=cache, expires=expires, value=value)

    def cache_num(self, key, cache=None):
        status, body = self._call("cache_num", key=key, cache=cache)
        if status != REPLY_OK or len(body) != 8:
            return 0
        return int.from_bytes(body, "little", signed=True)

    def cache_keys(self, cache=None):
        status, body = self._call("cache_keys", cache=cache)
        if status != REPLY_OK:
            return []
        return [k for k, _ in parse_pairs(body)]

    def alarm(self, name, msg):
        self._call("alarm", key=name, body=to_bytes(msg))
        return None


# ---------------------------------------------------------------------------
# Requests


class BodyAborted(OSError):
    """The client went away before it sent the whole request body."""


class Input:
    """wsgi.input: streams the request body from the data connection."""

    __slots__ = ("_read", "_buf", "_pos", "_done", "_aborted")

    def __init__(self, read):
        self._read = read
        self._buf = b""
        self._pos = 0
        self._done = False
        self._aborted = False

    def _fill(self):
        """Return the next body chunk, b"" once the stream ended."""
        read = self._read
        if self._aborted:
            raise BodyAborted("request body cut short: the client disconnected")
        while not self._done:
            h = read(4)
            if len(h) < 4:
                raise ConnectionLost("master closed the connection inside a request body")
            if h[0] != MOD_BODY:
                raise ProtocolError("expected a body packet, got modifier %d" % h[0])
            size = h[1] | h[2] << 8
            data = read(size) if size else b""
            if len(data) < size:
                raise ConnectionLost("master closed the connection inside a request body")
            if h[3] != BODY_DATA:
                self._done = True
                if h[3] == BODY_ABORT:
                    self._aborted = True
                    raise BodyAborted("request body cut short: the client disconnected")
            if data:
                return data
        return b""

    def _rest(self):
        rest = self._buf[self._pos:] if self._pos else self._buf
        self._buf = b""
        self._pos = 0
        return rest

    def read(self, size=-1):
        if size is None or size < 0:
            parts = [self._rest()]
            while not self._done:
                parts.append(self._fill())
            return b"".join(parts)
        avail = len(self._buf) - self._pos
        if avail >= size:
            pos = self._pos
            self._pos = pos + size
            return self._buf[pos:pos + size]
        parts = [self._rest()]
        while avail < size:
            chunk = self._fill()
            if not chunk:
                break
            parts.append(chunk)
            avail += len(chunk)
        data = b"".join(parts)
        if len(data) > size:
            self._buf = data
            self._pos = size
            return data[:size]
        return data

    def readline(self, size=-1):
        if size is None:
            size = -1
        buf = self._buf
        nl = buf.find(b"\n", self._pos)
        if nl >= 0 and (size < 0 or nl - self._pos < size):
            pos = self._pos
            self._pos = nl + 1
            return buf[pos:nl + 1]
        parts = [self._rest()]
        got = len(parts[0])
        while size < 0 or got < size:
            chunk = self._fill()
            if not chunk:
                break
            nl = chunk.find(b"\n")
            if nl >= 0:
                parts.append(chunk[:nl + 1])
                self._buf = chunk
                self._pos = nl + 1
                got += nl + 1
                break
            parts.append(chunk)
            got += len(chunk)
        line = b"".join(parts)
        if size >= 0 and len(line) > size:
            # Give back what goes beyond size, ahead of the unread chunk.
            self._buf = line[size:] + self._buf[self._pos:]
            self._pos = 0
            line = line[:size]
        return line

    def readlines(self, hint=-1):
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def drain(self):
        self._buf = b""
        self._pos = 0
        try:
            while not self._done:
                self._fill()
        except BodyAborted:
            pass


class FileWrapper:
    """wsgi.file_wrapper: iterates a file-like object in blocks."""

    def __init__(self, filelike, blksize=65536):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        read = self.filelike.read
        blksize = self.blksize
        while True:
            data = read(blksize)
            if not data:
                return
            yield data


class HeaderError(Exception):
    """The app passed a status or header PEP 3333 does not allow."""


def encode_header_field(what, v):
    if isinstance(v, str):
        try:
            return v.encode("latin-1")
        except UnicodeEncodeError:
            raise HeaderError("%s %r is not latin-1 (PEP 3333 wants latin-1 header strings)" % (what, v)) from None
    if isinstance(v, bytes):
        return v
    raise HeaderError("%s %r must be a str, not %s" % (what, v, type(v).__name__))


# Encoded heads by (status, headers): most apps send the same few heads
# again and again. Bounded by clearing it when full.
HEAD_CACHE = {}
HEAD_CACHE_SIZE = 256


def headers_frame(status, headers):
    """Encode status and headers as a ModHeaders packet."""
    try:
        key = (status, tuple(headers))
        frame = HEAD_CACHE.get(key)
    except TypeError:
        # Unhashable: a list as a pair, say.
        return encode_headers_frame(status, headers)
    if frame is None:
        frame = encode_headers_frame(status, headers)
        if len(HEAD_CACHE) >= HEAD_CACHE_SIZE:
            HEAD_CACHE.clear()
        HEAD_CACHE[key] = frame
    return frame


def encode_headers_frame(status, headers):
    """Encode status and headers as a ModHeaders packet."""
    # The common case (str status and pairs of latin-1 str) without a call
    # per field; anything else takes the checking path, which also names
    # what is wrong.
    try:
        sb = status.encode("latin-1")
        parts = [b"\x07\x00:status", len(sb).to_bytes(2, "little"), sb]
        append = parts.append
        for k, v in headers:
            kb = k.encode("latin-1")
            vb = v.encode("latin-1")
            append(len(kb).to_bytes(2, "little"))
            append(kb)
            append(len(vb).to_bytes(2, "little"))
            append(vb)
    except (AttributeError, UnicodeEncodeError, TypeError, ValueError):
        return checked_headers_frame(status, headers)
    if len(sb) < 3 or not sb[:3].isdigit():
        raise HeaderError("status %r does not start with a 3-digit code" % (status,))
    payload = b"".join(parts)
    if len(payload) > MAX_PAYLOAD:
        raise HeaderError("response headers take %d bytes, more than %d" % (len(payload), MAX_PAYLOAD))
    return frame_header(MOD_HEADERS, len(payload), 0) + payload


def checked_headers_frame(status, headers):
    """headers_frame for bytes fields, with an error naming a bad one."""
    sb = encode_header_field("status", status)
    if len(sb) < 3 or not sb[:3].isdigit():
        raise HeaderError("status %r does not start with a 3-digit code" % (status,))
    parts = [b"\x07\x00:status", len(sb).to_bytes(2, "little"), sb]
    for h in headers:
        try:
            k, v = h
        except (TypeError, ValueError):
            raise HeaderError("header %r is not a (name, value) pair" % (h,)) from None
        kb = encode_header_field("header name", k)
        vb = encode_header_field("value of header %s" % k, v)
        parts.append(len(kb).to_bytes(2, "little"))
        parts.append(kb)
        parts.append(len(vb).to_bytes(2, "little"))
        parts.append(vb)
    payload = b"".join(parts)
    if len(payload) > MAX_PAYLOAD:
        raise HeaderError("response headers take %d bytes, more than %d" % (len(payload), MAX_PAYLOAD))
    return frame_header(MOD_HEADERS, len(payload), 0) + payload


ERROR_BODY = b"Internal Server Error\n"
ERROR_FRAMES = headers_frame(
    "500 Internal Server Error",
    [("Content-Type", "text/plain"), ("Content-Length", str(len(ERROR_BODY)))],
) + frame_header(MOD_BODY, len(ERROR_BODY), BODY_DATA) + ERROR_BODY


class Conn:
    """One data connection: serves its requests one after the other."""

    def __init__(self, fd, app, base_env, uwsgi_mod):
        self.sock = _socket.socket(fileno=fd)
        reader = socket_reader(fd, 65536)
        self.read = reader.read
        self.peek = reader.peek
        self.app = app
        self.base_env = base_env
        self.uwsgi = uwsgi_mod
        self.out = bytearray()
        self.headers = None  # pending ModHeaders packet, None until start_response
        self.started = False  # headers are in out (or on the wire)
        self.sent = False  # something of this response is on the wire
        self.logvars = []

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
            # Nothing reached the wire yet: the error page replaces it all.
            del self.out[:]
            self.started = False
        elif self.headers is not None:
            raise AssertionError("start_response called a second time without exc_info")
        self.headers = headers_frame(status, headers)
        return self.write

    def _begin(self):
        if self.headers is None:
            raise AssertionError("the app sent body data before calling start_response")
        self.out += self.headers
        self.started = True

    def write(self, data):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("write() wants bytes, got %s" % type(data).__name__)
        if not self.started:
            self._begin()
        if data:
            self.out += body_frames(data)
        self.flush()

    def flush(self):
        self.sock.sendall(self.out)
        del self.out[:]
        self.sent = True

    def serve(self):
        """Serve requests until the master closes the connection."""
        self.uwsgi._tls.conn = self
        read = self.read
        peek = self.peek
        base_env = self.base_env
        handle = self.handle
        try:
            while True:
                h = read(4)
                if len(h) < 4:
                    if h:
                        raise ConnectionLost("connection closed inside a packet header")
                    return
                if h[0] != MOD_REQUEST:
                    raise ProtocolError("expected a request packet, got modifier %d" % h[0])
                size = h[1] | h[2] << 8
                payload = read(size)
                if len(payload) < size:
                    raise ConnectionLost("connection closed inside a %d-byte packet" % size)
                env = base_env.copy()
                parse_vars(payload, env)
                inp = Input(read)
                # Most requests have no body: the end of the body stream is
                # already buffered right behind the vars.
                if peek(4)[:4] == BODY_END_FRAME:
                    read(4)
                    inp._done = True
                handle(env, inp)
        except ProtocolError as e:
            sys.stderr.write("gouwsgi worker %d: protocol error on data connection: %s\n" % (os.getpid(), e))
        except OSError:
            # The master went away (reset, broken pipe): this thread is done.
            pass
        finally:
            self.sock.close()

    def handle(self, env, inp):
        scheme = env.get("UWSGI_SCHEME")
        if not scheme:
            https = env.get("HTTPS")
            if https in ("on", "1"):
                scheme = "https"
            else:
                scheme = env.get("REQUEST_SCHEME") or "http"
        env["wsgi.url_scheme"] = scheme
        env["wsgi.input"] = inp
        self.headers = None
        self.started = False
        self.sent = False
        self.logvars = []
        out = self.out
        exception = aborted = False
        exit_code = None
        result = None
        try:
            result = self.app(env, self.start_response)
            if isinstance(result, bytes):
                it = iter((result,))
                complete = True
            else:
                it = iter(result)
                complete = type(it) in COMPLETE_ITERS or type(result) is FileWrapper
            for chunk in it:
                if not chunk:
                    continue
                if type(chunk) is not bytes and not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise TypeError("the app yielded %s, a WSGI body is made of bytes" % type(chunk).__name__)
                if not self.started:
                    self._begin()
                out += body_frames(chunk)
                if not complete or len(out) >= FLUSH_AT:
                    self.flush()
            if not self.started:
                self._begin()
        except SystemExit as e:
            exception = True
            exit_code = e.code if isinstance(e.code, int) else 1
            sys.stderr.write("gouwsgi worker %d: the app called sys.exit(%r), exiting\n" % (os.getpid(), e.code))
        except BaseException:
            exception = True
            print_exc()
        if result is not None and hasattr(result, "close"):
            try:
                result.close()
            except BaseException:
                exception = True
                print_exc()
        if exception:
            if self.sent:
                aborted = True
            else:
                del out[:]
                out += ERROR_FRAMES
        inp.drain()
        extra = self.logvars
        if exception:
            extra.append((b"exception", b"1"))
        if aborted:
            extra.append((b"aborted", b"1"))
        out += packet(MOD_END, 0, extra) if extra else END_FRAME
        self.flush()
        if exit_code is not None:
            shutdown(exit_code)


# ---------------------------------------------------------------------------
# Loading the app


def load_app(cfg):
    chdir = cfg.get("chdir")
    if chdir:
        os.chdir(chdir)
    for p in cfg.get("pythonpath") or ():
        sys.path.insert(0, p)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    callable_name = cfg.get("callable") or "application"
    module = cfg.get("module")
    wsgi_file = cfg.get("wsgi_file")
    if module:
        name, sep, attr = module.partition(":")
        if sep:
            callable_name = attr
        import importlib
        mod = importlib.import_module(name)
        where = "module %s" % name
    elif wsgi_file:
        # importlib.util would import contextlib and functools for two
        # functions that live here.
        from importlib._bootstrap import module_from_spec
        from importlib._bootstrap_external import spec_from_file_location
        path = os.path.abspath(wsgi_file)
        name = "uwsgi_file_" + "".join(c if c.isalnum() else "_" for c in path)
        spec = spec_from_file_location(name, path)
        if spec is None:
            raise ImportError("cannot load wsgi-file %s: not a Python file" % path)
        mod = module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        where = "wsgi-file %s" % path
    else:
        raise ImportError("no module or wsgi-file configured")
    app = getattr(mod, callable_name, None)
    if app is None:
        raise AttributeError("callable %r not found in %s" % (callable_name, where))
    if not callable(app):
        raise TypeError("%r in %s is not callable" % (callable_name, where))
    return app


def shutdown(code):
    """Exit without waiting for threads the app may have left running."""
    try:
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def set_procname(name):
    """procname: the worker's name in ps -o comm and top (the kernel keeps
    15 bytes). ctypes is imported only when a name is configured."""
    if not name:
        return
    try:
        import ctypes
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError) as e:
        sys.stderr.write("procname %r not set: %s\n" % (name, e))


def run_worker(cfg, app, uwsgi_mod):
    """Say hello on the control connection, then serve every data connection."""
    set_procname(cfg.get("procname"))
    uwsgi_mod._wid = int(cfg["wid"])
    ctl = Control(cfg["ctl_fd"])
    uwsgi_mod._ctl = ctl
    pid = os.getpid()
    ctl.send(packet(MOD_HELLO, 0, [(b"pid", b"%d" % pid), (b"wid", b"%d" % uwsgi_mod._wid)]))
    fds = cfg.get("data_fds") or []
    base_env = {
        "wsgi.version": (1, 0),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": len(fds) > 1,
        "wsgi.multiprocess": uwsgi_mod.numproc > 1,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
        "wsgi.input_terminated": True,
        "uwsgi.version": VERSION,
    }
    conns = []
    for core, fd in enumerate(fds):
        env = dict(base_env)
        env["uwsgi.core"] = core
        conns.append(Conn(fd, app, env, uwsgi_mod))
    if len(conns) == 1:
        conns[0].serve()
    else:
        import threading
        threads = [threading.Thread(target=c.serve, name="gouwsgi-core-%d" % i, daemon=True) for i, c in enumerate(conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    sys.stderr.write("...The work of process %d is done. Seeya!\n" % pid)
    shutdown(0)


# ---------------------------------------------------------------------------
# Zygote


def zygote_loop(cfg, app, uwsgi_mod):
    """Fork a worker for every ModSpawn until the master closes ctl."""
    # Objects the app created while importing are never collected: moving
    # them out of the collector's sight keeps the pages workers share with
    # the zygote from being copied when a worker's collector walks them.
    # No gc.collect() first (Python's docs advise the same): the garbage it
    # freed left holes all over those pages, a worker's first allocations
    # filled them and so copied the pages (measured with the seed's Django
    # app: 0.15 MiB more per idle worker, more than the garbage kept).
    gc.freeze()
    ctl = _socket.socket(fileno=cfg["ctl_fd"])
    per_worker = 1 + max(1, int(cfg.get("threads") or 1))
    ctl.sendall(packet(MOD_HELLO, 0, [(b"pid", b"%d" % os.getpid()), (b"wid", b"0")]))
    buf = bytearray()
    fdq = []
    anc_size = _socket.CMSG_SPACE(per_worker * 4 * array.array("i").itemsize)
    while True:
        data, anc, flags, _ = ctl.recvmsg(65536 + 4, anc_size)
        for level, typ, cdata in anc:
            if level == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
                fdq.extend(fds)
        if flags & _socket.MSG_CTRUNC:
            sys.stderr.write("gouwsgi zygote: file descriptors were truncated\n")
        if not data:
            shutdown(0)
        buf += data
        while len(buf) >= 4:
            size = buf[1] | buf[2] << 8
            if len(buf) < 4 + size:
                break
            mod1 = buf[0]
            payload = bytes(buf[4:4 + size])
            del buf[:4 + size]
            if mod1 != MOD_SPAWN:
                sys.stderr.write("gouwsgi zygote: unexpected modifier %d on control connection\n" % mod1)
                continue
            wid = int(dict(parse_pairs(payload)).get(b"wid", b"0"))
            if len(fdq) < per_worker:
                sys.stderr.write("gouwsgi zygote: spawn of worker %d came with %d fds, want %d\n" % (wid, len(fdq), per_worker))
                for fd in fdq:
                    os.close(fd)
                del fdq[:]
                ctl.sendall(packet(MOD_SPAWNED, 1, [(b"wid", b"%d" % wid), (b"error", b"missing file descriptors")]))
                continue
            mine = fdq[:per_worker]
            del fdq[:per_worker]
            pid = fork_worker(cfg, app, uwsgi_mod, wid, mine, [ctl.fileno()] + fdq)
            for fd in mine:
                os.close(fd)
            ctl.sendall(packet(MOD_SPAWNED, 0, [(b"wid", b"%d" % wid), (b"pid", b"%d" % pid)]))


def fork_worker(cfg, app, uwsgi_mod, wid, fds, foreign):
    """Double-fork so the worker is reparented to the master (a subreaper)."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        code = 1
        try:
            os.close(r)
            grandchild = os.fork()
            if grandchild == 0:
                os.close(w)
                for fd in foreign:
                    os.close(fd)
                wcfg = dict(cfg, wid=wid, ctl_fd=fds[0], data_fds=fds[1:], mode="worker")
                try:
                    run_worker(wcfg, app, uwsgi_mod)
                except BaseException:
                    print_exc()
                    shutdown(1)
            os.write(w, b"%d" % grandchild)
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        pid = int(f.read() or b"0")
    os.waitpid(child, 0)
    return pid


# ---------------------------------------------------------------------------


def main():
    raw = os.environ.pop("GOUWSGI_WORKER", None)
    if not raw:
        sys.exit("this is gouwsgi's Python worker: the gouwsgi master starts it")
    cfg = parse_config(raw)
    # The worker dies quietly when the terminal's Ctrl-C reaches it too;
    # the master decides what happens next.
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
    # SIGTERM sent to the whole process group (systemd's default stop)
    # must not kill requests in flight: the master shuts down gracefully and
    # ends workers by closing their connections (or SIGKILL after mercy).
    _signal.signal(_signal.SIGTERM, _signal.SIG_IGN)
    sys.stdout.reconfigure(line_buffering=True)
    # What uWSGI shows apps that look at their command line.
    sys.argv = ["uwsgi"]
    # The script's own directory must not shadow the app's modules.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    uwsgi_mod = UwsgiModule(cfg)
    sys.modules["uwsgi"] = uwsgi_mod
    started = time.monotonic()
    try:
        app = load_app(cfg)
    except BaseException:
        tb = format_exc()
        sys.stderr.write(tb)
        sys.stderr.write("*** no app loaded. GAME OVER ***\n")
        try:
            ctl = _socket.socket(fileno=cfg["ctl_fd"])
            ctl.sendall(packet(MOD_HELLO, 1, [(b"error", tb.encode("utf-8", "replace")[-60000:])]))
        finally:
            sys.stderr.flush()
            os._exit(22)
    sys.stderr.write(
        "WSGI app 0 (mountpoint='') ready in %d seconds on interpreter %#x pid: %d (default app)\n"
        % (time.monotonic() - started, id(sys.modules), os.getpid())
    )
    if cfg.get("mode") == "zygote":
        zygote_loop(cfg, app, uwsgi_mod)
    else:
        run_worker(cfg, app, uwsgi_mod)


if __name__ == "__main__":
    main()
