package manifests

import (
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// PlainHTTPWarnings says where registry credentials would cross a network unencrypted with these objects (as
// Generate makes them, or as a kustomize overlay gives them, typed or unstructured): registry clients send the
// password with HTTP Basic auth on every request. It warns about a registry Service reachable from other hosts
// (NodePort, LoadBalancer) while the server itself serves plain HTTP, and about an Ingress without TLS. A node
// port used through each node's own loopback (how pods pull) never leaves the host, so only other hosts are at
// risk there.
func PlainHTTPWarnings(objs []runtime.Object) []string {
	var services []*corev1.Service
	var ingresses []*networkingv1.Ingress
	serverTLS := false
	for _, o := range objs {
		switch v := typed(o).(type) {
		case *corev1.Service:
			if v.Labels[LabelName] == AppName {
				services = append(services, v)
			}
		case *networkingv1.Ingress:
			ingresses = append(ingresses, v)
		case *appsv1.Deployment:
			if v.Labels[LabelName] == AppName && servesTLS(v) {
				serverTLS = true
			}
		}
	}
	var out []string
	if !serverTLS {
		for _, s := range services {
			out = append(out, serviceWarnings(s)...)
		}
	}
	for _, in := range ingresses {
		if w := ingressWarning(in); w != "" {
			out = append(out, w)
		}
	}
	return out
}

func serviceWarnings(s *corev1.Service) []string {
	switch s.Spec.Type {
	case corev1.ServiceTypeNodePort:
		port := "its node port"
		for _, p := range s.Spec.Ports {
			if p.NodePort != 0 {
				port = fmt.Sprintf("node port %d", p.NodePort)
			}
		}
		return []string{fmt.Sprintf("service/%s serves plain HTTP on %s: pods pull through each node's own loopback, but a client on "+
			"another host (docker login or push to NODE-IP:PORT) sends the registry password unencrypted over the network; push from a "+
			"node itself (127.0.0.1), or serve TLS (--tls-secret)", s.Name, port)}
	case corev1.ServiceTypeLoadBalancer:
		return []string{fmt.Sprintf("service/%s is a LoadBalancer serving plain HTTP: every client sends the registry password "+
			"unencrypted over the network; serve TLS (--tls-secret)", s.Name)}
	}
	return nil
}

func ingressWarning(in *networkingv1.Ingress) string {
	var hosts []string
	for _, r := range in.Spec.Rules {
		covered := slices.ContainsFunc(in.Spec.TLS, func(t networkingv1.IngressTLS) bool {
			return len(t.Hosts) == 0 || slices.Contains(t.Hosts, r.Host)
		})
		if !covered {
			h := r.Host
			if h == "" {
				h = "*"
			}
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return ""
	}
	return fmt.Sprintf("ingress/%s has no TLS for %s: clients send the registry password unencrypted to the ingress controller; "+
		"give it a kubernetes.io/tls Secret (--ingress-tls-secret)", in.Name, strings.Join(hosts, ", "))
}

func servesTLS(d *appsv1.Deployment) bool {
	for _, c := range d.Spec.Template.Spec.Containers {
		if slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--tls-cert") }) {
			return true
		}
	}
	return false
}

// typed converts the unstructured form of the kinds PlainHTTPWarnings reads; anything else is returned as it is.
func typed(o runtime.Object) runtime.Object {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return o
	}
	var into runtime.Object
	switch u.GroupVersionKind().GroupKind().String() {
	case "Service":
		into = &corev1.Service{}
	case "Ingress.networking.k8s.io":
		into = &networkingv1.Ingress{}
	case "Deployment.apps":
		into = &appsv1.Deployment{}
	default:
		return o
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		return o
	}
	return into
}
