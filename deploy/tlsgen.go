package deploy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/registry-kit/registry-kit/manifests"
)

// The Secrets of a generated CA and the registry's server certificate: <name>-ca (ca.crt, ca.key) and <name>-tls
// (kubernetes.io/tls, with ca.crt too).
func CASecretName(name string) string  { return name + "-ca" }
func TLSSecretName(name string) string { return name + "-tls" }

const (
	caCertKey     = "ca.crt"
	caKeyKey      = "ca.key"
	caValidity    = 10 * 365 * 24 * time.Hour
	certValidity  = 2 * 365 * 24 * time.Hour
	renewBefore   = 30 * 24 * time.Hour
	tlsGenSubject = "registry-kit"
)

// tlsMaterial is a CA and a server certificate signed by it, PEM encoded.
type tlsMaterial struct {
	caCert, caKey, cert, key []byte
	// reused says what was kept from the cluster: "" (all new), "ca" (new server certificate), "all".
	reused string
}

// serverNames are the DNS names and IPs the registry's certificate must hold.
type serverNames struct {
	dns []string
	ips []net.IP
}

func registryServerNames(name, ns string, hosts []string) serverNames {
	n := serverNames{dns: []string{"localhost", name, name + "." + ns, name + "." + ns + ".svc", name + "." + ns + ".svc.cluster.local"},
		ips: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}}
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(n.ips, ip.Equal) {
				n.ips = append(n.ips, ip)
			}
		} else if !slices.Contains(n.dns, h) {
			n.dns = append(n.dns, h)
		}
	}
	return n
}

// ensureTLS returns the CA and server certificate of the registry: the ones in its Secrets when they are still
// good (the CA always, unless rotate; the server certificate while it covers names and is not about to expire),
// else new ones.
func ensureTLS(ctx context.Context, c Clients, ns, name string, names serverNames, rotate bool, now time.Time) (*tlsMaterial, error) {
	var m tlsMaterial
	if !rotate {
		ca, err := c.Kube.CoreV1().Secrets(ns).Get(ctx, CASecretName(name), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, explain(err, "get", fmt.Sprintf("secret %q in namespace %q", CASecretName(name), ns))
		default:
			m.caCert, m.caKey = ca.Data[caCertKey], ca.Data[caKeyKey]
		}
	}
	caCert, caKey, err := parsePair(m.caCert, m.caKey)
	if err != nil || caCert.NotAfter.Before(now.Add(renewBefore)) {
		caCert, caKey, m.caCert, m.caKey, err = newCA(now)
		if err != nil {
			return nil, err
		}
	} else {
		m.reused = "ca"
		srv, err := c.Kube.CoreV1().Secrets(ns).Get(ctx, TLSSecretName(name), metav1.GetOptions{})
		if err == nil {
			if cert, _, perr := parsePair(srv.Data[corev1.TLSCertKey], srv.Data[corev1.TLSPrivateKeyKey]); perr == nil &&
				cert.CheckSignatureFrom(caCert) == nil && covers(cert, names) && cert.NotAfter.After(now.Add(renewBefore)) {
				m.cert, m.key, m.reused = srv.Data[corev1.TLSCertKey], srv.Data[corev1.TLSPrivateKeyKey], "all"
				return &m, nil
			}
		} else if !apierrors.IsNotFound(err) {
			return nil, explain(err, "get", fmt.Sprintf("secret %q in namespace %q", TLSSecretName(name), ns))
		}
	}
	m.cert, m.key, err = newServerCert(caCert, caKey, names, now)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// secrets are the two Secrets holding m, labelled like the generator's objects.
func (m *tlsMaterial) secrets(ns, name string) []*corev1.Secret {
	meta := func(n string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: n, Namespace: ns, Labels: map[string]string{
			manifests.LabelName: manifests.AppName, manifests.LabelInstance: name, manifests.LabelManagedBy: manifests.AppName}}
	}
	return []*corev1.Secret{
		{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: meta(CASecretName(name)), Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{caCertKey: m.caCert, caKeyKey: m.caKey}},
		{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: meta(TLSSecretName(name)), Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: m.cert, corev1.TLSPrivateKeyKey: m.key, caCertKey: m.caCert}},
	}
}

func covers(cert *x509.Certificate, names serverNames) bool {
	for _, d := range names.dns {
		if !slices.Contains(cert.DNSNames, d) {
			return false
		}
	}
	for _, ip := range names.ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("no PEM data")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func encodePair(der []byte, key *ecdsa.PrivateKey) ([]byte, []byte, error) {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding a private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

func newCA(now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("generating the registry's CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: tlsGenSubject + " CA " + now.UTC().Format("2006-01-02T15:04:05Z")},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(caValidity),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("creating the registry's CA certificate: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	c, k, err := encodePair(der, key)
	return cert, key, c, k, err
}

func newServerCert(ca *x509.Certificate, caKey *ecdsa.PrivateKey, names serverNames, now time.Time) ([]byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the registry's TLS key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: tlsGenSubject},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(certValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    names.dns, IPAddresses: names.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the registry's TLS certificate: %w", err)
	}
	return encodePair(der, key)
}
