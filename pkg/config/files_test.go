package config

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// TestShippedConfigs parses every configuration the project ships.
func TestShippedConfigs(t *testing.T) {
	files, err := filepath.Glob("../../testdata/seeds/*/*.toml")
	variants, _ := filepath.Glob("../../testdata/seeds/*/*/*.toml") // a section's variant, in a subdirectory
	files = append(files, variants...)
	if err != nil || len(files) < 5 {
		t.Fatalf("seed configs: %v (%d found)", err, len(files))
	}
	examples, _ := filepath.Glob("../../testdata/examples/*.toml")
	if len(examples) == 0 {
		t.Fatal("no example configs in testdata/examples")
	}
	files = append(files, examples...)
	files = append(files, "../../testdata/reference.toml", "../../packaging/tunneld.toml")
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), func(t *testing.T) {
			if _, err := os.Stat(f); os.IsNotExist(err) && filepath.Base(f) == "tunneld.toml" {
				t.Skip("no packaged default config yet")
			}
			if _, err := Load(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestReferenceDocumentsEveryOption checks that reference.toml mentions
// every option the loader knows, set or commented out.
func TestReferenceDocumentsEveryOption(t *testing.T) {
	b, err := os.ReadFile("../../testdata/reference.toml")
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#? ?([a-z_0-9]+) = `).FindAllStringSubmatch(string(b), -1) {
		set[m[1]] = true
	}
	known := slices.Concat(globalKeys, tunnelKeys, routeKeys, ruleKeys, forwardKeys, masqueradeKeys, redirectKeys)
	for _, k := range known {
		if !set[k] {
			t.Errorf("reference.toml does not document option %q", k)
		}
	}
}
