package track

import "vigil/internal/proc"

// Credential is a resolved user and group to run a script as (the script's
// `user USER [GROUP]`, else script_user); the daemon resolves names.
type Credential = proc.Credential
