package daemon

import (
	"time"

	"github.com/tunneld/tunneld/pkg/desired"
)

// Facts is what the running daemon knows that the kernel does not say:
// served to `tunneld status` over the status socket.
type Facts struct {
	Started      time.Time
	LastReload   time.Time `json:",omitzero"`
	LastConverge time.Time
	Converges    int
	LastError    string    `json:",omitempty"`
	LastErrorAt  time.Time `json:",omitzero"`
	// Tunnels are the statuses of the last convergence.
	Tunnels []desired.TunnelStatus
	Notes   []string `json:",omitempty"`
	// LastChange is when each tunnel's link was last changed.
	LastChange map[string]string `json:",omitempty"`
	// Held are objects whose repairs are held back.
	Held []string `json:",omitempty"`
	// Resolved are the current DNS answers of the peers given by name.
	Resolved map[string][]string `json:",omitempty"`
	// Hooks are the last run of each tunnel's hook.
	Hooks map[string]HookRun `json:",omitempty"`
}

// Facts returns a copy of the current facts.
func (dm *Daemon) Facts() Facts {
	dm.mu.Lock()
	defer dm.mu.Unlock()
	f := dm.facts
	if f.Tunnels == nil {
		// [] in the JSON, before the first convergence and without
		// tunnels, as for a list: not null.
		f.Tunnels = []desired.TunnelStatus{}
	}
	f.Resolved = map[string][]string{}
	for n, st := range dm.names {
		for _, a := range st.addrs {
			f.Resolved[n] = append(f.Resolved[n], a.String())
		}
	}
	return f
}

func (dm *Daemon) setError(err error) {
	dm.mu.Lock()
	defer dm.mu.Unlock()
	dm.facts.LastError = err.Error()
	dm.facts.LastErrorAt = dm.d.Now()
}
