package packaging

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Instruction is one Dockerfile instruction, continuation lines joined.
type Instruction struct {
	Cmd   string   // the keyword, upper case: FROM, RUN, COPY, ...
	Flags []string // leading --name=value options (FROM --platform, COPY --from, ...)
	Args  string   // the rest, trimmed
	// Exec is the JSON array of the exec form (ENTRYPOINT ["/keyless"]);
	// nil for the shell form.
	Exec []string
	Line int // 1-based line of the keyword
}

// Flag returns the value of --name=value, and whether it was given.
func (in Instruction) Flag(name string) (string, bool) {
	for _, f := range in.Flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v, true
		}
		if f == "--"+name {
			return "", true
		}
	}
	return "", false
}

// Stage is one FROM and the instructions up to the next.
type Stage struct {
	Image        string // as written after FROM (tag and digest included)
	Name         string // AS name, "" when none
	From         Instruction
	Instructions []Instruction
}

// Find returns the stage's instructions with keyword cmd.
func (s Stage) Find(cmd string) []Instruction {
	var out []Instruction
	for _, in := range s.Instructions {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// knownInstructions are the Dockerfile keywords (Dockerfile reference).
var knownInstructions = map[string]bool{
	"ADD": true, "ARG": true, "CMD": true, "COPY": true, "ENTRYPOINT": true, "ENV": true, "EXPOSE": true,
	"FROM": true, "HEALTHCHECK": true, "LABEL": true, "MAINTAINER": true, "ONBUILD": true, "RUN": true,
	"SHELL": true, "STOPSIGNAL": true, "USER": true, "VOLUME": true, "WORKDIR": true,
}

// ParseDockerfile reads a Dockerfile the way BuildKit's frontend does for
// the subset keyless uses: comment lines (parser directives included) are
// dropped, a trailing backslash continues the line, the keyword is case
// insensitive, leading --flags are split off, and a JSON array argument is
// the exec form. It refuses what it does not model rather than guessing: a
// non-default escape directive, heredocs, unknown keywords, a dangling
// continuation.
func ParseDockerfile(src string) ([]Instruction, error) {
	var (
		out      []Instruction
		cur      strings.Builder
		start    int
		inDirect = true // parser directives only come first
	)
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			if inDirect && cur.Len() == 0 {
				if k, v, ok := strings.Cut(strings.TrimSpace(trimmed[1:]), "="); ok && strings.EqualFold(strings.TrimSpace(k), "escape") && strings.TrimSpace(v) != `\` {
					return nil, fmt.Errorf("line %d: escape directive %q is not supported", i+1, strings.TrimSpace(v))
				}
			}
			continue // comments vanish, inside continuations too
		}
		if trimmed == "" {
			inDirect = false
			continue
		}
		inDirect = false
		if cur.Len() == 0 {
			start = i + 1
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body)
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(trimmed)
		in, err := parseInstruction(cur.String(), start)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
		cur.Reset()
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("line %d: the last instruction ends in a continuation", start)
	}
	return out, nil
}

func parseInstruction(text string, line int) (Instruction, error) {
	kw, rest, _ := strings.Cut(text, " ")
	in := Instruction{Cmd: strings.ToUpper(kw), Line: line}
	if !knownInstructions[in.Cmd] {
		return in, fmt.Errorf("line %d: unknown instruction %q", line, kw)
	}
	rest = strings.TrimSpace(rest)
	for strings.HasPrefix(rest, "--") {
		flag, after, _ := strings.Cut(rest, " ")
		in.Flags = append(in.Flags, flag)
		rest = strings.TrimSpace(after)
	}
	if strings.Contains(rest, "<<") && (in.Cmd == "RUN" || in.Cmd == "COPY" || in.Cmd == "ADD") {
		return in, fmt.Errorf("line %d: heredocs are not supported", line)
	}
	in.Args = rest
	if strings.HasPrefix(rest, "[") {
		var exec []string
		if err := json.Unmarshal([]byte(rest), &exec); err == nil {
			in.Exec = exec
		} else if in.Cmd == "ENTRYPOINT" || in.Cmd == "CMD" {
			// Docker silently falls back to the shell form here, which a
			// shell-less image cannot run: refuse.
			return in, fmt.Errorf("line %d: %s looks like the exec form but is not a JSON array: %v", line, in.Cmd, err)
		}
	}
	return in, nil
}

// Stages groups instructions by FROM. Instructions before the first FROM
// may only be ARG.
func Stages(ins []Instruction) ([]Stage, error) {
	var stages []Stage
	for _, in := range ins {
		if in.Cmd == "FROM" {
			fields := strings.Fields(in.Args)
			st := Stage{From: in}
			switch {
			case len(fields) == 0:
				return nil, fmt.Errorf("line %d: FROM without an image", in.Line)
			case len(fields) == 1:
			case len(fields) == 3 && strings.EqualFold(fields[1], "AS"):
				st.Name = fields[2]
			default:
				return nil, fmt.Errorf("line %d: FROM wants IMAGE [AS NAME], got %q", in.Line, in.Args)
			}
			st.Image = fields[0]
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.Cmd != "ARG" {
				return nil, fmt.Errorf("line %d: %s before the first FROM", in.Line, in.Cmd)
			}
			continue
		}
		stages[len(stages)-1].Instructions = append(stages[len(stages)-1].Instructions, in)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return stages, nil
}
