package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/clew-dev/clew/internal/tlsconfig"
)

// TestDocumentedDefaults loads the YAML example of docs/configuration.md and
// checks that it is valid and equals the built-in defaults, so the page
// stays true.
func TestDocumentedDefaults(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i := strings.Index(s, "```yaml\n")
	j := strings.Index(s[i+8:], "```")
	if i < 0 || j < 0 {
		t.Fatal("no yaml block in docs/configuration.md")
	}
	path := filepath.Join(t.TempDir(), "clew.yaml")
	if err := os.WriteFile(path, []byte(s[i+8:i+8+j]), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("load documented config: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("documented config invalid: %v", err)
	}
	if def := Default(); !reflect.DeepEqual(cfg, def) {
		t.Fatalf("documented config differs from defaults:\n doc: %+v\n def: %+v", cfg, def)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown key", "data_dirr: x\n", "field data_dirr not found"},
		{"bad duration", "shutdown_timeout: soon\n", "not a duration"},
		{"bad type", "store:\n  max_head_spans: many\n", "cannot unmarshal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte(c.yaml), 0o644)
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load = %v, want error containing %q", err, c.want)
			}
		})
	}
}

// TestLoadTLS reads the tls section and checks which listener gets which.
func TestLoadTLS(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	y := "tls:\n  ingest:\n    cert_file: i.pem\n    key_file: i.key\n    client_ca_file: ca.pem\n    require_client_cert: true\n  query:\n    cert_file: q.pem\n    key_file: q.key\n"
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := tlsconfig.Server{CertFile: "i.pem", KeyFile: "i.key", ClientCAFile: "ca.pem", RequireClientCert: true}
	for _, l := range cfg.Listeners() {
		got := cfg.ListenerTLS(l.Key)
		w := want
		if l.Key == KeyHTTP {
			w = tlsconfig.Server{CertFile: "q.pem", KeyFile: "q.key"}
		}
		if got != w {
			t.Errorf("%s: %+v, want %+v", l.Key, got, w)
		}
	}
	if d := Default(); d.ListenerTLS(KeyOTLPGRPC).Enabled() || d.ListenerTLS(KeyHTTP).Enabled() {
		t.Error("TLS on by default")
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"bad addr", func(c *Config) { c.HTTPAddr = "3200" }, "http_addr (--http-addr)"},
		{"same addr", func(c *Config) { c.OTLPHTTPAddr = c.HTTPAddr }, "must differ"},
		{"bad level", func(c *Config) { c.LogLevel = "loud" }, "log_level"},
		{"bad sync", func(c *Config) { c.Store.WALSync = "sometimes" }, "wal_sync"},
		{"zero head", func(c *Config) { c.Store.MaxHeadSpans = 0 }, "max_head_spans"},
		{"inflight", func(c *Config) { c.Ingest.MaxInflightBytes = 1 }, "max_inflight_bytes"},
		{"tenant", func(c *Config) { c.Tenant = "a/b" }, "tenant"},
		{"tls cert without key", func(c *Config) { c.TLS.Ingest.CertFile = "config_test.go" }, "tls.ingest.cert_file is set but key_file is not"},
		{"tls unreadable", func(c *Config) { c.TLS.Query = tlsconfig.Server{CertFile: "missing.pem", KeyFile: "config_test.go"} }, `tls.query.cert_file "missing.pem" is not readable`},
		{"tls client CA alone", func(c *Config) { c.TLS.Ingest.ClientCAFile = "config_test.go" }, "tls.ingest.client_ca_file needs TLS"},
		{"tls query mTLS", func(c *Config) {
			c.TLS.Query = tlsconfig.Server{CertFile: "config_test.go", KeyFile: "config_test.go", ClientCAFile: "config_test.go"}
		}, "tls.query: client certificates"},
		{"admin listen loopback", func(c *Config) { c.AdminListen = "127.0.0.1:3201" }, ""},
		{"admin listen ipv6 loopback", func(c *Config) { c.AdminListen = "[::1]:3201" }, ""},
		{"admin listen localhost", func(c *Config) { c.AdminListen = "localhost:3201" }, ""},
		{"admin listen every interface", func(c *Config) { c.AdminListen = ":3201" }, "admin_listen_allow_remote"},
		{"admin listen remote", func(c *Config) { c.AdminListen = "10.0.0.1:3201" }, "is not a loopback address"},
		{"admin listen remote allowed", func(c *Config) { c.AdminListen, c.AdminListenAllowRemote = "0.0.0.0:3201", true }, ""},
		{"admin listen allow without address", func(c *Config) { c.AdminListenAllowRemote = true }, "admin_listen (--admin-listen) is empty"},
		{"admin listen not host:port", func(c *Config) { c.AdminListen = "3201" }, "admin_listen (--admin-listen) \"3201\" is not host:port"},
		{"admin listen on the query port", func(c *Config) { c.HTTPAddr, c.AdminListen = "127.0.0.1:3200", "127.0.0.1:3200" }, "must differ"},
		{"auth reload interval", func(c *Config) { c.Auth.ReloadInterval = -1 }, "reload_interval"},
		{"tls ingest", func(c *Config) {
			c.TLS.Ingest = tlsconfig.Server{CertFile: "config_test.go", KeyFile: "config_test.go", ClientCAFile: "config_test.go", RequireClientCert: true}
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			c.mod(&cfg)
			err := cfg.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want error containing %q", err, c.want)
			}
		})
	}
}

// TestListeners checks that each listener's YAML key is the key of the
// field holding its address, and its flag the key's flag spelling.
func TestListeners(t *testing.T) {
	cfg := Default()
	yamlAddr := map[string]string{}
	v := reflect.ValueOf(cfg)
	for i := range v.NumField() {
		if tag := v.Type().Field(i).Tag.Get("yaml"); strings.HasSuffix(tag, "_addr") {
			yamlAddr[tag] = v.Field(i).String()
		}
	}
	ls := cfg.Listeners()
	if len(ls) != len(yamlAddr) {
		t.Errorf("%d listeners, %d *_addr keys", len(ls), len(yamlAddr))
	}
	for _, l := range ls {
		addr, ok := yamlAddr[l.Key]
		if !ok || addr != l.Addr {
			t.Errorf("listener %s: key %s holds %q, listener says %q", l.Name, l.Key, addr, l.Addr)
		}
		if want := "--" + strings.ReplaceAll(strings.TrimSuffix(l.Key, "_addr"), "_", "-") + "-addr"; l.Flag != want {
			t.Errorf("listener %s: flag %s, want %s", l.Name, l.Flag, want)
		}
	}
}
