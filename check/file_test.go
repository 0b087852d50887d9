package check

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "value")
	tests := []struct {
		name    string
		content string // "" removes the file
		cfg     FileConfig
		up      bool
		weight  int
		detail  string
	}{
		{"missing file counts as 0", "", FileConfig{Weight: 1, BaseWeight: 3}, true, -1, "does not exist"},
		{"weight 0, value 0 is up", "0\n", FileConfig{Weight: 0, BaseWeight: 3}, true, -1, "holds 0"},
		{"weight 0, value 1 is down", "1\n", FileConfig{Weight: 0, BaseWeight: 3}, false, -1, "weight 0: not 0 means down"},
		{"weight 0 ignores dynamic", "0", FileConfig{Weight: 0, Dynamic: true, BaseWeight: 3}, true, -1, "holds 0"},
		{"positive, not dynamic", "5", FileConfig{Weight: 2, BaseWeight: 3}, true, -1, "holds 5"},
		{"negative below the weight", "-2", FileConfig{Weight: 2, BaseWeight: 3}, false, -1, "weight 3-4 is negative"},
		{"negative within the weight", "-1", FileConfig{Weight: 2, BaseWeight: 3}, true, -1, "holds -1"},
		{"dynamic adds", "5", FileConfig{Weight: 2, Dynamic: true, BaseWeight: 3}, true, 13, "holds 5"},
		{"dynamic subtracts", "-1", FileConfig{Weight: 2, Dynamic: true, BaseWeight: 3}, true, 1, ""},
		{"dynamic reverse", "1", FileConfig{Weight: 2, Reverse: true, Dynamic: true, BaseWeight: 3}, true, 1, ""},
		{"reverse takes it down", "2", FileConfig{Weight: 2, Reverse: true, BaseWeight: 3}, false, -1, "is negative"},
		{"strtol reading", "0x10 junk", FileConfig{Weight: 1, Dynamic: true}, true, 16, ""},
		{"dynamic is capped", "2147483647", FileConfig{Weight: 2147483647, Dynamic: true, BaseWeight: 1}, true, 1<<31 - 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(path)
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			tt.cfg.Path, tt.cfg.Name = path, "tf"
			c, err := NewFile(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := c.Check(context.Background())
			if r.Up != tt.up || r.Weight != tt.weight || !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("Check() = up %v weight %d %q, want up %v weight %d containing %q", r.Up, r.Weight, r.Detail, tt.up, tt.weight, tt.detail)
			}
		})
	}
}

// A number out of the 32-bit range is ignored: the previous value stands,
// as keepalived does with a track_file.
func TestFileCheckOutOfRangeKeepsValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "value")
	c, err := NewFile(FileConfig{Name: "tf", Path: path, Weight: 0})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte("1"), 0o644)
	if r := c.Check(context.Background()); r.Up {
		t.Fatalf("value 1 with weight 0 is up: %q", r.Detail)
	}
	os.WriteFile(path, []byte("99999999999"), 0o644)
	if r := c.Check(context.Background()); r.Up || !strings.Contains(r.Detail, "out of range") {
		t.Errorf("out-of-range read: up %v %q, want still down, saying out of range", r.Up, r.Detail)
	}
	os.WriteFile(path, []byte("0"), 0o644)
	if r := c.Check(context.Background()); !r.Up {
		t.Errorf("value 0: down %q", r.Detail)
	}
	if c.String() != "FILE_CHECK tf" {
		t.Errorf("String() = %q", c.String())
	}
	if _, err := NewFile(FileConfig{Name: "x"}); err == nil {
		t.Error("a FILE_CHECK without a path was accepted")
	}
}
