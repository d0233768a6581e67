#!/bin/busybox sh
# PID 1 of the kernel-matrix VM (tests/vm/run.sh builds the initramfs around it).
# Runs each check against the real hostprof binary and prints one line per check on the
# serial console:
#   MATRIX <kernel> <check> PASS|FAIL <detail>
# plus `MATRIX <kernel> feature <name> yes|no <detail>` lines (hostprof probe) for the docs,
# and `MATRIX <kernel> done <seconds>` last; then powers the VM off.
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin:/sbin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mkdir -p /sys/fs/bpf /sys/fs/cgroup /sys/kernel/debug
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t debugfs debugfs /sys/kernel/debug
# tracefs is left unmounted on purpose: hostprof mounts it when a classic tracepoint
# needs it, as on the development machine.
ip link set lo up

arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
K=$(arg matrix.kernel)
EXPECT=$(arg matrix.expect | tr ',' ' ')
T0=$(cut -d. -f1 /proc/uptime)
FAILS=0
result() { # CHECK PASS|FAIL DETAIL...
  c=$1 r=$2
  shift 2
  [ "$r" = PASS ] || FAILS=$((FAILS + 1))
  echo "MATRIX $K $c $r $*"
}
# A failed check's log on the console (for run.sh's copy): libbpf's lines, and the last
# lines of each verifier log (where the rejection is), never the whole of it.
dump_log() { # CHECK FILE
  awk -v c="$1" '
    { ring[NR % 40] = $0 }
    /-- END PROG LOAD LOG --/ { for (i = NR - 39; i <= NR; i++) if (i > 0) print "LOG " c ": " ring[i % 40]; next }
    /libbpf:|error|warn|info|debug/ { print "LOG " c ": " $0 }' "$2" | head -n 300
}
finish() {
  echo "MATRIX $K done $(($(cut -d. -f1 /proc/uptime) - T0))s $FAILS failed"
  sync
  poweroff -f
}

# Modules the cloud kernels build as such (virtio disk), in dependency order.
for m in $(cat /modules/order 2>/dev/null); do
  insmod "/modules/$m.ko" 2>/tmp/insmod.err || echo "insmod $m: $(cat /tmp/insmod.err)"
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
if [ -e /sys/kernel/btf/vmlinux ] && [ -b /dev/vda ]; then
  result boot PASS "$(uname -r), $(nproc) CPUs, BTF, /dev/vda"
else
  result boot FAIL "$(uname -r): btf=$([ -e /sys/kernel/btf/vmlinux ] && echo yes || echo no) vda=$([ -b /dev/vda ] && echo yes || echo no)"
fi

HP=/usr/bin/hostprof
TP=/testprogs
URL=http://127.0.0.1:7464

# run.sh --debug-script FILE: that script instead of the checks.
if [ -x /debug.sh ]; then
  . /debug.sh
  finish
fi

# --- hostprof probe: every facility, found by trying ---------------------------------
if $HP probe --json >/tmp/probe.json 2>/tmp/probe.err; then
  jq -r '.features | to_entries[] | "\(.key) \(if .value.available then "yes" else "no" end) \(.value.detail // "")"' \
    /tmp/probe.json 2>/dev/null | while read -r name yn detail; do
    echo "MATRIX $K feature $name $yn $detail"
  done
  jq -r '.plan.hooks[] | "\(.collector)/\(.hook) \(.mode) \(.reason)"' /tmp/probe.json 2>/dev/null |
    while read -r hook mode reason; do echo "MATRIX $K plan $hook $mode $reason"; done
  result probe PASS "$(jq -r '[.features | to_entries[] | select(.value.available) | .key] | join(",")' /tmp/probe.json)"
  # Facilities this kernel's config has: the probe must find them.
  for f in $EXPECT; do
    if [ "$(jq -r ".features.$f.available" /tmp/probe.json)" = true ]; then
      result "probe-$f" PASS "found, as CONFIG_ says"
    else
      result "probe-$f" FAIL "$(jq -r ".features.$f.detail" /tmp/probe.json)"
    fi
  done
else
  result probe FAIL "exit $?: $(tail -c 300 /tmp/probe.err)"
fi

# --- hostprof run: every collector starts, and each sees its workload ------------------
metric_sum() { # FILE NAME LABEL-REGEX: the sum of a family's samples whose labels match
  awk -v n="$2" -v re="$3" '{ name = $1; sub(/[{].*/, "", name) }
    name == n && $1 ~ re { s += $2 } END { printf "%d\n", s }' "$1"
}
scrape() { wget -q -O "$1" "$URL/metrics"; }

$HP run --listen 127.0.0.1:7464 --tcp-ports 9100 --log-level info >/tmp/run.log 2>&1 &
RUN=$!
ready=""
i=0
while [ $i -lt 240 ]; do
  if wget -q -O /tmp/readyz.json "$URL/readyz" 2>/dev/null; then ready=1; break; fi
  kill -0 $RUN 2>/dev/null || break
  sleep 0.5
  i=$((i + 1))
done
if [ -z "$ready" ]; then
  wget -q -O /tmp/readyz.json "$URL/readyz" 2>/dev/null
  result run FAIL "no ready /readyz after $((i / 2)) s: $(tail -c 400 /tmp/run.log | tr '\n' ' ') $(head -c 400 /tmp/readyz.json)"
else
  failed=$(jq -r '[.collectors | to_entries[] | select(.value.state != "running") | "\(.key): \(.value.reason)"] | join("; ")' /tmp/readyz.json)
  modes=$(jq -r '[.collectors | to_entries[] | "\(.key)=\([.value.hooks[].mode] | unique | join("+"))"] | join(" ")' /tmp/readyz.json)
  if [ -z "$failed" ] && [ "$(jq -r .status /tmp/readyz.json)" = ready ]; then
    caps=$(sed -n 's/.*capabilities now: //p' /tmp/run.log | head -1)
    result run PASS "0 collector failures, up in $((i / 2)) s: $modes; capabilities kept: $caps"
  else
    result run FAIL "$failed"
    dump_log run /tmp/run.log
  fi

  # syscalls: busybox dd makes 20,000 write(2) calls of one byte.
  scrape /tmp/m0
  timeout 60 dd if=/dev/zero of=/dev/null bs=1 count=20000 2>/dev/null
  sleep 1
  scrape /tmp/m1
  w0=$(metric_sum /tmp/m0 hostprof_syscall_latency_seconds_count 'syscall="write"')
  w1=$(metric_sum /tmp/m1 hostprof_syscall_latency_seconds_count 'syscall="write"')
  if [ $((w1 - w0)) -ge 20000 ] && [ $((w1 - w0)) -le 22000 ]; then
    result syscalls PASS "write(2) counted $((w1 - w0)) of dd's 20000"
  else
    result syscalls FAIL "write(2) counted $((w1 - w0)), dd made 20000"
  fi

  # TCP over loopback: 5 HTTP requests to busybox httpd on a listed port (its own series).
  c0=$(metric_sum /tmp/m1 hostprof_tcp_connection_duration_seconds_count 'port="9100"')
  mkdir -p /tmp/www
  echo hello >/tmp/www/hello
  httpd -p 127.0.0.1:9100 -h /tmp/www
  for n in 1 2 3 4 5; do timeout 10 wget -q -O /dev/null http://127.0.0.1:9100/hello; done
  killall httpd
  sleep 1
  scrape /tmp/m2
  c1=$(metric_sum /tmp/m2 hostprof_tcp_connection_duration_seconds_count 'port="9100"')
  if [ $((c1 - c0)) -ge 5 ]; then
    result tcp PASS "$((c1 - c0)) closed connections on port 9100 (5 made)"
  else
    result tcp FAIL "$((c1 - c0)) closed connections on port 9100, 5 made"
  fi

  # Block I/O on the virtio disk, against the kernel's own count (/proc/diskstats).
  dwrites() { awk '$3 == "vda" { print $8 }' /proc/diskstats; }
  b0=$(metric_sum /tmp/m2 hostprof_block_io_requests_total 'device="vda".*op="write"')
  k0=$(dwrites)
  timeout 60 dd if=/dev/zero of=/dev/vda bs=4k count=400 oflag=direct 2>/dev/null
  k1=$(dwrites)
  sleep 1
  scrape /tmp/m3
  b1=$(metric_sum /tmp/m3 hostprof_block_io_requests_total 'device="vda".*op="write"')
  ours=$((b1 - b0)) kern=$((k1 - k0))
  if [ $kern -ge 400 ] && [ $ours -ge $((kern * 97 / 100)) ] && [ $ours -le $((kern * 103 / 100 + 2)) ]; then
    result block PASS "vda writes: hostprof $ours, /proc/diskstats $kern (dd: 400)"
  else
    result block FAIL "vda writes: hostprof $ours, /proc/diskstats $kern (dd: 400)"
  fi

  rq=$(metric_sum /tmp/m3 hostprof_runqueue_latency_seconds_count '')
  if [ "$rq" -gt 0 ]; then
    result runqueue PASS "$rq wakeup-to-run latencies"
  else
    result runqueue FAIL "no run-queue latency observed"
  fi
fi
kill -INT $RUN 2>/dev/null
i=0
while kill -0 $RUN 2>/dev/null && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
if kill -0 $RUN 2>/dev/null; then
  result stop FAIL "still running 30 s after SIGINT"
  kill -9 $RUN
else
  wait $RUN
  rc=$?
  [ $rc -eq 0 ] && result stop PASS "clean exit on SIGINT" || result stop FAIL "exit $rc: $(tail -c 300 /tmp/run.log | tr '\n' ' ')"
fi

# --- the fallback attach modes, forced: each collector runs or says why not -------------
run_mode() { # MODE EXPECTED-FAILURES (collectors that cannot take MODE, sorted) [CHECK FLAGS]
  check=${3:-run-$1}
  $HP run --listen 127.0.0.1:7465 --attach-mode "$1" --log-level warn ${4:-} >/tmp/run-$1.log 2>&1 &
  pid=$!
  i=0
  while [ $i -lt 240 ] && ! wget -q -O /tmp/readyz-$1.json http://127.0.0.1:7465/readyz 2>/dev/null; do
    kill -0 $pid 2>/dev/null || break
    sleep 0.5
    i=$((i + 1))
  done
  failed=$(jq -r '[.collectors | to_entries[] | select(.value.state != "running") | .key] | sort | join(" ")' /tmp/readyz-$1.json 2>/dev/null)
  why=$(jq -r '[.collectors | to_entries[] | select(.value.state != "running") | "\(.key): \(.value.reason)"] | join("; ")' /tmp/readyz-$1.json 2>/dev/null)
  wget -q -O /tmp/mm0 http://127.0.0.1:7465/metrics
  timeout 60 dd if=/dev/zero of=/dev/null bs=1 count=2000 2>/dev/null
  sleep 1
  wget -q -O /tmp/mm1 http://127.0.0.1:7465/metrics
  w=$(($(metric_sum /tmp/mm1 hostprof_syscall_latency_seconds_count 'syscall="write"') - $(metric_sum /tmp/mm0 hostprof_syscall_latency_seconds_count 'syscall="write"')))
  if [ ! -s /tmp/readyz-$1.json ]; then
    result "$check" FAIL "no /readyz: $(tail -c 300 /tmp/run-$1.log | tr '\n' ' ')"
    dump_log "$check" /tmp/run-$1.log
  elif [ "$failed" != "$2" ]; then
    result "$check" FAIL "not running: '$failed' (expected '$2'): $why"
    dump_log "$check" /tmp/run-$1.log
  elif [ $w -lt 2000 ]; then
    result "$check" FAIL "write(2) counted $w of dd's 2000"
  else
    result "$check" PASS "all collectors${2:+ but $2} run, write(2) counted $w of 2000${why:+; $why}"
  fi
  kill -INT $pid 2>/dev/null
  wait $pid 2>/dev/null
}
run_mode raw_tp ""
run_mode tracepoint "block tcp"
# Exact native-histogram buckets (--native-schema): every latency program's variants load
# with the bucket search and still count.
run_mode tp_btf "" native-tp_btf "--native-schema 3"
run_mode raw_tp "" native-raw_tp "--native-schema 3"
run_mode tracepoint "block tcp" native-tracepoint "--native-schema 3"

# --- a kernel without BTF is refused, with what is missing named ----------------------
: >/tmp/no-btf
if mount --bind /tmp/no-btf /sys/kernel/btf/vmlinux; then
  timeout 60 $HP run --listen 127.0.0.1:7466 >/tmp/nobtf.log 2>&1
  rc=$?
  umount /sys/kernel/btf/vmlinux
  if [ $rc -ne 0 ] && grep -q 'cannot run: this kernel exposes no BTF' /tmp/nobtf.log &&
    grep -q -- '--btf FILE' /tmp/nobtf.log && grep -q 'CONFIG_DEBUG_INFO_BTF' /tmp/nobtf.log; then
    result refuse-no-btf PASS "exit $rc: $(grep -o 'cannot run: [^(]*' /tmp/nobtf.log | head -1)"
  else
    result refuse-no-btf FAIL "exit $rc: $(tail -c 300 /tmp/nobtf.log | tr '\n' ' ')"
  fi
else
  result refuse-no-btf FAIL "cannot hide /sys/kernel/btf/vmlinux"
fi

# --- hostprof record: profiles of a known process, with its stacks ---------------------
folded_sum() { # FILE REGEX: samples whose stack matches
  awk -v re="$2" '$0 ~ re { s += $NF } END { printf "%.0f\n", s }' "$1"
}
record_cpu() { # CHECK CLOCK
  # Longer than any record here takes, start-up included (seconds under TCG on a busy
  # host): killed once the record is written.
  $TP/cpu_ratio 120 &
  p=$!
  sleep 0.3
  if ! timeout 60 $HP record --duration 4s --pid $p --format folded --frequency 200 --sampling-clock "$2" \
    --log-level debug -o /tmp/cpu.folded >/tmp/rec.log 2>&1; then
    result "$1" FAIL "record exit $?: $(tail -c 300 /tmp/rec.log | tr '\n' ' ')"
    dump_log "$1" /tmp/rec.log
    kill $p 2>/dev/null
    wait $p 2>/dev/null
    return
  fi
  kill $p 2>/dev/null
  wait $p 2>/dev/null
  all=$(folded_sum /tmp/cpu.folded .)
  three=$(folded_sum /tmp/cpu.folded 'main;run_workload;hot_three_quarters;spin')
  one=$(folded_sum /tmp/cpu.folded 'main;run_workload;hot_one_quarter;spin')
  # The 3:1 ratio itself is measured by the privileged tests (tests/bpf): under TCG the
  # guest's ticks come late and in bursts, a few dozen samples. Here: the stacks, and the
  # larger share where it belongs.
  if [ "$all" -ge 20 ] && [ "$one" -gt 0 ] && [ "$three" -gt "$one" ]; then
    result "$1" PASS "$all samples, main;run_workload;hot_three_quarters;spin $three : hot_one_quarter $one"
  else
    result "$1" FAIL "$all samples, hot_three_quarters $three : hot_one_quarter $one (3:1 expected, >= 20 samples); $(head -c 300 /tmp/cpu.folded | tr '\n' '|')"
    dump_log "$1" /tmp/rec.log
  fi
}
tick=$(jq -r '.features.tick.available' /tmp/probe.json 2>/dev/null)
if [ "$tick" = true ]; then
  record_cpu record-cpu-tick tick
else
  echo "MATRIX $K note kallsyms: $(grep -E ' (tick_sched_timer|tick_nohz_handler|tick_sched_handle|asm_sysvec_apic_timer_interrupt)' /proc/kallsyms | tr '\n' ' ') kptr_restrict=$(cat /proc/sys/kernel/kptr_restrict)"
  result record-cpu-tick PASS "skipped: tick sampler unavailable ($(jq -r .features.tick.detail /tmp/probe.json))"
fi
record_cpu record-cpu-clock cpu-clock

$TP/offcpu_sleep 1200 &
p=$!
if timeout 60 $HP record --off-cpu --duration 3s --pid $p --format folded -o /tmp/off.folded >/tmp/rec.log 2>&1; then
  all=$(folded_sum /tmp/off.folded .)
  us=$(folded_sum /tmp/off.folded 'main;sleepy_function')
  ks=$(folded_sum /tmp/off.folded 'main;sleepy_function;.*sys_nanosleep')
  if [ "$us" -gt 0 ] && [ "$ks" -gt 0 ]; then
    result record-offcpu PASS "$((all / 1000000)) ms blocked, main;sleepy_function $((us / 1000000)) ms, $((ks / 1000000)) ms of it in sys_nanosleep"
  else
    result record-offcpu FAIL "main;sleepy_function $us ns, in sys_nanosleep $ks ns; $(head -c 300 /tmp/off.folded | tr '\n' '|')"
  fi
else
  result record-offcpu FAIL "record exit $?: $(tail -c 300 /tmp/rec.log | tr '\n' ' ')"
  dump_log record-offcpu /tmp/rec.log
fi
kill $p 2>/dev/null
wait $p 2>/dev/null

# User stacks without frame pointers (unwind tables walked in BPF): an -O2
# -fomit-frame-pointer program, on-CPU (cpu-clock: the tick may be unavailable) and
# off-CPU. The walker must load here (no fallback to frame pointers) and the stacks reach
# main.
record_unwind() { # CHECK MODE CHAIN [record flags...]
  check=$1 mode=$2 chain=$3
  shift 3
  $TP/unwind_target "$mode" &
  p=$!
  sleep 0.3
  if timeout 60 $HP record --duration 4s --pid $p --format folded "$@" -o /tmp/unw.folded >/tmp/rec.log 2>&1; then
    all=$(folded_sum /tmp/unw.folded .)
    full=$(folded_sum /tmp/unw.folded "$chain")
    how=$(grep -o 'user stacks: .*' /tmp/rec.log | head -1)
    case $how in
    *"unwind tables"*)
      if [ "$all" -gt 0 ] && [ $((full * 100)) -ge $((all * 90)) ]; then
        result "$check" PASS "$full of $all samples have $chain ($how)"
      else
        result "$check" FAIL "$full of $all samples have $chain; $(sort -t' ' -k2 -nr /tmp/unw.folded | head -3 | cut -c1-200 | tr '\n' '|')"
      fi
      ;;
    *) result "$check" FAIL "the walker did not load: $how" ;;
    esac
  else
    result "$check" FAIL "record exit $?: $(tail -c 300 /tmp/rec.log | tr '\n' ' ')"
    dump_log "$check" /tmp/rec.log
  fi
  kill $p 2>/dev/null
  wait $p 2>/dev/null
}
record_unwind unwind-cpu chain '_start;.*main;chain_a;chain_b' --frequency 200 --sampling-clock cpu-clock
record_unwind unwind-offcpu sleep '_start;.*main;sleep_loop;' --off-cpu

# Python functions in the stacks of Debian's python3 (CPython 3.11 frames walked in BPF),
# in place of the interpreter loop's native frames: Py_BytesMain below the Python chain.
cat >/tmp/chain.py <<'EOF'
def leaf(n):
    s = 0
    for i in range(n):
        s += i * i
    return s

def middle():
    leaf(20000)

def top():
    while True:
        middle()

top()
EOF
python3 -S /tmp/chain.py &
p=$!
sleep 0.5
if timeout 60 $HP record --duration 4s --pid $p --format folded --frequency 200 --sampling-clock cpu-clock -o /tmp/py.folded >/tmp/rec.log 2>&1; then
  all=$(folded_sum /tmp/py.folded .)
  full=$(folded_sum /tmp/py.folded 'Py_BytesMain;.*<module>;top;middle;leaf')
  how=$(grep -o 'user stacks: .*' /tmp/rec.log | head -1)
  case $how in
  *"Python frames"*)
    if [ "$all" -gt 0 ] && [ $((full * 100)) -ge $((all * 90)) ]; then
      result python-cpu PASS "$full of $all samples have Py_BytesMain;...;<module>;top;middle;leaf"
    else
      result python-cpu FAIL "$full of $all samples have the chain; $(sort -t' ' -k2 -nr /tmp/py.folded | head -3 | cut -c1-300 | tr '\n' '|')"
    fi
    ;;
  *) result python-cpu FAIL "no Python frames: $how" ;;
  esac
else
  result python-cpu FAIL "record exit $?: $(tail -c 300 /tmp/rec.log | tr '\n' ' ')"
  dump_log python-cpu /tmp/rec.log
fi
kill $p 2>/dev/null
wait $p 2>/dev/null

finish
