package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gouwsgi/gouwsgi/cache"
	"github.com/gouwsgi/gouwsgi/node/wire"
)

// AlarmRaiser receives uwsgi.alarm(name, msg) from apps.
type AlarmRaiser interface {
	RaiseAlarm(name, msg string) error
}

// calls answers the uwsgi module's calls from workers: the cache API and
// uwsgi.alarm, with uWSGI's return conventions (None on any failure).
type calls struct {
	caches *cache.Registry
	alarms AlarmRaiser
}

// mathOps names the cache math operations as routes (cacheinc) and the
// Python API (cache_inc) spell them, without their prefix.
var mathOps = map[string]cache.MathOp{"inc": cache.MathInc, "dec": cache.MathDec, "mul": cache.MathMul, "div": cache.MathDiv}

// Call implements worker.CallHandler.
func (c *calls) Call(_ int, vars wire.Vars, body []byte) (uint8, wire.Vars, []byte) {
	op := vars.Value("op")
	if op == "alarm" {
		if c.alarms == nil {
			return failure(fmt.Errorf("uwsgi.alarm: no alarm is configured"))
		}
		if err := c.alarms.RaiseAlarm(vars.Value("key"), string(body)); err != nil {
			return failure(err)
		}
		return wire.ReplyOK, nil, nil
	}
	name := vars.Value("cache")
	st, ok := c.caches.Get(name)
	if !ok {
		if name == "" {
			return failure(fmt.Errorf("%s: no cache is configured (add a cache2 option)", op))
		}
		return failure(fmt.Errorf("%s: no cache named %q", op, name))
	}
	key := vars.Value("key")
	var expires time.Duration
	if e := vars.Value("expires"); e != "" {
		secs, err := strconv.ParseInt(e, 10, 64)
		if err != nil {
			return failure(fmt.Errorf("%s: expires %q is not a number", op, e))
		}
		expires = time.Duration(secs) * time.Second
	}
	switch op {
	case "cache_get":
		v, ok := st.Get(key)
		if !ok {
			return wire.ReplyNone, nil, nil
		}
		return wire.ReplyOK, nil, v
	case "cache_exists":
		if !st.Exists(key) {
			return wire.ReplyNone, nil, nil
		}
		return wire.ReplyOK, nil, nil
	case "cache_set":
		return result(st.Set(key, body, expires))
	case "cache_update":
		return result(st.Update(key, body, expires))
	case "cache_del":
		return result(st.Del(key))
	case "cache_clear":
		return result(st.Clear())
	case "cache_num":
		v, ok := st.Get(key)
		if !ok || len(v) != 8 {
			return wire.ReplyNone, nil, nil
		}
		return wire.ReplyOK, nil, v
	case "cache_keys":
		var out []byte
		for _, k := range st.Keys() {
			out, _ = wire.Vars{{Key: k}}.Append(out)
		}
		return wire.ReplyOK, nil, out
	}
	if mop, ok := mathOps[strings.TrimPrefix(op, "cache_")]; ok {
		operand := int64(1)
		if op == "cache_mul" || op == "cache_div" {
			operand = 2
		}
		if v := vars.Value("value"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return failure(fmt.Errorf("%s: value %q is not an integer", op, v))
			}
			operand = n
		}
		n, err := st.Math(mop, key, operand, expires)
		if err != nil {
			return failure(err)
		}
		return wire.ReplyOK, nil, binary.LittleEndian.AppendUint64(nil, uint64(n))
	}
	return failure(fmt.Errorf("unknown call %q", op))
}

// result maps a cache error to the reply: expected misses are None
// silently; real failures (full, too large) carry the reason, which the
// worker logs, so nothing is dropped silently as uWSGI does (#1881).
func result(err error) (uint8, wire.Vars, []byte) {
	switch {
	case err == nil:
		return wire.ReplyOK, nil, nil
	case errors.Is(err, cache.ErrNotFound), errors.Is(err, cache.ErrExists):
		return wire.ReplyNone, nil, nil
	}
	return failure(err)
}

func failure(err error) (uint8, wire.Vars, []byte) {
	return wire.ReplyError, wire.Vars{{Key: "error", Value: err.Error()}}, nil
}
