package nodetrust

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pelletier/go-toml/v2"
)

func TestHostsTOML(t *testing.T) {
	tests := []struct {
		name string
		host Host
		want string
	}{
		{"plain HTTP", Host{Address: "10.200.0.1:30500"},
			"# Written by registry-kit (nodes trust); removed by registry-kit undeploy.\n" +
				"server = \"http://10.200.0.1:30500\"\n\n[host.\"http://10.200.0.1:30500\"]\n  capabilities = [\"pull\", \"resolve\"]\n"},
		{"TLS with a CA", Host{Address: "registry.lan:443", TLS: true, CAFile: "/etc/containerd/certs.d/registry.lan:443/ca.crt"},
			"# Written by registry-kit (nodes trust); removed by registry-kit undeploy.\n" +
				"server = \"https://registry.lan:443\"\nca = \"/etc/containerd/certs.d/registry.lan:443/ca.crt\"\n\n" +
				"[host.\"https://registry.lan:443\"]\n  capabilities = [\"pull\", \"resolve\"]\n" +
				"  ca = \"/etc/containerd/certs.d/registry.lan:443/ca.crt\"\n"},
		{"IPv6", Host{Address: "[fd00::1]:30500", TLS: true},
			"# Written by registry-kit (nodes trust); removed by registry-kit undeploy.\n" +
				"server = \"https://[fd00::1]:30500\"\n\n[host.\"https://[fd00::1]:30500\"]\n  capabilities = [\"pull\", \"resolve\"]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := HostsTOML(tt.host)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, string(got)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			// What containerd parses: the same keys and values.
			var parsed struct {
				Server string `toml:"server"`
				Host   map[string]struct {
					Capabilities []string `toml:"capabilities"`
					CA           string   `toml:"ca"`
				} `toml:"host"`
			}
			if err := toml.Unmarshal(got, &parsed); err != nil {
				t.Fatalf("not valid TOML: %v", err)
			}
			h, ok := parsed.Host[tt.host.URL()]
			if parsed.Server != tt.host.URL() || !ok || h.CA != tt.host.CAFile || strings.Join(h.Capabilities, ",") != "pull,resolve" {
				t.Errorf("parsed back as %+v", parsed)
			}
		})
	}
	for _, bad := range []Host{{Address: "no-port"}, {Address: "a/b:1"}, {Address: ":5000"}, {Address: "h:1", CAFile: "/ca"}} {
		if _, err := HostsTOML(bad); err == nil {
			t.Errorf("HostsTOML(%+v): no error", bad)
		}
	}
}

func TestConfigPaths(t *testing.T) {
	tests := []struct {
		name    string
		conf    string
		want    []string
		wantErr string
	}{
		{name: "version 2", conf: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n",
			want: []string{"/etc/containerd/certs.d"}},
		{name: "version 2 list", conf: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d:/etc/docker/certs.d/\"\n",
			want: []string{"/etc/containerd/certs.d", "/etc/docker/certs.d"}},
		{name: "version 2 unset", conf: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors]\n", wantErr: "config_path is not set"},
		{name: "version 2 unset with imports", conf: "version = 2\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n", wantErr: "imports /etc/containerd/conf.d/*.toml"},
		{name: "version 3", conf: "version = 3\n[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"/x\"\n", want: []string{"/x"}},
		{name: "version 3 default", conf: "version = 3\n", want: []string{"/etc/containerd/certs.d", "/etc/docker/certs.d"}},
		{name: "not TOML", conf: "version = [", wantErr: "parsing containerd's configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfigPaths([]byte(tt.conf))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestCheckConfigPath(t *testing.T) {
	v2 := "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n"
	if err := CheckConfigPath([]byte(v2), "/etc/containerd/config.toml", "/etc/containerd/certs.d/"); err != nil {
		t.Errorf("matching config_path: %v", err)
	}
	err := CheckConfigPath([]byte(v2), "/etc/containerd/config.toml", "/var/lib/certs.d")
	if err == nil || !strings.Contains(err.Error(), "--containerd-certs-dir /etc/containerd/certs.d") {
		t.Errorf("other config_path: err = %v, want the flag to use", err)
	}
	err = CheckConfigPath([]byte("version = 2\n"), "/etc/containerd/config.toml", "/etc/containerd/certs.d")
	if !errors.Is(err, ErrNoConfigPath) || !strings.Contains(err.Error(), `config_path = "/etc/containerd/certs.d"`) || !strings.Contains(err.Error(), "restart containerd") {
		t.Errorf("unset config_path: err = %v, want ErrNoConfigPath with the fix", err)
	}
}

func TestWriteRemove(t *testing.T) {
	certs := t.TempDir()
	// Somebody else's entries: one directory, and a file inside the one registry-kit will write.
	other := filepath.Join(certs, "docker.io")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, HostsFile), []byte("server = \"https://registry-1.docker.io\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := Trust{Host: Host{Address: "10.200.0.1:30500", TLS: true}, CA: []byte("-----BEGIN CERTIFICATE-----\n"), Owner: "docker-registry/registry"}
	if err := Write(certs, "/etc/containerd/certs.d", tr); err != nil {
		t.Fatal(err)
	}
	hosts, err := os.ReadFile(filepath.Join(certs, "10.200.0.1:30500", HostsFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(hosts), `ca = "/etc/containerd/certs.d/10.200.0.1:30500/ca.crt"`) {
		t.Errorf("hosts.toml does not point at the node's ca.crt:\n%s", hosts)
	}
	if ca, _ := os.ReadFile(filepath.Join(certs, "10.200.0.1:30500", CAFile)); string(ca) != string(tr.CA) {
		t.Errorf("ca.crt = %q", ca)
	}
	// Again: idempotent. Another registry for the same address: refused.
	if err := Write(certs, "/etc/containerd/certs.d", tr); err != nil {
		t.Errorf("second write: %v", err)
	}
	tr2 := tr
	tr2.Owner = "other/registry"
	if err := Write(certs, "/etc/containerd/certs.d", tr2); err == nil || !strings.Contains(err.Error(), "docker-registry/registry") {
		t.Errorf("write for another owner: err = %v", err)
	}
	// A hosts.toml registry-kit did not write is never replaced.
	if err := Write(certs, "/x", Trust{Host: Host{Address: "docker.io:443", TLS: true}, Owner: "a/b"}); err != nil {
		t.Errorf("docker.io:443 is a different directory: %v", err)
	}
	mine := filepath.Join(certs, "mine:5000")
	_ = os.MkdirAll(mine, 0o755)
	_ = os.WriteFile(filepath.Join(mine, HostsFile), []byte("# by hand\n"), 0o644)
	if err := Write(certs, "/x", Trust{Host: Host{Address: "mine:5000"}, Owner: "a/b"}); !errors.Is(err, ErrNotOurs) {
		t.Errorf("write over a hand-written hosts.toml: err = %v, want ErrNotOurs", err)
	}

	// Remove: another owner's or a hand-made entry stays; ours goes, with its directory.
	if removed, err := Remove(certs, "10.200.0.1:30500", "other/registry"); err != nil || removed {
		t.Errorf("remove for another owner = %v, %v", removed, err)
	}
	if removed, err := Remove(certs, "mine:5000", "a/b"); err != nil || removed {
		t.Errorf("remove of a hand-made entry = %v, %v", removed, err)
	}
	if removed, err := Remove(certs, "10.200.0.1:30500", "docker-registry/registry"); err != nil || !removed {
		t.Errorf("remove = %v, %v", removed, err)
	}
	if _, err := os.Stat(filepath.Join(certs, "10.200.0.1:30500")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory left behind: %v", err)
	}
	for _, keep := range []string{filepath.Join(other, HostsFile), filepath.Join(mine, HostsFile)} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("%s was removed: %v", keep, err)
		}
	}
	if removed, err := Remove(certs, "10.200.0.1:30500", "docker-registry/registry"); err != nil || removed {
		t.Errorf("second remove = %v, %v", removed, err)
	}
}

func TestRunAgent(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs.d")
	conf := filepath.Join(dir, "config.toml")
	o := AgentOptions{Registry: "10.200.0.1:30500", TLS: true, CAFile: filepath.Join(dir, "ca.crt"), Owner: "ns/registry",
		CertsDir: certs, HostCertsDir: "/etc/containerd/certs.d", ContainerdConfig: conf, HostContainerdConfig: "/etc/containerd/config.toml"}
	if _, err := RunAgent(o); err == nil || !strings.Contains(err.Error(), "no containerd configuration at /etc/containerd/config.toml") {
		t.Errorf("without a config: err = %v", err)
	}
	_ = os.WriteFile(conf, []byte("version = 2\n"), 0o644)
	if _, err := RunAgent(o); !errors.Is(err, ErrNoConfigPath) {
		t.Errorf("config_path unset: err = %v", err)
	}
	_ = os.WriteFile(conf, []byte("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d\"\n"), 0o644)
	_ = os.WriteFile(o.CAFile, []byte("PEM"), 0o644)
	msg, err := RunAgent(o)
	if err != nil || !strings.Contains(msg, "wrote /etc/containerd/certs.d/10.200.0.1:30500/hosts.toml (TLS with the registry's CA)") {
		t.Fatalf("RunAgent = %q, %v", msg, err)
	}
	o.Remove = true
	if msg, err := RunAgent(o); err != nil || !strings.Contains(msg, "removed") {
		t.Errorf("remove = %q, %v", msg, err)
	}
	if msg, err := RunAgent(o); err != nil || !strings.Contains(msg, "nothing to remove") {
		t.Errorf("second remove = %q, %v", msg, err)
	}
}

func TestDaemonSetPaths(t *testing.T) {
	tests := []struct {
		name                 string
		config, certs        string
		wantArgs, wantMounts []string
	}{
		{"defaults", "", "",
			[]string{"--certs-dir=/host/certs", "--host-certs-dir=/etc/containerd/certs.d", "--certs-mount=/host/certs=/etc/containerd/certs.d",
				"--containerd-config=/host/containerd/config.toml", "--config-mount=/host/containerd=/etc/containerd"},
			[]string{"/etc/containerd/certs.d", "/etc/containerd"}},
		{"per-node template", "/tmp/c/$(NODE_NAME)/containerd/config.toml", "/tmp/c/$(NODE_NAME)/certs.d",
			[]string{"--certs-dir=/host/certs/$(NODE_NAME)/certs.d", "--host-certs-dir=/tmp/c/$(NODE_NAME)/certs.d", "--certs-mount=/host/certs=/tmp/c",
				"--containerd-config=/host/containerd/$(NODE_NAME)/containerd/config.toml", "--config-mount=/host/containerd=/tmp/c"},
			[]string{"/tmp/c", "/tmp/c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := DaemonSet(DaemonSetOptions{Namespace: "n", Name: "x", Image: "img", Host: Host{Address: "h:1", TLS: true},
				CAConfigMap: "ca", Owner: "ns/r", ContainerdConfig: tt.config, CertsDir: tt.certs})
			ic := ds.Spec.Template.Spec.InitContainers[0]
			for _, a := range tt.wantArgs {
				if !slices.Contains(ic.Args, a) {
					t.Errorf("args %q lack %q", ic.Args, a)
				}
			}
			var got []string
			for _, v := range ds.Spec.Template.Spec.Volumes {
				if v.HostPath != nil {
					got = append(got, v.HostPath.Path)
				}
			}
			if d := cmp.Diff(tt.wantMounts, got); d != "" {
				t.Errorf("hostPath volumes (-want +got):\n%s", d)
			}
			if len(ic.Env) != 1 || ic.Env[0].Name != "NODE_NAME" || ic.Env[0].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
				t.Errorf("env %+v: want NODE_NAME from spec.nodeName", ic.Env)
			}
			if tol := ds.Spec.Template.Spec.Tolerations; len(tol) != 1 || tol[0].Operator != "Exists" {
				t.Errorf("tolerations %+v: want every taint tolerated", tol)
			}
		})
	}
}

func TestMountToHost(t *testing.T) {
	root := t.TempDir()
	_ = os.MkdirAll(filepath.Join(root, "node1", "certs.d"), 0o755)
	_ = os.Symlink("node1/certs.d", filepath.Join(root, "certs.d"))
	_ = os.Symlink("/etc", filepath.Join(root, "escape"))
	m, err := parseMount(root + "=/tmp/cluster")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.toHost(filepath.Join(root, "certs.d")); err != nil || got != "/tmp/cluster/node1/certs.d" {
		t.Errorf("through a relative symlink = %q, %v", got, err)
	}
	if _, err := m.toHost(filepath.Join(root, "escape")); err == nil || !strings.Contains(err.Error(), "leads out") {
		t.Errorf("absolute symlink out of the mount: err = %v", err)
	}
	if _, err := parseMount("relative=/x"); err == nil {
		t.Error("parseMount accepted a relative path")
	}
}
