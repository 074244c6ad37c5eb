//go:build e2e

package e2e

// End-to-end tests of how the nodes reach and trust a deployed registry (issue 15), on the two-node test cluster
// (scripts/cluster/up.sh --nodes 2 [--proxy-mode nftables]): the registry runs on node1 and a pod on node2 (its own
// network namespace, containerd, kubelet and kube-proxy) must pull through the network, never through the
// host's loopback. They skip on a single-node cluster (CI runs them on the two-node one; see scripts/ci.sh).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// twoNodes returns the second node's name, skipping the test on a single-node cluster.
func twoNodes(t *testing.T) string {
	t.Helper()
	env := clusterEnv(t)
	if env["CLUSTER_NODES"] != "2" {
		if os.Getenv("E2E_REQUIRE_NODES") == "2" {
			t.Fatalf("E2E_REQUIRE_NODES=2 but the cluster has one node: scripts/cluster/up.sh --nodes 2")
		}
		t.Skip("needs the two-node cluster: scripts/cluster/up.sh --nodes 2")
	}
	return env.get(t, "CLUSTER_NODE2_NAME")
}

func envTemplate(t *testing.T, key string) string {
	return strings.Trim(clusterEnv(t).get(t, key), "'")
}

// nodeTrustFlags point deploy's node-trust DaemonSet at each test node's containerd files.
func nodeTrustFlags(t *testing.T) []string {
	return []string{"--containerd-config", envTemplate(t, "CLUSTER_CONTAINERD_CONFIG_TEMPLATE"),
		"--containerd-certs-dir", envTemplate(t, "CLUSTER_CONTAINERD_CERTS_D_TEMPLATE")}
}

// nodesDeployment is one registry deployed for these tests.
type nodesDeployment struct {
	ns, appNS, password, push, prefix, out string
	port                                   int
	args                                   []string
}

// nodesDeploy deploys a registry with the test image, a PV, a free node port, a pull Secret in a new app
// namespace, and extra flags.
func nodesDeploy(t *testing.T, cs kubernetes.Interface, extra ...string) *nodesDeployment {
	t.Helper()
	d := &nodesDeployment{ns: depNamespace(t, cs, "e2e-rk-nodes"), appNS: newNamespace(t), port: depFreeNodePort(t, cs)}
	class := depUniqueName("e2e-rk-pv")
	depHostPathPV(t, cs, class, d.ns, "registry")
	d.args = append([]string{"deploy", "-n", d.ns, "--image", registryKitImage(t), "--node-port", fmt.Sprint(d.port),
		"--storage-class", class, "--storage-size", "1Gi", "--timeout", "3m", "--pull-secret-namespaces", d.appNS}, extra...)
	r := depRun(t, "", d.args...)
	m := depPasswordLine.FindStringSubmatch(r.out)
	if m != nil {
		d.password = m[1]
	}
	d.out = depRedact(r.out, d.password)
	if r.err != nil || d.password == "" {
		t.Fatalf("deploy %s: %v (password printed: %v)\n%s", strings.Join(extra, " "), r.err, d.password != "", d.out)
	}
	d.push = depField(r.out, "Push from this machine to:")
	d.prefix = strings.TrimSuffix(depField(r.out, "Image prefix for pods:"), "/")
	t.Logf("deploy %s in %s: push %s, pods pull %s", strings.Join(extra, " "), r.elapsed.Round(100*time.Millisecond), d.push, d.prefix)
	return d
}

// nodePod is the test app pinned to node (tolerating the second node's taint), pulled with the pull Secret.
func nodePod(t *testing.T, cs kubernetes.Interface, ns, podName, node, image string) {
	t.Helper()
	pod := testAppPod(podName, image, corev1.PullAlways)
	pod.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "registry-kit-pull"}}
	pod.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": node}
	pod.Spec.Tolerations = []corev1.Toleration{{Key: "registry-kit.dev/second-node", Operator: corev1.TolerationOpExists}}
	createPodObject(t, cs, ns, pod)
}

func wantOutput(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// TestNodesExposeAuto: deploy chooses from the detected kube-proxy mode: nodeport-localhost on iptables,
// node-proxy on nftables (where --expose nodeport-localhost is refused without --force), and a pod on the node
// that does not run the registry pulls through it and runs. Undeploy removes the node proxy.
func TestNodesExposeAuto(t *testing.T) {
	node2 := twoNodes(t)
	cs := kubeClient(t)
	mode := clusterEnv(t).get(t, "CLUSTER_PROXY_MODE")
	proxyPort := 29000 + rand.IntN(400)
	d := nodesDeploy(t, cs, "--node-proxy-port", fmt.Sprint(proxyPort), "--canary")
	// The canary: one pull per node, both through the chosen address.
	wantOutput(t, d.out, "Canary (one pull from "+d.prefix+" on every node):", "  node1: reached "+d.prefix+" (plain HTTP, pull credentials accepted)",
		"  "+node2+": reached "+d.prefix+" (plain HTTP, pull credentials accepted)")
	switch mode {
	case "iptables":
		wantOutput(t, d.out, "Nodes pull through:         nodeport-localhost (kube-proxy runs in iptables mode (node node1 kube-proxy :10249/")
		if want := fmt.Sprintf("localhost:%d", d.port); d.prefix != want {
			t.Fatalf("image prefix %q, want %q", d.prefix, want)
		}
	case "nftables":
		wantOutput(t, d.out, "Nodes pull through:         node-proxy (kube-proxy runs in nftables mode",
			fmt.Sprintf("daemonset.apps/%s-registry-proxy created (namespace registry-kit-nodes)", d.ns))
		if want := fmt.Sprintf("localhost:%d", proxyPort); d.prefix != want {
			t.Fatalf("image prefix %q, want %q", d.prefix, want)
		}
		// The proxy listens on each node's loopback only: not on node2's IP.
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(clusterEnv(t).get(t, "CLUSTER_NODE2_IP"), fmt.Sprint(proxyPort)), 2*time.Second); err == nil {
			c.Close()
			t.Errorf("the node proxy answers on node2's IP: it must bind 127.0.0.1 only")
		}
		refused := depRun(t, "", append(d.args, "--expose", "nodeport-localhost", "--dry-run", "client")...)
		if refused.err == nil || !strings.Contains(refused.out, "--force") || !strings.Contains(refused.out, "nftables mode") {
			t.Errorf("--expose nodeport-localhost on nftables: err %v, want a refusal naming the mode and --force:\n%s", refused.err, depRedact(refused.out, d.password))
		}
	default:
		t.Fatalf("CLUSTER_PROXY_MODE %q", mode)
	}
	pushed := pushTestApp(t, d.push, "admin", d.password, "e2e/app")
	image := d.prefix + "/e2e/app" + pushed[strings.Index(pushed, "@"):]
	nodePod(t, cs, d.appNS, "on-node2", node2, image)
	p := waitPodPhase(t, cs, d.appNS, "on-node2", corev1.PodRunning)
	if p.Spec.NodeName != node2 {
		t.Fatalf("pod ran on %s, want %s", p.Spec.NodeName, node2)
	}
	t.Logf("pod on %s runs %s (kube-proxy %s)", node2, image, mode)

	un := depRun(t, "", "undeploy", "-n", d.ns)
	if un.err != nil {
		t.Fatalf("undeploy: %v\n%s", un.err, un.out)
	}
	if mode == "nftables" {
		wantOutput(t, un.out, fmt.Sprintf("daemonset.apps/%s-registry-proxy deleted (namespace registry-kit-nodes)", d.ns))
		if _, err := cs.AppsV1().DaemonSets("registry-kit-nodes").Get(context.Background(), d.ns+"-registry-proxy", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("node proxy DaemonSet after undeploy: %v", err)
		}
	}
}

// tlsPush pushes the test app over HTTPS, trusting the registry's generated CA (Secret registry-ca).
func tlsPush(t *testing.T, cs kubernetes.Interface, d *nodesDeployment, repo string) string {
	t.Helper()
	s, err := cs.CoreV1().Secrets(d.ns).Get(context.Background(), "registry-ca", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading the generated CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.Data["ca.crt"]) {
		t.Fatal("Secret registry-ca holds no PEM ca.crt")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	tag, err := name.NewTag(d.push + "/" + repo + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	img := testAppImage(t)
	if err := remote.Write(tag, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: d.password}), remote.WithTransport(tr)); err != nil {
		t.Fatalf("pushing over TLS to %s: %v", tag, err)
	}
	dg, _ := img.Digest()
	return d.prefix + "/" + repo + "@" + dg.String()
}

// TestNodesTLS: --expose tls serves HTTPS with a generated CA on node1's IP and the node port; before the nodes
// trust it, the pod on node2 fails with the x509 error (and doctor names it); `registry-kit nodes trust` writes
// hosts.toml + ca.crt on both nodes and the pod pulls; a redeploy keeps the CA; undeploy removes the DaemonSet and
// exactly the files it wrote.
func TestNodesTLS(t *testing.T) {
	node2 := twoNodes(t)
	cs := kubeClient(t)
	env := clusterEnv(t)
	// Somebody else's certs.d entry on each node, which must survive.
	certsDirs := []string{env.get(t, "CONTAINERD_CERTS_D"), env.get(t, "CLUSTER_NODE2_CERTS_D")}
	for _, dir := range certsDirs {
		other := filepath.Join(dir, "unrelated.example:5000")
		if err := os.MkdirAll(other, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(other, "hosts.toml"), []byte("server = \"https://unrelated.example:5000\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(other) })
	}
	d := nodesDeploy(t, cs, "--expose", "tls", "--canary")
	nodeIP := env.get(t, "CLUSTER_NODE_IP")
	wantOutput(t, d.out, "Nodes pull through:         tls (asked for with --expose)", "TLS: generated a new CA and server certificate",
		"registry-kit nodes trust -n "+d.ns, "Warning: canary: 2 of 2 nodes cannot pull from "+d.prefix+" (node1, "+node2+")",
		"  "+node2+": ", "x509: certificate signed by unknown authority", "fix: the node does not trust the registry's CA: registry-kit nodes trust -n "+d.ns)
	if want := fmt.Sprintf("%s:%d", nodeIP, d.port); d.prefix != want {
		t.Fatalf("image prefix %q, want node1's IP and the node port %q", d.prefix, want)
	}
	image := tlsPush(t, cs, d, "e2e/tls-app")

	// 1. Untrusted: x509, and doctor says so.
	nodePod(t, cs, d.appNS, "before-trust", node2, image)
	st := waitPodWaitingReason(t, cs, d.appNS, "before-trust", "ErrImagePull", "ImagePullBackOff")
	events := describePod(cs, d.appNS, "before-trust")
	if !strings.Contains(st.State.Waiting.Message+events, "x509") {
		t.Errorf("pull before trust failed without the x509 error: %s\n%s", st.State.Waiting.Message, events)
	}
	doc := depRun(t, "", "doctor", "before-trust", "-n", d.appNS, "--offline")
	if !strings.Contains(strings.ToLower(doc.out), "certificate") {
		t.Errorf("doctor does not name the certificate problem:\n%s", doc.out)
	}

	docBefore := depRun(t, "", "doctor", "--nodes", "-n", d.ns)
	if docBefore.err == nil || !strings.Contains(docBefore.out, "x509: certificate signed by unknown authority") {
		t.Errorf("doctor --nodes before trust: err %v, want a failure naming x509:\n%s", docBefore.err, docBefore.out)
	}

	// 2. Trust on every node, then the pull works.
	trust := depRun(t, "", append([]string{"nodes", "trust", "-n", d.ns}, nodeTrustFlags(t)...)...)
	if trust.err != nil {
		t.Fatalf("nodes trust: %v\n%s", trust.err, trust.out)
	}
	wantOutput(t, trust.out, "node1: wrote ", "node2: wrote ", "hosts.toml (TLS with the registry's CA)")
	for _, dir := range certsDirs {
		hosts, err := os.ReadFile(filepath.Join(dir, d.prefix, "hosts.toml"))
		if err != nil || !strings.Contains(string(hosts), `server = "https://`+d.prefix+`"`) || !strings.Contains(string(hosts), "ca = ") {
			t.Errorf("%s/%s/hosts.toml: %v\n%s", dir, d.prefix, err, hosts)
		}
	}
	// doctor --nodes: the same canary, now good on both nodes.
	docNodes := depRun(t, "", "doctor", "--nodes", "-n", d.ns)
	if docNodes.err != nil {
		t.Errorf("doctor --nodes after trust: %v\n%s", docNodes.err, docNodes.out)
	}
	wantOutput(t, docNodes.out, "node1: reached "+d.prefix+" (TLS, certificate trusted, pull credentials accepted)",
		node2+": reached "+d.prefix+" (TLS, certificate trusted, pull credentials accepted)")
	nodePod(t, cs, d.appNS, "after-trust", node2, image)
	waitPodPhase(t, cs, d.appNS, "after-trust", corev1.PodRunning)
	t.Logf("pod on %s pulls %s over TLS after nodes trust", node2, image)

	// 3. A redeploy keeps the CA (so the nodes' trust stays valid).
	again := depRun(t, "", d.args...)
	if again.err != nil || !strings.Contains(again.out, "TLS: keeping the CA and certificate") {
		t.Errorf("redeploy: %v, want the CA kept:\n%s", again.err, depRedact(again.out, d.password))
	}

	// 4. Undeploy: the DaemonSet, and only the files it wrote.
	un := depRun(t, "", "undeploy", "-n", d.ns)
	if un.err != nil {
		t.Fatalf("undeploy: %v\n%s", un.err, un.out)
	}
	wantOutput(t, un.out, "node1: removed ", "node2: removed ", fmt.Sprintf("daemonset.apps/%s-registry-trust deleted", d.ns))
	for _, dir := range certsDirs {
		if _, err := os.Stat(filepath.Join(dir, d.prefix)); !os.IsNotExist(err) {
			t.Errorf("%s/%s still there after undeploy (%v)", dir, d.prefix, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "unrelated.example:5000", "hosts.toml")); err != nil {
			t.Errorf("undeploy removed an unrelated certs.d entry: %v", err)
		}
	}
}

// TestNodesJoinLater: with the second node down, deploy --expose tls --configure-nodes trusts node1; the second
// node joins afterwards and gets the trust from the DaemonSet without a redeploy, so its pod pulls.
func TestNodesJoinLater(t *testing.T) {
	node2 := twoNodes(t)
	cs := kubeClient(t)
	nodeScript := func(action string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(repoRoot, "scripts", "cluster", "node.sh"), action, "2")
		cmd.Env = append(os.Environ(), "CLUSTER_DIR="+clusterEnv(t).get(t, "CLUSTER_DIR"))
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("node.sh %s 2: %v\n%s", action, err, out)
		}
		t.Logf("node.sh %s 2: %s", action, time.Since(start).Round(100*time.Millisecond))
	}
	sock2 := clusterEnv(t).get(t, "CLUSTER_NODE2_CONTAINERD_SOCK")
	certs2 := clusterEnv(t).get(t, "CLUSTER_NODE2_CERTS_D")
	image := registryKitImage(t) // imported on both nodes before node2 goes
	nodeScript("remove")
	t.Cleanup(func() {
		if err := exec.Command(filepath.Join(repoRoot, "scripts", "cluster", "node.sh"), "add", "2").Run(); err != nil {
			t.Errorf("bringing node2 back: %v", err)
		}
	})
	d := nodesDeploy(t, cs, append([]string{"--expose", "tls", "--configure-nodes"}, nodeTrustFlags(t)...)...)
	wantOutput(t, d.out, "Node trust for "+d.prefix, "node1: wrote ")
	if strings.Contains(d.out, "node2:") {
		t.Errorf("node2 is down, yet deploy reports it:\n%s", d.out)
	}
	ref := tlsPush(t, cs, d, "e2e/join-app")

	nodeScript("add")
	// The node's containerd is new: give it the registry-kit image the DaemonSet runs.
	if _, err := buildRegistryKitImage(binary(t), needTool(t, "ctr"), sock2); err != nil {
		t.Fatalf("importing %s into node2: %v", image, err)
	}
	hosts := filepath.Join(certs2, d.prefix, "hosts.toml")
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, 2*time.Minute, true, func(context.Context) (bool, error) {
		_, err := os.Stat(hosts)
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("node2 joined but got no %s within 2 minutes\n%s", hosts, componentLogs("trust", 20))
	}
	nodePod(t, cs, d.appNS, "joined", node2, ref)
	waitPodPhase(t, cs, d.appNS, "joined", corev1.PodRunning)
	t.Logf("node2 joined after deploy, got %s from the DaemonSet, and its pod pulls %s", hosts, ref)
}
