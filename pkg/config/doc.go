// Package config reads tunneld's UCI-like TOML file and turns it into a
// validated, typed Config. Decoding is strict: unknown keys, wrong types and
// inconsistent values are errors, each reported once as
// FILE:LINE:COL: option.path: message, and all of them are collected in one
// pass. A Config that Load returns without error is safe to plan from.
package config
