// The pod sandbox ("pause") image's one program, our own: the usual image
// comes from a registry this machine cannot reach.
module aiagents.invalid/sandbox/kube/pause

go 1.24.0
