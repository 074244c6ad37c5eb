package nodeproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRunForwards(t *testing.T) {
	body := strings.Repeat("layer-bytes ", 100000) // 1.2 MB: more than one buffer in both directions
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %d %s", r.URL.Path, len(in), body)
	}))
	defer up.Close()
	ctx, cancel := context.WithCancel(context.Background())
	addrCh := make(chan net.Addr, 1)
	errCh := make(chan error, 1)
	go func() {
		errCh <- Run(ctx, Options{Listen: "127.0.0.1:0", Upstream: strings.TrimPrefix(up.URL, "http://"), Ready: func(a net.Addr) { addrCh <- a }})
	}()
	var addr net.Addr
	select {
	case addr = <-addrCh:
	case err := <-errCh:
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // several connections, one after the other and kept alive
		resp, err := http.Post("http://"+addr.String()+"/v2/", "application/octet-stream", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("/v2/ %d %s", len(body), body); string(got) != want {
			t.Fatalf("through the proxy: %d bytes, want %d", len(got), len(want))
		}
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	select {
	case err := <-errCh:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(35 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
		t.Error("still listening after Run returned")
	}
}

func TestRunUpstreamDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrCh := make(chan net.Addr, 1)
	go func() {
		_ = Run(ctx, Options{Listen: "127.0.0.1:0", Upstream: dead, Ready: func(a net.Addr) { addrCh <- a }})
	}()
	addr := <-addrCh
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Errorf("read from a proxy whose upstream is down = %d, %v; want the connection closed", n, err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"ok", Options{Listen: "127.0.0.1:29500", Upstream: "10.0.0.12:5000"}, ""},
		{"localhost", Options{Listen: "localhost:29500", Upstream: "registry.docker-registry.svc:5000"}, ""},
		{"IPv6 loopback", Options{Listen: "[::1]:29500", Upstream: "10.0.0.12:5000"}, ""},
		{"all interfaces", Options{Listen: ":29500", Upstream: "10.0.0.12:5000"}, "must be a loopback address"},
		{"node IP", Options{Listen: "10.200.0.1:29500", Upstream: "10.0.0.12:5000"}, "must be a loopback address"},
		{"no port", Options{Listen: "127.0.0.1", Upstream: "10.0.0.12"}, "--listen \"127.0.0.1\": want HOST:PORT"},
		{"no upstream", Options{Listen: "127.0.0.1:1"}, "--upstream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
