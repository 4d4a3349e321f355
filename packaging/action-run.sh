#!/usr/bin/env bash
# action-run.sh is the GitHub Action's step that runs a command under the
# lock (action.yml). The inputs arrive in the environment, never pasted into
# a script, so that no input can inject shell code:
#
#   INPUT_RUN      the command, run by bash -eo pipefail -c (required)
#   INPUT_TABLE    --table;  INPUT_LOCAL=true: --local
#   INPUT_KEY      --key;    INPUT_TIMEOUT: --timeout
#   INPUT_ARGS     more options for locked-run, split at white space
#   LOCKED_RUN     the binary (default: locked-run on PATH)
#
# locked-run replaces this script (exec), so a cancelled job's signals reach
# it, and its exit status is the step's.
set -euo pipefail

die() {
	echo "locked-run action: $*" >&2
	exit 125
}

[[ -n ${INPUT_RUN:-} ]] || die "the input \"run\" is empty: give the command to run under the lock"

args=()
if [[ -n ${INPUT_TABLE:-} ]]; then args+=(--table "$INPUT_TABLE"); fi
case ${INPUT_LOCAL:-false} in
true) args+=(--local) ;;
false | "") ;;
*) die "the input \"local\" is \"$INPUT_LOCAL\": give true or false" ;;
esac
if [[ -n ${INPUT_KEY:-} ]]; then args+=(--key "$INPUT_KEY"); fi
if [[ -n ${INPUT_TIMEOUT:-} ]]; then args+=(--timeout "$INPUT_TIMEOUT"); fi
extra=()
read -r -a extra <<<"${INPUT_ARGS:-}"

# ${a[@]+"${a[@]}"}: an empty array under set -u in bash 3.2 (macOS).
exec "${LOCKED_RUN:-locked-run}" ${args[@]+"${args[@]}"} ${extra[@]+"${extra[@]}"} -- bash --noprofile --norc -eo pipefail -c "$INPUT_RUN"
