package spanmetrics

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDurableHelpers(t *testing.T) {
	root := t.TempDir()
	nested := filepath.Join(root, "spanmetrics", "t1")
	if err := mkdirAllSync(nested); err != nil {
		t.Fatalf("mkdirAllSync: %v", err)
	}
	if st, err := os.Stat(nested); err != nil || !st.IsDir() {
		t.Fatalf("directory not created: %v", err)
	}
	if err := mkdirAllSync(nested); err != nil {
		t.Fatalf("mkdirAllSync of an existing directory: %v", err)
	}
	file := filepath.Join(root, "f")
	if err := os.WriteFile(file, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := mkdirAllSync(filepath.Join(file, "sub")); err == nil {
		t.Error("mkdirAllSync under a file succeeded")
	}
	if err := truncateSync(file, 4); err != nil {
		t.Fatalf("truncateSync: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "0123" {
		t.Errorf("after truncateSync: %q", b)
	}
	for _, c := range []struct {
		what string
		err  error
	}{
		{"sync a missing directory", syncDir(filepath.Join(root, "missing"))},
		{"truncate a missing file", truncateSync(filepath.Join(root, "missing"), 0)},
	} {
		if c.err == nil {
			t.Errorf("%s: no error", c.what)
		}
	}
}
