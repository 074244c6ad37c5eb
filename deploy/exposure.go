package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/registry-kit/registry-kit/deploy/expose"
	"github.com/registry-kit/registry-kit/deploy/nodeproxy"
	"github.com/registry-kit/registry-kit/deploy/nodetrust"
	"github.com/registry-kit/registry-kit/manifests"
)

// NodesNamespace holds the per-node DaemonSets of every registry deploy made (the node proxy, node trust): they
// need hostNetwork or hostPath volumes, which the registry's own namespace (Pod Security "restricted") forbids.
const NodesNamespace = "registry-kit-nodes"

// Labels of the objects deploy puts outside the registry's namespace, naming the registry they belong to.
const (
	LabelRegistryNamespace = "registry-kit.dev/registry-namespace"
	LabelRegistryName      = "registry-kit.dev/registry-name"
)

// NodeOptions say how the nodes reach and trust the registry. The zero value chooses the exposure mode.
type NodeOptions struct {
	// Expose is --expose; "" or expose.Auto chooses (see expose.Choose).
	Expose expose.Mode
	// Force allows nodeport-localhost where kube-proxy does not serve node ports on loopback.
	Force bool
	// NodeProxyPort is the node proxy's port on 127.0.0.1; default nodeproxy.DefaultPort.
	NodeProxyPort int
	// ConfigureNodes runs the node-trust DaemonSet for a pull address that is not the nodes' loopback.
	ConfigureNodes bool
	// ContainerdConfig and CertsDir are the nodes' containerd config.toml and registry config_path.
	ContainerdConfig, CertsDir string
	// RotateTLS replaces a generated CA and certificate (tls mode) with new ones.
	RotateTLS bool

	nodeGetter expose.NodeGetter // tests
}

// exposurePlan is what deploy decided about the nodes before applying, and carries into the second apply.
type exposurePlan struct {
	choice   expose.Choice
	ns, name string
	// ca is the PEM CA of the registry's certificate when known (generated, or ca.crt of --tls-secret).
	ca []byte
	// extra are objects to apply with the registry's (the generated TLS Secrets).
	extra []*unstructured.Unstructured
	// custom: --pull-address given with --expose auto; deploy adds nothing for the nodes but trust.
	custom bool
}

// planExposure chooses how the nodes pull and, for tls with the generator, makes sure the CA and certificate
// exist (setting the generator's TLS Secret). It may change opts.Source.Generate (a copy).
func planExposure(ctx context.Context, c Clients, opts *Options, progress io.Writer) (*exposurePlan, error) {
	p := &exposurePlan{ns: opts.Namespace, name: manifests.DefaultName}
	in := expose.Input{Requested: opts.Nodes.Expose, Force: opts.Nodes.Force, ServiceType: string(corev1.ServiceTypeNodePort)}
	if in.Requested == "" {
		in.Requested = expose.Auto
	}
	gen := opts.Source.Generate
	if gen != nil {
		g := *gen
		gen, opts.Source.Generate = &g, &g
		if gen.Namespace != "" {
			p.ns = gen.Namespace
		}
		if gen.Name != "" {
			p.name = gen.Name
		}
		in.ServiceType = string(gen.ServiceType)
		if in.ServiceType == "" {
			in.ServiceType = string(corev1.ServiceTypeClusterIP)
		}
		in.TLSSecret = gen.TLSSecretName != ""
	}
	if p.ns == "" {
		p.ns = manifests.DefaultNamespace
	}
	if in.Requested == expose.Auto && opts.PullAddress != "" {
		p.custom = true
		p.choice = expose.Choice{Mode: "", Reason: "--pull-address " + opts.PullAddress + " given"}
		return p, nil
	}
	if in.Requested == expose.Auto || in.Requested == expose.NodePortLocalhost {
		if !in.TLSSecret && in.ServiceType != string(corev1.ServiceTypeClusterIP) {
			in.Proxy = expose.DetectProxyMode(ctx, c.Kube, opts.Nodes.nodeGetter)
		}
	}
	choice, err := expose.Choose(in)
	if err != nil {
		return nil, err
	}
	p.choice = choice
	if choice.Mode != expose.TLS {
		return p, nil
	}
	if gen == nil {
		if in.Requested == expose.TLS {
			return nil, errors.New("--expose tls generates the certificate with the generator, not with -k: give the overlay its own TLS Secret and --pull-address")
		}
		return p, nil
	}
	if gen.TLSSecretName != "" {
		// The user's certificate: its CA, if the Secret carries one (cert-manager puts it in ca.crt).
		s, err := c.Kube.CoreV1().Secrets(p.ns).Get(ctx, gen.TLSSecretName, metav1.GetOptions{})
		if err != nil {
			return nil, explain(err, "get", fmt.Sprintf("secret %q in namespace %q (--tls-secret)", gen.TLSSecretName, p.ns))
		}
		p.ca = s.Data[caCertKey]
		return p, nil
	}
	hosts, err := nodeAddresses(ctx, c)
	if err != nil && !errors.Is(err, ErrForbidden) {
		return nil, err
	}
	if opts.PullAddress != "" {
		hosts = append(hosts, hostOnly(opts.PullAddress))
	}
	if gen.Ingress != nil {
		hosts = append(hosts, gen.Ingress.Host)
	}
	m, err := ensureTLS(ctx, c, p.ns, p.name, registryServerNames(p.name, p.ns, hosts), opts.Nodes.RotateTLS, time.Now())
	if err != nil {
		return nil, err
	}
	switch m.reused {
	case "all":
		fmt.Fprintf(progress, "TLS: keeping the CA and certificate in secrets %s and %s\n", CASecretName(p.name), TLSSecretName(p.name))
	case "ca":
		fmt.Fprintf(progress, "TLS: keeping the CA in secret %s, new server certificate\n", CASecretName(p.name))
	default:
		fmt.Fprintf(progress, "TLS: generated a new CA and server certificate (secrets %s, %s)\n", CASecretName(p.name), TLSSecretName(p.name))
	}
	gen.TLSSecretName = TLSSecretName(p.name)
	p.ca = m.caCert
	for _, s := range m.secrets(p.ns, p.name) {
		u, err := ToUnstructured(s)
		if err != nil {
			return nil, err
		}
		p.extra = append(p.extra, u)
	}
	return p, nil
}

// pullPrefix sets the pull prefix for the chosen mode once the Service is applied.
func (p *exposurePlan) pullPrefix(ctx context.Context, c Clients, r *Result, opts Options) error {
	r.Exposure, r.ExposureReason = p.choice.Mode, p.choice.Reason
	r.Warnings = append(r.Warnings, p.choice.Warnings...)
	if opts.PullAddress != "" {
		r.PullPrefix = opts.PullAddress
		return nil
	}
	switch p.choice.Mode {
	case expose.NodeProxy:
		r.PullPrefix = net.JoinHostPort(NodeLocalHost, strconv.Itoa(p.proxyPort(opts)))
	case expose.TLS:
		if r.NodePort == 0 {
			return errors.New("--expose tls with a ClusterIP Service: give the address the nodes reach the registry at with --pull-address")
		}
		ips, err := nodeAddresses(ctx, c)
		if err != nil {
			return err
		}
		if len(ips) == 0 {
			return errors.New("--expose tls: the cluster has no node with an address; give --pull-address")
		}
		r.PullPrefix = net.JoinHostPort(ips[0], strconv.FormatInt(r.NodePort, 10))
	}
	return nil
}

func (p *exposurePlan) proxyPort(opts Options) int {
	if opts.Nodes.NodeProxyPort != 0 {
		return opts.Nodes.NodeProxyPort
	}
	return nodeproxy.DefaultPort
}

func (p *exposurePlan) labels() map[string]string {
	return map[string]string{LabelRegistryNamespace: p.ns, LabelRegistryName: p.name}
}

// nodeObjects are the objects of the second apply: the nodes' namespace and the node-proxy DaemonSet (which
// needs the Service's ClusterIP), and with ConfigureNodes the trust DaemonSet (returned apart: deploy waits for it
// with per-node errors).
func (p *exposurePlan) nodeObjects(r *Result, applied []Applied, opts Options) (objs []*unstructured.Unstructured, trust []*unstructured.Unstructured, err error) {
	image, policy := registryImage(applied)
	if p.choice.Mode == expose.NodeProxy && !p.custom {
		clusterIP := serviceClusterIP(applied, r.Namespace, r.Service)
		if clusterIP == "" {
			clusterIP = "0.0.0.0" // a client dry run: the Service has no ClusterIP yet
		}
		ds, err := nodeproxy.DaemonSet(nodeproxy.DaemonSetOptions{
			Namespace: NodesNamespace, Name: p.ns + "-" + p.name + "-proxy", Labels: p.labels(),
			Image: image, PullPolicy: policy, Port: p.proxyPort(opts),
			Upstream: net.JoinHostPort(clusterIP, strconv.Itoa(manifests.RegistryPort)),
		})
		if err != nil {
			return nil, nil, err
		}
		objs = append(objs, mustUnstructured(ds))
	}
	if opts.Nodes.ConfigureNodes && !isLoopback(r.PullPrefix) && r.PullPrefix != "" {
		trust = p.trustObjects(r.PullPrefix, r.TLS, image, policy, opts.Nodes, false)
	}
	if len(objs)+len(trust) > 0 {
		objs = append([]*unstructured.Unstructured{mustUnstructured(nodesNamespace())}, objs...)
	}
	return objs, trust, nil
}

func (p *exposurePlan) trustObjects(address string, tls bool, image string, policy corev1.PullPolicy, n NodeOptions, remove bool) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	o := nodetrust.DaemonSetOptions{
		Namespace: NodesNamespace, Name: p.ns + "-" + p.name + "-trust", Labels: p.labels(),
		Image: image, PullPolicy: policy, Host: nodetrust.Host{Address: address, TLS: tls},
		Owner: p.ns + "/" + p.name, ContainerdConfig: n.ContainerdConfig, CertsDir: n.CertsDir, Remove: remove,
	}
	if len(p.ca) > 0 {
		o.CAConfigMap = p.ns + "-" + p.name + "-ca"
		out = append(out, mustUnstructured(&corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Namespace: NodesNamespace, Name: o.CAConfigMap, Labels: withManaged(p.labels())},
			Data:       map[string]string{nodetrust.CAConfigMapKey: string(p.ca)},
		}))
	}
	return append(out, mustUnstructured(nodetrust.DaemonSet(o)))
}

func withManaged(l map[string]string) map[string]string {
	l[manifests.LabelManagedBy] = manifests.AppName
	return l
}

// nodesNamespace may run hostNetwork and hostPath pods (Pod Security "privileged"), and is marked as created by
// registry-kit.
func nodesNamespace() *corev1.Namespace {
	return &corev1.Namespace{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: NodesNamespace,
			Labels: map[string]string{manifests.LabelManagedBy: manifests.AppName,
				"pod-security.kubernetes.io/enforce": "privileged", "pod-security.kubernetes.io/warn": "privileged"},
			Annotations: map[string]string{CreatedByAnnotation: managedByValue}},
	}
}

func mustUnstructured(o runtime.Object) *unstructured.Unstructured {
	u, err := ToUnstructured(o)
	if err != nil {
		panic(fmt.Sprintf("converting a generated %T: %v", o, err)) // generated objects always convert
	}
	return u
}

// registryImage is the image and pull policy of the registry's container: the node DaemonSets run the same binary.
func registryImage(applied []Applied) (string, corev1.PullPolicy) {
	for _, a := range applied {
		if a.Object.GetKind() != "Deployment" || isRedis(a.Object) {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(a.Object.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			cm, _ := c.(map[string]any)
			if cm["name"] == manifests.ContainerName {
				img, _ := cm["image"].(string)
				pol, _ := cm["imagePullPolicy"].(string)
				return img, corev1.PullPolicy(pol)
			}
		}
	}
	return manifests.DefaultImage, corev1.PullIfNotPresent
}

func serviceClusterIP(applied []Applied, ns, name string) string {
	for _, a := range applied {
		if a.Object.GetKind() == "Service" && a.Object.GetNamespace() == ns && a.Object.GetName() == name {
			ip, _, _ := unstructured.NestedString(a.Object.Object, "spec", "clusterIP")
			return ip
		}
	}
	return ""
}

// printApplied reports objects outside the registry's namespace with their namespace, kubectl style.
func printApplied(w io.Writer, applied []Applied, dryRun DryRun) {
	for _, a := range applied {
		suffix := ""
		if dryRun != DryRunNone {
			suffix = fmt.Sprintf(", %s dry run", dryRun)
		}
		if ns := a.Object.GetNamespace(); ns != "" {
			fmt.Fprintf(w, "%s %s (namespace %s%s)\n", a.Ref(), a.Action, ns, suffix)
		} else {
			fmt.Fprintf(w, "%s %s (cluster-scoped%s)\n", a.Ref(), a.Action, suffix)
		}
	}
}

// applyNodeObjects sets the pull prefix of the chosen mode and applies what the nodes need (second apply, after the
// Service exists). It returns what deploy waits for (the registry's objects and the node proxy) and the name of
// the trust DaemonSet to wait for node by node ("" for none).
func (r *Result) applyNodeObjects(ctx context.Context, c Clients, p *exposurePlan, applied []Applied, opts Options) ([]Applied, string, error) {
	if err := p.pullPrefix(ctx, c, r, opts); err != nil {
		return nil, "", err
	}
	if r.PullPrefix != "" && !r.TLS && !isLoopback(r.PullPrefix) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("pods pull from %s in plain HTTP over the network: the pull secret's credentials cross it in clear; "+
			"use --expose tls (or node-proxy, which keeps plain HTTP on each node's loopback)", r.PullPrefix))
	}
	objs, trustObjs, err := p.nodeObjects(r, applied, opts)
	if err != nil {
		return nil, "", err
	}
	if len(objs)+len(trustObjs) == 0 {
		if opts.Nodes.ConfigureNodes {
			fmt.Fprintf(opts.Progress, "--configure-nodes: nothing to configure, the nodes pull from %s on their own loopback\n", r.PullPrefix)
		}
		return applied, "", nil
	}
	done, err := applyAll(ctx, c, append(objs, trustObjs...), applyOptions{force: opts.ForceConflicts, dryRun: opts.DryRun})
	printApplied(opts.Progress, done, opts.DryRun)
	r.Applied = append(r.Applied, done...)
	if err != nil {
		return nil, "", err
	}
	waitFor := append([]Applied(nil), applied...)
	trust := ""
	for _, a := range done {
		switch {
		case a.Object.GetKind() == "DaemonSet" && a.Object.GetLabels()["app.kubernetes.io/name"] == nodetrust.AppName:
			trust = a.Object.GetName()
		case a.Object.GetKind() == "DaemonSet":
			waitFor = append(waitFor, a)
		}
	}
	return waitFor, trust, nil
}
