// Package config owns gouwsgi's configuration: the option table (every
// option gouwsgi knows, with its aliases, kind, default, documentation and
// whether gouwsgi implements it) and the reading of uWSGI-style
// configuration from ini files, command-line flags and UWSGI_* environment
// variables.
//
// Reading follows uWSGI (core/ini.c, core/config.c, core/uwsgi.c):
//
//  1. UWSGI_* environment variables, then the command line in order. `ini`
//     (flag, bare *.ini argument, or `ini =` line inside a file) is expanded
//     in place, and magic variables (%d, %n, %k, ...) are substituted in the
//     whole text of each file as it is read, relative to that file.
//     Config logic (if-env ... endif, for ... endfor) runs while reading.
//  2. Three passes over every value read, in order: $(ENV), then @(file),
//     then %(placeholder) with %( ) math.
//  3. Values are checked against the table: integers must parse, booleans
//     must be a boolean word, unsupported uWSGI options and unused unknown
//     keys become start-up notices (errors under `strict`).
//
// Where gouwsgi deliberately differs from uWSGI (underscore keys are read as
// options, unknown keys are reported), the option table says so and
// docs/options.md, generated from the table, lists it.
package config
