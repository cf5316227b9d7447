package config

// Entry is one option value as read, after expansion.
type Entry struct {
	Name  string // canonical option name
	Value string
}

// Entries lists every option value in reading order, as Load read it
// (Set does not change it); values are normalised as Str returns them, and
// placeholders and unsupported options are left out. Options whose meaning
// depends on their interleaving (route, route-if, route-label...) need this
// order, which per-option lists lose.
func (c *Config) Entries() []Entry {
	out := make([]Entry, 0, len(c.entries.list))
	for _, e := range c.entries.list {
		if e.opt != nil && e.opt.Status != Unsupported {
			out = append(out, Entry{Name: e.opt.Name, Value: e.checked})
		}
	}
	return out
}
