package config

//go:generate go test . -run TestOptionsDocUpToDate -update

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

const docIntro = `# gouwsgi options

<!-- Generated from node/config/options.go. Do not edit: run
     go test ./node/config -run TestOptionsDocUpToDate -update -->

gouwsgi reads uWSGI-style configuration. Every option below can be given as
an ini key (` + "`max-requests = 100`" + ` in the ` + "`[uwsgi]`" + ` section), a
command-line flag (` + "`--max-requests 100`, `--max-requests=100`, `-R 100`" + `) or an
environment variable (` + "`UWSGI_MAX_REQUESTS=100`" + `).

## How configuration is read

- Order: ` + "`UWSGI_*`" + ` environment variables first, then the command line in
  order. ` + "`--ini file.ini[:section]`" + ` (or a bare ` + "`file.ini`" + ` argument, or an
  ` + "`ini = ...`" + ` line inside a file) is read in place, so what follows it
  overrides it. For a single-valued option the last value wins; list options
  (kind ` + "`list`" + `) keep every value in order.
- Ini files: default section ` + "`[uwsgi]`" + `; ` + "`;`" + ` and ` + "`#`" + ` start comment lines;
  spaces around keys and values are stripped; a key alone on a line is a bare
  boolean (` + "`master`" + `); booleans also take true/false, yes/no, on/off, 1/0.
  A missing file or section is an error.
- Magic variables, replaced in the whole text of an ini file as it is read:
  ` + "`%d`" + ` the file's directory (with a trailing ` + "`/`" + `), ` + "`%p`" + ` its absolute path,
  ` + "`%s`" + ` its name, ` + "`%n`" + ` its name without extension, ` + "`%e`" + ` the extension,
  ` + "`%c`" + ` the containing directory's name, ` + "`%o`" + ` the file as given, ` + "`%x`" + ` the
  section asked for, ` + "`%0`" + `..` + "`%9`" + ` the components of the directory,
  ` + "`%i`" + ` its inode, ` + "`%j`" + ` a hash of its path; ` + "`%v`" + ` the working directory,
  ` + "`%h`" + ` the hostname, ` + "`%k`" + ` the number of CPUs, ` + "`%t`" + `/` + "`%T`" + ` the start time in
  seconds/microseconds, ` + "`%u`" + `/` + "`%U`" + ` the user id/name, ` + "`%g`" + `/` + "`%G`" + ` the
  group id/name, ` + "`%b`" + ` the gouwsgi binary, ` + "`%V`" + ` the version, ` + "`%%`" + ` a percent
  sign. Uppercase forms of the file variables are the same as lowercase
  (there is no Emperor). Any other ` + "`%`" + ` letter expands to nothing, as in uWSGI.
- Then three passes over every value: ` + "`$(VAR)`" + ` is the environment variable
  (` + "`$(VAR:-default)`" + ` if unset or empty, ` + "`$(VAR-default)`" + ` if unset), then
  ` + "`@(path)`" + ` is the file's content without its final newline, then
  ` + "`%(name)`" + ` is the first value given for an option or placeholder.
- Placeholders: any key that is not an option (` + "`base = /srv/app`" + `), or
  ` + "`set-placeholder = name=value`" + `. ` + "`%( )`" + ` with spaces is math, evaluated
  left to right with no precedence over 64-bit integers: ` + "`processes = %(%k * 4)`" + `.
  Operators ` + "`+ - * /`" + ` (division by zero gives 0), ` + "`++`" + ` and ` + "`--`" + `; two operands
  with no operator between them are joined as strings. Spaces around
  operators are required.
- Config logic: ` + "`if-env`, `if-exists`, `if-file`, `if-dir`, `if-opt`, `if-hostname`" + ` (and
  their ` + "`-not-`" + ` forms) up to ` + "`endif`" + `; ` + "`for`, `for-glob`, `for-times`, `for-readline`" + `
  up to ` + "`endfor`" + `, with ` + "`%(_)`" + ` standing for the item.

## Where gouwsgi differs from uWSGI when reading

- A key spelled with underscores that names an option with dashes
  (` + "`cpu_affinity`" + `) is read as that option, with a start-up notice; uWSGI
  silently turns it into an unused placeholder.
- A key that is neither an option nor used as a ` + "`%(placeholder)`" + ` is reported
  at start-up; under ` + "`strict`" + ` it is an error. So is a uWSGI option gouwsgi
  does not implement (listed at the end).
- An unknown command-line flag is an error.
- In ` + "`%( )`" + ` math, a token that is neither a number, an operator nor a known
  option or placeholder is an error (uWSGI reads it as empty), and so is an
  expression ending in an operator.
- Values that do not fit the option (` + "`processes = four`" + `) are errors.
- Configuration that cannot be read is refused rather than ignored: xml, yaml
  and json files, ` + "`include`" + ` of anything but an ini file, ` + "`@(exec://...)`" + ` and
  uWSGI's other source schemes, and ` + "`if-plugin`" + ` blocks are errors.
- A ` + "`%`" + ` followed by a space, a line end or a non-ASCII byte is kept as it is
  (uWSGI drops both characters).
`

// WriteMarkdown writes the options reference (docs/options.md): how
// configuration is read, then every option with its aliases, kind, default,
// status, documentation and how gouwsgi differs from uWSGI, grouped by
// subject; options without effect and unsupported uWSGI options are
// summarised in sections of their own.
func WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p("%s", docIntro)

	var groups []string
	byGroup := map[string][]Option{}
	for _, o := range table {
		if o.Status == Unsupported {
			continue
		}
		if _, seen := byGroup[o.Group]; !seen {
			groups = append(groups, o.Group)
		}
		byGroup[o.Group] = append(byGroup[o.Group], o)
	}
	for _, g := range groups {
		p("\n## %s\n\n", g)
		p("| option | kind | default | description |\n|---|---|---|---|\n")
		for _, o := range byGroup[g] {
			desc := o.Doc
			if o.Status == NoEffect {
				desc = "**No effect in gouwsgi.** " + desc
			}
			if o.Differs != "" {
				desc += " *gouwsgi:* " + o.Differs
			}
			p("| %s | %s | %s | %s |\n", names(o), o.Kind, code(o.Default), cell(desc))
		}
	}

	p("\n## Options accepted without effect\n\n")
	p("gouwsgi accepts these uWSGI options so existing configurations run unchanged, and ignores them.\n\n")
	p("| option | why |\n|---|---|\n")
	for _, o := range table {
		if o.Status == NoEffect {
			p("| %s | %s |\n", names(o), cell(o.Differs))
		}
	}

	p("\n## uWSGI options gouwsgi does not support\n\n")
	p("Reading one of these logs `option X is a uWSGI option gouwsgi does not support; ignored`; under `strict` it is an error.\n\n")
	p("| option | kind | uWSGI meaning |\n|---|---|---|\n")
	for _, o := range table {
		if o.Status == Unsupported {
			desc := o.Doc
			if o.Differs != "" {
				desc += " *gouwsgi:* " + o.Differs
			}
			p("| %s | %s | %s |\n", names(o), o.Kind, cell(desc))
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write options reference: %w", err)
	}
	return nil
}

// names renders `name` (-x) followed by its aliases.
func names(o Option) string {
	s := "`" + o.Name + "`"
	if o.Short != 0 {
		s += " (`-" + string(o.Short) + "`)"
	}
	if len(o.Aliases) > 0 {
		s += "<br>alias " + "`" + strings.Join(o.Aliases, "`, `") + "`"
	}
	if o.Bare != "" && o.Kind != KindBool {
		s += "<br>bare: `" + o.Bare + "`"
	}
	return s
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + s + "`"
}

// cell escapes text for a markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
