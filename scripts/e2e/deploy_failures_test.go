//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/registry-kit/registry-kit/deploy"
)

// TestDeployNoCluster: no kubeconfig at all, and a kubeconfig whose API server is not running, give errors that
// say what to do.
func TestDeployNoCluster(t *testing.T) {
	dir := t.TempDir()
	down := filepath.Join(dir, "down.kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["down"] = &clientcmdapi.Cluster{Server: fmt.Sprintf("https://127.0.0.1:%d", freePort(t))}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "x"}
	cfg.Contexts["down"] = &clientcmdapi.Context{Cluster: "down", AuthInfo: "u"}
	cfg.CurrentContext = "down"
	if err := clientcmd.WriteToFile(*cfg, down); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"no kubeconfig", []string{"deploy"}, []string{"KUBECONFIG=" + filepath.Join(dir, "missing"), "HOME=" + dir},
			[]string{"no kubeconfig found", "--kubeconfig or KUBECONFIG"}},
		{"API server down", []string{"deploy", "--kubeconfig", down}, nil,
			[]string{"cannot reach the Kubernetes API server", "is the cluster running", "connection refused"}},
		{"undeploy, API server down", []string{"undeploy", "--kubeconfig", down}, nil,
			[]string{"cannot reach the Kubernetes API server"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := depExec(t, tc.env, tc.args...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("registry-kit %s succeeded, want an error:\n%s", strings.Join(tc.args, " "), out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestDeployRBAC: a ServiceAccount without rights is told which verb and resource it lacks; bound to exactly the
// Role and ClusterRole of --print-rbac it deploys (server dry run) and undeploys.
func TestDeployRBAC(t *testing.T) {
	cs := kubeClient(t)
	saNS, sa, tok, kubeconfig := newDeployer(t, cs)
	target := depUniqueName("e2e-rk-rbac")

	r := depRun(t, "", "deploy", "--kubeconfig", kubeconfig, "-n", target, "--dry-run=server")
	if r.err == nil {
		t.Fatalf("deploy without permissions succeeded:\n%s", r.out)
	}
	for _, w := range []string{"not allowed by RBAC", "cannot get secrets", "--print-rbac"} {
		if !strings.Contains(r.out, w) {
			t.Errorf("forbidden deploy: output lacks %q:\n%s", w, r.out)
		}
	}
	if strings.Contains(r.out, tok) {
		t.Fatalf("the token appears in deploy's output")
	}

	depNamespace(t, cs, target) // cleanup only
	// The admin hands the namespace over (the annotation), so deploy applies it and undeploy deletes it.
	bindDeployRole(t, cs, saNS, sa, target, true)
	// Real apply of everything but the wait (no PV here), then undeploy, both with exactly the printed role.
	for _, args := range [][]string{
		{"deploy", "--kubeconfig", kubeconfig, "-n", target, "--dry-run=server", "--node-port", "0"},
		{"deploy", "--kubeconfig", kubeconfig, "-n", target, "--wait=false", "--node-port", "0"},
		{"deploy", "--kubeconfig", kubeconfig, "-n", target, "--timeout", "5s", "--node-port", "0"}, // reads pods, events, nodes
		{"undeploy", "--kubeconfig", kubeconfig, "-n", target, "--delete-data"},
	} {
		r := depRun(t, "", args...)
		if refusedByRBAC(r.out) {
			t.Errorf("registry-kit %s with the --print-rbac role was refused:\n%s", strings.Join(args, " "), depRedact(r.out))
		}
		if r.err != nil && !strings.Contains(r.out, "is not ready") {
			t.Errorf("registry-kit %s: %v\n%s", strings.Join(args, " "), r.err, depRedact(r.out))
		}
	}
	// The namespace was handed over: deploy applied it (its Pod Security label) and undeploy deleted it.
	ns, err := cs.CoreV1().Namespaces().Get(context.Background(), target, metav1.GetOptions{})
	if err == nil && ns.DeletionTimestamp == nil {
		t.Errorf("namespace %s still exists after undeploy --delete-data (labels %v)", target, ns.Labels)
	}
}

// depTokenKubeconfig writes a kubeconfig for the local cluster that authenticates with a bearer token.
func depTokenKubeconfig(t testing.TB, token string) string {
	t.Helper()
	path := os.Getenv("KUBECONFIG")
	if path == "" {
		path = clusterEnv(t).get(t, "KUBECONFIG")
	}
	admin, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatalf("loading %s: %v", path, err)
	}
	ctx := admin.Contexts[admin.CurrentContext]
	if ctx == nil {
		t.Fatalf("%s has no current context", path)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = admin.Clusters[ctx.Cluster]
	cfg.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["sa"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "sa"}
	cfg.CurrentContext = "sa"
	out := filepath.Join(t.TempDir(), "sa.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDeployNotReady: a claim that cannot bind, and a registry image the node cannot pull, end the wait with an
// error that names the object, the reason and what to do.
func TestDeployNotReady(t *testing.T) {
	cs := kubeClient(t)
	image := registryKitImage(t)
	t.Run("claim cannot bind", func(t *testing.T) {
		ns := depNamespace(t, cs, "e2e-rk-nopv")
		r := depRun(t, "", "deploy", "-n", ns, "--image", image, "--node-port", "0", "--storage-class", "e2e-no-such-class", "--timeout", "20s")
		if r.err == nil {
			t.Fatalf("deploy with an unbindable claim succeeded:\n%s", depRedact(r.out))
		}
		for _, w := range []string{"not ready after 20s", "persistentvolumeclaim " + ns + "/registry is Pending", `storage class "e2e-no-such-class"`,
			"a PersistentVolume that matches", "waiting ("} {
			if !strings.Contains(r.out, w) {
				t.Errorf("output lacks %q:\n%s", w, depRedact(r.out))
			}
		}
	})
	t.Run("registry image cannot be pulled", func(t *testing.T) {
		ns := depNamespace(t, cs, "e2e-rk-noimage")
		class := depUniqueName("e2e-rk-pv")
		depHostPathPV(t, cs, class, ns, "registry")
		r := depRun(t, "", "deploy", "-n", ns, "--image", "127.0.0.1:1/registry-kit:e2e-missing", "--node-port", "0",
			"--storage-class", class, "--storage-size", "1Gi", "--timeout", "45s")
		if r.err == nil {
			t.Fatalf("deploy with an image the node cannot pull succeeded:\n%s", depRedact(r.out))
		}
		for _, w := range []string{"not ready after 45s", `container "registry" is`, "the node cannot pull the registry-kit image", "127.0.0.1:1/registry-kit:e2e-missing"} {
			if !strings.Contains(r.out, w) {
				t.Errorf("output lacks %q:\n%s", w, depRedact(r.out))
			}
		}
		if !strings.Contains(r.out, "ErrImagePull") && !strings.Contains(r.out, "ImagePullBackOff") {
			t.Errorf("output names neither ErrImagePull nor ImagePullBackOff:\n%s", depRedact(r.out))
		}
	})
}

// bindDeployRole does what the comments of `registry-kit deploy --print-rbac -n target` tell a cluster admin to do:
// it creates namespace target (annotated registry-kit.dev/created-by when handOver, so that deploy owns it), applies
// exactly the printed Role and ClusterRole, and binds them to the ServiceAccount saNS/sa; the bindings and the
// ClusterRole are removed when the test ends (the Role goes with the namespace).
func bindDeployRole(t *testing.T, cs kubernetes.Interface, saNS, sa, target string, handOver bool, printFlags ...string) {
	t.Helper()
	ctx := context.Background()
	r := depRun(t, "", append([]string{"deploy", "--print-rbac", "-n", target}, printFlags...)...)
	if r.err != nil {
		t.Fatalf("deploy --print-rbac: %v\n%s", r.err, r.out)
	}
	docs := strings.Split(r.out, "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("deploy --print-rbac printed %d YAML documents, want a Role and a ClusterRole:\n%s", len(docs), r.out)
	}
	var role rbacv1.Role
	var clusterRole rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &role); err != nil || role.Kind != "Role" {
		t.Fatalf("deploy --print-rbac: the first document is not a Role (%v):\n%s", err, docs[0])
	}
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &clusterRole); err != nil || clusterRole.Kind != "ClusterRole" {
		t.Fatalf("deploy --print-rbac: the second document is not a ClusterRole (%v):\n%s", err, docs[1])
	}
	if role.Namespace != target {
		t.Fatalf("deploy --print-rbac -n %s printed a Role in namespace %q", target, role.Namespace)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: target}}
	if handOver {
		ns.Annotations = map[string]string{deploy.CreatedByAnnotation: deploy.CreatedByValue}
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", target, err)
	}
	if _, err := cs.RbacV1().Roles(target).Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the printed Role: %v", err)
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &clusterRole, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the printed ClusterRole: %v", err)
	}
	subjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: saNS}}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   subjects,
	}
	if _, err := cs.RbacV1().RoleBindings(target).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating RoleBinding: %v", err)
	}
	clusterBinding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: clusterRole.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: clusterRole.Name},
		Subjects:   subjects,
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, clusterBinding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ClusterRoleBinding: %v", err)
	}
	t.Cleanup(func() {
		_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), clusterBinding.Name, metav1.DeleteOptions{})
		_ = cs.RbacV1().ClusterRoles().Delete(context.Background(), clusterRole.Name, metav1.DeleteOptions{})
	})
}

// newDeployer makes a ServiceAccount "deployer" with no rights in a fresh namespace and a kubeconfig that acts as it;
// tok is its token, which deploy's output must never show.
func newDeployer(t *testing.T, cs kubernetes.Interface) (saNS, sa, tok, kubeconfig string) {
	t.Helper()
	ctx := context.Background()
	saNS = newNamespace(t)
	acct, err := cs.CoreV1().ServiceAccounts(saNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating ServiceAccount: %v", err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(saNS).CreateToken(ctx, acct.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token: %v", err)
	}
	return saNS, acct.Name, tr.Status.Token, depTokenKubeconfig(t, tr.Status.Token)
}

// refusedByRBAC says whether deploy's output shows a request the --print-rbac role did not allow. One warning does
// not count: that role deliberately grants neither kube-system's ConfigMaps nor the nodes' proxy, so deploy cannot
// read kube-proxy's mode with it and says so (and keeps nodeport-localhost).
func refusedByRBAC(out string) bool {
	var kept []string
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "Warning: kube-proxy's mode could not be detected") {
			kept = append(kept, line)
		}
	}
	rest := strings.Join(kept, "\n")
	return strings.Contains(rest, "forbidden") || strings.Contains(rest, "not allowed by RBAC")
}
