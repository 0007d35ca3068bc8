package server

import (
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// masked replaces secret values in printed configurations.
const masked = "********"

// PrintConfig writes the effective configuration c as YAML that LoadFile
// reads back: the file's key names in declaration order, durations as 30s,
// 5m or 1h. A field tagged `secret:"true"` is printed masked; the secrets
// that only the environment can give (the master key, the bootstrap
// administrator's secret key) are listed after it as comments, masked.
func PrintConfig(w io.Writer, c Config, getenv func(string) string) error {
	doc := &yaml.Node{Kind: yaml.DocumentNode, HeadComment: "The effective keyless configuration: defaults, then --config, then KEYLESS_* variables, then flags.",
		Content: []*yaml.Node{configNode(reflect.ValueOf(c), "", false)}}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("print config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("print config: %w", err)
	}
	b.WriteString("# Set only through the environment:\n")
	for _, e := range envOnlySettings(c, getenv) {
		fmt.Fprintf(&b, "#   %s: %s\n", e[0], e[1])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// envOnlySettings describes the settings that are not configuration keys.
func envOnlySettings(c Config, getenv func(string) string) [][2]string {
	master := "not set: the master key is read from " + c.MasterKeyFile
	if c.MasterKeyFile == "" {
		master = "not set: the master key is read from " + MasterKeyPath(c.Data)
	}
	if getenv(masterKeyEnv) != "" {
		master = masked + " (set)"
	}
	adminID := getenv("KEYLESS_ADMIN_ACCESS_KEY_ID")
	adminSecret := "not set"
	if getenv("KEYLESS_ADMIN_SECRET_ACCESS_KEY") != "" {
		adminSecret = masked + " (set)"
	}
	if adminID == "" {
		adminID = "not set (no bootstrap administrator)"
	}
	return [][2]string{
		{masterKeyEnv, master},
		{"KEYLESS_ADMIN_ACCESS_KEY_ID", adminID},
		{"KEYLESS_ADMIN_SECRET_ACCESS_KEY", adminSecret},
	}
}

// zeroIsDefault lists the keys whose zero value stands for a built-in
// default (iam.Limits, issuer.Config), so that the printed 0 is not read
// as "none".
var zeroIsDefault = map[string]bool{
	"issuers[].profile": true, "issuers[].algorithm": true, "issuers[].org": true,
	"issuers[].token_lifetime": true, "issuers[].max_token_lifetime": true,
	"issuers[].rotation_period": true, "issuers[].jwks_max_age": true,
}

// configNode converts a configuration value at path (indexes written [])
// to a YAML node.
func configNode(v reflect.Value, path string, secret bool) *yaml.Node {
	if secret && !v.IsZero() {
		return scalarNode(masked, "!!str")
	}
	n := plainConfigNode(v, path)
	if n.Kind == yaml.ScalarNode && v.IsZero() && (zeroIsDefault[path] || strings.HasPrefix(path, "limits.")) {
		n.LineComment = "the built-in default"
	}
	return n
}

func plainConfigNode(v reflect.Value, path string) *yaml.Node {
	if v.Type() == durationType {
		return scalarNode(formatDuration(time.Duration(v.Int())), "")
	}
	switch v.Kind() {
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, f := range configFieldList(v.Type()) {
			n.Content = append(n.Content, scalarNode(f.Name, "!!str"),
				configNode(v.FieldByIndex(f.Field.Index), joinPath(path, f.Name), f.Field.Tag.Get("secret") == "true"))
		}
		return n
	case reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for i := range v.Len() {
			e := configNode(v.Index(i), path+"[]", false)
			if e.Kind == yaml.MappingNode {
				n.Style = 0
			}
			n.Content = append(n.Content, e)
		}
		return n
	case reflect.Pointer:
		if v.IsNil() {
			return scalarNode("null", "!!null")
		}
		return configNode(v.Elem(), path, false)
	case reflect.String:
		return scalarNode(v.String(), "!!str")
	case reflect.Bool:
		return scalarNode(strconv.FormatBool(v.Bool()), "")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return scalarNode(strconv.FormatInt(v.Int(), 10), "")
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return scalarNode(strconv.FormatUint(v.Uint(), 10), "")
	case reflect.Float32, reflect.Float64:
		return scalarNode(strconv.FormatFloat(v.Float(), 'g', -1, v.Type().Bits()), "")
	}
	return scalarNode(fmt.Sprint(v.Interface()), "!!str")
}

func scalarNode(value, tag string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

// formatDuration writes 5m0s as 5m and 1h0m0s as 1h.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
