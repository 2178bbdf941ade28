package main

import "testing"

func TestTuningForLeavesUserSettingsAlone(t *testing.T) {
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	cases := []struct {
		name  string
		env   map[string]string
		procs int
		want  runtimeTuning
	}{
		{"defaults on 2 cores", nil, 2, runtimeTuning{GCPercent: defaultGCPercent, MaxProcs: 3}},
		{"defaults on 7 cores", nil, 7, runtimeTuning{GCPercent: defaultGCPercent, MaxProcs: 8}},
		{"8 cores keep their processors", nil, 8, runtimeTuning{GCPercent: defaultGCPercent}},
		{"many cores keep their processors", nil, 32, runtimeTuning{GCPercent: defaultGCPercent}},
		{"GOGC set", map[string]string{"GOGC": "100"}, 2, runtimeTuning{MaxProcs: 3}},
		{"GOMAXPROCS set", map[string]string{"GOMAXPROCS": "2"}, 2, runtimeTuning{GCPercent: defaultGCPercent}},
		{"both set", map[string]string{"GOGC": "off", "GOMAXPROCS": "3"}, 3, runtimeTuning{}},
	}
	for _, c := range cases {
		if got := tuningFor(env(c.env), c.procs); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}
