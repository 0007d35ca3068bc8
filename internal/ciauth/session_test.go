package ciauth

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

var sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

func checkSessionName(t *testing.T, name string) {
	t.Helper()
	// \w in Go's RE2 is ASCII-only, as we assume AWS's is.
	if !sessionNameRE.MatchString(name) {
		t.Fatalf("session name %q violates [\\w+=,.@-]{2,64}", name)
	}
}

func TestDeriveSessionName(t *testing.T) {
	now := time.Date(2026, 11, 28, 9, 30, 5, 0, time.UTC)
	long := strings.Repeat("very-long-repository-name-", 5)
	tests := []struct {
		name string
		env  Env
		want string
	}{
		{name: "CircleCI", env: Env{"CIRCLECI": "true", "CIRCLE_PROJECT_REPONAME": "web", "CIRCLE_JOB": "deploy prod", "CIRCLE_BUILD_NUM": "4711"},
			want: "circleci-web-deploy-prod-4711"},
		{name: "GitHub", env: Env{"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/web", "GITHUB_JOB": "deploy", "GITHUB_RUN_ID": "9876543210", "GITHUB_RUN_ATTEMPT": "2"},
			want: "gha-acme.web-deploy-9876543210-2"},
		{name: "GitHub bot-ish job name", env: Env{"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/web", "GITHUB_JOB": "dependabot[bot]", "GITHUB_RUN_ID": "1", "GITHUB_RUN_ATTEMPT": "1"},
			want: "gha-acme.web-dependabot-bot-1-1"},
		{name: "GitLab nested groups", env: Env{"GITLAB_CI": "true", "CI_PROJECT_PATH": "acme/platform/infra", "CI_JOB_ID": "123456"},
			want: "gitlab-acme.platform.infra-123456"},
		{name: "Buildkite", env: Env{"BUILDKITE": "true", "BUILDKITE_PIPELINE_SLUG": "deploy", "BUILDKITE_BUILD_NUMBER": "88"},
			want: "buildkite-deploy-88"},
		{name: "not CI", env: Env{}, want: "keyless-20261128T093005Z"},
		{name: "CI without metadata", env: Env{"GITHUB_ACTIONS": "true"}, want: "keyless-20261128T093005Z"},
		{name: "long CircleCI names keep the build number", env: Env{"CIRCLECI": "true", "CIRCLE_PROJECT_REPONAME": long, "CIRCLE_JOB": "build-and-deploy-to-production", "CIRCLE_BUILD_NUM": "1234567"},
			want: "circleci-very-long-repository-name-very-long-repository-1234567"},
		{name: "long GitHub repo keeps its end and the run ids, drops the job first", env: Env{"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "an-organisation-with-a-long-name/" + long, "GITHUB_JOB": "j", "GITHUB_RUN_ID": "9876543210", "GITHUB_RUN_ATTEMPT": "3"},
			want: "gha-long-repository-name-very-long-repository-name-9876543210-3"},
		{name: "non-ASCII is replaced", env: Env{"GITLAB_CI": "true", "CI_PROJECT_PATH": "équipe/dépôt", "CI_JOB_ID": "7"},
			want: "gitlab-quipe.d-p-t-7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DeriveSessionName(tt.env, now)
			if got != tt.want {
				t.Errorf("DeriveSessionName = %q (%d), want %q", got, len(got), tt.want)
			}
			checkSessionName(t, got)
		})
	}
}

func TestDeriveSessionNameKeepsIDsWhenEverythingIsLong(t *testing.T) {
	env := Env{"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": strings.Repeat("r", 100), "GITHUB_JOB": strings.Repeat("j", 100),
		"GITHUB_RUN_ID": strings.Repeat("1", 40), "GITHUB_RUN_ATTEMPT": strings.Repeat("2", 30)}
	got := DeriveSessionName(env, time.Time{})
	checkSessionName(t, got)
	if !strings.HasSuffix(got, strings.Repeat("2", 30)) {
		t.Errorf("%q lost the run attempt", got)
	}
}

func TestSanitizeSessionName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ok-name_1+=,.@", "ok-name_1+=,.@"},
		{"", "keyless"},
		{"a", "keyless-a"},
		{"  ", "keyless"},
		{"dependabot[bot]", "dependabot-bot"},
		{"org/repo", "org.repo"},
		{"tab\tand newline\n", "tab-and-newline"},
		{"日本", "keyless"},
		{strings.Repeat("x", 70), strings.Repeat("x", 64)},
		{"a" + strings.Repeat("-", 70), "keyless-a"},
	}
	for _, tt := range tests {
		got := SanitizeSessionName(tt.in)
		if got != tt.want {
			t.Errorf("SanitizeSessionName(%q) = %q, want %q", tt.in, got, tt.want)
		}
		checkSessionName(t, got)
		if again := SanitizeSessionName(got); again != got {
			t.Errorf("not idempotent: %q → %q", got, again)
		}
	}
}

func FuzzSanitizeSessionName(f *testing.F) {
	for _, s := range []string{"", "a", "dependabot[bot]", "org/repo", strings.Repeat("ab/", 40), "日本語", "-.-.-", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := SanitizeSessionName(s)
		checkSessionName(t, got)
		if SanitizeSessionName(s) != got {
			t.Fatal("not deterministic")
		}
		if SanitizeSessionName(got) != got {
			t.Fatalf("not idempotent on %q", got)
		}
	})
}

func FuzzDeriveSessionName(f *testing.F) {
	f.Add("acme/web", "deploy", "9876543210", "1")
	f.Add(strings.Repeat("x/", 50), strings.Repeat("j", 80), strings.Repeat("9", 70), "")
	f.Add("", "", "", "")
	f.Add("---", "...", "@@@", "日")
	f.Fuzz(func(t *testing.T, repo, job, runID, attempt string) {
		for _, env := range []Env{
			{"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": repo, "GITHUB_JOB": job, "GITHUB_RUN_ID": runID, "GITHUB_RUN_ATTEMPT": attempt},
			{"CIRCLECI": "true", "CIRCLE_PROJECT_REPONAME": repo, "CIRCLE_JOB": job, "CIRCLE_BUILD_NUM": runID},
			{"GITLAB_CI": "true", "CI_PROJECT_PATH": repo, "CI_JOB_ID": runID},
			{"BUILDKITE": "true", "BUILDKITE_PIPELINE_SLUG": repo, "BUILDKITE_BUILD_NUMBER": runID},
		} {
			got := DeriveSessionName(env, time.Unix(0, 0))
			checkSessionName(t, got)
			// A short, clean run id survives whole unless the other essential
			// part (the attempt) is itself absurdly long.
			if id := cleanPart(runID); id != "" && len(id) <= 20 && len(cleanPart(attempt)) <= 10 && !strings.Contains(got, id) {
				t.Fatalf("%q lost run id %q", got, id)
			}
		}
	})
}

func BenchmarkDeriveSessionName(b *testing.B) {
	env := Env{"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "an-organisation/" + strings.Repeat("long-name-", 8), "GITHUB_JOB": "deploy", "GITHUB_RUN_ID": "9876543210", "GITHUB_RUN_ATTEMPT": "1"}
	b.ReportAllocs()
	for b.Loop() {
		_ = DeriveSessionName(env, time.Time{})
	}
}
