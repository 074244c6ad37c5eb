//go:build e2e

package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// rawPatch starts a chunked PATCH on a fresh connection from the given local address: headers only, no body yet.
func rawPatch(t *testing.T, from net.IP, addr, target string, header http.Header) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "PATCH %s HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n", target, addr)
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	return conn
}

// trickleUntilCut sends one chunk of one byte every interval until the server answers or drops the connection, or
// limit passes. It returns how long that took and whether the server cut it.
func trickleUntilCut(conn net.Conn, interval, limit time.Duration) (time.Duration, bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
			resp.Body.Close()
		}
	}()
	start := time.Now()
	for time.Since(start) < limit {
		if _, err := io.WriteString(conn, "1\r\nx\r\n"); err != nil {
			<-done
			return time.Since(start), true
		}
		select {
		case <-done:
			return time.Since(start), true
		case <-time.After(interval):
		}
	}
	return time.Since(start), false
}

// uploadTarget opens an upload and returns its path and query.
func uploadTarget(t *testing.T, addr string, auth http.Header) string {
	t.Helper()
	r := rawRequest(t, addr, "POST", "/v2/slow/app/blobs/uploads/", auth, []byte{})
	if r.Status != http.StatusAccepted {
		t.Fatalf("starting upload: %d %s", r.Status, r.Body)
	}
	loc := r.Header.Get("Location")
	return loc[strings.Index(loc, "/v2/"):]
}

// TestSlowClients runs registry-kit serve with --body-idle-timeout 2s and --max-unauthenticated-conns 4: a body
// trickling 1 byte every 5 s is cut after about 2 s, with or without credentials; a body sending a byte every
// 500 ms for 6 s completes; a fifth unauthenticated connection from one address is closed at once while another
// address and authenticated clients are served.
func TestSlowClients(t *testing.T) {
	srv := startServe(t, "--body-idle-timeout", "2s", "--max-unauthenticated-conns", "4")
	auth := basicHeader(srv.User, srv.Password)
	local := net.IPv4(127, 0, 0, 1)

	for _, c := range []struct {
		name   string
		header http.Header
	}{{"authenticated", auth}, {"unauthenticated", nil}} {
		t.Run("trickling "+c.name, func(t *testing.T) {
			conn := rawPatch(t, local, srv.Addr, uploadTarget(t, srv.Addr, auth), c.header)
			took, cut := trickleUntilCut(conn, 5*time.Second, 40*time.Second)
			if !cut {
				t.Fatalf("a body sending 1 byte every 5s still held its connection after %s", took.Round(time.Second))
			}
			if took > 8*time.Second {
				t.Errorf("cut after %s, want about the 2s body-idle-timeout", took.Round(100*time.Millisecond))
			}
			t.Logf("trickling %s PATCH cut after %s", c.name, took.Round(100*time.Millisecond))
		})
	}

	t.Run("slow but moving", func(t *testing.T) {
		conn := rawPatch(t, local, srv.Addr, uploadTarget(t, srv.Addr, auth), auth)
		const n = 12 // 6 s at 500 ms a byte: three times the idle timeout
		for i := range n {
			if _, err := io.WriteString(conn, "1\r\nx\r\n"); err != nil {
				t.Fatalf("byte %d: the server cut a body that was moving: %v", i+1, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		if _, err := io.WriteString(conn, "0\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("reading the answer to the slow PATCH: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != fmt.Sprintf("0-%d", n-1) {
			t.Errorf("slow PATCH: %d Range %q, want 202 and 0-%d", resp.StatusCode, resp.Header.Get("Range"), n-1)
		}
	})

	t.Run("unauthenticated connections per address", func(t *testing.T) {
		open := func(from net.IP) bool {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from}, Timeout: 5 * time.Second}
			c, err := d.Dial("tcp", srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			_, err = c.Read(make([]byte, 1))
			return errors.Is(err, os.ErrDeadlineExceeded) // still waiting for a request
		}
		attacker := net.IPv4(127, 0, 0, 3)
		for i := range 4 {
			if !open(attacker) {
				t.Fatalf("unauthenticated connection %d of 4 was closed", i+1)
			}
		}
		if open(attacker) {
			t.Error("a 5th unauthenticated connection from 127.0.0.3 was kept open")
		}
		if !open(net.IPv4(127, 0, 0, 4)) {
			t.Error("a connection from another address was closed")
		}
		if r := rawRequest(t, srv.Addr, "GET", "/v2/", auth, nil); r.Status != http.StatusOK {
			t.Errorf("authenticated client from 127.0.0.1: %d", r.Status)
		}
		resp, err := http.Get("http://" + srv.MetricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "registry_kit_unauthenticated_connections_refused_total 1") {
			t.Errorf("metrics do not count the refused connection")
		}
	})
	if out := srv.Output(); strings.Contains(out, srv.Password) {
		t.Fatal("serve output contains the admin password")
	}
}
