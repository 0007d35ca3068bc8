// Package integrations holds keyless's CI integrations — the CircleCI orb
// (circleci-orb/), the GitHub composite action (github-action/) and the
// GitLab CI template (gitlab/) — which are YAML, not Go. Its tests parse
// each file against the schema its CI system expects, check that every
// parameter or input referenced is declared and every declared one is used,
// check the examples in the READMEs against those declarations, and run the
// shell each integration executes with a stand-in keyless binary to see the
// command line it builds.
package integrations

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keylessci/keyless/internal/testenv"
	"sigs.k8s.io/yaml"
)

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// refs returns the distinct first submatches of re in s.
func refs(re *regexp.Regexp, s string) []string {
	seen := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		seen[m[1]] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

// checkDeclaredUsed: every referenced name is declared, every declared one
// is referenced.
func checkDeclaredUsed(t *testing.T, what string, declared []string, used []string) {
	t.Helper()
	d := map[string]bool{}
	for _, n := range declared {
		d[n] = true
	}
	u := map[string]bool{}
	for _, n := range used {
		u[n] = true
		if !d[n] {
			t.Errorf("%s: %q is referenced but not declared", what, n)
		}
	}
	for _, n := range declared {
		if !u[n] {
			t.Errorf("%s: %q is declared but never used", what, n)
		}
	}
}

// fakeKeyless puts a stand-in keyless first on PATH; it records its
// arguments, one per line, in dir/args.
func fakeKeyless(t *testing.T) (binDir, argsFile string) {
	t.Helper()
	binDir = t.TempDir()
	argsFile = filepath.Join(binDir, "args")
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > " + argsFile + "\n"
	if err := os.WriteFile(filepath.Join(binDir, "keyless"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return binDir, argsFile
}

func readArgs(t *testing.T, argsFile string) []string {
	t.Helper()
	b, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatalf("keyless was not run: %v", err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// runScript runs script with bash -c and the given environment.
func runScript(t *testing.T, script string, env map[string]string) (string, error) {
	t.Helper()
	bash := testenv.RequireCommand(t, "bash")
	cmd := exec.Command(bash, "-c", script)
	cmd.Dir = t.TempDir()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// yamlBlocks returns the ```yaml fenced blocks of a Markdown file.
func yamlBlocks(t *testing.T, path string) []string {
	t.Helper()
	var blocks []string
	var cur *strings.Builder
	for _, line := range strings.Split(string(read(t, path)), "\n") {
		switch {
		case cur == nil && (strings.HasPrefix(line, "```yaml") || strings.HasPrefix(line, "```yml")):
			cur = &strings.Builder{}
		case cur != nil && strings.HasPrefix(line, "```"):
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return blocks
}

// walk calls fn on every map in v, depth first.
func walk(v any, fn func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		fn(x)
		for _, k := range slices.Sorted(maps.Keys(x)) {
			walk(x[k], fn)
		}
	case []any:
		for _, e := range x {
			walk(e, fn)
		}
	}
}

// docsWithExamples are the Markdown files whose YAML examples must match
// the integrations' declarations.
var docsWithExamples = []string{"../docs/migrate-ci.md", "README.md", "circleci-orb/README.md", "github-action/README.md", "gitlab/README.md"}

// ---------------------------------------------------------------- CircleCI

type orbParam struct {
	Type        string   `json:"type"`
	Default     any      `json:"default"`
	Description string   `json:"description"`
	Enum        []string `json:"enum,omitempty"`
}

type orbCommand struct {
	Description string              `json:"description"`
	Parameters  map[string]orbParam `json:"parameters"`
	Steps       []any               `json:"steps"`
}

type orbRun struct {
	Name        string            `json:"name"`
	Command     string            `json:"command"`
	Environment map[string]string `json:"environment"`
	Shell       string            `json:"shell,omitempty"`
	When        string            `json:"when,omitempty"`
}

var (
	orbParamRef   = regexp.MustCompile(`<<\s*parameters\.([A-Za-z0-9_-]+)\s*>>`)
	orbInclude    = regexp.MustCompile(`<<include\(([^)]+)\)>>`)
	snakeCase     = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	orbParamTypes = []string{"string", "boolean", "integer", "enum", "env_var_name", "steps", "executor"}
)

const orbSrc = "circleci-orb/src"

func loadOrbCommand(t *testing.T) orbCommand {
	t.Helper()
	var cmd orbCommand
	if err := yaml.UnmarshalStrict(read(t, filepath.Join(orbSrc, "commands", "setup_oidc.yml")), &cmd); err != nil {
		t.Fatalf("setup_oidc.yml: %v", err)
	}
	return cmd
}

func TestOrbMetadata(t *testing.T) {
	var orb struct {
		Version     float64 `json:"version"`
		Description string  `json:"description"`
		Display     struct {
			HomeURL   string `json:"home_url"`
			SourceURL string `json:"source_url"`
		} `json:"display"`
	}
	if err := yaml.UnmarshalStrict(read(t, filepath.Join(orbSrc, "@orb.yml")), &orb); err != nil {
		t.Fatalf("@orb.yml: %v", err)
	}
	if orb.Version != 2.1 {
		t.Errorf("version %v, want 2.1", orb.Version)
	}
	// orb-tools review RC005 wants at least 64 characters; RC001 a source URL.
	if len(orb.Description) < 64 || !strings.HasPrefix(orb.Display.SourceURL, "https://") || !strings.HasPrefix(orb.Display.HomeURL, "https://") {
		t.Errorf("@orb.yml description/display incomplete: %+v", orb)
	}
}

func TestOrbCommands(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(orbSrc, "commands", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no commands: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			base := strings.TrimSuffix(filepath.Base(f), ".yml")
			if !snakeCase.MatchString(base) {
				t.Errorf("component name %q is not snake_case (orb-tools RC010)", base)
			}
			raw := read(t, f)
			var cmd orbCommand
			if err := yaml.UnmarshalStrict(raw, &cmd); err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(cmd.Description) == "" {
				t.Error("command has no description (RC002)")
			}
			for name, p := range cmd.Parameters {
				if !snakeCase.MatchString(name) {
					t.Errorf("parameter %q is not snake_case (RC010)", name)
				}
				if !slices.Contains(orbParamTypes, p.Type) {
					t.Errorf("parameter %q: type %q", name, p.Type)
				}
				if strings.TrimSpace(p.Description) == "" {
					t.Errorf("parameter %q has no description", name)
				}
				switch d := p.Default; p.Type {
				case "boolean":
					if _, ok := d.(bool); d != nil && !ok {
						t.Errorf("parameter %q: boolean default %v (%T)", name, d, d)
					}
				case "string", "env_var_name":
					if _, ok := d.(string); d != nil && !ok {
						t.Errorf("parameter %q: string default %v (%T) (quote it)", name, d, d)
					}
				case "integer":
					if _, ok := d.(float64); d != nil && !ok {
						t.Errorf("parameter %q: integer default %v", name, d)
					}
				case "enum":
					if s, ok := d.(string); d != nil && (!ok || !slices.Contains(p.Enum, s)) {
						t.Errorf("parameter %q: default %v not in enum %v", name, d, p.Enum)
					}
				}
			}
			// Every run step is named (RC008), its command or include exists.
			for i, s := range cmd.Steps {
				m, ok := s.(map[string]any)
				if !ok {
					continue // "checkout" and other built-in steps
				}
				runRaw, ok := m["run"]
				if !ok {
					continue
				}
				js, _ := yaml.Marshal(runRaw)
				var run orbRun
				if err := yaml.UnmarshalStrict(js, &run); err != nil {
					t.Fatalf("step %d: run must be a map with name/command/environment: %v", i, err)
				}
				if run.Name == "" || run.Command == "" {
					t.Errorf("step %d: run without name or command", i)
				}
				for _, inc := range refs(orbInclude, run.Command) {
					p := filepath.Join(orbSrc, inc)
					if _, err := os.Stat(p); err != nil {
						t.Errorf("step %d includes %s: %v", i, inc, err)
					}
					if bash, err := exec.LookPath("bash"); err == nil {
						if out, err := exec.Command(bash, "-n", p).CombinedOutput(); err != nil {
							t.Errorf("%s: bash -n: %v\n%s", inc, err, out)
						}
					}
				}
			}
			checkDeclaredUsed(t, "setup_oidc parameters", slices.Collect(maps.Keys(cmd.Parameters)), refs(orbParamRef, string(raw)))
		})
	}
}

func TestOrbExamples(t *testing.T) {
	cmd := loadOrbCommand(t)
	files, _ := filepath.Glob(filepath.Join(orbSrc, "examples", "*.yml"))
	if len(files) == 0 {
		t.Fatal("no usage examples (RC003)")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if strings.Contains(filepath.Base(f), "example") {
				t.Error("example file names should not contain 'example' (RC004)")
			}
			var ex struct {
				Description string         `json:"description"`
				Usage       map[string]any `json:"usage"`
			}
			if err := yaml.UnmarshalStrict(read(t, f), &ex); err != nil {
				t.Fatal(err)
			}
			if ex.Description == "" || ex.Usage["version"] != 2.1 {
				t.Errorf("example needs a description and usage.version 2.1: %v", ex.Usage["version"])
			}
			if n := checkOrbUsage(t, cmd, ex.Usage); n == 0 {
				t.Error("example never calls keyless/setup_oidc")
			}
		})
	}
}

// checkOrbUsage checks every keyless/setup_oidc call in v and returns how
// many it found.
func checkOrbUsage(t *testing.T, cmd orbCommand, v any) int {
	t.Helper()
	n := 0
	walk(v, func(m map[string]any) {
		call, ok := m["keyless/setup_oidc"]
		if !ok {
			return
		}
		n++
		args, _ := call.(map[string]any)
		for k := range args {
			if _, ok := cmd.Parameters[k]; !ok {
				t.Errorf("keyless/setup_oidc called with undeclared parameter %q", k)
			}
		}
	})
	return n
}

// orbEnv renders the setup_oidc run step's environment as CircleCI would:
// each << parameters.x >> replaced by the given value or the default.
func orbEnv(t *testing.T, cmd orbCommand, given map[string]string) map[string]string {
	t.Helper()
	js, _ := yaml.Marshal(cmd.Steps[0].(map[string]any)["run"])
	var run orbRun
	if err := yaml.Unmarshal(js, &run); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for k, v := range run.Environment {
		// <<include(file)>> is replaced by the file, as `circleci orb pack` does.
		if m := orbInclude.FindStringSubmatch(v); m != nil && m[0] == v {
			env[k] = string(read(t, filepath.Join(orbSrc, m[1])))
			continue
		}
		env[k] = orbParamRef.ReplaceAllStringFunc(v, func(ref string) string {
			name := orbParamRef.FindStringSubmatch(ref)[1]
			if val, ok := given[name]; ok {
				return val
			}
			return fmt.Sprint(cmd.Parameters[name].Default)
		})
	}
	return env
}

func TestOrbScriptBuildsCommandLine(t *testing.T) {
	cmd := loadOrbCommand(t)
	script := string(read(t, filepath.Join(orbSrc, "scripts", "setup_oidc.sh")))
	tests := []struct {
		name    string
		params  map[string]string
		ciEnv   map[string]string
		want    []string
		wantErr string
	}{
		{
			name:  "defaults take role and region from the environment",
			ciEnv: map[string]string{"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/from-context", "AWS_DEFAULT_REGION": "eu-west-1"},
			want:  []string{"assume", "--role-arn", "arn:aws:iam::123456789012:role/from-context", "--profile", "default", "--duration", "3600", "--region", "eu-west-1", "--circleci-bash-env"},
		},
		{
			name:   "set_aws_env_vars false writes the profile only",
			params: map[string]string{"role_arn": "arn:aws:iam::123456789012:role/ci", "set_aws_env_vars": "false"},
			want:   []string{"assume", "--role-arn", "arn:aws:iam::123456789012:role/ci", "--profile", "default", "--duration", "3600"},
		},
		{
			// As `circleci env subst`: $NAME and ${NAME} anywhere in a value;
			// unset names expand to nothing.
			name: "parameters expand environment variables",
			params: map[string]string{"role_arn": "arn:aws:iam::${ACCOUNT}:role/$ROLE_NAME", "profile_name": "$PROFILE",
				"role_session_name": "deploy-${CIRCLE_BUILD_NUM}${UNSET_VAR}", "session_duration": "${DURATION}", "region": "$REGION",
				"endpoint_url": "https://${KEYLESS_HOST}/sts"},
			ciEnv: map[string]string{"ACCOUNT": "210987654321", "ROLE_NAME": "deploy", "PROFILE": "prod", "CIRCLE_BUILD_NUM": "42",
				"DURATION": "900", "REGION": "eu-central-1", "KEYLESS_HOST": "keyless.example.com"},
			want: []string{"assume", "--role-arn", "arn:aws:iam::210987654321:role/deploy", "--profile", "prod", "--session-name", "deploy-42",
				"--duration", "900", "--region", "eu-central-1", "--endpoint-url", "https://keyless.example.com/sts", "--circleci-bash-env"},
		},
		{
			name: "every parameter",
			params: map[string]string{"role_arn": "arn:aws:iam::123456789012:role/ci", "profile_name": "ci", "role_session_name": "my session",
				"session_duration": "1800", "region": "ap-south-1", "endpoint_url": "https://keyless.example.com", "set_aws_env_vars": "true"},
			want: []string{"assume", "--role-arn", "arn:aws:iam::123456789012:role/ci", "--profile", "ci", "--session-name", "my session",
				"--duration", "1800", "--region", "ap-south-1", "--endpoint-url", "https://keyless.example.com", "--circleci-bash-env"},
		},
		{
			name:   "hostile values are passed literally, never evaluated",
			params: map[string]string{"role_arn": "$(touch pwned)", "profile_name": "`touch pwned`", "region": "${HOME:+x}"},
			want:   []string{"assume", "--role-arn", "$(touch pwned)", "--profile", "`touch pwned`", "--duration", "3600", "--region", "${HOME:+x}", "--circleci-bash-env"},
		},
		{name: "no role", wantErr: "role_arn is empty"},
		{name: "no OIDC token", params: map[string]string{"role_arn": "arn:aws:iam::1:role/x"}, ciEnv: map[string]string{"CIRCLE_OIDC_TOKEN_V2": ""},
			wantErr: "CircleCI gives one only to jobs that run with a context or with OIDC enabled:\nadd a context to this job"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin, argsFile := fakeKeyless(t)
			home := t.TempDir()
			env := orbEnv(t, cmd, tt.params)
			env["PATH"] = bin + ":/usr/bin:/bin"
			env["HOME"] = home
			env["BASH_ENV"] = filepath.Join(home, "bash_env")
			env["CIRCLE_OIDC_TOKEN_V2"] = "header.payload.signature"
			for k, v := range tt.ciEnv {
				env[k] = v
			}
			out, err := runScript(t, script, env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(out, tt.wantErr) {
					t.Fatalf("err %v, output %q; want failure mentioning %q", err, out, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if diff := cmp.Diff(tt.want, readArgs(t, argsFile)); diff != "" {
				t.Errorf("keyless arguments (-want +got):\n%s", diff)
			}
			if matches, _ := filepath.Glob(filepath.Join(home, "*pwned*")); len(matches) > 0 {
				t.Error("a parameter was evaluated by the shell")
			}
		})
	}
}

// ------------------------------------------------------------------ GitHub

type actionInput struct {
	Description        string  `json:"description"`
	Required           *bool   `json:"required,omitempty"`
	Default            *string `json:"default,omitempty"`
	DeprecationMessage string  `json:"deprecationMessage,omitempty"`
}

type actionStep struct {
	Name  string            `json:"name"`
	ID    string            `json:"id,omitempty"`
	Shell string            `json:"shell,omitempty"`
	Run   string            `json:"run,omitempty"`
	Uses  string            `json:"uses,omitempty"`
	With  map[string]string `json:"with,omitempty"`
	Env   map[string]string `json:"env,omitempty"`
	If    string            `json:"if,omitempty"`
}

type action struct {
	Name        string                 `json:"name"`
	Description string                 `json:"description"`
	Author      string                 `json:"author,omitempty"`
	Branding    map[string]string      `json:"branding,omitempty"`
	Inputs      map[string]actionInput `json:"inputs"`
	Outputs     map[string]struct {
		Description string `json:"description"`
		Value       string `json:"value"`
	} `json:"outputs"`
	Runs struct {
		Using string       `json:"using"`
		Steps []actionStep `json:"steps"`
	} `json:"runs"`
}

var (
	inputRef       = regexp.MustCompile(`\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}`)
	stepOutputRef  = regexp.MustCompile(`^\$\{\{\s*steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)\s*\}\}$`)
	actionFile     = "github-action/action.yml"
	familiarInputs = []string{"role-to-assume", "aws-region", "audience", "endpoint-url", "role-session-name", "role-duration-seconds", "output-credentials", "mask"}
)

func loadAction(t *testing.T) (action, string) {
	t.Helper()
	raw := read(t, actionFile)
	var a action
	if err := yaml.UnmarshalStrict(raw, &a); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	return a, string(raw)
}

func TestActionSchema(t *testing.T) {
	a, raw := loadAction(t)
	if a.Name == "" || a.Description == "" {
		t.Error("action needs a name and a description")
	}
	if a.Runs.Using != "composite" {
		t.Errorf("runs.using = %q, want composite", a.Runs.Using)
	}
	for _, n := range familiarInputs {
		if _, ok := a.Inputs[n]; !ok {
			t.Errorf("input %q (named as configure-aws-credentials names it) is missing", n)
		}
	}
	for name, in := range a.Inputs {
		if in.Description == "" {
			t.Errorf("input %q has no description", name)
		}
		if in.Required != nil && *in.Required && in.Default != nil {
			t.Errorf("input %q is required and has a default", name)
		}
	}
	ids := map[string]bool{}
	for i, s := range a.Runs.Steps {
		if s.ID != "" {
			ids[s.ID] = true
		}
		if (s.Run == "") == (s.Uses == "") {
			t.Errorf("step %d: needs exactly one of run and uses", i)
		}
		if s.Run != "" && s.Shell == "" {
			t.Errorf("step %d: composite run steps need shell", i)
		}
		// Inputs reach scripts through env, never spliced into the script
		// text, where a value could inject shell.
		if inputRef.MatchString(s.Run) {
			t.Errorf("step %d: ${{ inputs.* }} inside run:", i)
		}
	}
	for name, o := range a.Outputs {
		m := stepOutputRef.FindStringSubmatch(o.Value)
		if m == nil || !ids[m[1]] || m[2] != name || o.Description == "" {
			t.Errorf("output %q: value %q must be ${{ steps.<id>.outputs.%s }} of a step of this action", name, o.Value, name)
		}
	}
	checkDeclaredUsed(t, "action inputs", slices.Collect(maps.Keys(a.Inputs)), refs(inputRef, raw))
}

// actionStepEnv renders a step's env as the runner would, from the given
// inputs or their defaults.
func actionStepEnv(a action, s actionStep, given map[string]string) map[string]string {
	env := map[string]string{}
	for k, v := range s.Env {
		env[k] = inputRef.ReplaceAllStringFunc(v, func(ref string) string {
			name := inputRef.FindStringSubmatch(ref)[1]
			if val, ok := given[name]; ok {
				return val
			}
			if d := a.Inputs[name].Default; d != nil {
				return *d
			}
			return ""
		})
	}
	return env
}

func actionStepByName(t *testing.T, a action, name string) actionStep {
	t.Helper()
	for _, s := range a.Runs.Steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no step %q", name)
	return actionStep{}
}

func TestActionAssumeStep(t *testing.T) {
	a, _ := loadAction(t)
	step := actionStepByName(t, a, "Assume role")
	const role = "arn:aws:iam::123456789012:role/gha"
	tests := []struct {
		name   string
		inputs map[string]string
		want   []string
	}{
		{name: "defaults", inputs: map[string]string{"role-to-assume": role},
			want: []string{"assume", "--role-arn", role, "--audience", "sts.amazonaws.com", "--github-env", "--github-output"}},
		{name: "every input", inputs: map[string]string{"role-to-assume": role, "aws-region": "eu-west-1", "audience": "https://keyless.example.com",
			"endpoint-url": "https://keyless.example.com", "role-session-name": "deploy", "role-duration-seconds": "900", "output-credentials": "true", "mask": "true"},
			want: []string{"assume", "--role-arn", role, "--audience", "https://keyless.example.com", "--github-env", "--github-output",
				"--region", "eu-west-1", "--endpoint-url", "https://keyless.example.com", "--session-name", "deploy", "--duration", "900",
				"--output-credentials", "--mask-account-id"}},
		{name: "hostile input stays one argument", inputs: map[string]string{"role-to-assume": `x" --profile "evil`, "role-session-name": "$(id)"},
			want: []string{"assume", "--role-arn", `x" --profile "evil`, "--audience", "sts.amazonaws.com", "--github-env", "--github-output", "--session-name", "$(id)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin, argsFile := fakeKeyless(t)
			env := actionStepEnv(a, step, tt.inputs)
			env["PATH"] = bin + ":/usr/bin:/bin"
			if out, err := runScript(t, step.Run, env); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if diff := cmp.Diff(tt.want, readArgs(t, argsFile)); diff != "" {
				t.Errorf("keyless arguments (-want +got):\n%s", diff)
			}
		})
	}
}

func TestActionInstallStep(t *testing.T) {
	a, _ := loadAction(t)
	step := actionStepByName(t, a, "Install keyless")
	t.Run("already installed", func(t *testing.T) {
		bin, _ := fakeKeyless(t)
		ghPath := filepath.Join(t.TempDir(), "github_path")
		env := actionStepEnv(a, step, nil)
		env["PATH"], env["RUNNER_TEMP"], env["GITHUB_PATH"] = bin+":/usr/bin:/bin", t.TempDir(), ghPath
		env["GITHUB_ACTION_PATH"] = actionDir(t)
		if out, err := runScript(t, step.Run, env); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if _, err := os.Stat(ghPath); err == nil {
			t.Error("changed PATH although keyless was installed")
		}
	})
	t.Run("nothing to install with", func(t *testing.T) {
		tools := toolsDir(t, false) // the installer's tools, but no curl, wget or go
		os.Remove(filepath.Join(tools, "go"))
		env := actionStepEnv(a, step, nil)
		env["PATH"], env["RUNNER_TEMP"], env["GITHUB_PATH"] = tools, t.TempDir(), filepath.Join(t.TempDir(), "p")
		env["GITHUB_ACTION_PATH"] = actionDir(t)
		out, err := runScript(t, step.Run, env)
		if err == nil || !strings.Contains(out, "::error::") {
			t.Errorf("err %v, output %q; want a workflow error", err, out)
		}
	})
}

// ------------------------------------------------------------------ GitLab

type gitlabInput struct {
	Description string   `json:"description"`
	Default     *string  `json:"default,omitempty"`
	Type        string   `json:"type,omitempty"`
	Options     []string `json:"options,omitempty"`
	Regex       string   `json:"regex,omitempty"`
}

type gitlabJob struct {
	IDTokens     map[string]map[string]any `json:"id_tokens"`
	Variables    map[string]string         `json:"variables"`
	BeforeScript []string                  `json:"before_script"`
}

var (
	gitlabInputRef = regexp.MustCompile(`\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*(?:\|[^\]]*)?\]\]`)
	gitlabFile     = "gitlab/keyless-aws.yml"
)

// loadGitLab splits the template into its spec header and its body, with
// inputs interpolated from given (or defaults) as GitLab does at include.
func loadGitLab(t *testing.T, given map[string]string) (map[string]gitlabInput, map[string]gitlabJob, string) {
	t.Helper()
	raw := string(read(t, gitlabFile))
	header, body, ok := strings.Cut(raw, "\n---\n")
	if !ok {
		t.Fatal("template lacks the spec header document")
	}
	var spec struct {
		Spec struct {
			Inputs map[string]gitlabInput `json:"inputs"`
		} `json:"spec"`
	}
	if err := yaml.UnmarshalStrict([]byte(header), &spec); err != nil {
		t.Fatalf("spec header: %v", err)
	}
	rendered := gitlabInputRef.ReplaceAllStringFunc(body, func(ref string) string {
		name := gitlabInputRef.FindStringSubmatch(ref)[1]
		if v, ok := given[name]; ok {
			return v
		}
		if d := spec.Spec.Inputs[name].Default; d != nil {
			return *d
		}
		return ""
	})
	var jobs map[string]gitlabJob
	if err := yaml.UnmarshalStrict([]byte(rendered), &jobs); err != nil {
		t.Fatalf("template body: %v", err)
	}
	return spec.Spec.Inputs, jobs, body
}

func TestGitLabTemplateSchema(t *testing.T) {
	inputs, jobs, body := loadGitLab(t, map[string]string{"role_arn": "arn:aws:iam::1:role/x"})
	if len(inputs) == 0 {
		t.Fatal("no spec inputs")
	}
	for name, in := range inputs {
		if !snakeCase.MatchString(name) || in.Description == "" {
			t.Errorf("input %q: name must be snake_case and have a description", name)
		}
		if in.Type != "" && !slices.Contains([]string{"string", "number", "boolean", "array"}, in.Type) {
			t.Errorf("input %q: type %q", name, in.Type)
		}
	}
	if inputs["role_arn"].Default != nil {
		t.Error("role_arn must be required (no default)")
	}
	job, ok := jobs[".keyless_aws"]
	if !ok || len(jobs) != 1 {
		t.Fatalf("want exactly the hidden job .keyless_aws, got %v", slices.Collect(maps.Keys(jobs)))
	}
	tok, ok := job.IDTokens["KEYLESS_ID_TOKEN"]
	if !ok || tok["aud"] != "sts.amazonaws.com" {
		t.Errorf("id_tokens = %v, want KEYLESS_ID_TOKEN with the default aud", job.IDTokens)
	}
	if len(job.BeforeScript) == 0 || !strings.Contains(strings.Join(job.BeforeScript, "\n"), "--token-env KEYLESS_ID_TOKEN") {
		t.Error("before_script must pass the id_tokens variable to keyless")
	}
	checkDeclaredUsed(t, "GitLab inputs", slices.Collect(maps.Keys(inputs)), refs(gitlabInputRef, body))
}

func TestGitLabBeforeScript(t *testing.T) {
	tests := []struct {
		name   string
		inputs map[string]string
		want   []string
	}{
		{name: "defaults", inputs: map[string]string{"role_arn": "arn:aws:iam::123456789012:role/gl"},
			want: []string{"assume", "--token-env", "KEYLESS_ID_TOKEN", "--role-arn", "arn:aws:iam::123456789012:role/gl", "--profile", "default", "--region", "us-east-1", "--duration", "3600"}},
		{name: "keyless server", inputs: map[string]string{"role_arn": "arn:aws:iam::123456789012:role/gl", "endpoint_url": "https://keyless.example.com", "profile": "ci", "region": "eu-west-1", "session_duration": "900"},
			want: []string{"assume", "--token-env", "KEYLESS_ID_TOKEN", "--role-arn", "arn:aws:iam::123456789012:role/gl", "--profile", "ci", "--region", "eu-west-1", "--duration", "900", "--endpoint-url", "https://keyless.example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, jobs, _ := loadGitLab(t, tt.inputs)
			job := jobs[".keyless_aws"]
			bin, argsFile := fakeKeyless(t)
			env := maps.Clone(job.Variables)
			env["PATH"] = bin + ":/usr/bin:/bin"
			env["KEYLESS_ID_TOKEN"] = "header.payload.signature"
			if out, err := runScript(t, strings.Join(job.BeforeScript, "\n"), env); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if diff := cmp.Diff(tt.want, readArgs(t, argsFile)); diff != "" {
				t.Errorf("keyless arguments (-want +got):\n%s", diff)
			}
			if env["AWS_PROFILE"] != tt.want[slices.Index(tt.want, "--profile")+1] {
				t.Errorf("AWS_PROFILE %q does not name the profile written", env["AWS_PROFILE"])
			}
		})
	}
}

// -------------------------------------------------------- README examples

// TestDocExamples checks the YAML examples in the READMEs and the
// migration guide against the declarations: parameters and inputs exist,
// required ones are given.
func TestDocExamples(t *testing.T) {
	orb := loadOrbCommand(t)
	act, _ := loadAction(t)
	glInputs, _, _ := loadGitLab(t, nil)
	var required []string
	for name, in := range act.Inputs {
		if in.Required != nil && *in.Required {
			required = append(required, name)
		}
	}
	sort.Strings(required)
	counts := map[string]int{}
	for _, doc := range docsWithExamples {
		t.Run(filepath.Base(filepath.Dir(doc))+"/"+filepath.Base(doc), func(t *testing.T) {
			for i, block := range yamlBlocks(t, doc) {
				var v any
				if err := yaml.Unmarshal([]byte(block), &v); err != nil {
					// Several documents (GitLab spec + body) are not examples.
					if strings.Contains(block, "\n---\n") {
						continue
					}
					t.Fatalf("block %d does not parse: %v\n%s", i, err, block)
				}
				counts["orb"] += checkOrbUsage(t, orb, v)
				walk(v, func(m map[string]any) {
					if uses, _ := m["uses"].(string); strings.Contains(uses, "integrations/github-action@") {
						counts["action"]++
						with, _ := m["with"].(map[string]any)
						for k := range with {
							if _, ok := act.Inputs[k]; !ok {
								t.Errorf("block %d: action input %q is not declared", i, k)
							}
						}
						for _, r := range required {
							if _, ok := with[r]; !ok {
								t.Errorf("block %d: required action input %q missing", i, r)
							}
						}
					}
					if p, _ := m["project"].(string); p != "" || m["remote"] != nil || m["component"] != nil {
						if f, _ := m["file"].(string); !strings.Contains(f, "keyless-aws.yml") && !strings.Contains(fmt.Sprint(m["remote"]), "keyless-aws.yml") {
							return
						}
						counts["gitlab"]++
						ins, _ := m["inputs"].(map[string]any)
						for k := range ins {
							if _, ok := glInputs[k]; !ok {
								t.Errorf("block %d: GitLab input %q is not declared", i, k)
							}
						}
						for name, in := range glInputs {
							if _, ok := ins[name]; in.Default == nil && !ok {
								t.Errorf("block %d: required GitLab input %q missing", i, name)
							}
						}
					}
				})
			}
		})
	}
	for _, k := range []string{"orb", "action", "gitlab"} {
		if counts[k] == 0 {
			t.Errorf("no %s example found in the docs", k)
		}
	}
}
