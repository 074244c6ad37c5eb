//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// restartKubelet runs scripts/cluster/kubelet.sh restart with extra kubelet flags (none: back to up.sh's flags).
func restartKubelet(t *testing.T, flags ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot, "scripts", "cluster", "kubelet.sh"), append([]string{"restart"}, flags...)...)
	cmd.Env = append(os.Environ(), "CLUSTER_DIR="+clusterEnv(t).get(t, "CLUSTER_DIR"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubelet.sh restart %s: %v\n%s", strings.Join(flags, " "), err, out)
	}
}

// installCredentialProvider makes dir/credential-providers, the kubelet's bin dir, holding the binary under test
// as the provider registry-kit, and returns it.
func installCredentialProvider(t *testing.T, dir string) string {
	t.Helper()
	binDir := filepath.Join(dir, "credential-providers")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binary(t), filepath.Join(binDir, "registry-kit")); err != nil {
		t.Fatal(err)
	}
	return binDir
}

// TestCredentialProvider: the kubelet runs registry-kit as its image credential provider, configured with the file
// `registry-kit credential-provider config` generates; a pod with no imagePullSecrets pulls a private image and
// runs; with wrong credentials in the provider's file the pull fails with 401 (ErrImagePull). The kubelet gets
// its normal flags back when the test ends.
func TestCredentialProvider(t *testing.T) {
	cs := kubeClient(t)
	reg := startServe(t)
	if reg.User == "" || reg.Password == "" {
		t.Fatalf("registry-kit serve should create user admin and write %s/admin-password", reg.DataDir)
	}
	trustRegistry(t, reg.Addr)
	ref := pushTestApp(t, reg.Addr, reg.User, reg.Password, "e2e/credential-provider")

	// The node layout: the plugin binary in the bin dir under its provider name, a 0600 credentials file, the config.
	node := t.TempDir()
	binDir := installCredentialProvider(t, node)
	credsFile := filepath.Join(node, "credential-provider.json")
	writeCreds := func(t *testing.T, password string) {
		t.Helper()
		payload, _ := runPullSecretRK(t, password, nil, false, "pull-secret", "create", "node", "--server", reg.Addr,
			"--username", reg.User, "--password-stdin", "-o", "json")
		var s corev1.Secret
		if err := json.Unmarshal([]byte(payload), &s); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(credsFile, s.Data[corev1.DockerConfigJsonKey], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCreds(t, reg.Password)
	config, _ := runPullSecretRK(t, "", nil, false, "credential-provider", "config", "--match", reg.Addr,
		"--credentials-file", credsFile, "--cache-duration", "0s")
	configFile := filepath.Join(node, "credential-provider-config.yaml")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { restartKubelet(t) })
	restartKubelet(t, "--image-credential-provider-config="+configFile, "--image-credential-provider-bin-dir="+binDir)

	t.Run("no pull secret, provider credentials: runs", func(t *testing.T) {
		ns := newNamespace(t)
		createPod(t, cs, ns, "app", ref, "")
		waitPodPhase(t, cs, ns, "app", corev1.PodRunning)
	})

	t.Run("wrong provider credentials: ErrImagePull", func(t *testing.T) {
		writeCreds(t, reg.Password+"-wrong") // cache duration 0s: the kubelet asks the plugin on every pull
		ns := newNamespace(t)
		createPod(t, cs, ns, "app", ref, "")
		st := waitPodWaitingReason(t, cs, ns, "app", "ErrImagePull", "ImagePullBackOff")
		if msgs := st.State.Waiting.Message + "\n" + podEventMessages(t, cs, ns, "app"); !strings.Contains(strings.ToLower(msgs), "401 unauthorized") {
			t.Errorf("pull failed, but not with 401 Unauthorized from the registry:\n%s", describePod(cs, ns, "app"))
		}
	})
}
