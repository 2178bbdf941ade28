package cmalloc

import "testing"

func TestEnvSet(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"GOGC": "100"}, false},
		{map[string]string{"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, true},
		{map[string]string{"MALLOC_MMAP_THRESHOLD_": "131072"}, true},
		{map[string]string{"MALLOC_TRIM_THRESHOLD_": "0"}, true},
		{map[string]string{"MALLOC_ARENA_MAX": "2"}, true},
	}
	for _, c := range cases {
		if got := EnvSet(func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("EnvSet(%v) = %v, want %v", c.env, got, c.want)
		}
	}
}
