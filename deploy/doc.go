// Package deploy holds no code. Its tests read the deployment files beside
// it (the Dockerfile, compose.yaml, the Kubernetes manifests, the systemd
// unit and the seccomp profile) and check them against what the shoji
// binary expects, so that the files cannot drift from the code unnoticed.
package deploy
