package router

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Caches finds a cache by name; "" is the default cache. The cache
// package's registry satisfies it through a small adapter.
type Caches interface {
	Get(name string) (CacheStore, bool)
}

// CacheStore is the part of a cache2 store the route actions use.
// Implementations must be safe for concurrent use. Values returned by Get
// are only read by the router.
type CacheStore interface {
	// Get returns the value of key.
	Get(key string) ([]byte, bool)
	// Update stores v under key whether it exists or not (upsert);
	// expires 0 means never.
	Update(key string, v []byte, expires time.Duration) error
	// Set stores v only if key does not exist yet (uWSGI's add-only set).
	Set(key string, v []byte, expires time.Duration) error
	// Expires reports when key expires; false when the key is missing or
	// never expires.
	Expires(key string) (time.Time, bool)
	// Math applies op ("inc", "dec", "mul", "div") with operand to the
	// 64-bit number under key and returns the result.
	Math(op string, key string, operand int64, expires time.Duration) (int64, error)
	// Exists reports whether key is present.
	Exists(key string) bool
}

// cacheKV parses the key=value arguments of a cache action and its cache
// name and mandatory key.
func cacheKV(p *parser, args string, allowed ...string) (map[string]string, int, template, error) {
	kv, err := parseKV(args, append([]string{"key", "name"}, allowed...)...)
	if err != nil {
		return nil, 0, template{}, err
	}
	if kv["key"] == "" {
		return nil, 0, template{}, errors.New("key= is required")
	}
	key, err := p.tmpl(kv["key"])
	if err != nil {
		return nil, 0, template{}, err
	}
	slot, err := p.cacheSlot(kv["name"])
	return kv, slot, key, err
}

func parseExpires(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("expires=%q: expected seconds", s)
	}
	return time.Duration(n) * time.Second, nil
}

// optTemplate compiles an optional argument; ok reports whether it was given.
func optTemplate(p *parser, kv map[string]string, name string) (t template, ok bool, err error) {
	v, ok := kv[name]
	if !ok {
		return template{}, false, nil
	}
	t, err = p.tmpl(v)
	return t, true, err
}

// buildCache answers a request from the cache: on a hit it sends 200 with
// the stored body and stops (cache-continue goes on with the next rule); on
// a miss it does nothing. This is the path gouwsgi must make fast, so
// everything that can is computed here, at start-up.
func buildCache(onHit verdict) func(*parser, string) (actionFunc, error) {
	return func(p *parser, args string) (actionFunc, error) {
		kv, slot, key, err := cacheKV(p, args, "content_type", "content_encoding", "mime",
			"no_offload", "no_cl", "nocl", "no_content_length")
		if err != nil {
			return nil, err
		}
		ctText, ok := kv["content_type"]
		if !ok {
			ctText = "text/html" // uWSGI's default, which the seed config warns about
		}
		ct, err := p.tmpl(ctText)
		if err != nil {
			return nil, err
		}
		ce, hasCE, err := optTemplate(p, kv, "content_encoding")
		if err != nil {
			return nil, err
		}
		useMime := isTrue(kv["mime"])
		noCL := isTrue(kv["no_cl"]) || isTrue(kv["nocl"]) || isTrue(kv["no_content_length"])
		var ctStatic []string
		if ct.static {
			ctStatic = []string{ct.lit}
		}
		var expMemo, clMemo headerMemo
		return func(st *state) verdict {
			store := st.h.stores[slot]
			if store == nil {
				return vNext
			}
			k := key.str(st)
			val, ok := store.Get(k)
			if !ok {
				return vNext
			}
			h := st.rw.Header()
			var byExt string
			if useMime {
				byExt = mime.TypeByExtension(path.Ext(k))
			}
			switch {
			case byExt != "":
				h["Content-Type"] = []string{byExt}
			case ctStatic != nil:
				// Shared read-only slice: len == cap, so a later Add copies.
				h["Content-Type"] = ctStatic
			default:
				h["Content-Type"] = []string{ct.str(st)}
			}
			if hasCE {
				h["Content-Encoding"] = []string{ce.str(st)}
			}
			if exp, ok := store.Expires(k); ok {
				h["Expires"] = expMemo.get(exp.Unix(), formatHTTPDate)
			}
			if !noCL {
				h["Content-Length"] = clMemo.get(int64(len(val)), formatInt)
			}
			st.rw.WriteHeader(http.StatusOK)
			_, _ = st.rw.Write(val)
			return onHit
		}, nil
	}
}

// headerMemo keeps the last header value a cache rule produced, keyed by
// the number it was formatted from (an expiry second, a body length).
// Repeated hits on one item then reuse one read-only slice instead of
// formatting and allocating per request.
type headerMemo struct {
	last atomic.Pointer[memoEntry]
}

type memoEntry struct {
	n    int64
	vals []string // len == cap: an Add on the header copies, never mutates
}

func (m *headerMemo) get(n int64, format func(int64) string) []string {
	if e := m.last.Load(); e != nil && e.n == n {
		return e.vals
	}
	vals := []string{format(n)}
	m.last.Store(&memoEntry{n: n, vals: vals})
	return vals
}

func formatHTTPDate(unix int64) string {
	return time.Unix(unix, 0).UTC().Format(http.TimeFormat)
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }

// pendingStore is a cachestore waiting for the response to complete.
type pendingStore struct {
	slot     int
	key      string
	gzipKey  string
	value    []byte // value= given: stored instead of the body
	hasValue bool
	status   int
	expires  time.Duration
}

// buildCacheStore installs a response transformation: the body streams to
// the client unchanged and, if the response ends with status 200 (or
// status=), no write error and a non-empty body, it is upserted.
func buildCacheStore(p *parser, args string) (actionFunc, error) {
	kv, slot, key, err := cacheKV(p, args, "value", "status", "code", "expires", "gzip")
	if err != nil {
		return nil, err
	}
	value, hasValue, err := optTemplate(p, kv, "value")
	if err != nil {
		return nil, err
	}
	gz, hasGzip, err := optTemplate(p, kv, "gzip")
	if err != nil {
		return nil, err
	}
	expires, err := parseExpires(kv["expires"])
	if err != nil {
		return nil, err
	}
	status := 0
	for _, k := range []string{"status", "code"} {
		if s, ok := kv[k]; ok {
			if status, err = strconv.Atoi(s); err != nil || status < 100 || status > 999 {
				return nil, fmt.Errorf("%s=%q: expected an HTTP status", k, s)
			}
		}
	}
	return func(st *state) verdict {
		ps := pendingStore{slot: slot, key: key.str(st), status: status, expires: expires, hasValue: hasValue}
		if hasValue {
			ps.value = []byte(value.str(st))
		} else {
			st.rw.tee = true
		}
		if hasGzip {
			ps.gzipKey = gz.str(st)
		}
		st.stores = append(st.stores, ps)
		return vNext
	}, nil
}

// commitStores runs the cachestore transformations once the response is
// complete.
func (st *state) commitStores() {
	rw := &st.rw
	for i := range st.stores {
		ps := &st.stores[i]
		store := st.h.stores[ps.slot]
		if store == nil || rw.werr != nil || (rw.status != http.StatusOK && (ps.status == 0 || rw.status != ps.status)) {
			continue
		}
		body := ps.value
		if !ps.hasValue {
			if rw.teeOverflow {
				continue
			}
			body = st.body
		}
		if len(body) == 0 {
			continue
		}
		// The body buffer is reused by the next request: the store gets its own copy.
		if err := store.Update(ps.key, bytes.Clone(body), ps.expires); err != nil {
			st.h.log.Debug("cachestore failed", "key", ps.key, "error", err)
		}
		if ps.gzipKey != "" {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write(body) // writes to a bytes.Buffer cannot fail
			_ = zw.Close()
			if err := store.Update(ps.gzipKey, buf.Bytes(), ps.expires); err != nil {
				st.h.log.Debug("cachestore gzip failed", "key", ps.gzipKey, "error", err)
			}
		}
	}
}

// buildCacheSet adds a value (add-only, as uWSGI's cacheset); a failure
// (key present, cache full) stops the chain.
func buildCacheSet(p *parser, args string) (actionFunc, error) {
	kv, slot, key, err := cacheKV(p, args, "value", "expires")
	if err != nil {
		return nil, err
	}
	value, ok, err := optTemplate(p, kv, "value")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("value= is required")
	}
	expires, err := parseExpires(kv["expires"])
	if err != nil {
		return nil, err
	}
	return func(st *state) verdict {
		store := st.h.stores[slot]
		if store == nil || store.Set(key.str(st), []byte(value.str(st)), expires) != nil {
			return vBreak
		}
		return vNext
	}, nil
}

// buildCacheVar copies a cache value into a request var; as_num reads the
// 8-byte native-endian number the math actions store.
func buildCacheVar(p *parser, args string) (actionFunc, error) {
	kv, slot, key, err := cacheKV(p, args, "var", "num", "as_num")
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(kv["var"])
	if name == "" {
		return nil, errors.New("var= is required")
	}
	asNum := isTrue(kv["num"]) || isTrue(kv["as_num"])
	return func(st *state) verdict {
		store := st.h.stores[slot]
		if store == nil {
			return vNext
		}
		v, ok := store.Get(key.str(st))
		if !ok {
			return vNext
		}
		if !asNum {
			st.r.Vars.Set(name, string(v))
			return vNext
		}
		var n int64
		if len(v) == 8 {
			n = int64(binary.NativeEndian.Uint64(v))
		}
		st.r.Vars.Set(name, strconv.FormatInt(n, 10))
		return vNext
	}, nil
}

// buildCacheMath is cacheinc/cachedec/cachemul/cachediv; value= defaults
// to 1 for inc/dec and 2 for mul/div. A failure stops the chain.
func buildCacheMath(op string, def int64) func(*parser, string) (actionFunc, error) {
	return func(p *parser, args string) (actionFunc, error) {
		kv, slot, key, err := cacheKV(p, args, "value", "expires")
		if err != nil {
			return nil, err
		}
		value, hasValue, err := optTemplate(p, kv, "value")
		if err != nil {
			return nil, err
		}
		expires, err := parseExpires(kv["expires"])
		if err != nil {
			return nil, err
		}
		return func(st *state) verdict {
			store := st.h.stores[slot]
			if store == nil {
				return vBreak
			}
			n := def
			if hasValue {
				n = atoi64(value.str(st))
			}
			if _, err := store.Math(op, key.str(st), n, expires); err != nil {
				st.h.log.Debug("cache math failed", "op", op, "error", err)
				return vBreak
			}
			return vNext
		}, nil
	}
}
