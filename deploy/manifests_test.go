package deploy

// The tests in this file read the deployment files (the Kubernetes
// manifests, compose.yaml, the systemd unit, .dockerignore) and check them
// against what the shoji binary expects: that their configuration loads with
// the broker's strict loader, that ports, paths, probes, flags, environment
// variables and users agree with the binary and the image, and that every
// dependency the configuration names (clamd, the SIEM) is reachable. Each
// failure names the file, the key and the mismatch.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/shoji-rbi/shoji/broker"
	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/transfer/scan"
	"github.com/shoji-rbi/shoji/broker/transfer/scan/clamdtest"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// manifestProfilePath is the seccomp profile every deployment uses,
// relative to deploy/ (written by the container image's part of the work).
const manifestProfilePath = "seccomp/shoji-chromium.json"

// manifestFirstAdminArgs is the documented command that adds the first
// admin with the broker stopped (its arguments after the image's
// ENTRYPOINT, tini -- shoji).
const manifestFirstAdminArgs = "user add admin --role admin --password-stdin"

// Names in the manifests that the tests look up.
const (
	manifestNamespace   = "shoji"
	manifestConfigMap   = "shoji-config"
	manifestBrokerName  = "shoji"
	manifestBrokerCtr   = "broker"
	manifestInstallCtr  = "install-config"
	manifestClamdConfig = "clamd-config"
)

// ---------------------------------------------------------------------------
// The image (Dockerfile)

// manifestImage is what the tests need from the Dockerfile's final stage.
type manifestImage struct {
	User       string            // USER, "uid:gid"
	Entrypoint []string          // ENTRYPOINT in exec form
	Cmd        []string          // CMD in exec form
	Env        map[string]string // ENV
	Packages   []string          // packages named by apt-get install
}

// manifestReadImage parses ../Dockerfile's final stage.
func manifestReadImage(t *testing.T) manifestImage {
	t.Helper()
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	img, err := manifestParseDockerfile(string(data))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return img
}

// manifestParseDockerfile reads the instructions of the last stage.
func manifestParseDockerfile(text string) (manifestImage, error) {
	var lines []string
	var cur strings.Builder
	for _, l := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		if s := strings.TrimSpace(cur.String()); s != "" {
			lines = append(lines, s)
		}
		cur.Reset()
	}
	last := -1
	for i, l := range lines {
		if strings.EqualFold(strings.Fields(l)[0], "FROM") {
			last = i
		}
	}
	if last < 0 {
		return manifestImage{}, errors.New("no FROM")
	}
	img := manifestImage{Env: map[string]string{}}
	for _, l := range lines[last+1:] {
		word, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(word) {
		case "USER":
			img.User = rest
		case "ENTRYPOINT", "CMD":
			var v []string
			if err := json.Unmarshal([]byte(rest), &v); err != nil {
				return manifestImage{}, fmt.Errorf("%s %s: want the exec (JSON) form: %w", word, rest, err)
			}
			if strings.EqualFold(word, "ENTRYPOINT") {
				img.Entrypoint = v
			} else {
				img.Cmd = v
			}
		case "ENV":
			for _, f := range strings.Fields(rest) {
				if k, v, ok := strings.Cut(f, "="); ok {
					img.Env[k] = v
				}
			}
		case "RUN":
			for _, cmd := range strings.Split(rest, "&&") {
				f := strings.Fields(cmd)
				if i := slices.Index(f, "install"); i > 0 && f[i-1] == "apt-get" {
					for _, p := range f[i+1:] {
						if !strings.HasPrefix(p, "-") {
							img.Packages = append(img.Packages, p)
						}
					}
				}
			}
		}
	}
	return img, nil
}

// manifestIDs splits USER "uid:gid" into numbers.
func manifestIDs(t *testing.T, user string) (uid, gid int64) {
	t.Helper()
	u, g, ok := strings.Cut(user, ":")
	var err1, err2 error
	uid, err1 = strconv.ParseInt(u, 10, 64)
	gid, err2 = strconv.ParseInt(g, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("Dockerfile: USER %q: want numeric uid:gid", user)
	}
	return uid, gid
}

// ---------------------------------------------------------------------------
// The binary

// manifestBinary is the shoji binary as built by manifestBuild.
type manifestBinary struct {
	path string
	// valueFlags maps each `shoji serve` flag to whether it takes a value.
	valueFlags map[string]bool
}

// manifestBuild builds ./cmd/shoji into the test's temporary directory and
// reads `shoji serve --help` for its flags.
func manifestBuild(t *testing.T) manifestBinary {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shoji")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/shoji").CombinedOutput(); err != nil {
		t.Fatalf("go build ../cmd/shoji: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("shoji serve --help: %v\n%s", err, out)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)( \S+)?$`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = m[2] != ""
	}
	if len(flags) == 0 {
		t.Fatalf("shoji serve --help lists no flags:\n%s", out)
	}
	return manifestBinary{path: bin, valueFlags: flags}
}

// serveArgs checks args (those after the image's ENTRYPOINT or the binary:
// "serve", flags...) with the real binary's flag parser: `shoji serve ARGS
// --help` exits 0 only when every argument before --help parses. It returns
// the flags' values.
func (b manifestBinary) serveArgs(t *testing.T, where string, args []string) map[string]string {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("%s: the arguments %q do not start with serve", where, args)
	}
	cmd := exec.Command(b.path, append(slices.Clone(args), "--help")...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: `shoji %s` is not a valid flag set for the binary: %v\n%s", where, strings.Join(args, " "), err, manifestLastLines(out, 3))
	}
	vals := map[string]string{}
	for i := 1; i < len(args); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		takes, ok := b.valueFlags[name]
		if !ok {
			t.Fatalf("%s: flag %s is not one of shoji serve's", where, args[i])
		}
		if takes && !hasVal {
			i++
			val = args[i]
		}
		vals[name] = val
	}
	return vals
}

// knownEnv reports whether the binary reads the environment variable name:
// the broker's Config.ApplyEnv asks for it, or `shoji serve --help` shows a
// sentinel value of it as a flag default.
func (b manifestBinary) knownEnv(t *testing.T, name string) bool {
	t.Helper()
	asked := false
	cfg := broker.DefaultConfig()
	_ = cfg.ApplyEnv(func(k string) string {
		if k == name {
			asked = true
		}
		return ""
	})
	if asked {
		return true
	}
	const sentinel = "/manifest-test-sentinel"
	cmd := exec.Command(b.path, "serve", "--help")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), name + "=" + sentinel}
	out, _ := cmd.CombinedOutput()
	return bytes.Contains(out, []byte(sentinel))
}

// manifestLastLines returns the last n lines of out.
func manifestLastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// manifestLoadConfig loads text as the broker loads its config file: the
// defaults, the file with unknown keys refused, env, then Validate.
func manifestLoadConfig(t *testing.T, where string, text []byte, env map[string]string) broker.Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, text, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := broker.DefaultConfig()
	if err := cfg.LoadConfigFile(p); err != nil {
		t.Fatalf("%s: the broker refuses the config: %v", where, err)
	}
	if err := cfg.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatalf("%s: environment: %v", where, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: the broker refuses the config: %v", where, err)
	}
	return cfg
}

// manifestApplyFlags sets what `shoji serve` flags override.
func manifestApplyFlags(cfg *broker.Config, flags map[string]string) {
	for name, dst := range map[string]*string{
		"listen": &cfg.Listen, "data": &cfg.Data, "public-url": &cfg.PublicURL,
		"tls-cert": &cfg.TLSCert, "tls-key": &cfg.TLSKey, "chromium": &cfg.Chromium,
	} {
		if v, ok := flags[name]; ok {
			*dst = v
		}
	}
}

// manifestPort is the port of a host:port listen address.
func manifestPort(t *testing.T, where, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("%s: %q is not host:port", where, addr)
	}
	return n
}

// manifestNoBrowser is an isolation.Launcher that starts nothing: the
// in-process broker of these tests needs routes, not browsers.
type manifestNoBrowser struct{}

func (manifestNoBrowser) Launch(context.Context, isolation.LaunchOptions) (isolation.Browser, error) {
	return nil, errors.New("no browser in the manifest tests")
}

// manifestProbeStatus starts the real broker in-process with cfg (no
// browser, no network) and returns the status its handler gives GET path.
func manifestProbeStatus(t *testing.T, cfg broker.Config, paths ...string) map[string]int {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := broker.New(context.Background(), cfg, broker.Options{Logger: log, Out: io.Discard, Launcher: manifestNoBrowser{}})
	if err != nil {
		t.Fatalf("start the broker in-process with the manifest's config: %v", err)
	}
	defer srv.Close()
	got := map[string]int{}
	for _, p := range paths {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		got[p] = rec.Code
	}
	return got
}

// ---------------------------------------------------------------------------
// Kubernetes

// manifestObject is one Kubernetes object of the kustomization.
type manifestObject struct {
	File       string `yaml:"-"` // relative to deploy/
	Doc        int    `yaml:"-"` // document number in File, from 1
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec yaml.Node         `yaml:"spec"`
}

// where names the object for messages.
func (o *manifestObject) where() string {
	return fmt.Sprintf("%s (%s %s)", o.File, o.Kind, o.Metadata.Name)
}

// spec decodes the object's spec into v, failing the test with the file.
func (o *manifestObject) spec(t *testing.T, v any) {
	t.Helper()
	if err := o.Spec.Decode(v); err != nil {
		t.Fatalf("%s: spec: %v", o.where(), err)
	}
}

// manifestIntOrString is a port given as a number or a name.
type manifestIntOrString struct {
	Num  int
	Name string
}

// UnmarshalYAML reads a number or a name.
func (p *manifestIntOrString) UnmarshalYAML(n *yaml.Node) error {
	if v, err := strconv.Atoi(n.Value); err == nil {
		p.Num = v
		return nil
	}
	p.Name = n.Value
	return nil
}

type manifestSeccomp struct {
	Type             string `yaml:"type"`
	LocalhostProfile string `yaml:"localhostProfile"`
}

type manifestSecurity struct {
	RunAsNonRoot             *bool            `yaml:"runAsNonRoot"`
	RunAsUser                *int64           `yaml:"runAsUser"`
	RunAsGroup               *int64           `yaml:"runAsGroup"`
	FSGroup                  *int64           `yaml:"fsGroup"`
	FSGroupChangePolicy      string           `yaml:"fsGroupChangePolicy"`
	AllowPrivilegeEscalation *bool            `yaml:"allowPrivilegeEscalation"`
	ReadOnlyRootFilesystem   *bool            `yaml:"readOnlyRootFilesystem"`
	SeccompProfile           *manifestSeccomp `yaml:"seccompProfile"`
	Capabilities             struct {
		Drop []string `yaml:"drop"`
		Add  []string `yaml:"add"`
	} `yaml:"capabilities"`
}

type manifestProbe struct {
	HTTPGet *struct {
		Path   string              `yaml:"path"`
		Port   manifestIntOrString `yaml:"port"`
		Scheme string              `yaml:"scheme"`
	} `yaml:"httpGet"`
	TCPSocket *struct {
		Port manifestIntOrString `yaml:"port"`
	} `yaml:"tcpSocket"`
}

type manifestMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	ReadOnly  bool   `yaml:"readOnly"`
	SubPath   string `yaml:"subPath"`
}

type manifestContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	SecurityContext manifestSecurity `yaml:"securityContext"`
	StartupProbe    *manifestProbe   `yaml:"startupProbe"`
	LivenessProbe   *manifestProbe   `yaml:"livenessProbe"`
	ReadinessProbe  *manifestProbe   `yaml:"readinessProbe"`
	VolumeMounts    []manifestMount  `yaml:"volumeMounts"`
}

// port resolves a probe or Service port (number or name) to a number.
func (c *manifestContainer) port(p manifestIntOrString) int {
	if p.Name == "" {
		return p.Num
	}
	for _, cp := range c.Ports {
		if cp.Name == p.Name {
			return cp.ContainerPort
		}
	}
	return 0
}

// mountFor returns the mount that holds path (the longest mountPath that
// is path or a parent of it).
func (c *manifestContainer) mountFor(p string) (manifestMount, bool) {
	var best manifestMount
	found := false
	for _, m := range c.VolumeMounts {
		if manifestWithin(p, m.MountPath) && (!found || len(m.MountPath) > len(best.MountPath)) {
			best, found = m, true
		}
	}
	return best, found
}

// manifestWithin reports whether p is dir or below it.
func manifestWithin(p, dir string) bool {
	p, dir = path.Clean(p), path.Clean(dir)
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

type manifestKeyToPath struct {
	Key  string `yaml:"key"`
	Path string `yaml:"path"`
}

type manifestVolume struct {
	Name                  string `yaml:"name"`
	PersistentVolumeClaim *struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
	EmptyDir *struct {
		Medium string `yaml:"medium"`
	} `yaml:"emptyDir"`
	ConfigMap *struct {
		Name        string              `yaml:"name"`
		DefaultMode *int                `yaml:"defaultMode"`
		Items       []manifestKeyToPath `yaml:"items"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName  string              `yaml:"secretName"`
		DefaultMode *int                `yaml:"defaultMode"`
		Items       []manifestKeyToPath `yaml:"items"`
	} `yaml:"secret"`
	Other map[string]any `yaml:",inline"`
}

type manifestPodSpec struct {
	SecurityContext manifestSecurity    `yaml:"securityContext"`
	InitContainers  []manifestContainer `yaml:"initContainers"`
	Containers      []manifestContainer `yaml:"containers"`
	Volumes         []manifestVolume    `yaml:"volumes"`
}

// container returns the (init) container called name.
func (p *manifestPodSpec) container(name string) (*manifestContainer, bool) {
	for i := range p.Containers {
		if p.Containers[i].Name == name {
			return &p.Containers[i], true
		}
	}
	for i := range p.InitContainers {
		if p.InitContainers[i].Name == name {
			return &p.InitContainers[i], true
		}
	}
	return nil, false
}

// volume returns the pod's volume called name.
func (p *manifestPodSpec) volume(name string) (*manifestVolume, bool) {
	for i := range p.Volumes {
		if p.Volumes[i].Name == name {
			return &p.Volumes[i], true
		}
	}
	return nil, false
}

type manifestDeploymentSpec struct {
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec manifestPodSpec `yaml:"spec"`
	} `yaml:"template"`
}

type manifestServiceSpec struct {
	Type     string            `yaml:"type"`
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		Name       string              `yaml:"name"`
		Port       int                 `yaml:"port"`
		TargetPort manifestIntOrString `yaml:"targetPort"`
	} `yaml:"ports"`
}

type manifestSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type manifestPeer struct {
	IPBlock *struct {
		CIDR   string   `yaml:"cidr"`
		Except []string `yaml:"except"`
	} `yaml:"ipBlock"`
	PodSelector       *manifestSelector `yaml:"podSelector"`
	NamespaceSelector *manifestSelector `yaml:"namespaceSelector"`
}

type manifestPolicyRule struct {
	To    []manifestPeer `yaml:"to"`
	From  []manifestPeer `yaml:"from"`
	Ports []struct {
		Protocol string              `yaml:"protocol"`
		Port     manifestIntOrString `yaml:"port"`
	} `yaml:"ports"`
}

// allows reports whether the rule lets TCP port through (a rule without
// ports allows every port).
func (r manifestPolicyRule) allows(port int) bool {
	if len(r.Ports) == 0 {
		return true
	}
	for _, p := range r.Ports {
		if p.Port.Num == port && (p.Protocol == "" || p.Protocol == "TCP") {
			return true
		}
	}
	return false
}

type manifestPolicySpec struct {
	PodSelector manifestSelector     `yaml:"podSelector"`
	PolicyTypes []string             `yaml:"policyTypes"`
	Ingress     []manifestPolicyRule `yaml:"ingress"`
	Egress      []manifestPolicyRule `yaml:"egress"`
}

// manifestSelects reports whether selector selects labels.
func manifestSelects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// manifestK8s is the kustomization, parsed.
type manifestK8s struct {
	objects []*manifestObject
}

// manifestLoadKubernetes reads kubernetes/kustomization.yaml and every
// document of every file in its resources list.
func manifestLoadKubernetes(t *testing.T) *manifestK8s {
	t.Helper()
	const kust = "kubernetes/kustomization.yaml"
	data, err := os.ReadFile(kust)
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatalf("%s: %v", kust, err)
	}
	if len(k.Resources) == 0 {
		t.Fatalf("%s: resources is empty", kust)
	}
	listed := map[string]bool{}
	m := &manifestK8s{}
	for _, r := range k.Resources {
		file := path.Join("kubernetes", r)
		listed[file] = true
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%s: resources: %v", kust, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for doc := 1; ; doc++ {
			o := &manifestObject{File: file, Doc: doc}
			err := dec.Decode(o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", file, doc, err)
			}
			if o.Kind == "" {
				continue // an empty document
			}
			if o.APIVersion == "" || o.Metadata.Name == "" {
				t.Errorf("%s: document %d: apiVersion and metadata.name are required", file, doc)
			}
			if o.Kind != "Namespace" && o.Metadata.Namespace != manifestNamespace {
				t.Errorf("%s: metadata.namespace is %q, want %q", o.where(), o.Metadata.Namespace, manifestNamespace)
			}
			m.objects = append(m.objects, o)
		}
	}
	all, _ := filepath.Glob("kubernetes/*.yaml")
	for _, f := range all {
		if f != kust && !listed[filepath.ToSlash(f)] {
			t.Errorf("%s: %s is not in resources, so kubectl apply -k would leave it out", kust, f)
		}
	}
	return m
}

// get returns the object of kind and name, failing the test without it.
func (m *manifestK8s) get(t *testing.T, kind, name string) *manifestObject {
	t.Helper()
	for _, o := range m.objects {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	t.Fatalf("kubernetes: no %s %q in the kustomization's resources", kind, name)
	return nil
}

// all returns the objects of kind.
func (m *manifestK8s) all(kind string) []*manifestObject {
	var out []*manifestObject
	for _, o := range m.objects {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// manifestBroker is the broker's Deployment, its config and the binary's
// view of it, shared by the Kubernetes subtests.
type manifestBroker struct {
	k8s     *manifestK8s
	dep     *manifestObject
	pod     manifestPodSpec
	labels  map[string]string
	ctr     *manifestContainer
	flags   map[string]string
	env     map[string]string
	cfg     broker.Config // the ConfigMap's config with env and flags
	cfgText []byte
	img     manifestImage
	bin     manifestBinary
}

// manifestLoadBroker reads the broker Deployment and ConfigMap.
func manifestLoadBroker(t *testing.T) *manifestBroker {
	t.Helper()
	b := &manifestBroker{k8s: manifestLoadKubernetes(t), img: manifestReadImage(t), bin: manifestBuild(t)}
	b.dep = b.k8s.get(t, "Deployment", manifestBrokerName)
	var spec manifestDeploymentSpec
	b.dep.spec(t, &spec)
	b.pod, b.labels = spec.Template.Spec, spec.Template.Metadata.Labels
	ctr, ok := b.pod.container(manifestBrokerCtr)
	if !ok {
		t.Fatalf("%s: no container %q", b.dep.where(), manifestBrokerCtr)
	}
	b.ctr = ctr
	where := b.dep.where() + " container " + ctr.Name
	args := ctr.Args
	if len(ctr.Command) > 0 && !slices.Equal(ctr.Command, b.img.Entrypoint) {
		t.Fatalf("%s: command %q is not the image's ENTRYPOINT %q", where, ctr.Command, b.img.Entrypoint)
	}
	if len(args) == 0 {
		args = b.img.Cmd
	}
	b.flags = b.bin.serveArgs(t, where+" args", args)
	b.env = map[string]string{}
	for _, e := range ctr.Env {
		b.env[e.Name] = e.Value
	}
	cm := b.k8s.get(t, "ConfigMap", manifestConfigMap)
	cfgPath := b.flags["config"]
	if cfgPath == "" {
		t.Fatalf("%s: args name no --config", where)
	}
	text, ok := cm.Data[path.Base(cfgPath)]
	if !ok {
		t.Fatalf("%s: data has no %q (the --config file %s)", cm.where(), path.Base(cfgPath), cfgPath)
	}
	b.cfgText = []byte(text)
	env := manifestMerge(b.img.Env, b.env)
	b.cfg = manifestLoadConfig(t, cm.where()+" data."+path.Base(cfgPath), b.cfgText, env)
	manifestApplyFlags(&b.cfg, b.flags)
	return b
}

// manifestMerge merges maps, later ones winning.
func manifestMerge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// TestManifestsKubernetes checks the Kubernetes manifests against the
// binary and the image: the config, the container's command, user, ports,
// probes, mounts, seccomp profile and environment, the Service, the
// NetworkPolicy and clamd.
func TestManifestsKubernetes(t *testing.T) {
	b := manifestLoadBroker(t)
	where := b.dep.where() + " container " + b.ctr.Name

	t.Run("config", func(t *testing.T) {
		if b.cfg.Transfer.Clamd == "" {
			t.Errorf("%s: transfer.clamd is empty: files would be released on policy alone", manifestConfigMap)
		}
		if b.cfg.Audit.Syslog == "" {
			t.Errorf("%s: audit.syslog is empty: the audit trail is not forwarded to the SIEM", manifestConfigMap)
		}
		if b.cfg.Audit.CheckpointKey == "" {
			t.Errorf("%s: audit.checkpoint_key is empty: the end of the trail is not signed", manifestConfigMap)
		}
		if !b.cfg.TLS() {
			t.Errorf("%s: no tls_cert/tls_key: the broker would serve clinicians plain HTTP", manifestConfigMap)
		}
	})

	t.Run("user", func(t *testing.T) {
		uid, gid := manifestIDs(t, b.img.User)
		sc := b.pod.SecurityContext
		if u := b.ctr.SecurityContext.RunAsUser; u != nil {
			sc.RunAsUser = u
		}
		if g := b.ctr.SecurityContext.RunAsGroup; g != nil {
			sc.RunAsGroup = g
		}
		if sc.RunAsUser == nil || *sc.RunAsUser != uid {
			t.Errorf("%s: runAsUser %v, want the Dockerfile's USER uid %d", where, manifestDeref(sc.RunAsUser), uid)
		}
		if sc.RunAsGroup == nil || *sc.RunAsGroup != gid {
			t.Errorf("%s: runAsGroup %v, want the Dockerfile's USER gid %d", where, manifestDeref(sc.RunAsGroup), gid)
		}
		if sc.FSGroup != nil && sc.FSGroupChangePolicy != "OnRootMismatch" {
			t.Errorf("%s: securityContext.fsGroupChangePolicy %q, want OnRootMismatch with fsGroup", b.dep.where(), sc.FSGroupChangePolicy)
		}
	})

	t.Run("ports and probes", func(t *testing.T) {
		listen := manifestPort(t, where+" listen", b.cfg.Listen)
		if len(b.ctr.Ports) != 1 || b.ctr.Ports[0].ContainerPort != listen {
			t.Errorf("%s: ports %+v, want one containerPort %d (the broker's listen %q)", where, b.ctr.Ports, listen, b.cfg.Listen)
		}
		scheme := "HTTP"
		if b.cfg.TLS() {
			scheme = "HTTPS"
		}
		for _, p := range []struct {
			name  string
			probe *manifestProbe
			path  string
		}{
			{"startupProbe", b.ctr.StartupProbe, "/healthz"},
			{"livenessProbe", b.ctr.LivenessProbe, "/healthz"},
			// A full node keeps its endpoint: readiness for the sessions it has.
			{"readinessProbe", b.ctr.ReadinessProbe, "/readyz?scope=existing"},
		} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s: no %s.httpGet", where, p.name)
				continue
			}
			g := p.probe.HTTPGet
			if g.Path != p.path {
				t.Errorf("%s: %s.httpGet.path %q, want %q", where, p.name, g.Path, p.path)
			}
			if port := b.ctr.port(g.Port); port != listen {
				t.Errorf("%s: %s.httpGet.port %+v is port %d, want the broker's listen port %d", where, p.name, g.Port, port, listen)
			}
			if g.Scheme != scheme {
				t.Errorf("%s: %s.httpGet.scheme %q, want %q", where, p.name, g.Scheme, scheme)
			}
		}
	})

	t.Run("environment", func(t *testing.T) {
		for _, e := range b.ctr.Env {
			if strings.HasPrefix(e.Name, "SHOJI_") && !b.bin.knownEnv(t, e.Name) {
				t.Errorf("%s: env %s is not read by the binary", where, e.Name)
			}
		}
	})

	t.Run("seccomp", func(t *testing.T) {
		sp := b.ctr.SecurityContext.SeccompProfile
		if sp == nil {
			sp = b.pod.SecurityContext.SeccompProfile
		}
		want := "profiles/" + path.Base(manifestProfilePath)
		if sp == nil || sp.Type != "Localhost" || sp.LocalhostProfile != want {
			t.Errorf("%s: seccompProfile %+v, want {type: Localhost, localhostProfile: %s} (deploy/%s): "+
				"RuntimeDefault refuses Chromium's sandbox", where, sp, want, manifestProfilePath)
		}
		manifestProfileExists(t)
	})

	t.Run("paths", func(t *testing.T) {
		manifestCheckPaths(t, b)
	})

	t.Run("install-config and probes in-process", func(t *testing.T) {
		manifestCheckInstall(t, b)
	})

	t.Run("service", func(t *testing.T) {
		svc := b.k8s.get(t, "Service", manifestBrokerName)
		var spec manifestServiceSpec
		svc.spec(t, &spec)
		if spec.Type != "" && spec.Type != "ClusterIP" {
			t.Errorf("%s: spec.type %s, want ClusterIP: a LoadBalancer is public on many clouds; "+
				"choose the exposure on purpose (docs/deploy.md)", svc.where(), spec.Type)
		}
		if !manifestSelects(spec.Selector, b.labels) {
			t.Errorf("%s: spec.selector %v does not select the broker's pods %v", svc.where(), spec.Selector, b.labels)
		}
		listen := manifestPort(t, where, b.cfg.Listen)
		for _, p := range spec.Ports {
			if got := b.ctr.port(p.TargetPort); got != listen {
				t.Errorf("%s: ports[%s].targetPort %+v is %d, want the broker's port %d", svc.where(), p.Name, p.TargetPort, got, listen)
			}
		}
	})

	t.Run("network policy", func(t *testing.T) {
		manifestCheckPolicy(t, b)
	})

	t.Run("clamd", func(t *testing.T) {
		manifestCheckK8sClamd(t, b)
	})

	t.Run("pod security restricted", func(t *testing.T) {
		ns := b.k8s.get(t, "Namespace", manifestNamespace)
		if ns.Metadata.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
			t.Errorf("%s: label pod-security.kubernetes.io/enforce is %q, want restricted",
				ns.where(), ns.Metadata.Labels["pod-security.kubernetes.io/enforce"])
		}
		for _, d := range b.k8s.all("Deployment") {
			var spec manifestDeploymentSpec
			d.spec(t, &spec)
			manifestCheckRestricted(t, d.where(), spec.Template.Spec)
		}
	})
}

// manifestDeref formats an optional number.
func manifestDeref(p *int64) string {
	if p == nil {
		return "(unset)"
	}
	return strconv.FormatInt(*p, 10)
}

// manifestProfileExists checks that the seccomp profile named by the
// manifests is in the repository, and is JSON with a default action.
func manifestProfileExists(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(manifestProfilePath)
	if err != nil {
		t.Fatalf("deploy/%s, which the manifests name: %v", manifestProfilePath, err)
	}
	var p struct {
		DefaultAction string `json:"defaultAction"`
	}
	if err := json.Unmarshal(data, &p); err != nil || p.DefaultAction == "" {
		t.Errorf("deploy/%s: not a seccomp profile with a defaultAction (%v)", manifestProfilePath, err)
	}
}

// manifestCheckPaths checks that every path the config names is provided
// by a volume mount or the image, and that what the broker writes is
// writable and persistent.
func manifestCheckPaths(t *testing.T, b *manifestBroker) {
	where := b.dep.where() + " container " + b.ctr.Name
	volumeKind := func(m manifestMount) string {
		v, ok := b.pod.volume(m.Name)
		switch {
		case !ok:
			t.Errorf("%s: volumeMounts %s names no volume of the pod", where, m.Name)
			return ""
		case v.PersistentVolumeClaim != nil:
			return "pvc"
		case v.EmptyDir != nil:
			return "emptyDir"
		case v.ConfigMap != nil, v.Secret != nil:
			return "projected"
		}
		return "other"
	}
	if m, ok := b.ctr.mountFor(b.cfg.Data); !ok || m.ReadOnly || volumeKind(m) != "pvc" {
		t.Errorf("%s: data %s is not on a writable PersistentVolumeClaim mount (mount %+v)", where, b.cfg.Data, m)
	}
	for key, p := range map[string]string{
		"--config": b.flags["config"], "tls_cert": b.cfg.TLSCert, "tls_key": b.cfg.TLSKey,
		"audit.checkpoint_key": b.cfg.Audit.CheckpointKey,
	} {
		if p == "" {
			continue
		}
		m, ok := b.ctr.mountFor(p)
		if !ok {
			t.Errorf("%s: %s %s is on no volume mount, and the image does not hold it", where, key, p)
			continue
		}
		if !m.ReadOnly {
			t.Errorf("%s: %s %s is on mount %s, which is not readOnly", where, key, p, m.MountPath)
		}
		if manifestWithin(p, b.cfg.Data) {
			t.Errorf("%s: %s %s is inside the data directory %s", where, key, p, b.cfg.Data)
		}
	}
	if m, ok := b.ctr.mountFor(b.cfg.Chromium); ok {
		t.Errorf("%s: chromium %s is hidden by the volume mount %s; the image provides it", where, b.cfg.Chromium, m.MountPath)
	}
	if !slices.Contains(b.img.Packages, "chromium") || b.cfg.Chromium != "/usr/lib/chromium/chromium" {
		t.Errorf("%s: chromium %s: want Debian's /usr/lib/chromium/chromium from the image's chromium package (image packages %v)",
			where, b.cfg.Chromium, b.img.Packages)
	}
	if b.ctr.SecurityContext.ReadOnlyRootFilesystem != nil && *b.ctr.SecurityContext.ReadOnlyRootFilesystem {
		for _, dir := range []string{"/tmp", b.env["HOME"]} {
			if m, ok := b.ctr.mountFor(dir); dir == "" || !ok || m.ReadOnly {
				t.Errorf("%s: readOnlyRootFilesystem, but %q (Chromium writes there) has no writable mount", where, dir)
			}
		}
	}
}

// manifestCheckInstall runs the install-config init container's script
// against a directory layout like the one the kubelet gives it (ConfigMap
// and Secret volumes with their modes, fsGroup's group bits included),
// checks that the broker then finds its config, TLS pair and checkpoint
// key where the config says and accepts the key's mode, and starts the real
// broker in-process on that layout to ask its handler the probes' paths.
func manifestCheckInstall(t *testing.T, b *manifestBroker) {
	initCtr, ok := b.pod.container(manifestInstallCtr)
	if !ok {
		t.Fatalf("%s: no init container %s to fill /etc/shoji", b.dep.where(), manifestInstallCtr)
	}
	where := b.dep.where() + " initContainer " + initCtr.Name
	if len(initCtr.Command) != 3 || initCtr.Command[0] != "/bin/sh" || !strings.HasPrefix(initCtr.Command[1], "-") {
		t.Fatalf("%s: command %q: want [/bin/sh, -ec, SCRIPT]", where, initCtr.Command)
	}
	root := t.TempDir()
	dirs := map[string]string{} // volume name -> directory standing in for it
	fsGroupBits := os.FileMode(0)
	if b.pod.SecurityContext.FSGroup != nil {
		fsGroupBits = 0o440 // the kubelet adds group read to Secret and ConfigMap files
	}
	secrets := manifestSecretData(t)
	for _, v := range b.pod.Volumes {
		dir := filepath.Join(root, "vol-"+v.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		dirs[v.Name] = dir
		var data map[string]string
		var items []manifestKeyToPath
		mode := os.FileMode(0o644)
		switch {
		case v.ConfigMap != nil:
			data = b.k8s.get(t, "ConfigMap", v.ConfigMap.Name).Data
			items = v.ConfigMap.Items
			if v.ConfigMap.DefaultMode != nil {
				mode = os.FileMode(*v.ConfigMap.DefaultMode)
			}
		case v.Secret != nil:
			var ok bool
			if data, ok = secrets[v.Secret.SecretName]; !ok {
				t.Fatalf("%s: volume %s: Secret %s is not one docs/deploy.md tells the admin to create", b.dep.where(), v.Name, v.Secret.SecretName)
			}
			items = v.Secret.Items
			if v.Secret.DefaultMode != nil {
				mode = os.FileMode(*v.Secret.DefaultMode)
			}
		default:
			continue
		}
		if len(items) == 0 {
			for k := range data {
				items = append(items, manifestKeyToPath{Key: k, Path: k})
			}
		}
		for _, it := range items {
			content, ok := data[it.Key]
			if !ok {
				t.Fatalf("%s: volume %s: item key %s is not in its source", b.dep.where(), v.Name, it.Key)
			}
			p := filepath.Join(dir, it.Path)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode|fsGroupBits); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The script's mount paths, longest first, point at the stand-ins.
	mounts := slices.Clone(initCtr.VolumeMounts)
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].MountPath) > len(mounts[j].MountPath) })
	script := initCtr.Command[2]
	for _, m := range mounts {
		script = strings.ReplaceAll(script, m.MountPath, dirs[m.Name])
	}
	if out, err := exec.Command("/bin/sh", initCtr.Command[1], script).CombinedOutput(); err != nil {
		t.Fatalf("%s: the script fails on the kubelet's layout: %v\n%s\nscript as run:\n%s", where, err, out, script)
	}
	// The broker's view: its mounts mapped to the same stand-ins.
	hostPath := func(key, p string) string {
		m, ok := b.ctr.mountFor(p)
		if !ok {
			t.Fatalf("%s: %s %s is on no mount", b.dep.where(), key, p)
		}
		rel, _ := filepath.Rel(m.MountPath, p)
		return filepath.Join(dirs[m.Name], rel)
	}
	cfgFile := hostPath("--config", b.flags["config"])
	got, err := os.ReadFile(cfgFile)
	if err != nil || !bytes.Equal(got, b.cfgText) {
		t.Fatalf("%s: after the script, %s is not the ConfigMap's config (%v)", where, b.flags["config"], err)
	}
	for key, p := range map[string]string{"tls_cert": b.cfg.TLSCert, "tls_key": b.cfg.TLSKey} {
		if _, err := os.Stat(hostPath(key, p)); err != nil {
			t.Errorf("%s: after the script, %s %s is missing: %v", where, key, p, err)
		}
	}
	keyFile := hostPath("audit.checkpoint_key", b.cfg.Audit.CheckpointKey)
	if _, err := audit.LoadSigningKey(keyFile); err != nil {
		t.Fatalf("%s: the broker refuses the checkpoint key %s the script installs: %v", where, b.cfg.Audit.CheckpointKey, err)
	}

	// The real handler answers the probes' paths.
	cfg := b.cfg
	cfg.Data = hostPath("data", b.cfg.Data)
	cfg.TLSCert, cfg.TLSKey = hostPath("tls_cert", b.cfg.TLSCert), hostPath("tls_key", b.cfg.TLSKey)
	cfg.Audit.CheckpointKey = keyFile
	cfg.Listen = "127.0.0.1:0"
	cfg.Audit.Syslog = "" // a placeholder collector that is not there
	cfg.PoolSize = 0      // no browser to pool
	var paths []string
	for _, p := range []*manifestProbe{b.ctr.StartupProbe, b.ctr.LivenessProbe, b.ctr.ReadinessProbe} {
		if p != nil && p.HTTPGet != nil {
			paths = append(paths, p.HTTPGet.Path)
		}
	}
	for p, code := range manifestProbeStatus(t, cfg, paths...) {
		switch {
		case code == http.StatusNotFound || code == http.StatusMethodNotAllowed:
			t.Errorf("%s: probe path %s: the broker's handler answers %d: no such route", b.dep.where(), p, code)
		case strings.HasPrefix(p, "/healthz") && code != http.StatusOK:
			t.Errorf("%s: probe path %s: the broker's handler answers %d, want 200", b.dep.where(), p, code)
		default:
			t.Logf("probe %s: %d", p, code)
		}
	}
}

// manifestSecretData makes the Secrets docs/deploy.md tells the admin to
// create: the TLS pair and the audit checkpoint key.
func manifestSecretData(t *testing.T) map[string]map[string]string {
	t.Helper()
	keyPath := filepath.Join(t.TempDir(), "audit-checkpoint.key")
	if _, err := audit.GenerateKey(keyPath); err != nil {
		t.Fatal(err)
	}
	auditKey, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shoji.hospital.local"},
		DNSNames: []string{"shoji.hospital.local"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]map[string]string{
		"shoji-tls": {
			"tls.crt": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
			"tls.key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})),
		},
		"shoji-audit-checkpoint": {"audit-checkpoint.key": string(auditKey)},
	}
}

// manifestHostPort splits "tcp:host:port" or "host:port".
func manifestHostPort(t *testing.T, where, addr string) (string, int) {
	t.Helper()
	if addr == "" {
		t.Fatalf("%s is empty", where)
	}
	host, port, err := net.SplitHostPort(strings.TrimPrefix(addr, "tcp:"))
	n, err2 := strconv.Atoi(port)
	if err != nil || err2 != nil {
		t.Fatalf("%s: %q is not host:port", where, addr)
	}
	return host, n
}

// manifestCheckPolicy checks the broker's NetworkPolicy: ingress on the
// broker's port, and an egress rule for every dependency the config uses.
func manifestCheckPolicy(t *testing.T, b *manifestBroker) {
	var pol *manifestObject
	var spec manifestPolicySpec
	for _, o := range b.k8s.all("NetworkPolicy") {
		var s manifestPolicySpec
		o.spec(t, &s)
		if manifestSelects(s.PodSelector.MatchLabels, b.labels) {
			pol, spec = o, s
		}
	}
	if pol == nil {
		t.Fatalf("kubernetes: no NetworkPolicy selects the broker's pods %v", b.labels)
	}
	if !slices.Contains(spec.PolicyTypes, "Egress") || !slices.Contains(spec.PolicyTypes, "Ingress") {
		t.Errorf("%s: policyTypes %v, want Ingress and Egress", pol.where(), spec.PolicyTypes)
	}
	listen := manifestPort(t, pol.where(), b.cfg.Listen)
	ingressOK := false
	for _, r := range spec.Ingress {
		ingressOK = ingressOK || r.allows(listen)
	}
	if !ingressOK {
		t.Errorf("%s: no ingress rule admits the broker's port %d", pol.where(), listen)
	}
	egressTo := func(port int, match func(manifestPeer) bool) bool {
		for _, r := range spec.Egress {
			if !r.allows(port) {
				continue
			}
			for _, p := range r.To {
				if match(p) {
					return true
				}
			}
		}
		return false
	}
	if !egressTo(53, func(p manifestPeer) bool {
		return p.PodSelector != nil && p.PodSelector.MatchLabels["k8s-app"] == "kube-dns"
	}) {
		t.Errorf("%s: no egress rule to the cluster DNS on 53", pol.where())
	}
	if c := b.cfg.Transfer.Clamd; c != "" {
		host, port := manifestHostPort(t, pol.where()+" transfer.clamd", c)
		labels := manifestServicePods(t, b.k8s, host)
		if !egressTo(port, func(p manifestPeer) bool {
			return p.PodSelector != nil && manifestSelects(p.PodSelector.MatchLabels, labels) && p.NamespaceSelector == nil
		}) {
			t.Errorf("%s: transfer.clamd is %s, but no egress rule lets the broker reach the pods %v on %d", pol.where(), c, labels, port)
		}
	}
	if s := b.cfg.Audit.Syslog; s != "" {
		host, port := manifestHostPort(t, pol.where()+" audit.syslog", s)
		ip, ipErr := netip.ParseAddr(host)
		if !egressTo(port, func(p manifestPeer) bool {
			if p.IPBlock == nil {
				return false
			}
			pfx, err := netip.ParsePrefix(p.IPBlock.CIDR)
			if err != nil {
				t.Errorf("%s: ipBlock.cidr %q: %v", pol.where(), p.IPBlock.CIDR, err)
				return false
			}
			if ipErr != nil {
				return true // a name: any ipBlock on the port may be it
			}
			for _, e := range p.IPBlock.Except {
				if ex, err := netip.ParsePrefix(e); err == nil && ex.Contains(ip) {
					return false
				}
			}
			return pfx.Contains(ip)
		}) {
			t.Errorf("%s: audit.syslog is %s, but no egress rule lets the broker reach it", pol.where(), s)
		}
	}
	for key, set := range map[string]bool{"egress.upstream": b.cfg.Egress.Upstream != "", "egress.allow_addrs": len(b.cfg.Egress.AllowAddrs) > 0} {
		if set {
			t.Errorf("%s: %s is set in %s; give it an egress rule and a check here", pol.where(), key, manifestConfigMap)
		}
	}
	// Every dependency the config can name is explained beside its rule.
	text, err := os.ReadFile(pol.File)
	if err != nil {
		t.Fatal(err)
	}
	for _, word := range []string{"transfer.clamd", "audit.syslog", "egress.upstream", "egress.allow_addrs", "CIDR rule", "6379", "53"} {
		if !bytes.Contains(text, []byte(word)) {
			t.Errorf("%s: does not mention %q: every dependency the config can use needs its rule or a commented one", pol.File, word)
		}
	}
}

// manifestServicePods returns the pod labels the Service called host (a
// name, or name.namespace[.svc...]) selects.
func manifestServicePods(t *testing.T, k *manifestK8s, host string) map[string]string {
	t.Helper()
	name, rest, _ := strings.Cut(host, ".")
	if ns, _, _ := strings.Cut(rest, "."); ns != "" && ns != manifestNamespace {
		t.Fatalf("kubernetes: %s is not a Service of namespace %s", host, manifestNamespace)
	}
	svc := k.get(t, "Service", name)
	var spec manifestServiceSpec
	svc.spec(t, &spec)
	return spec.Selector
}

// manifestConfValue returns the value of a clamd/freshclam config option.
func manifestConfValue(conf, key string) string {
	for _, l := range strings.Split(conf, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == key {
			return strings.Join(f[1:], " ")
		}
	}
	return ""
}

// manifestCheckK8sClamd checks that transfer.clamd names a Service whose
// pods run clamd on that port, with a config that listens there and a
// signature volume that persists.
func manifestCheckK8sClamd(t *testing.T, b *manifestBroker) {
	host, port := manifestHostPort(t, manifestConfigMap+" transfer.clamd", b.cfg.Transfer.Clamd)
	svc := b.k8s.get(t, "Service", strings.Split(host, ".")[0])
	var sspec manifestServiceSpec
	svc.spec(t, &sspec)
	var dep *manifestObject
	var pod manifestPodSpec
	for _, d := range b.k8s.all("Deployment") {
		var s manifestDeploymentSpec
		d.spec(t, &s)
		if manifestSelects(sspec.Selector, s.Template.Metadata.Labels) {
			dep, pod = d, s.Template.Spec
		}
	}
	if dep == nil {
		t.Fatalf("%s: selector %v selects no Deployment's pods", svc.where(), sspec.Selector)
	}
	ctr, ok := pod.container("clamd")
	if !ok {
		t.Fatalf("%s: no container clamd", dep.where())
	}
	var svcPort *manifestIntOrString
	for i, p := range sspec.Ports {
		if p.Port == port {
			svcPort = &sspec.Ports[i].TargetPort
		}
	}
	if svcPort == nil {
		t.Fatalf("%s: no port %d (transfer.clamd %s)", svc.where(), port, b.cfg.Transfer.Clamd)
	}
	ctrPort := ctr.port(*svcPort)
	// clamd's own config says where it listens and what it reads.
	var confPath string
	for _, a := range ctr.Command {
		if v, ok := strings.CutPrefix(a, "--config-file="); ok {
			confPath = v
		}
	}
	m, ok := ctr.mountFor(confPath)
	if confPath == "" || !ok {
		t.Fatalf("%s container clamd: command %q names no --config-file on a mount", dep.where(), ctr.Command)
	}
	v, _ := pod.volume(m.Name)
	if v == nil || v.ConfigMap == nil || v.ConfigMap.Name != manifestClamdConfig {
		t.Fatalf("%s container clamd: --config-file %s is not from the ConfigMap %s", dep.where(), confPath, manifestClamdConfig)
	}
	cm := b.k8s.get(t, "ConfigMap", manifestClamdConfig)
	conf := cm.Data[path.Base(confPath)]
	if got := manifestConfValue(conf, "TCPSocket"); got != strconv.Itoa(ctrPort) || ctrPort == 0 {
		t.Errorf("%s data.%s: TCPSocket %q, want the Service's targetPort %d", cm.where(), path.Base(confPath), got, ctrPort)
	}
	db := manifestConfValue(conf, "DatabaseDirectory")
	if m, ok := ctr.mountFor(db); !ok {
		t.Errorf("%s container clamd: DatabaseDirectory %s is on no mount", dep.where(), db)
	} else if v, _ := pod.volume(m.Name); v == nil || v.PersistentVolumeClaim == nil {
		t.Errorf("%s container clamd: DatabaseDirectory %s is not on a PersistentVolumeClaim (the signature volume)", dep.where(), db)
	}
	for name, text := range cm.Data {
		file := filepath.Join("clamav", name)
		disk, err := os.ReadFile(file)
		if err != nil || string(disk) != text {
			t.Errorf("%s data.%s differs from deploy/%s (compose uses that file; keep them equal): %v", cm.where(), name, file, err)
		}
	}
}

// manifestCheckRestricted checks what the "restricted" Pod Security level
// requires of a pod, so that admission does not refuse it.
func manifestCheckRestricted(t *testing.T, where string, pod manifestPodSpec) {
	t.Helper()
	for _, v := range pod.Volumes {
		for k := range v.Other {
			if k == "hostPath" {
				t.Errorf("%s: volume %s: hostPath is not allowed by restricted", where, v.Name)
			}
		}
	}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		w := where + " container " + c.Name
		sc := c.SecurityContext
		nonRoot := pod.SecurityContext.RunAsNonRoot
		if sc.RunAsNonRoot != nil {
			nonRoot = sc.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			t.Errorf("%s: runAsNonRoot is not true", w)
		}
		for _, u := range []*int64{pod.SecurityContext.RunAsUser, sc.RunAsUser} {
			if u != nil && *u == 0 {
				t.Errorf("%s: runAsUser 0", w)
			}
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", w)
		}
		if !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: capabilities.drop lacks ALL", w)
		}
		for _, a := range sc.Capabilities.Add {
			if a != "NET_BIND_SERVICE" {
				t.Errorf("%s: capabilities.add %s is not allowed by restricted", w, a)
			}
		}
		sp := sc.SeccompProfile
		if sp == nil {
			sp = pod.SecurityContext.SeccompProfile
		}
		if sp == nil || (sp.Type != "RuntimeDefault" && sp.Type != "Localhost") {
			t.Errorf("%s: seccompProfile %+v: restricted wants RuntimeDefault or Localhost", w, sp)
		}
	}
}

// TestManifestsClamdConfig runs a real clamd with the shipped clamd.conf
// (its database, temporary directory and port moved into the test's
// directory) and scans through the broker's own clamd client: the file is
// accepted by clamd as shipped and speaks INSTREAM to the broker, with a
// StreamMaxLength no smaller than the default download limit.
func TestManifestsClamdConfig(t *testing.T) {
	clamdtest.Require(t)
	data, err := os.ReadFile("clamav/clamd.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(data)
	limit := manifestConfValue(conf, "StreamMaxLength")
	if n, ok := manifestSize(limit); !ok || n < int64(policy.DefaultDownloadMaxSize) {
		t.Errorf("deploy/clamav/clamd.conf: StreamMaxLength %q is below the default download max_size %d", limit, policy.DefaultDownloadMaxSize)
	}
	dir, err := os.MkdirTemp("", "manifest-clamd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	db := filepath.Join(dir, "db")
	if err := os.Mkdir(db, 0o700); err != nil {
		t.Fatal(err)
	}
	sig := clamdtest.TestSignature
	if err := os.WriteFile(filepath.Join(db, "shoji-test."+sig.Ext), []byte(sig.Line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var lines []string
	for _, line := range strings.Split(conf, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 {
			switch f[0] {
			case "DatabaseDirectory":
				line = "DatabaseDirectory " + db
			case "TemporaryDirectory":
				line = "TemporaryDirectory " + dir
			case "TCPSocket":
				line = fmt.Sprintf("TCPSocket %d\nTCPAddr 127.0.0.1", port)
			}
		}
		lines = append(lines, line)
	}
	confPath := filepath.Join(dir, "clamd.conf")
	if err := os.WriteFile(confPath, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(clamdtest.ClamdPath, "--config-file="+confPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	c, err := scan.NewClamd(fmt.Sprintf("tcp:127.0.0.1:%d", port), scan.ClamdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.Ping(ctx)
		cancel()
		if err == nil {
			break
		}
		select {
		case werr := <-exited:
			exited <- werr
			t.Fatalf("deploy/clamav/clamd.conf: clamd exited at start (%v):\n%s", werr, out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("deploy/clamav/clamd.conf: clamd did not answer on port %d: %v\n%s", port, err, out.String())
		}
	}
	res, err := c.Scan(context.Background(), strings.NewReader("a download with "+clamdtest.TestMarker+" inside"))
	if err != nil || !res.Infected || res.Signature != clamdtest.TestSignatureName {
		t.Errorf("deploy/clamav/clamd.conf: scan = %+v, %v; want infected by %s", res, err, clamdtest.TestSignatureName)
	}
}

// manifestSize parses a clamd size like "100M", "4096K" or "1000".
func manifestSize(s string) (int64, bool) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		mult, s = 1<<10, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err == nil
}

// ---------------------------------------------------------------------------
// Docker Compose

type manifestComposeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Entrypoint  []string          `yaml:"entrypoint"`
	User        string            `yaml:"user"`
	Ports       []string          `yaml:"ports"`
	Expose      []string          `yaml:"expose"`
	ReadOnly    bool              `yaml:"read_only"`
	Tmpfs       []string          `yaml:"tmpfs"`
	SecurityOpt []string          `yaml:"security_opt"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []struct {
		Type     string `yaml:"type"`
		Source   string `yaml:"source"`
		Target   string `yaml:"target"`
		ReadOnly bool   `yaml:"read_only"`
	} `yaml:"volumes"`
	Networks []string `yaml:"networks"`
}

type manifestCompose struct {
	Services map[string]manifestComposeService `yaml:"services"`
	Networks map[string]*struct {
		Internal bool `yaml:"internal"`
	} `yaml:"networks"`
	Volumes map[string]any `yaml:"volumes"`
}

// TestManifestsCompose checks compose.yaml against the binary and the
// image: the broker's command, user, published port, mounts of config, TLS,
// data and checkpoint key, seccomp profile and environment, and the clamd
// service its config names.
func TestManifestsCompose(t *testing.T) {
	const file = "compose.yaml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var c manifestCompose
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	img, bin := manifestReadImage(t), manifestBuild(t)
	br, ok := c.Services["broker"]
	if !ok {
		t.Fatalf("%s: no service broker", file)
	}
	where := file + " services.broker"
	if br.Build == nil || path.Join(br.Build.Context, br.Build.Dockerfile) != "../Dockerfile" {
		t.Errorf("%s.build: %+v, want context .. and the repository's Dockerfile", where, br.Build)
	}
	if len(br.Entrypoint) > 0 {
		t.Errorf("%s.entrypoint %q: keep the image's %q", where, br.Entrypoint, img.Entrypoint)
	}
	args := br.Command
	if len(args) == 0 {
		args = img.Cmd
	}
	flags := bin.serveArgs(t, where+".command", args)
	if br.User != img.User {
		t.Errorf("%s.user %q, want the Dockerfile's USER %q", where, br.User, img.User)
	}
	for k := range br.Environment {
		if strings.HasPrefix(k, "SHOJI_") && !bin.knownEnv(t, k) {
			t.Errorf("%s.environment: %s is not read by the binary", where, k)
		}
	}
	mounts := map[string]int{} // target -> index in br.Volumes
	for i, v := range br.Volumes {
		mounts[v.Target] = i
	}
	cfgPath := flags["config"]
	i, ok := mounts[cfgPath]
	if cfgPath == "" || !ok {
		t.Fatalf("%s.volumes: nothing is mounted at the --config file %q", where, cfgPath)
	}
	cfgText, err := os.ReadFile(br.Volumes[i].Source)
	if err != nil {
		t.Fatalf("%s.volumes[%d]: the config's source: %v", where, i, err)
	}
	cfg := manifestLoadConfig(t, "deploy/"+br.Volumes[i].Source, cfgText, manifestMerge(img.Env, br.Environment))
	manifestApplyFlags(&cfg, flags)
	coverFor := func(p string) (int, bool) {
		best, found := -1, false
		for j, v := range br.Volumes {
			if manifestWithin(p, v.Target) && (!found || len(v.Target) > len(br.Volumes[best].Target)) {
				best, found = j, true
			}
		}
		return best, found
	}

	t.Run("mounts", func(t *testing.T) {
		if j, ok := coverFor(cfg.Data); !ok || br.Volumes[j].Type != "volume" || br.Volumes[j].ReadOnly {
			t.Errorf("%s.volumes: data %s is not on a writable named volume", where, cfg.Data)
		} else if _, ok := c.Volumes[br.Volumes[j].Source]; !ok {
			t.Errorf("%s.volumes: %s is not a top-level volume", where, br.Volumes[j].Source)
		}
		for key, p := range map[string]string{"--config": cfgPath, "tls_cert": cfg.TLSCert, "tls_key": cfg.TLSKey, "audit.checkpoint_key": cfg.Audit.CheckpointKey} {
			j, ok := coverFor(p)
			switch {
			case p == "":
				t.Errorf("%s: %s is not set", "deploy/"+br.Volumes[i].Source, key)
			case !ok:
				t.Errorf("%s.volumes: %s %s is on no mount", where, key, p)
			case !br.Volumes[j].ReadOnly || br.Volumes[j].Type != "bind":
				t.Errorf("%s.volumes: %s %s: want a read_only bind mount, got %+v", where, key, p, br.Volumes[j])
			}
		}
		if !br.ReadOnly {
			t.Errorf("%s.read_only is not true", where)
		}
	})

	t.Run("port", func(t *testing.T) {
		listen := manifestPort(t, where, cfg.Listen)
		for _, p := range br.Ports {
			f := strings.Split(strings.TrimSuffix(p, "/tcp"), ":")
			if n, _ := strconv.Atoi(f[len(f)-1]); n != listen {
				t.Errorf("%s.ports %q publishes container port %s, but the broker listens on %d", where, p, f[len(f)-1], listen)
			}
		}
		if len(br.Ports) == 0 {
			t.Errorf("%s.ports: the broker's port %d is not published", where, listen)
		}
	})

	t.Run("seccomp", func(t *testing.T) {
		var profile string
		for _, o := range br.SecurityOpt {
			for _, sep := range []string{"=", ":"} {
				if v, ok := strings.CutPrefix(o, "seccomp"+sep); ok {
					profile = v
				}
			}
		}
		// Compose v2 resolves a relative path against the project
		// directory, which is this file's directory.
		if profile == "" || path.Clean(profile) != manifestProfilePath {
			t.Errorf("%s.security_opt %q: want seccomp=./%s (relative to deploy/)", where, br.SecurityOpt, manifestProfilePath)
		}
		manifestProfileExists(t)
	})

	t.Run("networks", func(t *testing.T) {
		out := len(br.Networks) == 0 // the project's default network
		for _, n := range br.Networks {
			if nw, ok := c.Networks[n]; ok && (nw == nil || !nw.Internal) {
				out = true
			}
		}
		if !out {
			t.Errorf("%s.networks %v: none reaches outside (the broker's egress to the Internet)", where, br.Networks)
		}
	})

	t.Run("clamd", func(t *testing.T) {
		host, port := manifestHostPort(t, "deploy/"+br.Volumes[i].Source+" transfer.clamd", cfg.Transfer.Clamd)
		cl, ok := c.Services[host]
		if !ok {
			t.Fatalf("%s: transfer.clamd %s names no service %s", file, cfg.Transfer.Clamd, host)
		}
		shared := false
		for _, n := range cl.Networks {
			if slices.Contains(br.Networks, n) {
				shared = true
				if nw := c.Networks[n]; nw == nil || !nw.Internal {
					t.Errorf("%s.networks: %s is shared with clamd but not internal: clamd must have no route out", file, n)
				}
			}
			if nw := c.Networks[n]; nw == nil || !nw.Internal {
				t.Errorf("%s services.%s.networks: %s is not internal: clamd parses hostile files and must reach nothing", file, host, n)
			}
		}
		if !shared {
			t.Errorf("%s: services.broker and services.%s share no network", file, host)
		}
		if !slices.Contains(cl.Expose, strconv.Itoa(port)) {
			t.Errorf("%s services.%s.expose %v lacks %d (transfer.clamd)", file, host, cl.Expose, port)
		}
		var confPath string
		for _, a := range cl.Entrypoint {
			if v, ok := strings.CutPrefix(a, "--config-file="); ok {
				confPath = v
			}
		}
		src := ""
		for _, v := range cl.Volumes {
			if v.Target == confPath {
				src = v.Source
			}
		}
		conf, err := os.ReadFile(src)
		if confPath == "" || err != nil {
			t.Fatalf("%s services.%s: entrypoint %q names no --config-file mounted from a file here (%v)", file, host, cl.Entrypoint, err)
		}
		if got := manifestConfValue(string(conf), "TCPSocket"); got != strconv.Itoa(port) {
			t.Errorf("deploy/%s: TCPSocket %q, want %d (transfer.clamd)", src, got, port)
		}
	})

	t.Run("first admin", func(t *testing.T) {
		manifestCheckFirstAdmin(t, bin, img, file)
	})
}

// manifestCheckFirstAdmin checks that the documentation of compose's first
// admin runs `shoji user add` in a one-off container with stdin (run --rm
// --no-deps -T, the broker stopped), never `exec` into the live broker, and
// that the command works against a data directory as the image sets it.
func manifestCheckFirstAdmin(t *testing.T, bin manifestBinary, img manifestImage, files ...string) {
	t.Helper()
	files = append(files, "../docs/deploy.md")
	execRE := regexp.MustCompile(`compose[^\n]*\bexec\b[^\n]*(\n[^\n]*)?user add`)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		// Shell continuation lines, also inside YAML comments, join up.
		text := regexp.MustCompile(`\\\n\s*#?\s*`).ReplaceAllString(string(data), " ")
		if m := execRE.FindString(text); m != "" {
			t.Errorf("%s: %q runs user add inside the live broker, whose store is locked", f, m)
		}
		if !regexp.MustCompile(`compose [^\n]*run --rm --no-deps -T broker\s+` + regexp.QuoteMeta(manifestFirstAdminArgs)).MatchString(text) {
			t.Errorf("%s: does not document `docker compose run --rm --no-deps -T broker %s`", f, manifestFirstAdminArgs)
		}
		if !strings.Contains(text, "set-up token") {
			t.Errorf("%s: does not mention the one-time set-up token", f)
		}
	}
	data := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(bin.path, strings.Fields(manifestFirstAdminArgs)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "SHOJI_DATA=" + data}
	cmd.Stdin = strings.NewReader("a-long-admin-password-for-the-test\n")
	if out, err := cmd.CombinedOutput(); err != nil || img.Env["SHOJI_DATA"] == "" {
		t.Errorf("`shoji %s` with SHOJI_DATA as the image sets it (%q): %v\n%s", manifestFirstAdminArgs, img.Env["SHOJI_DATA"], err, out)
	}
}

// ---------------------------------------------------------------------------
// systemd

// manifestUnit is a parsed systemd unit: section -> key -> values.
type manifestUnit map[string]map[string][]string

// manifestParseUnit reads a unit file (comments, continuation lines).
func manifestParseUnit(text string) (manifestUnit, error) {
	u := manifestUnit{}
	section := ""
	text = strings.ReplaceAll(text, "\\\n", " ")
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				return nil, fmt.Errorf("line %d: %q is not key=value in a section", n+1, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u, nil
}

// TestManifestsSystemd checks deploy/systemd/shoji.service: ExecStart's
// flags, the directories it may write, the config it is installed with,
// the address families clamd and syslog need, and (with systemd-analyze)
// that systemd accepts every key.
func TestManifestsSystemd(t *testing.T) {
	const file = "systemd/shoji.service"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	u, err := manifestParseUnit(string(data))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	svc := u["Service"]
	bin := manifestBuild(t)
	exe := strings.Fields(strings.Join(svc["ExecStart"], " "))
	if len(exe) < 2 || exe[0] != "/usr/local/bin/shoji" {
		t.Fatalf("%s: ExecStart %q: want /usr/local/bin/shoji serve ...", file, svc["ExecStart"])
	}
	flags := bin.serveArgs(t, file+" ExecStart", exe[1:])
	env := map[string]string{}
	for _, e := range svc["Environment"] {
		k, v, _ := strings.Cut(strings.Trim(e, `"`), "=")
		env[k] = v
		if strings.HasPrefix(k, "SHOJI_") && !bin.knownEnv(t, k) {
			t.Errorf("%s: Environment %s is not read by the binary", file, k)
		}
	}
	// The unit's install steps put config.example.yaml at --config.
	cfgText, err := os.ReadFile("config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := manifestLoadConfig(t, "deploy/config.example.yaml", cfgText, env)
	if d := flags["data"]; d != "" && d != cfg.Data {
		t.Errorf("%s: ExecStart --data %s differs from config.example.yaml's data %s", file, d, cfg.Data)
	}
	manifestApplyFlags(&cfg, flags)
	writable := slices.Clone(svc["ReadWritePaths"])
	for _, d := range svc["StateDirectory"] {
		writable = append(writable, "/var/lib/"+d)
	}
	if !slices.ContainsFunc(writable, func(w string) bool { return manifestWithin(cfg.Data, w) }) {
		t.Errorf("%s: data %s is outside StateDirectory/ReadWritePaths %v, and ProtectSystem=strict makes it read-only", file, cfg.Data, writable)
	}
	if strings.Join(svc["User"], "") != "shoji" {
		t.Errorf("%s: User %v, want shoji", file, svc["User"])
	}
	for _, p := range []string{flags["config"], cfg.TLSCert, cfg.TLSKey, cfg.Audit.CheckpointKey} {
		if p != "" && !manifestWithin(p, "/etc/shoji") {
			t.Errorf("%s: %s is not under /etc/shoji, where the install steps put the broker's files", file, p)
		}
	}
	families := strings.Fields(strings.Join(svc["RestrictAddressFamilies"], " "))
	for _, f := range []string{"AF_UNIX", "AF_INET", "AF_INET6"} {
		if !slices.Contains(families, f) {
			t.Errorf("%s: RestrictAddressFamilies %v lacks %s (clamd's socket, syslog, the Internet)", file, families, f)
		}
	}
	ns := strings.Fields(strings.Join(svc["RestrictNamespaces"], " "))
	for _, n := range []string{"user", "pid", "net"} {
		if !slices.Contains(ns, n) {
			t.Errorf("%s: RestrictNamespaces %v lacks %s, which Chromium's sandbox creates", file, ns, n)
		}
	}
	for _, want := range []string{
		"install -d -m 0750 -o root -g shoji /etc/shoji/tls",
		"-o root -g shoji server.key /etc/shoji/tls/tls.key",
		"systemctl edit shoji", "ReadWritePaths=",
		"unix:/run/clamav/clamd.ctl", "audit.syslog", "audit keygen --out /etc/shoji/audit-checkpoint.key",
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("%s: the install notes do not say %q", file, want)
		}
	}

	t.Run("systemd-analyze verify", func(t *testing.T) {
		analyze, err := exec.LookPath("systemd-analyze")
		if err != nil {
			if os.Getenv("SHOJI_REQUIRE_DEPS") == "1" {
				t.Fatalf("systemd-analyze is required (SHOJI_REQUIRE_DEPS=1): %v", err)
			}
			t.Skipf("systemd-analyze not installed: %v", err)
		}
		dir := t.TempDir()
		unit := filepath.Join(dir, "shoji.service")
		text := strings.ReplaceAll(string(data), "/usr/local/bin/shoji", bin.path)
		if err := os.WriteFile(unit, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
		if err != nil || bytes.Contains(out, []byte("shoji.service")) {
			t.Errorf("%s: systemd-analyze verify: %v\n%s", file, err, out)
		}
	})
}

// ---------------------------------------------------------------------------
// .dockerignore and citations

// manifestIgnored reports whether the .dockerignore patterns exclude name
// (slash-separated, relative to the context): a pattern matches the path
// or one of its parent directories, "**" matches any number of
// directories, and the last matching pattern decides ("!" re-includes).
func manifestIgnored(patterns []string, name string) bool {
	ignored := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/")
		re := manifestGlobRE(p)
		parts := strings.Split(name, "/")
		for i := 1; i <= len(parts); i++ {
			if re.MatchString(strings.Join(parts[:i], "/")) {
				ignored = !neg
				break
			}
		}
	}
	return ignored
}

// manifestIgnorePatterns reads ../.dockerignore's patterns.
func manifestIgnorePatterns(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	return patterns
}

// manifestGlobRE turns a .dockerignore pattern into a regular expression.
func manifestGlobRE(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			if strings.HasPrefix(p[i:], "**/") {
				b.WriteString("(.*/)?")
				i += 2
			} else if strings.HasPrefix(p[i:], "**") {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// TestManifestsDockerignore checks that local state and secrets stay out
// of the image's build context, and that what the build needs stays in.
func TestManifestsDockerignore(t *testing.T) {
	patterns := manifestIgnorePatterns(t)
	for _, tc := range []struct {
		name    string
		ignored bool
	}{
		{"demo-data/store.db", true},
		{"demo-data/audit/audit-000001.jsonl", true},
		{"demo-data.checkpoint.key", true},
		{"demo-data.checkpoint.key.pub", true},
		{"demo-data2/store.db", true},
		{"data/store.db", true},
		{"data.checkpoint.key", true},
		{"srv/site.checkpoint.key", true},
		{"bin/shoji", true},
		{"bench-results/results.json", true},
		{"deploy/tls/tls.key", true},
		{"deploy/keys/audit-checkpoint.key", true},
		{"deploy/config.yaml", true},
		{"server.pem", true},
		{".git/HEAD", true},
		{"go.mod", false},
		{"go.sum", false},
		{"cmd/shoji/main.go", false},
		{"broker/audit/checkpoint.go", false},
		{"broker/checkpoint.go", false},
		{"web/index.html", false},
		{"web/static/viewer.js", false},
		{"broker/demo/pages/index.html", false},
		{"Dockerfile", false},
	} {
		if got := manifestIgnored(patterns, tc.name); got != tc.ignored {
			t.Errorf(".dockerignore: %s ignored = %v, want %v", tc.name, got, tc.ignored)
		}
	}
}

// TestManifestsCiteDocs checks that the repository's files (the code's
// comments as well as the deployment files and docs) cite documents that
// are in the repository: the design document is not.
func TestManifestsCiteDocs(t *testing.T) {
	self, err := filepath.Abs("manifests_test.go") // names the word it looks for
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules"):
			return filepath.SkipDir
		case d.IsDir() || !d.Type().IsRegular():
			return nil
		}
		if abs, _ := filepath.Abs(p); abs == self {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.IndexByte(data, 0) >= 0 {
			return nil // not text
		}
		for n, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "DESIGN") {
				t.Errorf("%s:%d cites the design document, which is not in the repository: %s", p, n+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	patterns := manifestIgnorePatterns(t)
	guide, err := os.ReadFile("../docs/deploy.md")
	if err != nil {
		t.Fatalf("docs/deploy.md: %v", err)
	}
	if !bytes.Contains(guide, []byte("## Checked only by reading")) {
		t.Errorf("docs/deploy.md: no section \"Checked only by reading\"")
	}
	// Every repository path the guide names exists.
	for _, m := range regexp.MustCompile("`((?:deploy|docs)/[A-Za-z0-9_./-]+)`").FindAllStringSubmatch(string(guide), -1) {
		_, err := os.Stat(filepath.Join("..", m[1]))
		switch {
		case err == nil:
		case manifestIgnored(patterns, m[1]):
			// Made by the admin (deploy/tls, deploy/keys), kept out of
			// the image's build context.
		default:
			t.Errorf("docs/deploy.md names %s, which is not in the repository", m[1])
		}
	}
}
