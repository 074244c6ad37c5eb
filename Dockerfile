# registry-kit image for a Docker engine: a static binary on scratch, running as uid 65532. It needs no base image,
# so it builds with no access to public registries. make image-docker builds the binary and copies the host's CA
# bundle next to it, then:
#   docker build -t registry-kit .
# make image builds the same image without a Docker engine, for linux/amd64 and linux/arm64 (internal/image).
# Run for local development:
#   docker run -p 5000:5000 -v registry-data:/var/lib/registry registry-kit
FROM scratch
COPY internal/image/rootfs/passwd /etc/passwd
COPY internal/image/rootfs/group /etc/group
COPY --chown=65532:65532 internal/image/rootfs/data/ /var/lib/registry/
COPY bin/registry-kit /registry-kit
# CA certificates, for S3 endpoints and other HTTPS peers (make image-docker copies the build host's bundle into bin/).
COPY bin/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
USER 65532:65532
VOLUME /var/lib/registry
EXPOSE 5000 5001
ENTRYPOINT ["/registry-kit"]
CMD ["serve"]
