package cache

import (
	"fmt"
	"log/slog"
	"testing"
	"time"
)

const benchKeys = 1024

func benchLocal(b *testing.B, line string) (*Local, []string) {
	b.Helper()
	l, err := NewLocal(mustParse(b, line), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("GET/feedback?page=%d", i)
		if err := l.Update(keys[i], []byte(`{"ok":true,"items":[1,2,3]}`), time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	return l, keys
}

// The shape of the seed config: a route cache keyed by method+URI.
const benchLine = "name=bench,items=2048,blocksize=4096,hash=murmur2"

func BenchmarkGet(b *testing.B) {
	for _, tc := range []struct{ name, line string }{
		{"plain", benchLine},
		{"lazy", benchLine + ",lazy_expire=1"},
		{"lru", benchLine + ",purge_lru=1"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			l, keys := benchLocal(b, tc.line)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := l.Get(keys[i&(benchKeys-1)]); !ok {
					b.Fatal("miss")
				}
				i++
			}
		})
	}
}

func BenchmarkGetParallel(b *testing.B) {
	l, keys := benchLocal(b, benchLine)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := l.Get(keys[i&(benchKeys-1)]); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}

func BenchmarkSet(b *testing.B) {
	l, keys := benchLocal(b, benchLine)
	val := []byte(`{"ok":true,"items":[1,2,3,4]}`)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := l.Update(keys[i&(benchKeys-1)], val, time.Minute); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkMachineApply(b *testing.B) {
	cfgs := machineConfigs(b)
	ops := randomOps(3, 1<<14, cfgs)
	m := NewMachine(cfgs)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Apply(ops[i&(len(ops)-1)])
		i++
	}
}
