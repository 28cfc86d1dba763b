#!/usr/bin/env bash
# Runs inside the booted container of deploy/check_systemd.sh (as a unit, at boot): install and
# operate edge-nids as a user would; every result line is "ok ..." or "FAIL ...", times in s.
# Writes /out/report.txt and /out/rc, then powers the container off.
set -u
exec > >(tee /out/report.txt) 2>&1
T0=$EPOCHREALTIME
FAILED=0
elapsed() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
step() { printf -- '-- %7s s  %s\n' "$(elapsed)" "$*"; }
ok() { printf 'ok   %s\n' "$*"; }
fail() {
    printf 'FAIL %s\n' "$*"
    FAILED=1
}
finish() {
    echo "$FAILED" >/out/rc
    sync
    systemctl poweroff --no-block
    exit 0
}
trap finish EXIT
show() { systemctl show -P "$1" edge-nids; }
# wait_for SECONDS COMMAND...: true once COMMAND succeeds within SECONDS
wait_for() {
    local end=$((SECONDS + $1))
    shift
    while [ $SECONDS -lt $end ]; do
        "$@" && return 0
        sleep 0.1
    done
    "$@"
}
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

E=/opt/edge-nids/bin/edge-nids
PY=/opt/edge-nids/bin/python
CFG=/etc/edge-nids/config.yaml
systemctl is-system-running --wait >/dev/null 2>&1 || true
step "booted: $(systemctl --version | head -1), $(. /etc/os-release && echo "$PRETTY_NAME")"

# a LAN: en0 here, en0p in the namespace "lan" with a web server; the default route goes out en0
ip netns add lan
ip link add en0 type veth peer name en0p
ip link set en0p netns lan
ip addr add 10.77.0.1/24 dev en0
ip link set en0 up
ip -n lan addr add 10.77.0.2/24 dev en0p
ip -n lan link set en0p up
ip -n lan link set lo up
ip route add default via 10.77.0.2 dev en0
mkdir -p /srv/www && echo hello >/srv/www/index.html
ip netns exec lan "$PY" -m http.server 8080 --bind 10.77.0.2 --directory /srv/www >/dev/null 2>&1 &

step "edge-nids install-service (no --iface: the default route's interface)"
out=$($E install-service 2>&1)
echo "$out" | sed 's/^/   | /'
if echo "$out" | grep -q "^capture interface: en0 (the default route's"; then ok "interface en0 chosen"; else fail "interface"; fi
if grep -q "^ExecStart=/opt/edge-nids/bin/edge-nids run " /etc/systemd/system/edge-nids.service; then
    ok "ExecStart is the venv's edge-nids"
else
    fail "ExecStart: $(grep ^ExecStart /etc/systemd/system/edge-nids.service)"
fi
grep -q "^  iface: en0$" "$CFG" && ok "config: capture.iface en0" || fail "config iface"
# the file outputs: flows too, so the check sees them
sed -i 's#^  flows: null#  flows: /var/log/edge-nids/flows.json#' "$CFG"

step "systemctl enable --now edge-nids, with en0 down (a box without its interface)"
ip link set en0 down
t=$EPOCHREALTIME
systemctl enable --now edge-nids >/dev/null 2>&1
rc=$?
dt=$(since "$t")
if [ $rc = 0 ] && [ "$(show ActiveState)/$(show SubState)" = active/running ]; then
    ok "enable --now returned in $dt s, active (running): READY=1 sent"
else
    fail "enable --now: rc $rc after $dt s, $(show ActiveState)/$(show SubState)"
fi
st=$(show StatusText)
[[ $st == "waiting for interface en0: interface en0 is down" ]] && ok "STATUS: $st" || fail "STATUS: $st"
sleep 3
st=$(show StatusText)
[[ $st == "waiting for interface en0:"* ]] && ok "STATUS 3 s later: $st" || fail "STATUS 3 s later: $st"
pid=$(show MainPID)
ip link set en0 up
ip route replace default via 10.77.0.2 dev en0
t=$EPOCHREALTIME
if wait_for 40 sh -c 'systemctl show -P StatusText edge-nids | grep -qE "^(capturing on en0|packets=)"'; then
    ok "capture started $(since "$t") s after en0 came up: $(show StatusText)"
else
    fail "capture did not start: $(show StatusText)"
fi

step "traffic: 20 HTTP requests, then a TCP connect scan of 1000 ports"
"$PY" - <<'EOF'
import socket, urllib.request
for _ in range(20):
    urllib.request.urlopen("http://10.77.0.2:8080/", timeout=5).read()
for port in range(1, 1001):
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect(("10.77.0.2", port))
    except OSError:
        pass
    s.close()
EOF
sleep 4
flows=$(wc -l </var/log/edge-nids/flows.json 2>/dev/null || echo 0)
alerts=$(grep -c '"event_type":"alert"' /var/log/edge-nids/alerts.json 2>/dev/null || echo 0)
[ "$flows" -ge 1000 ] && ok "flows.json: $flows flows" || fail "flows.json: $flows flows"
[ "$alerts" -ge 1 ] && ok "alerts.json: $alerts alert lines" || fail "alerts.json: $alerts alert lines"
http=$(grep -c '"dest_port":8080' /var/log/edge-nids/flows.json 2>/dev/null || echo 0)
[ "$http" -ge 20 ] && ok "HTTP flows: $http" || fail "HTTP flows: $http"

step "systemctl reload: a good config"
sed -i 's#^  interval_s: 60.0#  interval_s: 30.0#' "$CFG"
t=$EPOCHREALTIME
if systemctl reload edge-nids; then ok "reload accepted in $(since "$t") s"; else fail "reload refused"; fi
[ "$(show MainPID)" = "$pid" ] && ok "same PID $pid" || fail "PID changed: $(show MainPID)"
# ExecReload's `kill -HUP` returns before the agent has read the new config (systemd 252
# has no Type=notify-reload to wait on), and the journal can lag a loaded box: poll.
if wait_for 10 sh -c 'journalctl -u edge-nids --no-pager -o cat | grep -q "reloaded: model"'; then
    ok "journal: reloaded, $(since "$t") s after the reload began"
else
    fail "no 'reloaded' in the journal 10 s after the reload"
fi

step "systemctl reload: a broken config, then a broken model"
cp "$CFG" /root/config.good
echo "bogus: 1" >>"$CFG"
t=$EPOCHREALTIME
if out=$(systemctl reload edge-nids 2>&1); then
    fail "reload of a broken config succeeded"
else
    ok "reload of a broken config fails in $(since "$t") s: $(echo "$out" | head -1)"
fi
journalctl -u edge-nids --no-pager -o cat | grep -q "check-config: config error: bogus: unknown key" &&
    ok "journal names it: $(journalctl -u edge-nids --no-pager -o cat | grep -m1 'check-config: config error')" ||
    fail "journal does not say why"
cp /root/config.good "$CFG"
sed -i 's#^  path: null#  path: /nonexistent#' "$CFG"
if systemctl reload edge-nids >/dev/null 2>&1; then fail "reload of a broken model succeeded"; else
    ok "reload of a broken model fails: $(journalctl -u edge-nids --no-pager -o cat | grep -m1 'check-config: model')"
fi
cp /root/config.good "$CFG"
[ "$(show MainPID)/$(show ActiveState)" = "$pid/active" ] && ok "still running, PID $pid" ||
    fail "$(show MainPID)/$(show ActiveState)"

step "logrotate -f /etc/logrotate.d/edge-nids"
logrotate -f /etc/logrotate.d/edge-nids && ok "logrotate ran" || fail "logrotate failed"
[ -f /var/log/edge-nids/flows.json.1 ] && ok "flows.json.1 kept" || fail "no flows.json.1"
"$PY" -c 'import urllib.request; [urllib.request.urlopen("http://10.77.0.2:8080/", timeout=5).read() for _ in range(5)]'
sleep 3
n=$(wc -l </var/log/edge-nids/flows.json 2>/dev/null || echo 0)
[ "$n" -ge 5 ] && ok "new flows.json after rotation: $n flows" || fail "new flows.json: $n flows"

step "journal"
line=$(journalctl -u edge-nids --no-pager -o cat | grep -m1 'edge_nids\.')
[[ $line == INFO* || $line == WARNING* || $line == ERROR* ]] && ok "one timestamp per line: $line" ||
    fail "our own timestamp in the journal: $line"
journalctl -u edge-nids --no-pager -o cat | grep -q "XNNPACK delegate" && ok "LiteRT: XNNPACK delegate" ||
    fail "no XNNPACK delegate"
journalctl -u edge-nids --no-pager -o cat | grep -m1 "capturing on en0" | sed 's/^/   | /'
journalctl -u edge-nids --no-pager -o cat | grep -m1 "capture.buffer_mb asks" | sed 's/^/   | /'

step "systemd-analyze security edge-nids"
systemd-analyze security edge-nids --no-pager | tail -1 | sed 's/^/   | /'
systemd-analyze verify /etc/systemd/system/edge-nids.service && ok "systemd-analyze verify" ||
    fail "systemd-analyze verify"

step "systemctl stop edge-nids"
t=$EPOCHREALTIME
systemctl stop edge-nids
dt=$(since "$t")
res="$(show Result)/$(show ExecMainStatus)"
[ "$res" = success/0 ] && ok "stopped in $dt s, exit 0" || fail "stop: $res after $dt s"
journalctl -u edge-nids --no-pager -o cat | grep -m1 "final stats" | cut -c1-160 | sed 's/^/   | /'
step "inside checks done (failed: $FAILED)"
