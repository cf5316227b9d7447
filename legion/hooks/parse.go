package hooks

import (
	"fmt"
	"strings"

	"github.com/gouwsgi/gouwsgi/legion/vip"
)

// Phase names a legion event that hooks attach to; the option that declares
// a hook is "legion-" followed by the phase.
type Phase string

// The phases, as uWSGI names them.
const (
	PhaseSetup      Phase = "setup"       // the legion subsystem starts (clean up leftovers here)
	PhaseJoin       Phase = "join"        // this node reached quorum for the first time
	PhaseLord       Phase = "lord"        // this node became lord
	PhaseUnlord     Phase = "unlord"      // this node stopped being lord
	PhaseDeath      Phase = "death"       // this node is shutting down
	PhaseNodeJoined Phase = "node-joined" // another member joined the legion
	PhaseNodeLeft   Phase = "node-left"   // another member left or died
)

// Phases lists every phase in the order of their life cycle.
var Phases = []Phase{PhaseSetup, PhaseJoin, PhaseLord, PhaseUnlord, PhaseDeath, PhaseNodeJoined, PhaseNodeLeft}

// Option is the configuration option declaring hooks of this phase.
func (p Phase) Option() string { return "legion-" + string(p) }

// PhaseForOption maps an option name such as "legion-lord" to its phase.
func PhaseForOption(option string) (Phase, bool) {
	for _, p := range Phases {
		if p.Option() == option {
			return p, true
		}
	}
	return "", false
}

// Kind is the type of a hook action, the word before the first colon.
type Kind string

// The action kinds.
const (
	KindCmd   Kind = "cmd"   // run through the shell and wait; non-zero exit is a failure
	KindExec  Kind = "exec"  // alias of cmd, as in uWSGI
	KindLog   Kind = "log"   // write the text to the log
	KindAlarm Kind = "alarm" // raise an alarm: "alarm:<name> <message>"
	KindVIP   Kind = "vip"   // own a virtual IP: "vip:<addr>[/<len>][,dev=<iface>]"
)

// Action is one parsed hook action.
type Action struct {
	Kind Kind
	// Arg is the text after "<kind>:" as written.
	Arg string
	// AlarmName and AlarmMsg are set for alarm actions.
	AlarmName, AlarmMsg string
	// VIP is set for vip actions.
	VIP vip.Spec
}

// String is the action as written in the configuration.
func (a Action) String() string { return string(a.Kind) + ":" + a.Arg }

// ParseAction parses "<kind>:<arg>".
func ParseAction(s string) (Action, error) {
	s = strings.TrimSpace(s)
	kind, arg, ok := strings.Cut(s, ":")
	if !ok {
		return Action{}, fmt.Errorf("hook action %q: want <kind>:<argument> (kinds: cmd, exec, log, alarm, vip)", s)
	}
	a := Action{Kind: Kind(kind), Arg: arg}
	switch a.Kind {
	case KindCmd, KindExec:
		if strings.TrimSpace(arg) == "" {
			return Action{}, fmt.Errorf("hook action %q: empty command", s)
		}
	case KindLog:
	case KindAlarm:
		name, msg, _ := strings.Cut(strings.TrimSpace(arg), " ")
		if name == "" {
			return Action{}, fmt.Errorf("hook action %q: want alarm:<name> <message>", s)
		}
		a.AlarmName, a.AlarmMsg = name, strings.TrimSpace(msg)
	case KindVIP:
		spec, err := vip.ParseSpec(arg)
		if err != nil {
			return Action{}, fmt.Errorf("hook action %q: %w", s, err)
		}
		a.VIP = spec
	case "signal":
		return Action{}, fmt.Errorf("hook action %q: uWSGI signals are not supported; use cmd: to run kill or a script", s)
	default:
		return Action{}, fmt.Errorf("hook action %q: unknown kind %q (kinds: cmd, exec, log, alarm, vip)", s, kind)
	}
	return a, nil
}

// Hook is one declared hook: run Action when Legion goes through Phase.
type Hook struct {
	Legion string
	Phase  Phase
	Action Action
}

// String is the hook in ini spelling.
func (h Hook) String() string {
	return fmt.Sprintf("%s = %s %s", h.Phase.Option(), h.Legion, h.Action)
}

// vipPhases are where a vip action means something: claim on lord; release
// on unlord and death; remove a stale copy on setup.
var vipPhases = map[Phase]bool{PhaseSetup: true, PhaseLord: true, PhaseUnlord: true, PhaseDeath: true}

// ParseHook parses the value of a hook option, "<legion> <action>", for phase.
func ParseHook(phase Phase, value string) (Hook, error) {
	if !phaseKnown(phase) {
		return Hook{}, fmt.Errorf("hook phase %q unknown", phase)
	}
	legion, action, _ := strings.Cut(strings.TrimSpace(value), " ")
	if legion == "" {
		return Hook{}, fmt.Errorf("%s: empty value, want <legion> <action>", phase.Option())
	}
	if strings.TrimSpace(action) == "" {
		return Hook{}, fmt.Errorf("%s = %s: missing action, want <legion> <action>", phase.Option(), value)
	}
	a, err := ParseAction(action)
	if err != nil {
		return Hook{}, fmt.Errorf("%s = %s: %w", phase.Option(), value, err)
	}
	if a.Kind == KindVIP && !vipPhases[phase] {
		return Hook{}, fmt.Errorf("%s = %s: vip actions belong in legion-lord (claim), legion-unlord or legion-death (release) and legion-setup (stale cleanup)", phase.Option(), value)
	}
	return Hook{Legion: legion, Phase: phase, Action: a}, nil
}

// ParseOption parses one hook option line, for example option "legion-lord"
// and value "web cmd:/usr/local/bin/became-lord".
func ParseOption(option, value string) (Hook, error) {
	phase, ok := PhaseForOption(option)
	if !ok {
		return Hook{}, fmt.Errorf("option %q is not a legion hook (hooks: %s)", option, phaseOptions())
	}
	return ParseHook(phase, value)
}

func phaseKnown(p Phase) bool {
	_, ok := PhaseForOption(p.Option())
	return ok
}

func phaseOptions() string {
	s := make([]string, len(Phases))
	for i, p := range Phases {
		s[i] = p.Option()
	}
	return strings.Join(s, ", ")
}
