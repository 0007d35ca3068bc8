// Package packaging checks what ships keyless outside the Go code: the
// Dockerfile (parsed by a small Dockerfile reader, since `docker build`
// cannot run everywhere: pinned base images, non-root user, entrypoint,
// health check, no secrets), the systemd unit and its hardening, and the
// release script (static, reproducible binaries for every target, with
// SHA256SUMS).
package packaging
