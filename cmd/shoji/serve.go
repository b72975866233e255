package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/shoji-rbi/shoji/broker"
)

const serveUsage = `Usage: shoji serve [--listen ADDR] [--data DIR] [--config FILE] [flags]

Runs the broker. Settings come from the defaults, then the config file (YAML;
unknown keys are an error), then SHOJI_* environment variables, then flags.

On first start with no administrator it prints a one-time set-up token for
/setup. With --demo it also serves a built-in demo site that the remote
browsers may open, and prints a demo clinician login.

Flags:
`

// runServe parses the serve flags and runs the broker until ctx ends.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, serveUsage)
		fs.PrintDefaults()
		printServeEnv(stderr)
	}
	def := broker.DefaultConfig()
	configFile := fs.String("config", os.Getenv("SHOJI_CONFIG"), "YAML config `file`")
	listen := fs.String("listen", "", "address to serve on (default "+def.Listen+")")
	data := fs.String("data", "", "data `directory` (default "+def.Data+")")
	publicURL := fs.String("public-url", "", "URL clinicians open; the viewer's Origin must match it")
	tlsCert := fs.String("tls-cert", "", "TLS certificate `file` (PEM)")
	tlsKey := fs.String("tls-key", "", "TLS private key `file` (PEM)")
	insecure := fs.Bool("insecure-http", false, "allow plain HTTP on a non-loopback address (only behind a TLS proxy)")
	chromium := fs.String("chromium", "", "Chromium binary (default "+def.Chromium+")")
	demo := fs.Bool("demo", false, "serve the built-in demo site and a demo clinician login")
	redis := fs.String("redis", "", "Redis `URL` for cluster state (not used by this release)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	if *redis != "" {
		return fmt.Errorf("serve: --redis: cluster mode is not in this release; run without it")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("serve: --log-level %q: want debug, info, warn or error", *logLevel)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg := def
	if *configFile != "" {
		if err := cfg.LoadConfigFile(*configFile); err != nil {
			return err
		}
	}
	if err := cfg.ApplyEnv(os.Getenv); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, apply := range map[string]func(){
		"listen":        func() { cfg.Listen = *listen },
		"data":          func() { cfg.Data = *data },
		"public-url":    func() { cfg.PublicURL = *publicURL },
		"tls-cert":      func() { cfg.TLSCert = *tlsCert },
		"tls-key":       func() { cfg.TLSKey = *tlsKey },
		"insecure-http": func() { cfg.InsecureHTTP = *insecure },
		"chromium":      func() { cfg.Chromium = *chromium },
		"demo":          func() { cfg.Demo = *demo },
	} {
		if set[name] {
			apply()
		}
	}

	srv, err := broker.New(ctx, cfg, broker.Options{Logger: log, Out: stdout})
	if err != nil {
		return err
	}
	if _, err := srv.Listen(); err != nil {
		_ = srv.Close()
		return err
	}
	if cfg.Demo {
		if err := announceDemo(srv, stdout); err != nil {
			_ = srv.Close()
			return err
		}
	}
	return srv.Run(ctx)
}

// printServeEnv lists the environment variables serve reads: SHOJI_CONFIG,
// and every SHOJI_* variable of broker.EnvVars with the config key it
// overrides.
func printServeEnv(w io.Writer) {
	fmt.Fprint(w, "\nEnvironment (each overrides the config file's key; a flag overrides both):\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tCONFIG KEY\tVALUE\tWHAT")
	fmt.Fprintln(tw, "  SHOJI_CONFIG\t-\tfile\tthe YAML config file, as --config")
	for _, e := range broker.EnvVars() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Name, e.Key, e.Kind, e.Help)
	}
	_ = tw.Flush()
}

// announceDemo creates or resets the demo clinician with a password made
// for this run, and prints how to log in.
func announceDemo(srv *broker.Server, stdout io.Writer) error {
	pw, err := srv.DemoLogin()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nshoji demo is running: open %s\n", strings.TrimSuffix(srv.Config().PublicURL, "/"))
	fmt.Fprintf(stdout, "Demo clinician login (this run only):  user %s  password %s\n\n", broker.DemoUser, pw)
	return nil
}
