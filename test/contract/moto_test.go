package contract

import (
	"context"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/testenv"
)

// startMoto runs moto_server on a free loopback port: an independent
// implementation of the STS and IAM wire protocols (which accepts any
// credentials and any web identity token).
func startMoto(t *testing.T) string {
	t.Helper()
	bin := testenv.RequireCommand(t, "moto_server")
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-H", "127.0.0.1", "-p", port)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 200*time.Millisecond); err == nil {
			c.Close()
			return "http://127.0.0.1:" + port
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("moto_server did not start:\n%s", logs.String())
	return ""
}
