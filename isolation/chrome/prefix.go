package chrome

import "os/exec"

// prefixCommand makes cmd run through the command that prefix returns for
// sessionID (Config.CommandPrefix), when there is one. The prefix must exec
// the browser in place, so that the process started is the browser.
func prefixCommand(cmd *exec.Cmd, prefix func(string) []string, sessionID string) {
	if prefix == nil {
		return
	}
	pre := prefix(sessionID)
	if len(pre) == 0 {
		return
	}
	args := make([]string, 0, len(pre)+len(cmd.Args))
	args = append(args, pre...)
	args = append(args, cmd.Path)
	if len(cmd.Args) > 1 {
		args = append(args, cmd.Args[1:]...)
	}
	cmd.Path, cmd.Args = pre[0], args
}
