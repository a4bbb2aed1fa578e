# Sourced by the agent benchmarks (run.sh, hub.sh): processes they start, loopback ports
# and what /proc says about a process.

# Every process started goes into pids; all are stopped when the script exits.
pids=()
bench_cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap bench_cleanup EXIT

# A free loopback port (the kernel picks it).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# status_kb PID FIELD: a kB field of /proc/PID/status (VmHWM, VmRSS)
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
# CPU seconds (user + system) a process has used so far
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.3f\n", ($12 + $13) / t }' "/proc/$1/stat"; }
