package readme

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocumentedCommandsExist (issue 12 item 9): every `keyless ...` command
// line in the Markdown documents — in code blocks and code spans — names a
// command the binary has, with flags its --help lists. A command that is
// planned, not built, may be named only in a paragraph that says
// "planned".
func TestDocumentedCommandsExist(t *testing.T) {
	keylessBinary(t)
	files, err := markdownFiles()
	if err != nil {
		t.Fatal(err)
	}
	cli := cliHelp{}
	checked := 0
	for _, file := range files {
		blocks, prose, err := readMarkdown(file)
		if err != nil {
			t.Fatal(err)
		}
		var uses []commandUse
		for _, b := range blocks {
			if !b.shell() && b.Lang != "text" {
				continue
			}
			for i, line := range logicalLines(b.Body) {
				switch {
				case b.Lang == "console" && !strings.HasPrefix(line, "$ "):
					continue // output
				case b.Lang == "text" && !strings.HasPrefix(line, "keyless "):
					continue // a picture, output
				}
				uses = append(uses, commandUses(line, b.Line+1+i)...)
			}
		}
		for _, para := range paragraphs(prose) {
			if strings.Contains(para.text, "planned") {
				continue
			}
			for _, span := range inlineCodeRE.FindAllString(para.text, -1) {
				span = strings.Trim(span, "`")
				if !strings.HasPrefix(span, "keyless ") {
					continue // prose about keyless, a file name
				}
				if f := strings.Fields(span); len(f) == 2 && !strings.HasPrefix(f[1], "-") {
					// A command group named on its own (`keyless admin`), or
					// words that are not a command line (the log message
					// `keyless serving`).
					continue
				}
				uses = append(uses, commandUses(span, para.line)...)
			}
		}
		for _, u := range uses {
			checked++
			for _, problem := range cli.check(u) {
				t.Errorf("%s:%d: %s", file, u.line, problem)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d keyless command lines found in the documents", checked)
	}
}

// cliHelp asks the built binary for --help, once per command path.
type cliHelp map[string]string // command path → its --help, "" when it does not exist

func (c cliHelp) help(path []string) string {
	key := strings.Join(path, " ")
	if h, ok := c[key]; ok {
		return h
	}
	out, err := exec.Command(filepath.Join(binDir, "keyless"), append(append([]string{}, path...), "--help")...).CombinedOutput()
	h := string(out)
	if err != nil || (len(path) > 0 && !strings.Contains(h, "keyless "+key)) {
		h = ""
	}
	c[key] = h
	return h
}

// check returns what is wrong with a documented command line: a command
// or subcommand the binary does not have, a flag its --help does not list.
func (c cliHelp) check(u commandUse) []string {
	name := "`keyless " + strings.Join(u.path, " ") + "`"
	top := c.help(u.path[:1])
	if top == "" {
		return []string{"`keyless " + u.path[0] + "`: no such command"}
	}
	h := top
	if strings.Contains(top, "Available Commands:") {
		if len(u.path) < 2 || !hasSubcommand(top, u.path[1]) {
			return []string{name + ": no such command"}
		}
		h = c.help(u.path[:2])
	}
	var problems []string
	for _, f := range u.flags {
		if !regexp.MustCompile(`(^|[\s,])` + regexp.QuoteMeta(f) + `\b`).MatchString(h) {
			problems = append(problems, name+": no flag "+f)
		}
	}
	return problems
}

// TestCommandCheck: the check catches what does not exist.
func TestCommandCheck(t *testing.T) {
	keylessBinary(t)
	cli := cliHelp{}
	cases := map[string]int{ // line → problems
		"keyless assume --role-arn R --token-file f --profile p":                            0,
		`aws configure set credential_process "keyless assume --output credential-process"`: 0,
		"keyless admin create-key --kind issuer-client --scope gh --data d":                 0,
		"keyless serve --listen 127.0.0.1:8400 [--account-id 1] --issuer-url u":             0,
		"keyless version":                     0,
		"echo keyless no-such-command x.json": 0, // an argument, not a command
		"# keyless no-such-command":           0, // a comment
		"keyless no-such-command trust.json":  1,
		"keyless assume --no-such-flag":       1,
		"keyless issuer":                      1, // a group needs its subcommand on a command line
		"keyless issuer publish --nope":       1,
		"x=$(keyless sts revoke --role r)":    1,
	}
	for line, want := range cases {
		uses := commandUses(line, 1)
		var problems []string
		for _, u := range uses {
			problems = append(problems, cli.check(u)...)
		}
		if len(problems) != want {
			t.Errorf("%q: %d uses, problems %q; want %d problem(s)", line, len(uses), problems, want)
		}
	}
}

// commandUse is one `keyless CMD [SUB] --flags...` in a document.
type commandUse struct {
	line  int
	path  []string // CMD, and SUB when the next word could be one
	flags []string
}

var (
	keylessCmdRE = regexp.MustCompile(`keyless((?:[ \t]+[a-z][a-z-]*){1,2})([^|;&)"'` + "`" + `]*)`)
	flagRE       = regexp.MustCompile(`(?:^|\s)(--[a-z][a-z0-9-]*)`)
)

// commandUses finds keyless command lines in one line of shell: keyless
// where a command starts (the line's start, after a pipe, ;, &&, (, $( or
// an opening quote), not keyless in a comment or an argument.
func commandUses(text string, line int) []commandUse {
	var out []commandUse
	text = strings.TrimPrefix(strings.TrimSpace(text), "$ ")
	for _, loc := range keylessCmdRE.FindAllStringSubmatchIndex(text, -1) {
		before := strings.TrimSpace(text[:loc[0]])
		if before != "" && !strings.HasSuffix(before, "|") && !strings.HasSuffix(before, ";") && !strings.HasSuffix(before, "&&") &&
			!strings.HasSuffix(before, "(") && !strings.HasSuffix(before, "\"") && !strings.HasSuffix(before, "'") {
			continue
		}
		if i := strings.IndexByte(before, '#'); i >= 0 {
			continue // in a comment
		}
		m := []string{text[loc[0]:loc[1]], text[loc[2]:loc[3]], text[loc[4]:loc[5]]}
		u := commandUse{line: line, path: strings.Fields(m[1])}
		for _, f := range flagRE.FindAllStringSubmatch(m[2], -1) {
			u.flags = append(u.flags, f[1])
		}
		out = append(out, u)
	}
	return out
}

// hasSubcommand reports whether a command's help lists sub.
func hasSubcommand(help, sub string) bool {
	_, list, _ := strings.Cut(help, "Available Commands:")
	list, _, _ = strings.Cut(list, "\n\n")
	for _, l := range strings.Split(list, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == sub {
			return true
		}
	}
	return false
}

// logicalLines joins lines continued with a trailing backslash.
func logicalLines(body string) []string {
	var out []string
	var cur strings.Builder
	for _, l := range strings.Split(body, "\n") {
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(l)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

type paragraph struct {
	line int
	text string
}

// paragraphs groups prose lines into paragraphs (blank-line separated),
// joined with spaces, so a code span broken over two lines is whole.
func paragraphs(prose []string) []paragraph {
	var out []paragraph
	var cur []string
	start := 0
	flush := func() {
		if len(cur) > 0 {
			out = append(out, paragraph{start, strings.Join(cur, " ")})
		}
		cur = nil
	}
	for i, l := range prose {
		if strings.TrimSpace(l) == "" {
			flush()
			continue
		}
		if len(cur) == 0 {
			start = i + 1
		}
		cur = append(cur, l)
	}
	flush()
	return out
}
