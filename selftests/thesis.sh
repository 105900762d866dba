#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The thesis's experiment (chapters 5 and 6) on the testbed of figure 5.1
# (testbed.sh, shaped: up1 1 Mbit, up2 and up3 10 Mbit), in the guest. `make
# thesis` (tools/build/thesis.sh) boots the bench kernel and runs it:
#
#   selftests/vm/run.sh --kernel BZIMAGE --module mpbal.ko --tool mpbalctl \
#       -- env THESIS_PARTS="calib sizes mixed delay" /selftests/thesis.sh
#
# Parts (THESIS_PARTS, default all four; calibration runs whenever another
# part does, first):
#   calib  link-bound check: bulk TCP (two connections) pinned by a plain
#          route to each uplink alone, then to each of the three at once;
#          each must carry >= THESIS_CALIB_PCT (95) % of its tbf rate,
#          measured from the uplink's tx_bytes over a steady 4 s window
#          (tbf meters the same bytes: the whole frame, Ethernet header
#          included; TCP payload is 99.3% of it at MTU 9000). A step that
#          falls short is tried once more; failing twice, the guest is
#          CPU-bound and nothing is measured: exit 1.
#   sizes  figures 6.1-6.10 and 6.12: for each file size (THESIS_SIZES,
#          default 8k 16k 64k 128k 512k 1m 2m; "all" adds 4m 8m 16m) srcA
#          and srcB each send COUNT files to each of the four destination
#          addresses. The thesis ran scp one file after the other; here the
#          files of one source to one destination go one after the other
#          and the 8 source x destination streams run side by side, so that
#          the links are loaded. COUNT (THESIS_COUNTS, see th_count): by
#          default the thesis's 20 up to 64k, then 1.25 MiB a stream (the
#          thesis's 20/5 with THESIS_COUNTS=thesis: 1.4 GB a configuration,
#          hours).
#   mixed  figure 6.11: 16 concurrent transfers of mixed sizes, 8 per source,
#          2 to each destination address at a time: srcA 8m 4m 2m 512k 128k
#          64k 16k 8k, srcB 8m 4m 2m 1m 512k 64k 16k 8k (31.8 MB; a perfect
#          balancer over 21 Mbit/s takes 12.1 s).
#   delay  the mixed workload again with different path delays: netem 5, 20
#          and 40 ms on the egress of testa, testb and testc toward the
#          destinations (testbed_delay; not on the balancer, whose tbf stays
#          the only qdisc on the uplinks and shapes as before). Per-packet
#          balancing over these paths reorders; the sources' counters show
#          it. Calibrated again first.
# Configurations (THESIS_CONFIGS, default all): stock-l3 and stock-l4
# (testbed_multipath_route 1 1 1, mpbal not loaded,
# fib_multipath_hash_policy 0 and 1), then every name in
# net.mpbal.available_strategies (bal_eq_route 1 1 1 and bal_strategy; a
# listed strategy that cannot be selected is an error), then flowlet-nowait:
# flowlet with net.mpbal.flowlet_queue_wait=0 (the others keep its default,
# 1). Every mpbal
# configuration gets the capacities 1mbit/10mbit/10mbit (mpbalctl link set)
# and net.mpbal.bw_interval_ms=250, bw_ewma_log=2 (the bandwidth suite's
# settings; THESIS_BW="MS LOG" to change). net.mpbal.flowlet_gap_us keeps
# its default. THESIS_DELAY_CONFIGS is the delay part's list (default: the
# same without stock-l3, whose makespan, ~3 min, hash placement decides
# and delay does not change).
#
# The testbed runs with MTU 9000 on every link from the sources to the
# destinations (TCP's MSS is then 8948 both ways) and offloads off: each
# TCP segment is one packet that the balancer sees and places (per-packet
# balancing stays per packet), and a TCG guest, which forwards only about
# a thousand packets a second, needs the large segments to fill 21 Mbit/s.
# The sources keep no TCP metrics between connections
# (tcp_no_metrics_save), so one configuration does not inherit another's
# ssthresh.
#
# Measured per configuration and workload, printed on the console:
#   THESIS: calib NAME DEV RATE_BPS TX_BPS PCT ok|low CPU_PCT
#   THESIS: run VARIANT WORKLOAD CONFIG key=value.. (makespan, transfers,
#           payload bytes, per uplink tx bytes/packets and tbf drops, the
#           sources' TCP counters: RetransSegs, OutSegs, TCPSACKReorder,
#           TCPTSReorder, TCPRenoReorder, TCPDSACKRecv, summed over srcA
#           and srcB; the guest's CPU use)
#   THESIS: xfer VARIANT WORKLOAD CONFIG SRC DST SPORT SIZE START SECONDS STATUS
# and the host (tools/thesis/report.py) makes the tables and charts.
#
# Sourced (by mpbal_thesis.sh), it only defines the th_* functions.

# shellcheck source=selftests/testbed.sh
. "$(dirname "${BASH_SOURCE[0]}")/testbed.sh"

TH_PORT=5001
TH_SIZES_ALL="8k 16k 64k 128k 512k 1m 2m 4m 8m 16m"
# Without THESIS_SIZES: up to 2m (THESIS_SIZES=all: all ten). The time is
# set by the configurations that leave much on the 1 Mbit uplink (stock
# ECMP, route, session): over the eight of them about 19 s per MB a
# configuration sends, so 4m, 8m and 16m, one file a stream, add 235 MB:
# ~75 min.
TH_SIZES_DEFAULT="8k 16k 64k 128k 512k 1m 2m"
# The mixed workload, dealt round-robin over the four destinations (-r),
# two transfers per destination at a time: all 16 run at once.
TH_MIXED_A="8m,4m,2m,512k,128k,64k,16k,8k"
TH_MIXED_B="8m,4m,2m,1m,512k,64k,16k,8k"
TH_DELAYS=(5ms 20ms 40ms)	# netem on testa, testb, testc
TH_MTU=9000
TH_CALIB_PCT=${THESIS_CALIB_PCT:-95}
# The capacities mpbal is told and the calibration's reference: the tbf
# rates in bit/s (testbed.sh TB_SHAPE_RATES and TB_SHAPE_BPS).
TH_RATE_BPS=("${TB_SHAPE_BPS[@]}")
read -r TH_BW_MS TH_BW_LOG <<<"${THESIS_BW:-250 2}"
# The source counters summed per run (Tcp: from snmp, TcpExt: from netstat).
# TCPDSACKRecv: the receivers' reports of segments that arrived twice,
# retransmissions that reordering (taken for a loss) made spurious.
TH_TCP_KEYS=(RetransSegs OutSegs TCPSACKReorder TCPTSReorder TCPRenoReorder TCPDSACKRecv)

th_out() { printf 'THESIS: %s\n' "$*"; }

# th_bytes SIZE: bytes of a size word (8k, 1m).
th_bytes()
{
	case $1 in
	*k) echo $((${1%k} * 1024)) ;;
	*m) echo $((${1%m} * 1048576)) ;;
	*) echo "$1" ;;
	esac
}

# th_count SIZE: files per source per destination. THESIS_COUNTS "thesis":
# the thesis's 20 for sizes up to 512k and 5 above; "SMALL/LARGE": the same
# split with other numbers; default "scaled": the thesis's 20 up to 64k,
# above as many as make 1.25 MiB a stream, at least one (128k 10, 512k 2,
# then 1), so that a configuration's sizes take minutes, not hours.
th_count()
{
	local small large b

	b=$(th_bytes "$1")
	case ${THESIS_COUNTS:-scaled} in
	scaled)
		if [ "$b" -le 65536 ]; then echo 20; else echo $((b >= 1310720 ? 1 : 1310720 / b)); fi
		return ;;
	thesis) small=20 large=5 ;;
	*) IFS=/ read -r small large <<<"$THESIS_COUNTS" ;;
	esac
	if [ "$b" -le 524288 ]; then echo "$small"; else echo "$large"; fi
}

# th_setup: the shaped testbed without offloads, MTU 9000 from the sources
# to the destinations, the flowgen servers, sleepers in the sources (their
# counters are then read without a fork).
th_setup()
{
	local ns d

	testbed_up --shape --no-offload || return 1
	testbed_jumbo || return 1
	# testbed_jumbo stops at the routers; the destinations' links too, or
	# the destinations would announce (and get) an MSS of 1460.
	for ns in "${TB_ROUTERS[@]}"; do
		for d in eth1 eth2; do
			ip -n "$ns" link set "$d" mtu "$TH_MTU" || return 1
		done
	done
	for ns in "$NS_DST1" "$NS_DST2"; do
		for d in eth0 eth1 eth2; do
			ip -n "$ns" link set "$d" mtu "$TH_MTU" || return 1
		done
	done
	# txrehash=0: the veths hand the sender's skb->hash (its socket's
	# txhash) to the balancer, whose L4 ECMP hash (policy 1) takes it as
	# is; TCP draws a new txhash after a timeout, so a stock flow stuck on
	# the slow uplink would hop to another one, which no real router's
	# 5-tuple hash allows. With rehash off the hash is fixed per connection.
	for ns in "$NS_SRCA" "$NS_SRCB"; do
		ns_sysctl "$ns" net.ipv4.tcp_no_metrics_save=1 net.core.txrehash=0 || return 1
		ns_pin "$ns" || return 1
	done
	dst_servers "$TH_PORT" || return 1
}

# th_stock: no mpbal, no route to DST_NET (the start of every stock and
# calibration setup).
TH_MPBAL_READY=0
th_stock()
{
	TH_MPBAL_READY=0
	ip -n "$NS_BAL" route del "$DST_NET" 2>/dev/null
	if mpbal_loaded; then
		rmmod mpbal || return 1
	fi
	return 0
}

# th_strategies: TH_STRATEGIES = what the module lists (loads it).
TH_STRATEGIES=()
th_strategies()
{
	# shellcheck disable=SC2119 # no module parameters: the defaults
	mpbal_loaded || mpbal_load || { echo "insmod: $MPBAL_LOAD_ERR" >&2; return 1; }
	mpbal_strategies || return 1
	TH_STRATEGIES=("${MPBAL_STRATEGIES[@]}")
}

# th_config NAME: set the balancer up as configuration NAME (stock-l3,
# stock-l4 or a strategy). Errors go to stderr.
th_config()
{
	local policy=1

	case $1 in
	stock-l3 | stock-l4)
		th_stock || { echo "th_config $1: rmmod failed" >&2; return 1; }
		[ "$1" = stock-l3 ] && policy=0
		ns_sysctl "$NS_BAL" net.ipv4.fib_multipath_hash_policy=$policy || return 1
		testbed_multipath_route 1 1 1 || { echo "th_config $1: multipath route" >&2; return 1; }
		;;
	*)
		# flowlet-nowait: flowlet with net.mpbal.flowlet_queue_wait=0.
		local strategy=$1 wait=1
		[ "$1" = flowlet-nowait ] && strategy=flowlet wait=0
		# From one strategy to the next only the strategy changes.
		if [ "$TH_MPBAL_READY" = 1 ] && mpbal_loaded; then
			bal_strategy "$strategy" || { echo "th_config $1: strategy $strategy could not be selected" >&2; return 1; }
			bal sysctl -qw net.mpbal.flowlet_queue_wait=$wait || { echo "th_config $1: flowlet_queue_wait" >&2; return 1; }
			return 0
		fi
		if ! mpbal_loaded; then
			ip -n "$NS_BAL" route del "$DST_NET" 2>/dev/null
			# shellcheck disable=SC2119 # no module parameters: the defaults
			mpbal_load || { echo "th_config $1: insmod: $MPBAL_LOAD_ERR" >&2; return 1; }
		fi
		bal_eq_route 1 1 1 || { echo "th_config $1: equalize route" >&2; return 1; }
		bal sysctl -qw net.mpbal.bw_interval_ms="$TH_BW_MS" net.mpbal.bw_ewma_log="$TH_BW_LOG" ||
			{ echo "th_config $1: bw sysctls" >&2; return 1; }
		bal_capacities "${TH_RATE_BPS[@]}" || { echo "th_config $1: capacities: $BAL_CAPS" >&2; return 1; }
		bal_strategy "$strategy" || { echo "th_config $1: strategy $strategy could not be selected" >&2; return 1; }
		bal sysctl -qw net.mpbal.flowlet_queue_wait=$wait || { echo "th_config $1: flowlet_queue_wait" >&2; return 1; }
		TH_MPBAL_READY=1
		;;
	esac
}

# th_tcp_read NS ARRAY: ARRAY[KEY] = the TH_TCP_KEYS counters of NS (Tcp: of
# /proc/net/snmp, TcpExt: of /proc/net/netstat; missing ones are 0).
th_tcp_read()
{
	local ns=$1 f l prefix prev="" hdr=() val=() i k
	local -n _t=$2
	local -A all=()

	for f in /proc/net/snmp /proc/net/netstat; do
		ns_read "$ns" "$f" || return 1
		for l in "${NS_LINES[@]}"; do
			prefix=${l%%:*}
			if [ "$prefix" = "$prev" ]; then
				read -r -a val <<<"${l#*:}"
				for i in "${!hdr[@]}"; do all[${hdr[i]}]=${val[i]:-0}; done
				prev=""
			else
				read -r -a hdr <<<"${l#*:}"
				prev=$prefix
			fi
		done
	done
	# shellcheck disable=SC2004 # _t is an associative array
	for k in "${TH_TCP_KEYS[@]}"; do _t[$k]=${all[$k]:-0}; done
}

# th_snap ARRAY: one process in the balancer reads up1..up3's tx bytes and
# packets and `tc -s qdisc show`; ARRAY (global, associative) gets
# "txb:DEV", "txp:DEV" and "drop:DEV" (the tbf's drop counter).
th_snap()
{
	declare -gA "$1"
	local -n _s=$1
	local out l dev=""

	# shellcheck disable=SC2016 # expanded by the inner bash
	out=$(bal bash -c '
		for d in up1 up2 up3; do
			read -r b </sys/class/net/$d/statistics/tx_bytes
			read -r p </sys/class/net/$d/statistics/tx_packets
			echo "t $d $b $p"
		done
		grep -s "^flowlet_" /proc/net/mpbal/stats
		tc -s qdisc show') || return 1
	_s=()
	while read -r l; do
		if [[ $l =~ ^t\ (up[123])\ ([0-9]+)\ ([0-9]+) ]]; then
			_s["txb:${BASH_REMATCH[1]}"]=${BASH_REMATCH[2]}
			_s["txp:${BASH_REMATCH[1]}"]=${BASH_REMATCH[3]}
		elif [[ $l =~ ^(flowlet_[a-z]+)\ ([0-9]+)$ ]]; then
			_s["s:${BASH_REMATCH[1]}"]=${BASH_REMATCH[2]}
		elif [[ $l =~ ^qdisc\ [^\ ]+\ [^\ ]+\ dev\ ([^\ ]+) ]]; then
			dev=${BASH_REMATCH[1]}
		elif [[ $l =~ \(dropped\ ([0-9]+), ]] && [ -n "$dev" ]; then
			_s["drop:$dev"]=${BASH_REMATCH[1]}
			dev=""
		fi
	done <<<"$out"
}

# th_cpu VAR: VAR = "BUSY TOTAL", the guest's CPU time (all CPUs, USER_HZ
# ticks) from /proc/stat; busy is everything but idle and iowait. Builtins
# only.
th_cpu()
{
	local _cpu u n s i w q sq st rest

	read -r _cpu u n s i w q sq st rest </proc/stat
	printf -v "$1" '%s %s' $((u + n + s + q + sq + st)) $((u + n + s + i + w + q + sq + st))
}

# th_cpu_pct "B0 T0" "B1 T1": the busy share between two th_cpu readings
# (100 = every vCPU busy).
th_cpu_pct()
{
	local b0 t0 b1 t1

	read -r b0 t0 <<<"$1"
	read -r b1 t1 <<<"$2"
	echo $((t1 > t0 ? 100 * (b1 - b0) / (t1 - t0) : 0))
}

# th_quiet: the uplinks idle (no tx for 0.3 s; what a run left queued
# has drained), so that a run starts from empty queues; bounded (10 s).
th_quiet()
{
	local tx=() i

	for ((i = 0; i < 25; i++)); do
		read -r -a tx <<<"$(th_tx_window 0.3)"
		[ $((tx[0] + tx[1] + tx[2])) = 0 ] && return 0
	done
	return 1
}

# th_run VARIANT WORKLOAD CONFIG: one workload (a size word or "mixed")
# from both sources; prints its run line and (unless TH_XFER_LINES=0) its
# xfer lines. Sets TH_RUN_N (transfers), TH_RUN_FAILED (failed or timed
# out), TH_RUN_PAYLOAD (bytes delivered), TH_RUN_MAKESPAN (ms) and
# TH_RUN_TXB (up1..up3's tx bytes). Returns 1 if a transfer failed.
TH_XFER_LINES=${TH_XFER_LINES:-1}
TH_RUN_TXB=()
th_run()
{
	local var=$1 wl=$2 cfg=$3 argsa argsb cnt total tmo t0 t1 c0 c1 ra rb k kv l d f
	local src src_ip st se t first=0 last=0 u
	local -A A0=() A1=() B0=() B1=()
	local xfers=()

	if [ "$wl" = mixed ]; then
		argsa=(-r -d "$DST_ALL" -j "$TH_MIXED_A" -P 2)
		argsb=(-r -d "$DST_ALL" -j "$TH_MIXED_B" -P 2)
		total=31768576
	else
		cnt=$(th_count "$wl")
		argsa=(-d "$DST_ALL" -j "$wl:$cnt" -P 1)
		argsb=("${argsa[@]}")
		total=$((8 * cnt * $(th_bytes "$wl")))
	fi
	# The deadline: 15 times a perfect balancer's time (stock ECMP with a
	# busy 1 Mbit uplink needs up to ~8 times), at least 60 s.
	tmo=$((total * 8 * 15 / 21000000 + 60))
	th_quiet || log_info "th_run: uplinks not idle before $var $wl $cfg"
	th_tcp_read "$NS_SRCA" A0
	th_tcp_read "$NS_SRCB" B0
	th_snap S0
	th_cpu c0
	t0=$(now_ms)
	bg_start XA $((tmo + 30)) "$NS_SRCA" flowgen xfer -p "$TH_PORT" -t "$tmo" "${argsa[@]}"
	bg_start XB $((tmo + 30)) "$NS_SRCB" flowgen xfer -p "$TH_PORT" -t "$tmo" "${argsb[@]}"
	bg_wait XA; ra=$?
	bg_wait XB; rb=$?
	t1=$(now_ms)
	th_cpu c1
	th_snap S1
	th_tcp_read "$NS_SRCA" A1
	th_tcp_read "$NS_SRCB" B1

	# "xfer DST SPORT SIZE START SECONDS STATUS" lines; START and SECONDS
	# have 6 decimals: microseconds without the dot. Makespan: the first
	# start to the last end over both sources (CLOCK_MONOTONIC).
	TH_RUN_N=0 TH_RUN_FAILED=0 TH_RUN_PAYLOAD=0
	for src in A B; do
		f=$MPBAL_TMP/X$src.out
		[ -f "$f" ] || continue
		while read -r k d l cnt st se t; do
			[ "$k" = xfer ] || continue
			TH_RUN_N=$((TH_RUN_N + 1))
			if [ "$t" = ok ]; then
				TH_RUN_PAYLOAD=$((TH_RUN_PAYLOAD + cnt))
			else
				TH_RUN_FAILED=$((TH_RUN_FAILED + 1))
			fi
			u=$((10#${st/./}))
			if [ "$u" -gt 0 ]; then
				[ "$first" = 0 ] || [ "$u" -lt "$first" ] && first=$u
				u=$((u + 10#${se/./}))
				[ "$u" -gt "$last" ] && last=$u
			fi
			if [ "$src" = A ]; then src_ip=$SRCA_IP; else src_ip=$SRCB_IP; fi
			xfers+=("$src_ip $d $l $cnt $st $se $t")
		done <"$f"
	done
	TH_RUN_MAKESPAN=$(((last - first) / 1000))
	TH_RUN_TXB=()
	kv="makespan_ms=$TH_RUN_MAKESPAN wall_ms=$((t1 - t0)) transfers=$TH_RUN_N failed=$TH_RUN_FAILED"
	kv+=" payload=$TH_RUN_PAYLOAD planned=$total rc=$ra,$rb cpu_pct=$(th_cpu_pct "$c0" "$c1")"
	for d in "${TB_UPLINKS[@]}"; do
		TH_RUN_TXB+=("$((${S1["txb:$d"]:-0} - ${S0["txb:$d"]:-0}))")
		kv+=" txb_$d=${TH_RUN_TXB[-1]} txp_$d=$((${S1["txp:$d"]:-0} - ${S0["txp:$d"]:-0}))"
		kv+=" drops_$d=$((${S1["drop:$d"]:-0} - ${S0["drop:$d"]:-0}))"
	done
	for k in "${TH_TCP_KEYS[@]}"; do
		kv+=" $k=$((A1[$k] - A0[$k] + B1[$k] - B0[$k]))"
	done
	# The flowlet strategy's moves and holds (the module's counters).
	for k in flowlet_moves flowlet_held; do
		if [ -n "${S1["s:$k"]:-}" ]; then
			kv+=" $k=$((S1["s:$k"] - ${S0["s:$k"]:-0}))"
		fi
	done
	th_out "run $var $wl $cfg $kv"
	if [ "$TH_XFER_LINES" != 0 ]; then
		for l in "${xfers[@]}"; do
			th_out "xfer $var $wl $cfg $l"
		done
	fi
	[ "$ra" = 0 ] && [ "$rb" = 0 ] && [ "$TH_RUN_FAILED" = 0 ] && [ "$TH_RUN_N" -gt 0 ]
}

# th_tx_window SECS: "B1 B2 B3 US", the growth of up1..up3's tx_bytes over
# SECS and the microseconds that took, both read by one process in the
# balancer (no fork between the reads and the clock).
th_tx_window()
{
	# shellcheck disable=SC2016 # expanded by the inner bash
	bal bash -c '
		t0=${EPOCHREALTIME/./}
		read -r a1 </sys/class/net/up1/statistics/tx_bytes
		read -r a2 </sys/class/net/up2/statistics/tx_bytes
		read -r a3 </sys/class/net/up3/statistics/tx_bytes
		sleep "$1"
		t1=${EPOCHREALTIME/./}
		read -r b1 </sys/class/net/up1/statistics/tx_bytes
		read -r b2 </sys/class/net/up2/statistics/tx_bytes
		read -r b3 </sys/class/net/up3/statistics/tx_bytes
		echo $((b1 - a1)) $((b2 - a2)) $((b3 - a3)) $((t1 - t0))' _ "$1"
}

# th_calib_try NAME "DEV.." "DST.." "SRCNS..": two bulk transfers per DEV
# at the same time, each DEV's to its DST (pinned to DEV by a /32 route)
# from its source namespace; after a 2 s warm-up (slow start, the tbf's
# initial bucket), DEV's tx rate over 4 s against its tbf rate. Prints one
# calib line per DEV (and adds it to TH_CALIB); returns 1 if any is below
# TH_CALIB_PCT. Two connections, not one: on the 1 Mbit uplink a lone
# flow of 9000-byte segments fills the tbf's 41 kB queue with 4 of them,
# and a tail loss there stalls it for a retransmission timeout (~1 s),
# which a 4 s window cannot absorb; that is TCP, not the guest's CPU.
th_calib_try()
{
	local name=$1 devs=() dsts=() nss=() i n rc=0 tx=() idx bps pct b p c0 c1 cpu v
	local -a pids=()

	read -r -a devs <<<"$2"
	read -r -a dsts <<<"$3"
	read -r -a nss <<<"$4"
	n=${#devs[@]}
	for ((i = 0; i < n; i++)); do
		idx=${devs[i]#up}
		bal ip route replace "${dsts[i]}/32" via "${TB_GWS[idx - 1]}" dev "${devs[i]}" || return 1
	done
	for ((i = 0; i < n; i++)); do
		idx=${devs[i]#up}
		# 10 s worth of the rate each: it outlasts the window unless
		# the guest is much faster than the link (it cannot be).
		b=$((TH_RATE_BPS[idx - 1] * 10 / 8))
		bg_start "CAL$i" 40 "${nss[i]}" flowgen tcp -d "${dsts[i]}" -p "$TH_PORT" -c 2 -P 2 -b "$b" -t 30
		pids+=("CAL$i")
	done
	sleep 2
	th_cpu c0
	read -r -a tx <<<"$(th_tx_window 4)"
	th_cpu c1
	cpu=$(th_cpu_pct "$c0" "$c1")
	for p in "${pids[@]}"; do bg_stop "$p" 2>/dev/null; done
	for ((i = 0; i < n; i++)); do
		idx=${devs[i]#up}
		bps=$((tx[idx - 1] * 8 * 1000000 / tx[3]))
		pct=$((bps * 1000 / TH_RATE_BPS[idx - 1]))
		v=ok
		[ "$pct" -ge $((TH_CALIB_PCT * 10)) ] || { v=low; rc=1; }
		TH_CALIB+=("$name ${devs[i]} ${TH_RATE_BPS[idx - 1]} $bps $((pct / 10)).$((pct % 10)) $v $cpu")
		th_out "calib ${TH_CALIB[-1]}"
		bal ip route del "${dsts[i]}/32"
	done
	# The killed transfers' queued data drains before the next step.
	th_quiet
	return $rc
}

# th_calib_one NAME "DEV.." "DST.." "SRCNS..": th_calib_try, and once more
# (NAME-retry) if a DEV was low: a guest that cannot forward the rates
# fails both, a stall of TCP's rarely hits two windows. TH_CALIB keeps the
# last try's lines.
TH_CALIB=()
th_calib_one()
{
	local keep=${#TH_CALIB[@]}

	th_calib_try "$@" && return 0
	TH_CALIB=("${TH_CALIB[@]:0:keep}")
	th_calib_try "$1-retry" "${@:2}"
}

# th_calibrate VARIANT: each uplink alone, then all three at once (the
# load the experiment puts on the guest). Returns 1 on any low figure and
# prints why.
th_calibrate()
{
	local var=$1 rc=0

	th_stock || return 1
	th_calib_one "$var-alone" up1 "$DST1_IP1" "$NS_SRCA" || rc=1
	th_calib_one "$var-alone" up2 "$DST1_IP1" "$NS_SRCA" || rc=1
	th_calib_one "$var-alone" up3 "$DST1_IP1" "$NS_SRCA" || rc=1
	th_calib_one "$var-together" "up1 up2 up3" "$DST1_IP1 $DST1_IP2 $DST2_IP1" \
		"$NS_SRCA $NS_SRCB $NS_SRCA" || rc=1
	if [ "$rc" != 0 ]; then
		echo "thesis: calibration FAILED: an uplink carried less than $TH_CALIB_PCT% of its tbf rate" >&2
		echo "thesis: the guest cannot forward 21 Mbit/s here (CPU-bound: a debug kernel, a" >&2
		echo "thesis: loaded host, another QEMU running?); no figures would mean anything" >&2
	fi
	return $rc
}

# th_configs: TH_CONFIGS = THESIS_CONFIGS or stock-l3 stock-l4 and every
# listed strategy; a name that is neither is an error.
TH_CONFIGS=()
th_configs()
{
	local c

	th_strategies || return 1
	if [ -n "${1:-}" ]; then
		read -r -a TH_CONFIGS <<<"$1"
	else
		TH_CONFIGS=(stock-l3 stock-l4 "${TH_STRATEGIES[@]}")
		[[ " ${TH_STRATEGIES[*]} " == *" flowlet "* ]] && TH_CONFIGS+=(flowlet-nowait)
	fi
	for c in "${TH_CONFIGS[@]}"; do
		case " stock-l3 stock-l4 ${TH_STRATEGIES[*]} flowlet-nowait " in
		*" $c "*) ;;
		*) echo "thesis: unknown configuration '$c' (stock-l3 stock-l4 ${TH_STRATEGIES[*]} flowlet-nowait)" >&2
			return 1 ;;
		esac
	done
}

th_main()
{
	local parts=" ${THESIS_PARTS:-calib sizes mixed delay} " c s sizes rc=0 dcfgs=()
	local t0

	want() { [[ $parts == *" $1 "* ]]; }
	sizes=${THESIS_SIZES:-$TH_SIZES_DEFAULT}
	[ "$sizes" = all ] && sizes=$TH_SIZES_ALL
	for s in $parts; do
		case $s in
		calib | sizes | mixed | delay) ;;
		*) echo "thesis: unknown part '$s' (calib sizes mixed delay)" >&2; exit 2 ;;
		esac
	done
	for s in $sizes; do
		[[ " $TH_SIZES_ALL " == *" $s "* ]] ||
			{ echo "thesis: unknown size '$s' ($TH_SIZES_ALL)" >&2; exit 2; }
	done
	mpbal_init ip tc jq flowgen mpbalctl timeout
	th_configs "${THESIS_CONFIGS:-}" || exit 1
	if [ -n "${THESIS_DELAY_CONFIGS:-}" ]; then
		read -r -a dcfgs <<<"$THESIS_DELAY_CONFIGS"
	else
		for c in "${TH_CONFIGS[@]}"; do
			[ "$c" = stock-l3 ] || dcfgs+=("$c")
		done
	fi
	for c in "${dcfgs[@]}"; do
		[[ " stock-l3 stock-l4 ${TH_STRATEGIES[*]} flowlet-nowait " == *" $c "* ]] ||
			{ echo "thesis: unknown delay configuration '$c'" >&2; exit 1; }
	done
	th_out "meta kernel=$(uname -r) cpus=$(nproc) strategies=$(IFS=,; echo "${TH_STRATEGIES[*]}")" \
		"configs=$(IFS=,; echo "${TH_CONFIGS[*]}") delay_configs=$(IFS=,; echo "${dcfgs[*]}")" \
		"counts=${THESIS_COUNTS:-scaled} bw=$TH_BW_MS/$TH_BW_LOG mtu=$TH_MTU delays=$(IFS=,; echo "${TH_DELAYS[*]}")"
	th_setup || die "testbed setup failed"

	t0=$(now_ms)
	th_calibrate base || exit 1
	log_info "calibration took $(($(now_ms) - t0)) ms"
	if want sizes; then
		# One setup per configuration: its sizes run back to back (as the
		# thesis's did; the route strategy keeps its destination table).
		for c in "${TH_CONFIGS[@]}"; do
			th_config "$c" || exit 1
			for s in $sizes; do
				t0=$(now_ms)
				th_run base "$s" "$c" || rc=1
				log_info "sizes $s $c: makespan $TH_RUN_MAKESPAN ms, wall $(($(now_ms) - t0)) ms"
			done
		done
	fi
	if want mixed; then
		for c in "${TH_CONFIGS[@]}"; do
			th_config "$c" || exit 1
			th_run base mixed "$c" || rc=1
			log_info "mixed $c: makespan $TH_RUN_MAKESPAN ms"
		done
	fi
	if want delay; then
		testbed_delay "${TH_DELAYS[@]}" || die "netem on the routers"
		th_calibrate delay || exit 1
		for c in "${dcfgs[@]}"; do
			th_config "$c" || exit 1
			th_run delay mixed "$c" || rc=1
			log_info "delay mixed $c: makespan $TH_RUN_MAKESPAN ms"
		done
		testbed_delay 0 0 0
	fi
	th_stock
	ns_delete_all
	[ "$rc" = 0 ] || echo "thesis: some transfers failed or timed out (see the run lines)" >&2
	return $rc
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	th_main
	exit $?
fi
