package config

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

type yamlDuration time.Duration

// UnmarshalYAML reads a Go duration string such as "30s".
func (d *yamlDuration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 30s or 5m", n.Line, s)
	}
	*d = yamlDuration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d yamlDuration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }
