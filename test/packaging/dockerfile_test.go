package packaging

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseDockerfile(t *testing.T) {
	src := "# syntax=docker/dockerfile:1\n" +
		"ARG BASE=x\n" +
		"FROM golang:1.26@sha256:" + strings.Repeat("a", 64) + " AS build\n" +
		"run echo a \\\n" +
		"  # a comment inside the continuation\n" +
		"  && echo b\n" +
		"COPY --from=build --chown=1:1 /a /b\n" +
		"\n" +
		"FROM scratch\n" +
		"ENTRYPOINT [\"/keyless\"]\r\n" +
		"HEALTHCHECK --interval=5s CMD [\"/keyless\", \"healthcheck\"]\n"
	ins, err := ParseDockerfile(src)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(ins))
	for i, in := range ins {
		got[i] = in.Cmd + "|" + strings.Join(in.Flags, ",") + "|" + in.Args
	}
	want := []string{
		"ARG||BASE=x",
		"FROM||golang:1.26@sha256:" + strings.Repeat("a", 64) + " AS build",
		"RUN||echo a  && echo b",
		"COPY|--from=build,--chown=1:1|/a /b",
		"FROM||scratch",
		`ENTRYPOINT||["/keyless"]`,
		`HEALTHCHECK|--interval=5s|CMD ["/keyless", "healthcheck"]`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if ins[2].Line != 4 || !slices.Equal(ins[5].Exec, []string{"/keyless"}) {
		t.Errorf("RUN line %d, ENTRYPOINT exec %q", ins[2].Line, ins[5].Exec)
	}
	stages, err := Stages(ins)
	if err != nil || len(stages) != 2 || stages[0].Name != "build" || stages[1].Image != "scratch" || len(stages[1].Instructions) != 2 {
		t.Fatalf("stages %+v, %v", stages, err)
	}
	if v, ok := stages[0].Find("COPY")[0].Flag("chown"); !ok || v != "1:1" {
		t.Errorf("--chown = %q, %v", v, ok)
	}

	for name, bad := range map[string]string{
		"unknown keyword":         "FROM x\nRUNN echo\n",
		"dangling continuation":   "FROM x\nRUN echo \\\n",
		"heredoc":                 "FROM x\nRUN <<EOF\necho\nEOF\n",
		"other escape":            "# escape=`\nFROM x\n",
		"broken exec form":        "FROM x\nENTRYPOINT [\"/keyless\",]\n",
		"instruction before FROM": "RUN echo\nFROM x\n",
		"FROM with junk":          "FROM x y\n",
		"no FROM":                 "ARG X=1\n",
	} {
		ins, err := ParseDockerfile(bad)
		if err == nil {
			_, err = Stages(ins)
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseDockerfile(f *testing.F) {
	f.Add("FROM a AS b\nRUN x \\\n y\nCMD [\"a\"]\n")
	f.Add("# escape=\\\nFROM --platform=$X a\nHEALTHCHECK CMD [\"x\"]\n")
	f.Add("\\\n\\\n")
	f.Add("FROM\n")
	f.Fuzz(func(t *testing.T, src string) {
		ins, err := ParseDockerfile(src)
		if err != nil {
			return
		}
		n := strings.Count(src, "\n") + 1
		for _, in := range ins {
			if in.Line < 1 || in.Line > n || !knownInstructions[in.Cmd] {
				t.Fatalf("instruction %+v out of range (%d lines)", in, n)
			}
		}
		_, _ = Stages(ins)
	})
}

var (
	pinnedImage = regexp.MustCompile(`^[a-z0-9./_-]+(:[A-Za-z0-9._-]+)@sha256:[0-9a-f]{64}$`)
	// secretName matches variable names that would hold a secret.
	secretName = regexp.MustCompile(`(?i)(SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|MASTER_KEY|ACCESS_KEY|CREDENTIAL)`)
)

// TestDockerfile checks the repository's Dockerfile: `docker build` is not
// available everywhere, so its properties are checked from the text.
func TestDockerfile(t *testing.T) {
	src, ignore := readFile(t, "../../Dockerfile"), readFile(t, "../../.dockerignore")
	for _, p := range dockerfileProblems(src, ignore) {
		t.Error(p)
	}
}

// TestDockerfileProblems: each property the check enforces, broken in a
// copy of the real Dockerfile, is reported (the check can fail).
func TestDockerfileProblems(t *testing.T) {
	src, ignore := readFile(t, "../../Dockerfile"), readFile(t, "../../.dockerignore")
	replace := func(old, new string) string {
		t.Helper()
		if !strings.Contains(src, old) {
			t.Fatalf("the Dockerfile no longer contains %q: update this test", old)
		}
		return strings.Replace(src, old, new, 1)
	}
	final := regexp.MustCompile(`(?m)^FROM gcr\.io/distroless/static-debian12:nonroot@sha256:[0-9a-f]{64}$`).FindString(src)
	if final == "" {
		t.Fatal("no distroless FROM line found: update this test")
	}
	tests := []struct{ name, src, ignore, want string }{
		{"unpinned base", replace(final, "FROM gcr.io/distroless/static-debian12:nonroot"), ignore, "is not pinned"},
		{"tag without digest", regexp.MustCompile(`golang:([0-9.]+)-bookworm@sha256:[0-9a-f]{64}`).ReplaceAllString(src, "golang:$1-bookworm"), ignore, "is not pinned"},
		{"root user", replace("USER 65532:65532", "USER root"), ignore, "is root"},
		{"no user", replace("USER 65532:65532\n", ""), ignore, "no USER"},
		{"shell entrypoint", replace(`ENTRYPOINT ["/keyless"]`, "ENTRYPOINT /keyless"), ignore, "shell form"},
		{"loopback listen", replace(`"--listen", "0.0.0.0:8400"`, `"--listen", "127.0.0.1:8400"`), ignore, "0.0.0.0"},
		{"no volume", replace(`VOLUME ["/data"]`, ""), ignore, "VOLUME"},
		{"data owned by root", replace("--chown=65532:65532 /out/data /data", "/out/data /data"), ignore, "not created owned"},
		{"shell health check", replace(`CMD ["/keyless", "healthcheck", "--url", "http://127.0.0.1:8400/healthz"]`, "CMD /keyless healthcheck || exit 1"), ignore, "exec form"},
		{"secret in ENV", replace("ARG VERSION=devel", "ENV KEYLESS_ADMIN_SECRET_ACCESS_KEY=abc\nARG VERSION=devel"), ignore, "sets a secret"},
		{"key copied in", replace("COPY . .", "COPY . .\nCOPY keyless-data/master.key /"), ignore, "key material"},
		{"cgo build", replace("CGO_ENABLED=0 ", ""), ignore, "CGO_ENABLED=0"},
		{"context with .git", src, strings.Replace(ignore, ".git\n", "", 1), ".git"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems := dockerfileProblems(tt.src, tt.ignore)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("problems %q; want one mentioning %q", problems, tt.want)
			}
		})
	}
}

// dockerfileProblems lists what is wrong with a Dockerfile (and its
// .dockerignore) for keyless's image.
func dockerfileProblems(src, ignore string) []string {
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	ins, err := ParseDockerfile(src)
	if err != nil {
		return []string{err.Error()}
	}
	stages, err := Stages(ins)
	if err != nil {
		return []string{err.Error()}
	}
	if len(stages) < 2 {
		return []string{fmt.Sprintf("want a multi-stage build (builder, then the final image), got %d stage(s)", len(stages))}
	}
	names := map[string]bool{}
	for _, st := range stages {
		// Every base image is pinned by tag and digest; a previous stage
		// or scratch needs neither.
		if !names[st.Image] && st.Image != "scratch" && !pinnedImage.MatchString(st.Image) {
			report("line %d: base image %q is not pinned as NAME:TAG@sha256:DIGEST", st.From.Line, st.Image)
		}
		if st.Name != "" {
			names[st.Name] = true
		}
	}
	builder, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(builder.Image, "golang:") {
		report("builder %q is not the golang image", builder.Image)
	}
	if !strings.HasPrefix(final.Image, "gcr.io/distroless/static") && final.Image != "scratch" {
		report("final image %q: want distroless/static or scratch", final.Image)
	}
	build := strings.Join(argsOf(builder.Find("RUN")), "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-buildid=", "./cmd/keyless", "-X main.version="} {
		if !strings.Contains(build, want) {
			report("the builder's go build lacks %s", want)
		}
	}

	// The final stage: non-root user, entrypoint, command, volume, health
	// check.
	uid := ""
	if users := final.Find("USER"); len(users) == 0 {
		report("the final stage sets no USER: it would run as root")
	} else {
		user := users[len(users)-1].Args
		uid, _, _ = strings.Cut(user, ":")
		if uid == "0" || uid == "root" || uid == "" {
			report("final USER %q is root", user)
		}
	}
	if e, p := lastExec(final, "ENTRYPOINT"); p != "" {
		report("%s", p)
	} else if !slices.Equal(e, []string{"/keyless"}) {
		report("ENTRYPOINT %q, want [\"/keyless\"]", e)
	}
	port := ""
	if cmd, p := lastExec(final, "CMD"); p != "" {
		report("%s", p)
	} else if len(cmd) == 0 || cmd[0] != "serve" {
		report("CMD %q: want serve …", cmd)
	} else {
		listen, data := flagValue(cmd, "--listen"), flagValue(cmd, "--data")
		if !strings.HasPrefix(listen, "0.0.0.0:") {
			report("CMD --listen %q: inside a container the server must listen on 0.0.0.0", listen)
		}
		port = listen[strings.LastIndexByte(listen, ':')+1:]
		if data != "/data" {
			report("CMD --data %q, want /data", data)
		}
	}
	var volumes []string
	for _, v := range final.Find("VOLUME") {
		volumes = append(volumes, v.Exec...)
		if v.Exec == nil {
			volumes = append(volumes, strings.Fields(v.Args)...)
		}
	}
	if !slices.Contains(volumes, "/data") {
		report("VOLUME %q does not declare /data", volumes)
	}
	// The volume's directory belongs to the user, or the server cannot
	// write its store.
	owned := false
	for _, c := range final.Find("COPY") {
		if f := strings.Fields(c.Args); len(f) > 0 && f[len(f)-1] == "/data" {
			chown, _ := c.Flag("chown")
			owned = uid != "" && (chown == uid || strings.HasPrefix(chown, uid+":"))
		}
	}
	if !owned {
		report("/data is not created owned by the final user %q (COPY --chown=UID:GID … /data)", uid)
	}
	if ex := final.Find("EXPOSE"); len(ex) == 0 || ex[len(ex)-1].Args != port {
		report("EXPOSE %q, want the listen port %s", argsOf(ex), port)
	}
	if hc := final.Find("HEALTHCHECK"); len(hc) != 1 {
		report("want one HEALTHCHECK in the final stage, got %d", len(hc))
	} else if probe, ok := strings.CutPrefix(hc[0].Args, "CMD "); !ok {
		report("HEALTHCHECK %q: want CMD [...]", hc[0].Args)
	} else if in, err := parseInstruction("CMD "+probe, hc[0].Line); err != nil || len(in.Exec) < 2 || in.Exec[0] != "/keyless" || in.Exec[1] != "healthcheck" {
		report("HEALTHCHECK CMD %q: want the exec form [\"/keyless\", \"healthcheck\", …] (the image has no shell)", probe)
	} else if u := flagValue(in.Exec, "--url"); u != "" && !strings.Contains(u, "127.0.0.1:"+port+"/") {
		report("health check probes %s, not the listen port %s", u, port)
	}

	// No secrets in the image or its history.
	for _, in := range ins {
		switch in.Cmd {
		case "ENV", "ARG":
			for _, kv := range strings.Fields(in.Args) {
				k, v, _ := strings.Cut(kv, "=")
				if secretName.MatchString(k) && v != "" && !strings.HasSuffix(k, "_FILE") {
					report("line %d: %s %s sets a secret in the image", in.Line, in.Cmd, k)
				}
			}
		case "COPY", "ADD":
			if strings.Contains(in.Args, "master.key") || strings.Contains(in.Args, "keyless-data") || strings.Contains(in.Args, ".pem") {
				report("line %d: %s copies key material: %s", in.Line, in.Cmd, in.Args)
			}
			if _, ok := in.Flag("checksum"); in.Cmd == "ADD" && strings.Contains(in.Args, "://") && !ok {
				report("line %d: ADD of a URL without --checksum", in.Line)
			}
		}
	}
	for _, want := range []string{".git", "**/keyless-data", "**/master.key", "dist"} {
		if !slices.Contains(strings.Split(ignore, "\n"), want) {
			report(".dockerignore lacks %s", want)
		}
	}
	return problems
}

func argsOf(ins []Instruction) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.Args
	}
	return out
}

// lastExec is the exec form of the stage's last cmd instruction (the one
// that counts), or a problem.
func lastExec(st Stage, cmd string) ([]string, string) {
	ins := st.Find(cmd)
	if len(ins) == 0 {
		return nil, "final stage has no " + cmd
	}
	last := ins[len(ins)-1]
	if last.Exec == nil {
		return nil, fmt.Sprintf("line %d: %s %s is the shell form; the image has no shell", last.Line, cmd, last.Args)
	}
	return last.Exec, ""
}

// flagValue finds --name VALUE or --name=VALUE in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}
