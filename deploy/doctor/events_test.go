package doctor

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestClassifyEvent runs the classifier over the kubelet texts in testdata (collected from the local cluster where
// marked) and a few edge cases.
func TestClassifyEvent(t *testing.T) {
	type tc struct {
		name string
		msg  string
		want EventClass
	}
	cases := []tc{
		{name: "empty", msg: "", want: EventNone},
		{name: "dns error does not read as not found", msg: `Failed to pull image "x.onion:1/a": lookup x.onion: no such host (not found)`, want: EventDNS},
	}
	f, err := os.Open("testdata/kubelet-events.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		class, msg, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("testdata/kubelet-events.txt:%d: no tab", n)
		}
		cases = append(cases, tc{name: fmt.Sprintf("testdata line %d", n), msg: msg, want: EventClass(class)})
	}
	if len(cases) < 10 {
		t.Fatalf("only %d cases read from testdata", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if diff := cmp.Diff(c.want, ClassifyEvent(c.msg)); diff != "" {
				t.Errorf("ClassifyEvent(%q) (-want +got):\n%s", c.msg, diff)
			}
		})
	}
}

func TestHostInMessage(t *testing.T) {
	cases := []struct{ name, msg, want string }{
		{"pulling from host", `pulling from host 127.0.0.1:5000 failed with status code [manifests v1]: 401 Unauthorized`, "127.0.0.1:5000"},
		{"head url", `failed to do request: Head "https://reg.example.com:5443/v2/app/manifests/v1": x509: certificate signed by unknown authority`, "reg.example.com:5443"},
		{"lookup", `dial tcp: lookup nowhere.onion: no such host`, "nowhere.onion"},
		{"none", `something else`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if diff := cmp.Diff(c.want, hostInMessage(c.msg)); diff != "" {
				t.Error(diff)
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	cases := []struct {
		name, arg string
		want      Target
		wantErr   bool
	}{
		{name: "namespace", arg: "", want: Target{Namespace: "ns"}},
		{name: "bare pod", arg: "web-1", want: Target{Namespace: "ns", Pod: "web-1"}},
		{name: "pod/", arg: "pod/web-1", want: Target{Namespace: "ns", Pod: "web-1"}},
		{name: "deployment", arg: "deployment/web", want: Target{Namespace: "ns", Deployment: "web"}},
		{name: "deploy", arg: "deploy/web", want: Target{Namespace: "ns", Deployment: "web"}},
		{name: "bad kind", arg: "service/web", wantErr: true},
		{name: "no name", arg: "pod/", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseTarget(c.arg, "ns")
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, c.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(c.want, got); diff != "" {
					t.Error(diff)
				}
			}
		})
	}
}
