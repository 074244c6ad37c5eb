# registry-kit image: a static binary on scratch, running as uid 65532. It needs no base image, so it builds with no
# access to public registries. Build the binary first (make build does this):
#   CGO_ENABLED=0 go build -trimpath -o bin/registry-kit ./cmd/registry-kit
#   docker build -t registry-kit .
# Run for local development:
#   docker run -p 5000:5000 -v registry-data:/var/lib/registry registry-kit
FROM scratch
COPY registry/image/passwd /etc/passwd
COPY registry/image/group /etc/group
COPY --chown=65532:65532 registry/image/data/ /var/lib/registry/
COPY bin/registry-kit /registry-kit
USER 65532:65532
VOLUME /var/lib/registry
EXPOSE 5000 5001
ENTRYPOINT ["/registry-kit"]
CMD ["serve"]
