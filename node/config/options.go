package config

import (
	"fmt"
	"strings"
)

// Kind says what values an option takes.
type Kind int

const (
	// KindBool is a flag: bare (`master`, `--master`) means true; a value
	// must be true/false/yes/no/on/off or an integer (0 = false).
	KindBool Kind = iota
	// KindInt is a decimal integer, checked when the configuration loads.
	KindInt
	// KindString is a single value; the last one read wins.
	KindString
	// KindList is repeatable: every value read is kept, in order.
	KindList
)

// String names the kind as the documentation shows it.
func (k Kind) String() string {
	switch k {
	case KindBool:
		return "bool"
	case KindInt:
		return "int"
	case KindString:
		return "string"
	case KindList:
		return "list"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Status says whether gouwsgi implements an option.
type Status int

const (
	// Supported options do what the documentation says.
	Supported Status = iota
	// NoEffect options are accepted silently and do nothing in gouwsgi,
	// usually because the thing they tune does not exist here (plugins,
	// the GIL switch, CPU pinning). The documentation lists them.
	NoEffect
	// Unsupported options are known uWSGI options gouwsgi does not
	// implement: reading one gives the notice "option X is a uWSGI option
	// gouwsgi does not support; ignored" (an error under `strict`).
	Unsupported
)

// String names the status as the documentation shows it.
func (s Status) String() string {
	switch s {
	case Supported:
		return "supported"
	case NoEffect:
		return "no effect"
	case Unsupported:
		return "unsupported"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Option is one row of the option table.
type Option struct {
	// Name is the canonical name: the ini key and the --long flag.
	Name string
	// Aliases are other names uWSGI accepts for the same option.
	Aliases []string
	// Short is the one-letter flag (-p), 0 if none.
	Short byte
	// Kind says what values the option takes.
	Kind Kind
	// Default is the value used when the option is not set ("" = none).
	Default string
	// Bare is the value an option gets when it appears without one (a bare
	// `chmod-socket` line means 666); "true" for every KindBool option.
	// A flag with a Bare value takes the next argument only if it is not a
	// flag or an ini file (and, for booleans, is a boolean word).
	Bare string
	// Doc is the one-paragraph documentation.
	Doc string
	// Status says whether gouwsgi implements the option.
	Status Status
	// Differs says how gouwsgi differs from uWSGI, "" if it does not.
	Differs string
	// Group is the documentation section the option is listed under.
	Group string

	// refuse makes reading an Unsupported option an error even without
	// strict: ignoring it would silently change what the rest of the
	// configuration means (a yaml file not read, an if-plugin block).
	refuse bool
}

// takesValue reports whether a command-line flag consumes the next
// argument as its value (getopt's required_argument).
func (o Option) takesValue() bool { return o.Kind != KindBool && o.Bare == "" }

// Documentation groups, in the order docs/options.md shows them.
const (
	groupConfig   = "Configuration files and placeholders"
	groupApp      = "Python application"
	groupProcs    = "Master and workers"
	groupSockets  = "Sockets and protocols"
	groupRecycle  = "Harakiri and worker recycling"
	groupCheaper  = "Cheaper (adaptive worker count)"
	groupLogging  = "Logging"
	groupStats    = "Stats and metrics"
	groupRouting  = "Internal routing"
	groupStatic   = "Static files"
	groupCache    = "Caching"
	groupAlarm    = "Alarms"
	groupLegion   = "Legion (cluster)"
	groupAdmin    = "Admin API"
	groupHooks    = "Hooks"
	groupControls = "Other uWSGI options"
)

const extension = "gouwsgi extension"

const refusedNote = "gouwsgi refuses a configuration using it rather than ignore it."

// opt starts a Supported option; the methods below refine it.
func opt(name string, kind Kind, def, doc string) Option {
	o := Option{Name: name, Kind: kind, Default: def, Doc: doc, Status: Supported}
	if kind == KindBool {
		o.Bare = "true"
	}
	return o
}

// unsupported starts an Unsupported option (doc is uWSGI's meaning).
func unsupported(name string, kind Kind, def, doc string) Option {
	o := opt(name, kind, def, doc)
	o.Status = Unsupported
	return o
}

func (o Option) alias(names ...string) Option { o.Aliases = names; return o }
func (o Option) short(c byte) Option          { o.Short = c; return o }
func (o Option) bare(v string) Option         { o.Bare = v; return o }
func (o Option) differs(s string) Option      { o.Differs = s; return o }
func (o Option) refused() Option              { o.refuse = true; o.Differs = refusedNote; return o }

// noEffect marks an option accepted without effect; why says why.
func (o Option) noEffect(why string) Option {
	o.Status = NoEffect
	o.Differs = why
	return o
}

func group(name string, opts ...Option) []Option {
	for i := range opts {
		opts[i].Group = name
	}
	return opts
}

// routeFamily builds one routing chain (route, response-route, ...): the
// plain option, its subject variants, -if/-if-not/-run/-label and, for the
// response-side chains, -status. implemented lists the suffixes gouwsgi
// implements; the rest are Unsupported.
func routeFamily(prefix, when string, implemented map[string]bool, withStatus bool) []Option {
	type variant struct{ suffix, doc string }
	variants := []variant{
		{"", "`<regexp> <action>:<args>` matched against PATH_INFO"},
		{"-host", "`<regexp> <action>:<args>` matched against HTTP_HOST"},
		{"-uri", "`<regexp> <action>:<args>` matched against REQUEST_URI"},
		{"-qs", "`<regexp> <action>:<args>` matched against QUERY_STRING"},
		{"-remote-addr", "`<regexp> <action>:<args>` matched against REMOTE_ADDR"},
		{"-user-agent", "`<regexp> <action>:<args>` matched against HTTP_USER_AGENT"},
		{"-remote-user", "`<regexp> <action>:<args>` matched against REMOTE_USER"},
		{"-referer", "`<regexp> <action>:<args>` matched against HTTP_REFERER"},
		{"-if", "`<cond>:<subject>;<arg> <action>:<args>`: run the action if the condition holds"},
		{"-if-not", "`<cond>:<subject>;<arg> <action>:<args>`: run the action if the condition fails"},
		{"-run", "`<action>:<args>`: run the action unconditionally"},
		{"-label", "`<name>`: a label `goto:` can jump to (forward only)"},
	}
	if withStatus {
		variants = append(variants, variant{"-status", "`<status> <action>:<args>` matched against the response status"})
	}
	out := make([]Option, 0, len(variants))
	for _, v := range variants {
		name := prefix + v.suffix
		doc := "Rule of the " + when + " chain: " + v.doc + "."
		if implemented[v.suffix] {
			out = append(out, opt(name, KindList, "", doc))
		} else {
			out = append(out, unsupported(name, KindList, "", doc))
		}
	}
	return out
}

// hookOptions lists uWSGI's hook-<phase> options and their exec-/call-
// shortcuts, none of which gouwsgi implements.
func hookOptions() []Option {
	phases := []string{"asap", "pre-jail", "post-jail", "in-jail", "as-root", "as-user", "as-user-atexit",
		"pre-app", "post-app", "post-fork", "accepting", "accepting1", "accepting-once", "accepting1-once",
		"master-start", "touch", "as-vassal", "as-emperor", "as-mule", "as-gateway"}
	shortcut := map[string]bool{"asap": true, "pre-jail": true, "post-jail": true, "in-jail": true,
		"as-root": true, "as-user": true, "as-user-atexit": true, "pre-app": true, "post-app": true,
		"as-vassal": true, "as-emperor": true}
	var out []Option
	for _, p := range phases {
		out = append(out, unsupported("hook-"+p, KindList, "", "Run `<action>:<arg>` hooks in the "+p+" phase."))
	}
	for _, p := range phases {
		if shortcut[p] {
			out = append(out,
				unsupported("exec-"+p, KindList, "", "Shortcut for `hook-"+p+" = exec:<cmd>`."),
				unsupported("call-"+p, KindList, "", "Shortcut for `hook-"+p+" = call:<function>`."))
		}
	}
	return out
}

// configLogic lists the config-logic options of uWSGI (§8 of the feature
// reference). They are handled while reading (logic.go).
func configLogic() []Option {
	const closes = "Ends the current config-logic block."
	return []Option{
		opt("if-env", KindString, "", "Apply the following lines up to `endif` only if the environment variable is set (`VAR`) or has a value (`VAR=value`); `%(_)` in them is the variable's value.").alias("ifenv"),
		opt("if-not-env", KindString, "", "Apply the following lines up to `endif` only if the environment variable is unset (or, with `VAR=value`, has another value)."),
		opt("if-exists", KindString, "", "Apply the following lines up to `endif` only if the path exists; `%(_)` is the path.").alias("ifexists"),
		opt("if-not-exists", KindString, "", "Apply the following lines up to `endif` only if the path does not exist."),
		opt("if-file", KindString, "", "Apply the following lines up to `endif` only if the path is a regular file."),
		opt("if-not-file", KindString, "", "Apply the following lines up to `endif` only if the path is not a regular file."),
		opt("if-dir", KindString, "", "Apply the following lines up to `endif` only if the path is a directory.").alias("ifdir", "if-directory"),
		opt("if-not-dir", KindString, "", "Apply the following lines up to `endif` only if the path is not a directory."),
		opt("if-opt", KindString, "", "Apply the following lines up to `endif` only if the option or placeholder is set (`name`) or has a value (`name=value`)."),
		opt("if-not-opt", KindString, "", "Apply the following lines up to `endif` only if the option or placeholder is unset (or has another value)."),
		opt("if-hostname", KindString, "", "Apply the following lines up to `endif` only on the named host."),
		opt("if-not-hostname", KindString, "", "Apply the following lines up to `endif` except on the named host."),
		opt("if-hostname-match", KindString, "", "Apply the following lines up to `endif` only if the hostname matches the regular expression."),
		opt("if-not-hostname-match", KindString, "", "Apply the following lines up to `endif` only if the hostname does not match the regular expression."),
		opt("if-reload", KindBool, "", "Apply the following lines up to `endif` only when re-executed by a reload.").differs("gouwsgi never re-executes itself on reload, so the block is always skipped."),
		opt("if-not-reload", KindBool, "", "Apply the following lines up to `endif` only on a fresh start.").differs("gouwsgi never re-executes itself on reload, so the block always applies."),
		unsupported("if-plugin", KindString, "", "Apply the following lines only if the plugin is loaded.").alias("ifplugin").refused(),
		unsupported("if-not-plugin", KindString, "", "Apply the following lines only if the plugin is not loaded.").refused(),
		opt("endif", KindString, "", closes).alias("end-if").bare("true"),
		opt("for", KindString, "", "Repeat the following lines up to `endfor` once per space-separated item, with `%(_)` set to the item."),
		opt("for-glob", KindString, "", "Repeat the following lines up to `endfor` once per path matching the glob, with `%(_)` set to the path."),
		opt("for-times", KindString, "", "Repeat the following lines up to `endfor` N times, with `%(_)` set to 1..N."),
		opt("for-readline", KindString, "", "Repeat the following lines up to `endfor` once per line of the file, with `%(_)` set to the line."),
		opt("endfor", KindString, "", closes).alias("end-for").bare("true"),
	}
}

var table = buildTable()

func buildTable() []Option {
	var t []Option
	add := func(opts []Option) { t = append(t, opts...) }

	add(group(groupConfig,
		opt("ini", KindList, "", "Load an ini file (`file.ini` or `file.ini:section`, default section `[uwsgi]`); expanded in place, so later lines override it. `ini = :section` loads another section of the last file read. A bare command-line argument ending in `.ini` means the same."),
		opt("strict", KindBool, "", "Make unknown keys that are not used as placeholders, and unsupported uWSGI options, fatal configuration errors.").
			differs("uWSGI's strict also rejects keys used as `%(placeholders)`; gouwsgi allows those, and also rejects unsupported uWSGI options."),
		opt("set-placeholder", KindList, "", "Define a placeholder `name=value` for `%(name)`; the name must not be an option. Allowed under `strict`.").alias("set-ph"),
		opt("set", KindList, "", "`name=value`: set the option `name`, or define a placeholder if `name` is not an option.").short('S'),
		opt("include", KindList, "", "Read a configuration file in place, like `ini`.").differs("uWSGI picks the format from the extension; gouwsgi reads only `.ini` files and refuses others."),
		unsupported("xml", KindList, "", "Load an xml configuration file.").alias("xmlconfig").short('x').refused(),
		unsupported("yaml", KindList, "", "Load a yaml configuration file.").alias("yml").short('y').refused(),
		unsupported("json", KindList, "", "Load a json configuration file.").alias("js").short('j').refused(),
		unsupported("config", KindList, "", "Load configuration through the pluggable loader system.").refused(),
		unsupported("inherit", KindList, "", "Use a configuration file as a template.").refused(),
		unsupported("declare-option", KindList, "", "Declare a custom option made of other options."),
		unsupported("declare-option2", KindList, "", "Declare a custom option (non-immediate)."),
		unsupported("resolve", KindList, "", "Put the result of a DNS query in a placeholder (`name=domain`)."),
		unsupported("get", KindList, "", "Print the value of an option and exit."),
		unsupported("fallback-config", KindString, "", "Re-execute with this configuration when the exit code is 1."),
	))
	add(group(groupConfig, configLogic()...))

	add(group(groupApp,
		opt("chdir", KindString, "", "Change to this directory before loading the application."),
		opt("module", KindString, "", "WSGI module to load, `package.module[:callable]` (e.g. `mysite.wsgi:application`).").alias("wsgi").short('w'),
		opt("wsgi-file", KindString, "", "Python file to load the WSGI callable from.").alias("file"),
		opt("callable", KindString, "application", "Name of the WSGI callable in the module or file."),
		opt("home", KindString, "", "Virtualenv (or Python prefix) the workers run in; the interpreter is `<home>/bin/python3` unless `python-bin` says otherwise.").alias("virtualenv", "venv", "pyhome").short('H'),
		opt("python-bin", KindString, "", "Path of the Python interpreter the workers run. Default: `<home>/bin/python3` when `home` is set, else `python3` on PATH.").differs(extension+": uWSGI embeds libpython instead of running an interpreter."),
		opt("pythonpath", KindList, "", "Directory added to sys.path in the workers.").alias("python-path", "pp"),
		opt("env", KindList, "", "`KEY=VALUE` put in the environment of the workers."),
		opt("need-app", KindBool, "", "Exit (code 22) if the application cannot be loaded instead of serving errors."),
		opt("lazy-apps", KindBool, "", "Load the application in each worker after it starts rather than once before forking.").
			differs("gouwsgi workers are separate Python processes that each load the application, as uWSGI does with lazy-apps."),
		opt("single-interpreter", KindBool, "", "Use a single Python interpreter per worker.").short('i').noEffect("gouwsgi workers always run a single interpreter."),
		opt("enable-threads", KindBool, "", "Enable the GIL and Python threads.").short('T').noEffect("Python threads are always enabled in gouwsgi workers."),
		opt("plugins", KindList, "", "Load uWSGI plugins.").alias("plugin").noEffect("gouwsgi has no plugins: the features it implements are built in."),
		opt("autoload", KindBool, "", "Load plugins automatically for unknown options.").noEffect("gouwsgi has no plugins."),
		unsupported("py-autoreload", KindInt, "", "Check Python modules' mtime every N seconds and reload when one changes (development only).").alias("python-autoreload", "py-auto-reload", "python-auto-reload"),
		unsupported("eval", KindString, "", "Evaluate Python code as the application."),
		unsupported("pyargv", KindString, "", "Set sys.argv for the application."),
		unsupported("import", KindList, "", "Import a Python module at start.").alias("pyimport", "py-import", "python-import"),
		unsupported("paste", KindString, "", "Load a paste.deploy configuration."),
		unsupported("optimize", KindInt, "", "Python optimisation level.").short('O'),
	))

	add(group(groupProcs,
		opt("master", KindBool, "", "Run a master process that supervises the workers (needed for harakiri, recycling, cheaper, alarms, legion and the cache sweeper).").short('M'),
		opt("processes", KindInt, "1", "Number of worker processes.").alias("workers").short('p'),
		opt("threads", KindInt, "1", "Threads per worker (requests a worker handles at once)."),
		opt("die-on-term", KindBool, "", "Make SIGTERM shut the server down instead of reloading it (uWSGI 2.0).").differs("SIGTERM and SIGINT always shut gouwsgi down gracefully, with or without die-on-term (uWSGI 2.1 meaning); SIGHUP reloads."),
		opt("master-fifo", KindList, "", "Path of a FIFO the master reads one-letter commands from (`r` reload, `q` graceful shutdown, `w` reload workers, ...)."),
		opt("pidfile", KindString, "", "Write the master's pid to this file."),
		opt("daemonize", KindString, "", "Detach from the terminal and log to this file.").short('d'),
		opt("procname", KindString, "", "Process title of the workers."),
		opt("procname-master", KindString, "", "Process title of the master."),
		opt("lazy", KindBool, "", "uWSGI: load apps after fork and make SIGHUP reload only the workers.").noEffect("gouwsgi's SIGHUP reloads workers only."),
		opt("thunder-lock", KindBool, "", "Serialise accept() across workers.").noEffect("gouwsgi's master accepts connections and hands requests to workers, so there is no thundering herd."),
		opt("cpu-affinity", KindInt, "", "Pin each worker to N CPU cores.").noEffect("gouwsgi does not pin workers to cores."),
		opt("no-orphans", KindBool, "", "Kill the workers if the master dies.").noEffect("Accepted for compatibility; gouwsgi has no such switch."),
		opt("offload-threads", KindInt, "", "Threads for offloaded transfers.").alias("offload-thread").noEffect("gouwsgi serves static files and cache hits from the node's own goroutines."),
		opt("vhost", KindBool, "", "Enable virtual hosting mode.").noEffect("gouwsgi loads one application per node."),
		unsupported("pidfile2", KindString, "", "Write the pidfile after privileges are dropped."),
		unsupported("daemonize2", KindString, "", "Daemonize after the application is loaded."),
		unsupported("uid", KindString, "", "Drop privileges to this user."),
		unsupported("gid", KindString, "", "Drop privileges to this group."),
		unsupported("procname-prefix", KindString, "", "Prefix every process title."),
		unsupported("procname-prefix-spaced", KindString, "", "Prefix every process title, followed by a space."),
		unsupported("procname-append", KindString, "", "Append to every process title."),
		unsupported("auto-procname", KindBool, "", "Give processes descriptive titles."),
		unsupported("exit-on-reload", KindBool, "", "Exit instead of reloading."),
		unsupported("cheap", KindBool, "", "Spawn the workers on the first request."),
		unsupported("idle", KindInt, "", "Go cheap (stop the workers) after N idle seconds."),
		unsupported("die-on-idle", KindBool, "", "Shut down when idle."),
	))

	add(group(groupSockets,
		opt("http", KindList, "", "Address (`[host]:port`) of an HTTP listener; `:9090` means every interface.").
			differs("uWSGI spawns a separate HTTP router process; gouwsgi serves HTTP in the node itself."),
		opt("http-socket", KindList, "", "Address of an HTTP listener (uWSGI: the workers speak HTTP themselves)."),
		opt("socket", KindList, "", "Address of a uwsgi-protocol listener (`host:port` or a unix socket path), for nginx `uwsgi_pass`.").alias("uwsgi-socket").short('s'),
		opt("https", KindList, "", "`addr,cert,key[,ciphers,ca]`: HTTPS listener with this certificate and key."),
		opt("chmod-socket", KindString, "", "Permissions of unix sockets, octal; a bare `chmod-socket` means 666.").alias("chmod").short('C').bare("666"),
		opt("listen", KindInt, "100", "Listen backlog of the sockets.").short('l'),
		opt("vacuum", KindBool, "", "Remove unix sockets and the pidfile on exit."),
		opt("so-keepalive", KindBool, "", "Enable TCP keepalive on accepted connections."),
		opt("buffer-size", KindInt, "4096", "Largest request header block (uwsgi vars) accepted, in bytes.").short('b'),
		opt("http-timeout", KindInt, "60", "Timeout in seconds of HTTP client connections."),
		opt("socket-timeout", KindInt, "4", "Timeout in seconds of socket reads and writes (also bounds remote cache calls).").short('z'),
		opt("post-buffering", KindInt, "0", "Read the whole request body before a worker sees it: up to this many bytes in memory, larger bodies in a temporary file (0 = stream the body to the worker as it arrives).").differs("gouwsgi also sets CONTENT_LENGTH for chunked uploads once the body is buffered, so Django reads them."),
		unsupported("https-socket", KindList, "", "HTTPS listener whose workers speak HTTPS."),
		unsupported("shared-socket", KindList, "", "Create a socket shared with gateways."),
		unsupported("http-keepalive", KindString, "", "HTTP keep-alive in the HTTP router.").bare("1"),
		unsupported("http-to", KindList, "", "Forward HTTP router requests to this uwsgi address."),
		unsupported("chown-socket", KindString, "", "Owner (`user[:group]`) of unix sockets."),
		unsupported("umask", KindString, "", "Process umask."),
		unsupported("reuse-port", KindBool, "", "Set SO_REUSEPORT on listeners."),
		unsupported("abstract-socket", KindBool, "", "Force unix sockets into the abstract namespace.").short('a'),
		unsupported("max-vars", KindInt, "", "Maximum number of uwsgi vars.").short('v'),
	))

	add(group(groupRecycle,
		opt("harakiri", KindInt, "0", "Kill a worker whose current request has run longer than this many seconds, answer the client with an error and respawn it (0 = off).").short('t'),
		opt("harakiri-verbose", KindBool, "", "Log the stuck worker's syscall and wait channel on harakiri."),
		opt("max-requests", KindInt, "0", "Recycle a worker after it has served this many requests (0 = never).").short('R'),
		opt("max-requests-delta", KindInt, "0", "Add (worker id - 1) * N to max-requests, so workers do not recycle together."),
		opt("max-worker-lifetime", KindInt, "0", "Recycle a worker after this many seconds (0 = never)."),
		opt("max-worker-lifetime-delta", KindInt, "0", "Add (worker id - 1) * N seconds to max-worker-lifetime."),
		opt("min-worker-lifetime", KindInt, "0", "max-requests and reload-on-rss do not recycle a worker younger than this many seconds.").differs("uWSGI defaults to 10 s (60 s in some 2.0 releases), which makes max-requests look broken in tests and small loads; gouwsgi defaults to 0."),
		opt("reload-on-rss", KindInt, "0", "Recycle a worker after a request if its RSS is above this many megabytes (0 = off)."),
		opt("worker-reload-mercy", KindInt, "60", "Seconds a recycled worker may take to finish before it is killed."),
		opt("reload-mercy", KindInt, "", "Seconds workers may take to finish on a reload or shutdown before they are killed (default: worker-reload-mercy)."),
		opt("touch-reload", KindList, "", "Reload gracefully when this file's mtime changes."),
		opt("touch-chain-reload", KindList, "", "Reload the workers one at a time when this file's mtime changes."),
		opt("memory-report", KindBool, "", "Prefix request log lines with the worker's address space and RSS.").short('m'),
		unsupported("harakiri-graceful-timeout", KindInt, "", "Send harakiri-graceful-signal first and wait this many seconds before killing."),
		unsupported("harakiri-graceful-signal", KindInt, "", "Signal sent for a graceful harakiri (SIGTERM)."),
		unsupported("harakiri-queue-threshold", KindInt, "", "Harakiri only when the listen queue is longer than N."),
		unsupported("harakiri-no-arh", KindBool, "", "Do not count after-request hooks in harakiri time."),
		unsupported("reload-on-as", KindInt, "", "Recycle a worker above this address space size in megabytes."),
		unsupported("reload-on-uss", KindInt, "", "Recycle a worker above this USS in megabytes (2.1)."),
		unsupported("reload-on-pss", KindInt, "", "Recycle a worker above this PSS in megabytes (2.1)."),
		unsupported("evil-reload-on-rss", KindInt, "", "Master kills a worker above this RSS in megabytes."),
		unsupported("evil-reload-on-as", KindInt, "", "Master kills a worker above this address space size in megabytes."),
		unsupported("touch-workers-reload", KindList, "", "Reload only the workers when this file is touched."),
	))

	add(group(groupCheaper,
		opt("cheaper", KindInt, "0", "Minimum number of running workers; enables the cheaper subsystem (must be below processes)."),
		opt("cheaper-initial", KindInt, "", "Workers started at boot (default: cheaper)."),
		opt("cheaper-step", KindInt, "1", "Workers spawned at a time when more are needed."),
		opt("cheaper-algo", KindString, "spare", "Algorithm deciding the worker count: `spare` (spawn when all are busy for cheaper-overload seconds), `backlog` (spawn when more than cheaper-overload requests wait for a worker) or `busyness` (spawn when the average busy share over cheaper-overload seconds is above 50%, stop one below 25%)."),
		opt("cheaper-overload", KindInt, "3", "The cheaper algorithm's threshold (seconds all busy for spare, queued connections for backlog)."),
		unsupported("cheaper-busyness-max", KindInt, "50", "busyness algorithm: upper busyness percentage."),
		unsupported("cheaper-busyness-min", KindInt, "25", "busyness algorithm: lower busyness percentage."),
		unsupported("cheaper-busyness-multiplier", KindInt, "", "busyness algorithm: cycles to wait before stopping a worker."),
		unsupported("cheaper-busyness-penalty", KindInt, "", "busyness algorithm: penalty for respawning too soon."),
		unsupported("cheaper-busyness-backlog-alert", KindInt, "", "busyness algorithm: spawn on this listen queue length."),
		unsupported("cheaper-busyness-backlog-step", KindInt, "", "busyness algorithm: workers spawned on a backlog alert."),
		unsupported("cheaper-busyness-backlog-multiplier", KindInt, "", "busyness algorithm: backlog cycle multiplier."),
		unsupported("cheaper-busyness-backlog-nonzero", KindInt, "", "busyness algorithm: spawn after N seconds of non-empty queue."),
		unsupported("cheaper-busyness-verbose", KindBool, "", "busyness algorithm: verbose logs."),
		unsupported("cheaper-idle", KindInt, "", "spare2 algorithm: idle seconds before stopping a worker (2.1)."),
		unsupported("cheaper-rss-limit-soft", KindInt, "", "Do not spawn workers above this total RSS."),
		unsupported("cheaper-rss-limit-hard", KindInt, "", "Stop workers above this total RSS."),
	))

	add(group(groupLogging,
		opt("disable-logging", KindBool, "", "Do not write the request log.").short('L'),
		opt("logformat", KindString, "", "Request log line format with uWSGI variables (`%(method) %(uri) %(status) %(msecs)` ...); default: uWSGI's request line.").alias("log-format"),
		opt("log-micros", KindBool, "", "Report request time in microseconds in the request log."),
		opt("logto", KindString, "", "Write the log to this file instead of stderr."),
		opt("log-truncate", KindBool, "", "Truncate the log file at start."),
		unsupported("logto2", KindString, "", "Log to this file after privileges are dropped."),
		unsupported("log-4xx", KindBool, "", "Log 4xx responses even with disable-logging."),
		unsupported("log-5xx", KindBool, "", "Log 5xx responses even with disable-logging."),
		unsupported("log-slow", KindInt, "", "Log requests slower than N ms even with disable-logging."),
		unsupported("log-big", KindInt, "", "Log responses bigger than N bytes even with disable-logging."),
		unsupported("log-date", KindString, "", "Prefix log lines with the date (optional strftime format).").alias("logdate").bare("1"),
		unsupported("log-master", KindBool, "", "Delegate logging to the master."),
		unsupported("log-maxsize", KindInt, "", "Rotate the log at this size."),
		unsupported("log-backupname", KindString, "", "Name of the rotated log."),
		unsupported("log-reopen", KindBool, "", "Reopen the log after a reload."),
		unsupported("log-x-forwarded-for", KindBool, "", "Log X-Forwarded-For as the client address."),
	))

	add(group(groupStats,
		opt("stats", KindString, "", "Address (`host:port` or unix socket path) of the stats server: each connection gets the stats JSON, then is closed.").alias("stats-server"),
		opt("stats-http", KindBool, "", "Prefix the stats JSON with HTTP response headers."),
		opt("metrics", KindString, "", "Address of a Prometheus `/metrics` HTTP listener.").differs(extension+"."),
		unsupported("stats-minified", KindBool, "", "Minify the stats JSON.").alias("stats-min"),
		unsupported("stats-no-cores", KindBool, "", "Leave per-core data out of the stats."),
		unsupported("stats-no-metrics", KindBool, "", "Leave metrics out of the stats."),
		unsupported("stats-push", KindList, "", "Push stats to a pusher plugin."),
	))

	supportedRoutes := map[string]bool{"": true, "-host": true, "-uri": true, "-qs": true, "-remote-addr": true,
		"-user-agent": true, "-if": true, "-if-not": true, "-run": true, "-label": true, "-status": true}
	add(group(groupRouting, routeFamily("route", "request", supportedRoutes, false)...))
	add(group(groupRouting, routeFamily("response-route", "response (after the headers are generated)", map[string]bool{
		"": true, "-if": true, "-if-not": true, "-run": true, "-status": true}, true)...))
	add(group(groupRouting, routeFamily("final-route", "final (after the response is sent)", map[string]bool{
		"": true, "-if": true, "-if-not": true, "-run": true, "-status": true}, true)...))
	add(group(groupRouting, routeFamily("error-route", "error (when a status is generated)", nil, true)...))
	add(group(groupRouting,
		unsupported("collect-header", KindList, "", "`<Header> <VAR>`: copy a response header into a request var."),
		unsupported("pull-header", KindList, "", "Like collect-header, also removing the header."),
	))

	add(group(groupStatic,
		opt("static-map", KindList, "", "`/mountpoint=/dir`: serve files under /dir for URLs under /mountpoint (prefix stripped)."),
		opt("static-map2", KindList, "", "`/mountpoint=/dir`: like static-map, but the full URL path is appended to /dir."),
		opt("static-index", KindList, "", "File served for a directory (e.g. `index.html`)."),
		opt("check-static", KindList, "", "Serve a file from this document root when it exists for the URL path.").alias("static-check"),
		opt("static-skip-ext", KindList, "", "Never serve static files with this extension."),
		unsupported("static-safe", KindList, "", "Allow static files outside the mapped directory from this path."),
		unsupported("static-expires", KindList, "", "Expires header for static files matching a regexp."),
		unsupported("static-gzip", KindList, "", "Serve pre-gzipped files matching a regexp."),
		unsupported("static-cache-paths", KindInt, "", "Cache resolved static paths for N seconds."),
	))

	add(group(groupCache,
		opt("cache2", KindList, "", "Create a cache: `name=N,items=N[,blocksize=N,hash=djb33x|murmur2,store=path,...]` (see ParseKV). With a legion, `replicate=1` makes the cache the same on every node (writes through Raft) and `linearizable=1` makes its reads linearizable; every node must declare the same replicated caches."),
		opt("cache", KindInt, "", "Legacy: create the cache `default` with N items."),
		opt("cache-blocksize", KindInt, "65536", "Legacy: block size of the `cache` cache."),
		opt("cache-store", KindString, "", "Legacy: persistence file of the `cache` cache."),
		opt("cache-store-sync", KindInt, "0", "Default msync period (master cycles) of cache store files."),
		opt("cache-expire-freq", KindInt, "3", "Seconds between runs of the expired-items sweeper."),
		unsupported("cache-no-expire", KindBool, "", "Legacy: no expiry sweeping."),
		unsupported("cache-report-freed-items", KindBool, "", "Log items freed by the sweeper."),
		unsupported("cache-udp-server", KindList, "", "Legacy: UDP address receiving cache updates."),
		unsupported("cache-udp-node", KindList, "", "Legacy: UDP address cache updates are sent to."),
		unsupported("cache-sync", KindString, "", "Legacy: copy the whole cache from this node at start."),
		unsupported("cache-use-last-modified", KindBool, "", "Legacy: keep last-modified times."),
		unsupported("add-cache-item", KindList, "", "`[cache ]KEY=VALUE` stored at start."),
		unsupported("load-file-in-cache", KindList, "", "Store a file's content at start (key = path)."),
		unsupported("load-file-in-cache-gzip", KindList, "", "Store a file's gzipped content at start."),
	))

	add(group(groupAlarm,
		opt("alarm", KindList, "", "Define an alarm: `<name> <action>:<args>` (`cmd:<shell>`, `log:[prefix]`, `curl:<url>[;opt=val...]` webhook).").differs("`signal:`, `mule:`, `xmpp:`, `airbrake:` and smtp `curl:` urls are start-up errors; an alarm name defined twice runs both actions; failing actions are retried 3 times."),
		opt("alarm-freq", KindInt, "3", "Seconds within which an identical message of one alarm is not raised again."),
		opt("alarm-msg-size", KindInt, "8192", "Longest alarm message; longer ones are truncated with a marker.").differs("uWSGI drops longer messages silently."),
		opt("log-alarm", KindList, "", "`<alarm>[,<alarm>...] <regexp>`: raise the alarms when a log line matches.").alias("alarm-log"),
		opt("not-log-alarm", KindList, "", "`<alarm>[,...] <regexp>`: a matching log line skips the log-alarm rules after this one.").alias("not-alarm-log"),
		opt("alarm-backlog", KindList, "", "Raise the alarm when a listen queue is full.").alias("backlog-alarm", "lq-alarm", "alarm-lq", "alarm-listen-queue", "listen-queue-alarm"),
		opt("alarm-segfault", KindList, "", "Raise the alarm (with the backtrace) when a worker dies of SIGSEGV.").alias("segfault-alarm"),
		opt("alarm-harakiri", KindList, "", "Raise the alarm when harakiri kills a worker.").differs(extension+": uWSGI has no harakiri trigger."),
		opt("alarm-cluster", KindList, "", "`<alarm>[,<alarm>...]`: raise the alarms on cluster events: this node became lord, a member is gone (dead or left), the raft quorum is lost.").differs(extension+": uWSGI has no cluster alarm. With a legion every alarm is recorded through Raft, so an incident seen on several nodes runs its action once for the cluster."),
		opt("alarm-fd", KindList, "", "`<alarm> <fd>[:<nbytes>] <message>`: raise the alarm when the file descriptor is readable."),
		opt("alarm-cheap", KindBool, "", "Run alarm actions from the alarm thread instead of inline.").differs("Accepted without effect: gouwsgi always matches log lines and runs actions off the log path."),
		unsupported("alarm-metric", KindList, "", "`key=<metric>,value=<threshold>[,alarm=..]`: raise an alarm on a metric threshold.").alias("metric-alarm"),
	))

	legion := func(name, doc string) Option { return opt(name, KindList, "", doc) }
	add(group(groupLegion,
		legion("legion", "Join a legion: `<name> <addr> <valor> <cipher>:<secret>`; the alive member with the highest valor is the lord.").
			differs("The lord is elected through gouwsgi's Raft cluster (memberlist + Raft, lease-fenced), not by uWSGI's UDP announces."),
		legion("legion-node", "`<name> <addr>`: a peer of the legion."),
		legion("legion-quorum", "`<name> <n>`: votes needed to elect a lord."),
		legion("legion-scroll", "`<name> <text>`: opaque data published with this node's membership."),
		opt("legion-freq", KindInt, "3", "Seconds between legion announces (health checks)."),
		opt("legion-tolerance", KindInt, "15", "Seconds after which a silent member is considered dead."),
		legion("legion-lord", "`<name> <action>:<arg>` run when this node becomes lord (e.g. `cmd:ip addr add ...`)."),
		legion("legion-unlord", "`<name> <action>:<arg>` run when this node stops being lord."),
		legion("legion-setup", "`<name> <action>:<arg>` run when the legion subsystem starts."),
		legion("legion-death", "`<name> <action>:<arg>` run when the node shuts down."),
		legion("legion-join", "`<name> <action>:<arg>` run the first time the legion reaches quorum."),
		legion("legion-node-joined", "`<name> <action>:<arg>` run when a member joins."),
		legion("legion-node-left", "`<name> <action>:<arg>` run when a member leaves."),
		opt("legion-data-dir", KindString, "", "Directory of the Raft log and snapshots.").differs(extension+"."),
		opt("legion-raft-addr", KindString, "", "Address Raft listens on and advertises.").differs(extension+"."),
		opt("legion-rpc-addr", KindString, "", "Address of the node-to-node gRPC listener (write forwarding).").differs(extension+"."),
		opt("legion-tls-cert", KindString, "", "Certificate presented on cluster connections.").differs(extension+"."),
		opt("legion-tls-key", KindString, "", "Private key of legion-tls-cert.").differs(extension+"."),
		opt("legion-tls-ca", KindString, "", "CA bundle that verifies cluster peers.").differs(extension+"."),
		unsupported("legion-mcast", KindList, "", "Like legion, also adding the address as a legion-node."),
		unsupported("legion-scroll-max-size", KindInt, "4096", "Largest scroll in bytes."),
		unsupported("legion-scroll-list-max-size", KindInt, "32768", "Largest concatenation of scrolls."),
		unsupported("legion-skew-tolerance", KindInt, "60", "Drop announces older than this many seconds."),
		unsupported("legion-death-on-lord-error", KindInt, "0", "Announce death for N seconds when a lord hook fails."),
		unsupported("legion-cron", KindList, "", "Cron task run only on the lord.").alias("cron-legion"),
		unsupported("unique-legion-cron", KindList, "", "Unique cron task run only on the lord.").alias("unique-cron-legion"),
		unsupported("legion-attach-daemon", KindList, "", "Daemon run only on the lord."),
		unsupported("legion-smart-attach-daemon", KindList, "", "Pidfile-managed daemon run only on the lord."),
		unsupported("legion-smart-attach-daemon2", KindList, "", "Pidfile-managed daemon run only on the lord (daemonizing)."),
	))

	add(group(groupAdmin,
		opt("admin", KindString, "", "Listen address of the admin gRPC API (`host:port`, `unix:/path` or `unix:///path`); empty means 127.0.0.1:7071 when that port is free (a warning, not an error, when another gouwsgi holds it). Anything off loopback needs TLS and a credential (token or client certificates).").differs(extension+"."),
		opt("admin-tls-cert", KindString, "", "Certificate of the admin API.").differs(extension+"."),
		opt("admin-tls-key", KindString, "", "Private key of admin-tls-cert.").differs(extension+"."),
		opt("admin-tls-ca", KindString, "", "CA bundle that verifies admin clients' certificates.").differs(extension+"."),
		opt("admin-token-file", KindString, "", "File holding the bearer token admin clients must present.").differs(extension+"."),
	))

	add(group(groupHooks, hookOptions()...))

	add(group(groupControls,
		unsupported("spooler", KindList, "", "Run a spooler on this directory.").short('Q'),
		unsupported("mule", KindList, "", "Add a mule process."),
		unsupported("cron", KindList, "", "Add a cron task."),
		unsupported("cron2", KindList, "", "Add a cron task (key=value syntax)."),
		unsupported("attach-daemon", KindList, "", "Run and supervise an external command."),
		unsupported("attach-daemon2", KindList, "", "Run and supervise an external command (key=value syntax)."),
		unsupported("smart-attach-daemon", KindList, "", "Supervise a pidfile-managed daemon."),
		unsupported("emperor", KindList, "", "Run the Emperor on this vassals directory."),
		unsupported("sharedarea", KindList, "", "Create a shared memory area.").short('A'),
		unsupported("mimefile", KindList, "", "Mime types file for static files.").alias("mime-file"),
		unsupported("check-cache", KindString, "", "Serve responses from the cache keyed by REQUEST_URI.").bare("default"),
		unsupported("enable-metrics", KindBool, "", "Enable the uWSGI metrics subsystem."),
		unsupported("reaper", KindBool, "", "Call waitpid() after each request.").short('r'),
		unsupported("cgi-mode", KindBool, "", "Force CGI mode for plugins supporting it.").short('c'),
	))
	return t
}

// byName maps every canonical name and alias to its row in table.
var byName = indexTable(table)

func indexTable(t []Option) map[string]int {
	m := make(map[string]int, 2*len(t))
	for i, o := range t {
		for _, n := range append([]string{o.Name}, o.Aliases...) {
			if _, dup := m[n]; dup {
				panic(fmt.Sprintf("config: option name %q defined twice", n))
			}
			m[n] = i
		}
	}
	return m
}

// Options returns the option table in documentation order. The slice is a
// copy; changing it changes nothing.
func Options() []Option {
	out := make([]Option, len(table))
	for i, o := range table {
		o.Aliases = append([]string(nil), o.Aliases...)
		out[i] = o
	}
	return out
}

// Lookup finds an option by canonical name or alias.
func Lookup(name string) (Option, bool) {
	i, ok := byName[name]
	if !ok {
		return Option{}, false
	}
	o := table[i]
	o.Aliases = append([]string(nil), o.Aliases...)
	return o, true
}

// lookupShort finds an option by its one-letter flag.
func lookupShort(c byte) (Option, bool) {
	for _, o := range table {
		if o.Short == c {
			return o, true
		}
	}
	return Option{}, false
}

// normalizeKey reads a key with underscores as the option it names with
// dashes (cpu_affinity -> cpu-affinity); ok is false if that is no option.
func normalizeKey(key string) (Option, bool) {
	if !strings.Contains(key, "_") {
		return Option{}, false
	}
	return Lookup(strings.ReplaceAll(key, "_", "-"))
}
