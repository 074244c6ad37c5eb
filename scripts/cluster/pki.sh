#!/usr/bin/env bash
# Writes the test cluster's PKI with openssl (ECDSA P-256, 30 days): one CA, the API server's serving cert, client
# certs for admin (system:masters), each control-plane component, kube-proxy and the kubelet (which also serves with
# it), the API server's kubelet client, and the service-account signing key pair.
# Usage: pki.sh DIR   (called by up.sh)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
dir=${1:?usage: pki.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2> /dev/null; }

openssl_cnf=$(mktemp)
trap 'rm -f "$openssl_cnf" ./*.csr' EXIT
key ca
openssl req -x509 -new -key ca.key -sha256 -days 30 -subj "/CN=registry-kit-test-ca" -out ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"

# cert NAME SUBJECT EXT_KEY_USAGE [SUBJECT_ALT_NAMES]
cert() {
  key "$1"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$3"
    [ -z "${4:-}" ] || echo "subjectAltName=$4"
  } > "$openssl_cnf"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" -days 30 \
    -sha256 -extfile "$openssl_cnf" -out "$1.crt" 2> /dev/null
}

cert apiserver "/CN=kube-apiserver" serverAuth \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP,IP:$API_SERVICE_IP"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert admin "/O=system:masters/CN=admin" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert scheduler "/CN=system:kube-scheduler" clientAuth
cert kube-proxy "/CN=system:kube-proxy" clientAuth
cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" serverAuth,clientAuth "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP"
key sa
openssl pkey -in sa.key -pubout -out sa.pub
chmod 644 ./*.crt sa.pub
echo "PKI written to $dir"
