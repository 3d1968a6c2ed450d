# Sourced by the scripts in this folder: `step OUT climdiff-args...` runs a climdiff command unless
# its output OUT is already complete, so re-running a script after an interruption continues it
# (climdiff resumes an unfinished output and refuses to redo a finished one).
step() {
    local out=$1
    shift
    if [ -e "$out" ] && climdiff info --json "$out" 2>/dev/null |
        python3 -c 'import json, sys; d = json.load(sys.stdin); sys.exit(0 if d.get("run", d).get("complete") else 1)'; then
        echo "$out: complete, kept"
    else
        climdiff "$@"
    fi
}
