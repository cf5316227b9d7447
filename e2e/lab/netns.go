package lab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn on an OS thread switched into the host's namespace. Sockets
// that fn creates belong to the namespace for their whole life, so a
// listener or connection made inside fn can be used from anywhere
// afterwards. fn must not start goroutines that create sockets: they would
// run on other threads, in the test's own namespace.
func (h *Host) Do(fn func() error) error {
	target, err := netns.GetFromName(h.NS)
	if err != nil {
		return fmt.Errorf("%s: open namespace: %w", h.Name, err)
	}
	defer target.Close()

	errc := make(chan error, 1)
	go func() {
		// This goroutine never unlocks its thread: when it returns, the
		// runtime discards the thread instead of reusing one whose namespace
		// was changed.
		runtime.LockOSThread()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("%s: enter namespace: %w", h.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// DialContext connects from inside the host's namespace. The address must
// be an IP literal (a name lookup would run on other threads).
func (h *Host) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: dial %s %s: %w", h.Name, network, address, err)
	}
	return c, nil
}

// Listen opens a listener inside the host's namespace.
func (h *Host) Listen(network, address string) (net.Listener, error) {
	var l net.Listener
	err := h.Do(func() error {
		var err error
		l, err = net.Listen(network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: listen %s %s: %w", h.Name, network, address, err)
	}
	return l, nil
}

// HTTPClient returns a client whose connections are made from the host's
// namespace and never reused, so every request shows where the address
// leads right now (what a failover measurement wants).
func (h *Host) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:       h.DialContext,
		DisableKeepAlives: true,
		Proxy:             nil,
	}}
}
