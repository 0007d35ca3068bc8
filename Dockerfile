# syntax=docker/dockerfile:1
#
# keyless as a container: one static binary on distroless, running as the
# image's non-root user (65532), data under the /data volume.
#
#   docker build -t keyless --build-arg VERSION=v0.1.0 \
#     --build-arg COMMIT="$(git rev-parse HEAD)" \
#     --build-arg DATE="$(git log -1 --format=%cI)" .
#   docker run -d --name keyless -p 8400:8400 -v keyless-data:/data \
#     -e KEYLESS_ADMIN_ACCESS_KEY_ID -e KEYLESS_ADMIN_SECRET_ACCESS_KEY \
#     -e KEYLESS_MASTER_KEY_FILE=/run/secrets/keyless_master_key keyless
#
# Without KEYLESS_MASTER_KEY(_FILE) the master key is generated into
# /data/master.key, next to the data it protects: give it its own secret in
# production. Nothing secret is baked into the image.
#
# Base images are pinned by tag (what the image is) and digest (exactly which
# build): a new base is a reviewed change of both, never a silent rebuild.
# Check a digest with: docker buildx imagetools inspect IMAGE:TAG

FROM golang:1.26.8-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
ARG COMMIT=
ARG DATE=
# The same flags as scripts/release.sh: static, no paths or build id in the
# binary (.git is not in the build context, hence -buildvcs=false).
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -buildid= -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" \
      -o /out/keyless ./cmd/keyless \
 && mkdir -p /out/data /out/licenses \
 && cp LICENSE NOTICE /out/licenses/

FROM gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639
COPY --from=build /out/keyless /keyless
COPY --from=build /out/licenses/ /usr/share/doc/keyless/
# A named volume starts as a copy of this directory, owner included, so the
# non-root user can write it.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8400
# No shell in the image: the binary probes its own /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/keyless", "healthcheck", "--url", "http://127.0.0.1:8400/healthz"]
ENTRYPOINT ["/keyless"]
CMD ["serve", "--listen", "0.0.0.0:8400", "--data", "/data"]
