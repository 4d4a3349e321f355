# locked-run in a minimal image: the static binary, CA certificates for
# HTTPS to DynamoDB, /etc/passwd with an unprivileged user, and a /tmp for
# --local locks. Nothing else: no shell, no package manager.
#
#   make image            # make build, stage bin/image-root, build locked-run:VERSION
#
# The build context is bin/image-root, which `make image` fills from the
# binary `make build` made (the same static build as the release archives)
# and this host's CA bundle; so building the image needs neither a Go
# toolchain nor network access, and the image holds exactly the binary that
# was tested and checksummed.
#
# locked-run is the entrypoint, so it is PID 1: it forwards signals (docker
# stop, the kubelet's SIGTERM) to the command and reaps orphans, as tini
# does. Give the command after the options:
#
#   docker run --rm IMAGE --local -- /app/job
#
# To add locked-run to an image of your own (see README, Container image):
#
#   COPY --from=ghcr.io/locked-run/locked-run:v0.1.0 /usr/local/bin/locked-run /usr/local/bin/locked-run
FROM scratch
COPY . /
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/locked-run"]
CMD ["--help"]
