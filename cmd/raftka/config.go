package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/raftka/raftka/broker"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// startConfig is what `raftka start` runs with: the broker's Config and the
// command's logging settings. A YAML file may set any of them; its keys are
// the yaml tags, which are also the names of the flags.
type startConfig struct {
	broker.Config `yaml:",inline"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log-level"`
	// LogFormat is text (logfmt) or json.
	LogFormat string `yaml:"log-format"`
}

func defaultStartConfig() startConfig {
	return startConfig{Config: broker.DefaultConfig(), LogLevel: "info", LogFormat: "text"}
}

// resolveStartConfig builds the configuration of `raftka start` in order of
// precedence: the defaults, then the YAML file (if any), then the flags set
// explicitly on the command line. flagValues holds the values the flags are
// bound to; only those fs marks as changed are used.
func resolveStartConfig(fs *pflag.FlagSet, flagValues *startConfig, file string) (startConfig, error) {
	cfg := defaultStartConfig()
	if file != "" {
		if err := loadConfigFile(file, &cfg); err != nil {
			return cfg, err
		}
	}
	fields := yamlFields(reflect.TypeOf(cfg))
	var err error
	fs.Visit(func(f *pflag.Flag) {
		idx, ok := fields[f.Name]
		if !ok {
			return // a flag of the command, not a setting (--config)
		}
		dst := reflect.ValueOf(&cfg).Elem().FieldByIndex(idx)
		src := reflect.ValueOf(flagValues).Elem().FieldByIndex(idx)
		if !src.Type().AssignableTo(dst.Type()) {
			err = fmt.Errorf("flag --%s: cannot set %s from %s", f.Name, dst.Type(), src.Type())
			return
		}
		dst.Set(src)
	})
	if err != nil {
		return cfg, err
	}
	if _, err := newLogger(io.Discard, cfg.LogLevel, cfg.LogFormat); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// loadConfigFile overlays the YAML file at path on cfg. Keys it does not
// set keep their values. An unknown key is an error that names the key and
// its line, so a typo does not silently leave a default in place.
func loadConfigFile(path string, cfg *startConfig) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // empty file: nothing to override
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s: line %d: want key: value pairs at the top level", path, m.Line)
	}
	fields := yamlFields(reflect.TypeOf(*cfg))
	var errs []error
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if _, ok := fields[k.Value]; !ok {
			errs = append(errs, fmt.Errorf("config file %s: line %d: unknown key %q%s", path, k.Line, k.Value, suggestKey(k.Value, fields)))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := m.Decode(cfg); err != nil {
		return fmt.Errorf("config file %s: %w", path, nameKeys(err, m))
	}
	return nil
}

// nameKeys adds the key to each "line N: cannot unmarshal ..." of a yaml
// type error, which names only the line and the Go type.
func nameKeys(err error, m *yaml.Node) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	keyAt := map[string]string{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		keyAt[fmt.Sprintf("line %d: ", m.Content[i+1].Line)] = m.Content[i].Value
	}
	msgs := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		msgs[i] = e
		for prefix, key := range keyAt {
			if rest, ok := strings.CutPrefix(e, prefix); ok {
				msgs[i] = fmt.Sprintf("%s%s: %s", prefix, key, rest)
				break
			}
		}
	}
	return errors.New(strings.Join(msgs, "; "))
}

// yamlFields maps each YAML key of struct type t, including those of inline
// embedded structs, to its field index.
func yamlFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if opts == "inline" && f.Type.Kind() == reflect.Struct {
			for k, idx := range yamlFields(f.Type) {
				out[k] = append([]int{i}, idx...)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = []int{i}
	}
	return out
}

// suggestKey returns a "did you mean" hint for a misspelt key, or a pointer
// to the list of keys.
func suggestKey(key string, fields map[string][]int) string {
	best, bestDist := "", 3 // suggest only close matches
	for k := range fields {
		if d := editDistance(key, k); d < bestDist || (d == bestDist && k < best) {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return " (known keys: " + strings.Join(keys, ", ") + ")"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// newLogger returns the logger of `raftka start`, writing to w.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(level) {
	case "debug", "info", "warn", "error":
		_ = lvl.UnmarshalText([]byte(level))
	default:
		return nil, fmt.Errorf("log-level must be debug, info, warn or error, got %q", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log-format must be text or json, got %q", format)
	}
}

// idList is a pflag.Value for a comma-separated list of broker ids.
type idList struct{ ids *[]uint64 }

func (l idList) Set(s string) error {
	var ids []uint64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, err := strconv.ParseUint(part, 10, 64)
		if err != nil || id == 0 {
			return fmt.Errorf("%q is not a broker id (a positive integer)", part)
		}
		ids = append(ids, id)
	}
	*l.ids = ids
	return nil
}

func (l idList) String() string {
	if l.ids == nil {
		return ""
	}
	parts := make([]string, len(*l.ids))
	for i, id := range *l.ids {
		parts[i] = strconv.FormatUint(id, 10)
	}
	return strings.Join(parts, ",")
}

func (l idList) Type() string { return "ids" }
