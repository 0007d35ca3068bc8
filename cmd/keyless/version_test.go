package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/server"
)

func TestResolveBuildInfo(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	vcs := []debug.BuildSetting{
		{Key: "-trimpath", Value: "true"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	tests := []struct {
		name                 string
		ldVer, ldCommit, ldD string
		bi                   *debug.BuildInfo
		want                 server.BuildInfo
	}{
		{
			name:  "release build: the link-time values win",
			ldVer: "v1.2.3", ldCommit: "fedcba9876543210fedcba9876543210fedcba98", ldD: "2026-02-03T04:05:06Z",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			want: server.BuildInfo{Version: "v1.2.3", Commit: "fedcba9876543210fedcba9876543210fedcba98", Date: "2026-02-03T04:05:06Z", GoVersion: "go1.26.0", Platform: platform},
		},
		{
			name: "local build: devel, with the VCS stamp",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.0.0-20260102030405-0123456789ab+dirty"}, Settings: vcs},
			want: server.BuildInfo{Version: "devel", Commit: "0123456789abcdef0123456789abcdef01234567", Modified: true, Date: "2026-01-02T03:04:05Z", GoVersion: "go1.26.0", Platform: platform},
		},
		{
			name: "local build without VCS stamp (-buildvcs=false)",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}},
			want: server.BuildInfo{Version: "devel", GoVersion: "go1.26.0", Platform: platform},
		},
		{
			name: "go install …@v0.4.0",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "v0.4.0"}},
			want: server.BuildInfo{Version: "v0.4.0", GoVersion: "go1.26.1", Platform: platform},
		},
		{
			name: "go install …@main (pseudo-version)",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "v0.0.0-20260102030405-0123456789ab"}},
			want: server.BuildInfo{Version: "devel", GoVersion: "go1.26.1", Platform: platform},
		},
		{
			name: "no build info",
			want: server.BuildInfo{Version: "devel", GoVersion: runtime.Version(), Platform: platform},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resolveBuildInfo(tt.ldVer, tt.ldCommit, tt.ldD, tt.bi)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestVersionCommandAndFlag: `keyless version` and `keyless --version`
// print the same four facts; --output json is machine-readable.
func TestVersionCommandAndFlag(t *testing.T) {
	run := func(args ...string) string {
		t.Helper()
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("keyless %v: %v", args, err)
		}
		return out.String()
	}
	text := run("version")
	for _, want := range []string{"keyless ", "commit:", "build date:", "go:", runtime.Version()} {
		if !strings.Contains(text, want) {
			t.Errorf("keyless version lacks %q:\n%s", want, text)
		}
	}
	if flag := run("--version"); flag != text {
		t.Errorf("--version printed\n%s\nversion printed\n%s", flag, text)
	}
	var b server.BuildInfo
	if err := json.Unmarshal([]byte(run("version", "--output", "json")), &b); err != nil || b.Version == "" || b.GoVersion != runtime.Version() {
		t.Errorf("version --output json: %+v, %v", b, err)
	}
}

func TestProbeHealth(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	ctx := context.Background()
	if err := probeHealth(ctx, srv.Client(), srv.URL+"/healthz"); err != nil {
		t.Errorf("healthy server: %v", err)
	}
	status.Store(http.StatusServiceUnavailable)
	if err := probeHealth(ctx, srv.Client(), srv.URL+"/healthz"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("unhealthy server: %v, want an error naming 503", err)
	}
	srv.Close()
	if err := probeHealth(ctx, http.DefaultClient, srv.URL+"/healthz"); err == nil {
		t.Error("no server: want an error")
	}
}
