# registry-kit: build, test, and the end-to-end tier on a real local cluster.
SHELL := /usr/bin/env bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -s -w -X github.com/registry-kit/registry-kit/cmd/cli.Version=$(VERSION) -X github.com/registry-kit/registry-kit/cmd/cli.Commit=$(REVISION)
IMAGE ?= registry-kit:dev
E2E_RUN ?= .
E2E_TIMEOUT ?= 45m

.PHONY: all build run test vet e2e e2e-only ci image image-docker push-image release-dry-run setup cluster-up cluster-down manifests bench clean

all: build

## build: a static binary at bin/registry-kit
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/registry-kit ./cmd/registry-kit

## run: start a zero-configuration registry on :5000 with its data in ./data
run: build
	./bin/registry-kit serve --data-dir ./data

## vet, test: the fast unit tier (needs only Go)
vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./scripts/e2e/

test:
	$(GO) test -count=1 ./...

## setup: Debian packages and Go-built tools the e2e tier needs
setup:
	scripts/setup.sh

## cluster-up, cluster-down: the local single-node Kubernetes cluster
cluster-up:
	scripts/cluster/up.sh
cluster-down:
	scripts/cluster/down.sh

## e2e-only: the e2e tier against an already running cluster (source $$CLUSTER_DIR/env first)
e2e-only: build
	REGISTRY_KIT_BIN=$(CURDIR)/bin/registry-kit $(GO) test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) -run '$(E2E_RUN)' -v ./scripts/e2e/

## e2e: set up, start the cluster, run the e2e tier, stop the cluster
e2e:
	scripts/ci.sh e2e

## ci: everything .ci/run runs: setup, vet, unit tests, cluster, e2e tests
ci:
	scripts/ci.sh

## image: the multi-arch container image (linux/amd64, linux/arm64), built in process with go-containerregistry:
## no Docker engine, no base image, reproducible. Writes bin/image/oci (an OCI layout) and bin/image/registry-kit.tar.
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
PLATFORMS ?= linux/amd64,linux/arm64
image: build
	./bin/registry-kit image build --version '$(VERSION)' --revision '$(REVISION)' --tag '$(IMAGE)' \
		--platform '$(PLATFORMS)' --ca-bundle '$(CA_BUNDLE)' --oci-layout bin/image/oci --archive bin/image/registry-kit.tar

## push-image: push the multi-arch image to IMAGE (make push-image IMAGE=127.0.0.1:5000/registry-kit:dev), with
## the docker config's credentials
push-image: image
	@if [ '$(IMAGE)' = registry-kit:dev ]; then echo 'push-image: set IMAGE=HOST/REPO:TAG' >&2; exit 1; fi
	./bin/registry-kit image push --oci-layout bin/image/oci '$(IMAGE)'

## image-docker: the same image for the host's platform, built by a Docker engine from the Dockerfile
image-docker: build
	cp $(CA_BUNDLE) bin/ca-certificates.crt
	docker build -t $(IMAGE) .

## release-dry-run: everything a release publishes (binaries, image, checksums, SBOM, Helm chart) in dist/,
## built locally and published nowhere
release-dry-run:
	VERSION='$(VERSION)' scripts/release.sh --dry-run

## manifests: regenerate manifests/base, manifests/chart and golden files from the generator
manifests:
	$(GO) test ./manifests/... -update

## bench: the benchmarks, side by side with stock distribution
bench: build
	scripts/bench/run.sh

clean:
	rm -rf bin
