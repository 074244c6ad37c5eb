package deploy

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// nodeAddresses returns the InternalIP (else ExternalIP) of every node, in the API's order.
func nodeAddresses(ctx context.Context, c Clients) ([]string, error) {
	nodes, err := c.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, explain(err, "list", "nodes")
	}
	var out []string
	for _, n := range nodes.Items {
		if ip := nodeIP(&n); ip != "" {
			out = append(out, ip)
		}
	}
	return out, nil
}

func nodeIP(n *corev1.Node) string {
	for _, want := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type == want {
				return a.Address
			}
		}
	}
	return ""
}
