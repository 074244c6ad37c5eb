package manifests

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Node ports Kubernetes allocates from by default (--service-node-port-range).
const (
	minNodePort = 30000
	maxNodePort = 32767
)

// maxBcryptPassword is bcrypt's input limit; longer passwords are refused rather than silently truncated.
const maxBcryptPassword = 72

// Validate reports every problem with o (after defaults) at once, joined with errors.Join. Each message names the
// flag that sets the field and never contains a password or a password hash.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	add := func(flag string, value any, msg string) {
		errs = append(errs, fmt.Errorf("%s %v: %s", flag, value, msg))
	}
	addAll := func(flag string, value any, msgs []string) {
		for _, m := range msgs {
			add(flag, fmt.Sprintf("%q", value), m)
		}
	}

	addAll("--namespace", o.Namespace, validation.IsDNS1123Label(o.Namespace))
	// The Service is named after Name, and Service names are DNS-1035 labels (at most 63 characters, so the
	// Secret names with their suffixes stay valid subdomains too).
	addAll("--name", o.Name, validation.IsDNS1035Label(o.Name))
	if _, err := reference.ParseNormalizedNamed(o.Image); err != nil {
		add("--image", fmt.Sprintf("%q", o.Image), fmt.Sprintf("is not a valid image reference: %v", err))
	}
	switch o.ImagePullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		add("--image-pull-policy", fmt.Sprintf("%q", o.ImagePullPolicy), "must be Always, IfNotPresent or Never")
	}
	if o.Replicas < 1 {
		add("--replicas", o.Replicas, "must be 1 or more")
	}
	errs = append(errs, o.validateStorage()...)
	errs = append(errs, o.validateService()...)
	errs = append(errs, validateResources(o.Resources)...)
	if o.TLSSecretName != "" {
		addAll("--tls-secret", o.TLSSecretName, validation.IsDNS1123Subdomain(o.TLSSecretName))
	}
	errs = append(errs, o.validateIngress()...)
	errs = append(errs, validateLabels(o.Labels)...)
	errs = append(errs, validateAnnotations(o.Annotations)...)
	errs = append(errs, o.validateCredentials()...)
	return errors.Join(errs...)
}

func (o Options) validateStorage() []error {
	var errs []error
	switch o.Storage {
	case StorageS3:
		return append(o.validateObjectStorage(), o.validateRedis()...)
	case StorageFilesystem:
		errs = append(errs, o.validateObjectStorage()...)
		errs = append(errs, o.validateRedis()...)
	default:
		return append(errs, fmt.Errorf("--storage %q: is not supported (supported: %s, %s)", o.Storage, StorageFilesystem, StorageS3))
	}
	switch o.AccessMode {
	case corev1.ReadWriteOnce, corev1.ReadWriteOncePod:
		if o.Replicas > 1 {
			errs = append(errs, fmt.Errorf("--replicas %d: a %s volume attaches to one node, so only one registry pod can use it; "+
				"use --replicas 1, --access-mode ReadWriteMany with a storage class that supports it, or object storage", o.Replicas, o.AccessMode))
		}
	case corev1.ReadWriteMany:
	default:
		errs = append(errs, fmt.Errorf("--access-mode %q: must be ReadWriteOnce, ReadWriteOncePod or ReadWriteMany (the registry writes to its volume)", o.AccessMode))
	}
	if o.ExistingClaim != "" {
		for _, m := range validation.IsDNS1123Subdomain(o.ExistingClaim) {
			errs = append(errs, fmt.Errorf("--existing-claim %q: %s", o.ExistingClaim, m))
		}
		if o.StorageClass != nil {
			errs = append(errs, errors.New("--storage-class: only applies to a claim registry-kit creates, not with --existing-claim"))
		}
		if !o.StorageSize.IsZero() {
			errs = append(errs, errors.New("--storage-size: only applies to a claim registry-kit creates, not with --existing-claim"))
		}
		return errs
	}
	if o.StorageSize.Sign() <= 0 {
		errs = append(errs, fmt.Errorf("--storage-size %q: must be greater than zero", o.StorageSize.String()))
	}
	if o.StorageClass != nil && *o.StorageClass != "" {
		for _, m := range validation.IsDNS1123Subdomain(*o.StorageClass) {
			errs = append(errs, fmt.Errorf("--storage-class %q: %s", *o.StorageClass, m))
		}
	}
	return errs
}

func (o Options) validateService() []error {
	var errs []error
	switch o.ServiceType {
	case corev1.ServiceTypeClusterIP:
		if o.NodePort != 0 {
			errs = append(errs, fmt.Errorf("--node-port %d: needs --service-type NodePort or LoadBalancer, not ClusterIP", o.NodePort))
		}
	case corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
		if o.NodePort != 0 && (o.NodePort < minNodePort || o.NodePort > maxNodePort) {
			errs = append(errs, fmt.Errorf("--node-port %d: must be in the node port range %d-%d", o.NodePort, minNodePort, maxNodePort))
		}
	default:
		errs = append(errs, fmt.Errorf("--service-type %q: must be ClusterIP, NodePort or LoadBalancer", o.ServiceType))
	}
	return errs
}

func (o Options) validateIngress() []error {
	if o.Ingress == nil {
		return nil
	}
	var errs []error
	if o.Ingress.Host == "" {
		errs = append(errs, errors.New("--ingress-host: is required for an ingress"))
	} else {
		for _, m := range validation.IsFullyQualifiedDomainName(nil, o.Ingress.Host) {
			errs = append(errs, fmt.Errorf("--ingress-host %q: %s", o.Ingress.Host, m.Detail))
		}
	}
	if c := o.Ingress.ClassName; c != nil {
		for _, m := range validation.IsDNS1123Subdomain(*c) {
			errs = append(errs, fmt.Errorf("--ingress-class %q: %s", *c, m))
		}
	}
	if s := o.Ingress.TLSSecretName; s != "" {
		for _, m := range validation.IsDNS1123Subdomain(s) {
			errs = append(errs, fmt.Errorf("--ingress-tls-secret %q: %s", s, m))
		}
	}
	return errs
}

var allowedResources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage}

func validateResources(r corev1.ResourceRequirements) []error {
	var errs []error
	check := func(flag string, list corev1.ResourceList) {
		for _, name := range sortedKeys(list) {
			q := list[name]
			if !slices.Contains(allowedResources, name) {
				errs = append(errs, fmt.Errorf("%s %s: unknown resource (known: cpu, memory, ephemeral-storage)", flag, name))
			}
			if q.Sign() < 0 {
				errs = append(errs, fmt.Errorf("%s %s=%s: must not be negative", flag, name, q.String()))
			}
		}
	}
	check("--requests", r.Requests)
	check("--limits", r.Limits)
	for _, name := range sortedKeys(r.Requests) {
		req := r.Requests[name]
		if lim, ok := r.Limits[name]; ok && req.Cmp(lim) > 0 {
			errs = append(errs, fmt.Errorf("--requests %s=%s: is more than --limits %s=%s", name, req.String(), name, lim.String()))
		}
	}
	if len(r.Claims) > 0 {
		errs = append(errs, errors.New("resources: claims are not supported"))
	}
	return errs
}

func sortedKeys(l corev1.ResourceList) []corev1.ResourceName {
	keys := make([]corev1.ResourceName, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func validateLabels(labels map[string]string) []error {
	var errs []error
	for _, k := range sortedStrings(labels) {
		v := labels[k]
		for _, m := range validation.IsQualifiedName(k) {
			errs = append(errs, fmt.Errorf("--label %q: key %s", k, m))
		}
		for _, m := range validation.IsValidLabelValue(v) {
			errs = append(errs, fmt.Errorf("--label %s=%q: value %s", k, v, m))
		}
		if _, ok := standardLabelKeys[k]; ok {
			errs = append(errs, fmt.Errorf("--label %q: is set by registry-kit and cannot be overridden", k))
		}
	}
	return errs
}

func validateAnnotations(annotations map[string]string) []error {
	var errs []error
	for _, k := range sortedStrings(annotations) {
		for _, m := range validation.IsQualifiedName(k) {
			errs = append(errs, fmt.Errorf("--annotation %q: key %s", k, m))
		}
		if strings.HasPrefix(k, annotationPrefix) {
			errs = append(errs, fmt.Errorf("--annotation %q: the %s prefix is reserved for registry-kit", k, annotationPrefix))
		}
	}
	return errs
}

func sortedStrings(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (o Options) validateCredentials() []error {
	var errs []error
	if o.BcryptCost < minBcryptCost || o.BcryptCost > maxBcryptCost {
		errs = append(errs, fmt.Errorf("--bcrypt-cost %d: must be between %d and %d", o.BcryptCost, minBcryptCost, maxBcryptCost))
	}
	if o.ExternalSecrets {
		if len(o.Users) > 0 || len(o.Htpasswd) > 0 || len(o.HTTPSecret) > 0 || len(o.AccessPolicy) > 0 || o.PullerPassword != "" {
			errs = append(errs, errors.New("external secrets: users, an htpasswd file and an HTTP secret cannot be given when the Secrets are provided externally"))
		}
		return errs
	}
	seen := map[string]bool{}
	for i, u := range o.Users {
		if err := validUserName(u.Name); err != nil {
			errs = append(errs, fmt.Errorf("--user %d %q: %w", i+1, u.Name, err))
		}
		if u.Name == PullerUser {
			errs = append(errs, fmt.Errorf("--user %q: is the generated pull-only user; its password is in Secret <name>-puller", u.Name))
		}
		if seen[u.Name] {
			errs = append(errs, fmt.Errorf("--user %q: is given more than once", u.Name))
		}
		seen[u.Name] = true
		switch {
		case u.Password == "":
			errs = append(errs, fmt.Errorf("--user %q: password is empty", u.Name))
		case len(u.Password) > maxBcryptPassword:
			errs = append(errs, fmt.Errorf("--user %q: password is longer than bcrypt's %d bytes", u.Name, maxBcryptPassword))
		}
	}
	if len(o.Htpasswd) > 0 {
		if _, err := parseHtpasswd(o.Htpasswd); err != nil {
			errs = append(errs, fmt.Errorf("--htpasswd-file: %w", err))
		}
	}
	if len(o.AccessPolicy) > 0 {
		if err := checkPolicy(o.AccessPolicy); err != nil {
			errs = append(errs, fmt.Errorf("--access-policy-file: %w", err))
		}
	}
	if len(o.PullerPassword) > maxBcryptPassword {
		errs = append(errs, fmt.Errorf("puller password: longer than bcrypt's %d bytes", maxBcryptPassword))
	}
	if o.needsRand() && o.Rand == nil {
		errs = append(errs, errors.New("random source: needed to generate the admin password, HTTP secret or Redis password, but none was given"))
	}
	return errs
}

// minimum and maximum bcrypt costs accepted by golang.org/x/crypto/bcrypt.
const (
	minBcryptCost = 4
	maxBcryptCost = 31
)
