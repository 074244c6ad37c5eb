package registry

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// chunkedPatch opens an upload and starts a chunked PATCH to it on a raw connection, with the headers written and
// no body yet. With auth false it sends no credentials.
func chunkedPatch(t *testing.T, ts *testServer, withAuth bool) net.Conn {
	t.Helper()
	loc := "/v2/slow/app/blobs/uploads/00000000-0000-0000-0000-000000000000"
	if withAuth {
		resp := authDo(t, ts, http.MethodPost, ts.url+"/v2/slow/app/blobs/uploads/", nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("starting an upload: %d", resp.StatusCode)
		}
		u, err := url.Parse(resp.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		loc = u.RequestURI()
	}
	conn, err := net.Dial("tcp", ts.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := "PATCH " + loc + " HTTP/1.1\r\nHost: reg\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n"
	if withAuth {
		head += "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(AdminUser+":"+ts.password)) + "\r\n"
	}
	if _, err := conn.Write([]byte(head + "\r\n")); err != nil {
		t.Fatal(err)
	}
	return conn
}

// trickle writes one byte every interval until the server answers or drops the connection, or until limit. It
// returns how long that took after the first byte, the status (0 when the connection was dropped without an
// answer) and whether it gave up at limit.
func trickle(t *testing.T, conn net.Conn, interval, limit time.Duration) (time.Duration, int, bool) {
	t.Helper()
	type answer struct{ status int }
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- answer{}
			return
		}
		resp.Body.Close()
		answered <- answer{resp.StatusCode}
	}()
	start := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if _, err := conn.Write([]byte("1\r\nx\r\n")); err != nil {
			select {
			case a := <-answered:
				return time.Since(start), a.status, false
			case <-time.After(5 * time.Second):
				return time.Since(start), 0, false
			}
		}
		select {
		case a := <-answered:
			return time.Since(start), a.status, false
		case <-tick.C:
		}
		if time.Since(start) > limit {
			return time.Since(start), 0, true
		}
	}
}

// TestBodyIdleTimeout: a body trickling 1 byte every 3 s is cut after the 1 s body-idle-timeout, with or without
// credentials; a body sending a byte every 200 ms for longer than the timeout keeps going and completes.
func TestBodyIdleTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.BodyIdleTimeout = time.Second
	ts := startServer(t, cfg)

	for _, withAuth := range []bool{true, false} {
		t.Run(fmt.Sprintf("trickling, auth %v", withAuth), func(t *testing.T) {
			took, status, gaveUp := trickle(t, chunkedPatch(t, ts, withAuth), 3*time.Second, 20*time.Second)
			if gaveUp {
				t.Fatalf("a body sending 1 byte every 3s still held the connection after %s", took.Round(time.Second))
			}
			if took > 5*time.Second {
				t.Errorf("cut after %s, want about the 1s idle timeout", took.Round(100*time.Millisecond))
			}
			if withAuth && status == http.StatusAccepted {
				t.Errorf("the trickling PATCH was accepted")
			}
			if !withAuth && status != 0 && status != http.StatusUnauthorized {
				t.Errorf("unauthenticated trickling PATCH: status %d, want 401 or a closed connection", status)
			}
		})
	}

	t.Run("slow but moving", func(t *testing.T) {
		conn := chunkedPatch(t, ts, true)
		const n = 15 // 3 s at 200 ms per byte: three times the idle timeout
		for range n {
			if _, err := conn.Write([]byte("1\r\nx\r\n")); err != nil {
				t.Fatalf("the server cut a body that was moving: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if _, err := conn.Write([]byte("0\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("reading the answer to a slow but moving PATCH: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != fmt.Sprintf("0-%d", n-1) {
			t.Errorf("slow PATCH: status %d, Range %q; want 202 and 0-%d", resp.StatusCode, resp.Header.Get("Range"), n-1)
		}
	})
	if !strings.Contains(ts.logs.String(), "body-idle-timeout") {
		t.Errorf("the log does not say why the body was cut:\n%s", ts.logs.String())
	}
}

// open reports whether the server keeps a fresh connection open: a read that times out means it waits for a
// request, EOF or a reset that it closed the connection.
func open(t *testing.T, conn net.Conn) bool {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
	_, err := conn.Read(make([]byte, 1))
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// TestMaxUnauthenticatedConns: one address may hold max-unauthenticated-conns connections that have not
// authenticated; the next is closed at once. A connection that authenticated no longer counts, and without auth
// there is no limit.
func TestMaxUnauthenticatedConns(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxUnauthenticatedConns = 3
	ts := startServer(t, cfg)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ts.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var idle []net.Conn
	for i := range 3 {
		c := dial()
		if !open(t, c) {
			t.Fatalf("connection %d of 3 was closed", i+1)
		}
		idle = append(idle, c)
	}
	if open(t, dial()) {
		t.Fatal("a 4th unauthenticated connection from the same address was kept open")
	}

	// One goes away: an authenticated client gets in, and its connection stops counting once it authenticated.
	idle[0].Close()
	time.Sleep(200 * time.Millisecond) // the server notices the close
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/v2/", nil)
	req.SetBasicAuth(AdminUser, ts.password)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("authenticated request with a free slot: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authenticated request: %d", resp.StatusCode)
	}
	if !open(t, dial()) {
		t.Error("the authenticated keep-alive connection still counts as unauthenticated")
	}
	if open(t, dial()) {
		t.Error("a 4th unauthenticated connection was kept open")
	}
	client.CloseIdleConnections()

	t.Run("no auth", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.NoAuth, cfg.MaxUnauthenticatedConns = true, 1
		ts := startServer(t, cfg)
		for i := range 3 {
			c, err := net.Dial("tcp", ts.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if !open(t, c) {
				t.Fatalf("without auth, connection %d was closed", i+1)
			}
		}
	})
}

// TestBodyIdleTimeoutMeasuresTheClient: the timeout counts how long the client keeps the handler waiting, not how
// long the handler takes between reads (a part upload to slow object storage), and the deadline is gone after EOF,
// so a handler working long after reading the whole body keeps its request.
func TestBodyIdleTimeoutMeasuresTheClient(t *testing.T) {
	const idle = 300 * time.Millisecond
	srv := httptest.NewServer(limitBodyIdle(idle, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64<<10) // more than the server buffers: the last of these reads is from the socket
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(3 * idle) // the handler is slow, the client has sent everything
		rest, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(idle / 4)
		if n, err := r.Body.Read(buf); n != 0 || err != io.EOF { // a read after EOF must not set a deadline again
			http.Error(w, fmt.Sprintf("read after EOF: %d, %v", n, err), http.StatusBadRequest)
			return
		}
		select { // working after EOF: the server's background read must not time out and cancel the request
		case <-r.Context().Done():
			http.Error(w, "request context cancelled", http.StatusBadRequest)
			return
		case <-time.After(3 * idle):
		}
		fmt.Fprintf(w, "%d", len(buf)+len(rest))
	})))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/octet-stream", strings.NewReader(strings.Repeat("x", 1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "1048576" {
		t.Errorf("slow handler, prompt client: %d %q, want 200 1048576", resp.StatusCode, body)
	}
}
