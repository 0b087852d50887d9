package config

import "testing"

// FuzzLoadBytes checks that loading never panics and that a Config comes
// back whatever the input.
func FuzzLoadBytes(f *testing.F) {
	for _, tc := range snippetCases {
		f.Add([]byte(tc.conf))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, diags := LoadBytes("fuzz.conf", data, testEnv())
		if cfg == nil {
			t.Fatalf("nil config:\n%s", diags)
		}
		_ = cfg.Summary()
	})
}
