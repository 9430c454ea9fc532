# Shared by bench/upgrade-downtime and bench/upgrade-backup: a throwaway
# root (never the machine's /opt) with Mattermost installed by hand from a
# release tarball built here, the stand-in server of tests/upgrade.rs as
# bin/mattermost, a STAND-IN systemctl (no systemd in a root; run chrooted
# with busybox-static as its shell), and DATA_MB of data in FILES files
# under ./data. The issue asks for 2 GiB in 20,000 files (the default);
# scale down with DATA_MB=... FILES=... when the disk or the time does
# not allow it, and say so next to the figures.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cargo build --release --quiet --example standin-mattermost
STANDIN=$PWD/target/release/examples/standin-mattermost
DATA_MB=${DATA_MB:-2048}
FILES=${FILES:-20000}
# Where the roots (or the loop images holding them) go: the build's own
# directory unless told (BENCH_DIR); never the machine's /var or /opt.
BENCH_DIR=${BENCH_DIR:-$PWD/target/bench}
mkdir -p "$BENCH_DIR"
command -v busybox >/dev/null || { echo "needs busybox-static" >&2; exit 1; }
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 1; }

# release DIR VERSION: mattermost-VERSION-linux-amd64.tar.gz in DIR.
release() {
  local d=$1 v=$2 t
  t=$(mktemp -d "$d/rel-XXXXXX")
  mkdir -p "$t/mattermost"/{bin,config,client,i18n,logs}
  echo "$v" >"$t/mattermost/VERSION"
  cp "$STANDIN" "$t/mattermost/bin/mattermost"
  printf '{\n    "ServiceSettings": {\n        "SiteURL": "",\n        "ListenAddress": ":%s"\n    },\n    "SqlSettings": {\n        "DriverName": "postgres",\n        "DataSource": "file:/var/lib/mmdb/schema"\n    },\n    "FileSettings": {\n        "DriverName": "local",\n        "Directory": "./data/"\n    }\n}\n' "$PORT" >"$t/mattermost/config/config.json"
  chmod 600 "$t/mattermost/config/config.json"
  echo "<html>$v</html>" >"$t/mattermost/client/root.html"
  echo '{}' >"$t/mattermost/i18n/en.json"
  tar -C "$t" -czf "$d/mattermost-$v-linux-amd64.tar.gz" mattermost
  rm -rf "$t"
}

# make_root DIR VERSION: a root with VERSION installed by hand, no data, running.
make_root() {
  local r=$1 v=$2 lib
  mkdir -p "$r"/{bin,usr/bin,run,var/log,var/lib/mmdb,opt,dev,etc}
  cp /bin/busybox "$r/bin/busybox"
  for t in sh sleep cat kill rm mv; do ln -sf busybox "$r/bin/$t"; done
  cat >"$r/usr/bin/systemctl" <<'SH'
#!/bin/sh
# STAND-IN for systemctl (no systemd in a root): one service, pid file.
svc="$2"; pidf="/run/$svc.pid"
case "$1" in
start)
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then exit 0; fi
  cd /opt/mattermost || exit 1
  # A subshell stays the server's parent and reaps it at once, as systemd
  # does; an orphan's zombie waits for PID 1, which here can take a second.
  rm -f "$pidf"
  ( ./bin/mattermost >>"/var/log/$svc.log" 2>&1 </dev/null & echo $! >"$pidf.new"; mv "$pidf.new" "$pidf"; wait ) >/dev/null 2>&1 </dev/null &
  while [ ! -f "$pidf" ]; do sleep 0.01; done
  ;;
stop)
  [ -f "$pidf" ] || exit 0
  pid="$(cat "$pidf")"; kill "$pid" 2>/dev/null
  while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
  rm -f "$pidf"
  ;;
esac
SH
  chmod 755 "$r/usr/bin/systemctl"
  [ -e "$r/dev/null" ] || mknod -m 666 "$r/dev/null" c 1 3
  for lib in $(ldd "$STANDIN" | grep -o '/[^ ]*'); do
    mkdir -p "$r$(dirname "$lib")"; cp -L "$lib" "$r$lib"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nmattermost:x:994:994::/opt/mattermost:/bin/sh\n' >"$r/etc/passwd"
  printf 'root:x:0:\nmattermost:x:994:\n' >"$r/etc/group"
  tar -C "$r/opt" -xzf "$WORK/mattermost-$v-linux-amd64.tar.gz"
  mkdir -p "$r/opt/mattermost/tls" && echo key >"$r/opt/mattermost/tls/key.pem"
  chown -R 994:994 "$r/opt/mattermost"
  setcap cap_net_bind_service=+ep "$r/opt/mattermost/bin/mattermost"
}

# fill_data DIR: DATA_MB in FILES files, 100 to a directory.
fill_data() {
  python3 - "$1" "$DATA_MB" "$FILES" <<'PY'
import os, sys
d, mb, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = mb * 1024 * 1024 // n
blob = os.urandom(size)
for i in range(n):
    sub = os.path.join(d, "users", str(i // 100))
    if i % 100 == 0:
        os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"f{i}.bin"), "wb") as f:
        f.write(i.to_bytes(8, "little") + blob[8:])
PY
  chown -R 994:994 "$1"
}

svc() { chroot "$1" /usr/bin/systemctl "$2" mattermost; }

ping_ok() {
  python3 - "$PORT" <<'PY'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
    s.sendall(b"GET /api/v4/system/ping HTTP/1.0\r\n\r\n")
    d = b""
    while True:
        c = s.recv(4096)
        if not c: break
        d += c
    sys.exit(0 if b"OK" in d else 1)
except Exception:
    sys.exit(1)
PY
}

wait_up() { for _ in $(seq 300); do ping_ok && return 0; sleep 0.05; done; echo "never came up" >&2; return 1; }

# poll_start FILE: polls the ping every 5 ms; after poll_stop, FILE holds the
# longest time it did not answer OK, in ms (the downtime a client sees).
poll_start() {
  POLL_OUT=$1; rm -f "$POLL_OUT.stop" "$POLL_OUT.ready"
  python3 - "$PORT" "$POLL_OUT" <<'PY' &
import os, socket, sys, time
port, out = int(sys.argv[1]), sys.argv[2]
def ok():
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
        s.sendall(b"GET /api/v4/system/ping HTTP/1.0\r\n\r\n")
        d = b""
        while True:
            c = s.recv(4096)
            if not c: break
            d += c
        return b"OK" in d
    except Exception:
        return False
down, worst, ready = None, 0.0, False
while not os.path.exists(out + ".stop"):
    good, t = ok(), time.monotonic()
    if good and not ready:
        open(out + ".ready", "w").close()
        ready = True
    if not good and down is None: down = t
    if good and down is not None:
        worst, down = max(worst, t - down), None
    time.sleep(0.005)
open(out, "w").write("%.0f" % (worst * 1000))
PY
  POLL_PID=$!
  # Polling before anything is stopped (python takes a while to start).
  while [ ! -e "$POLL_OUT.ready" ]; do sleep 0.01; done
}
# Not in $(...): a subshell cannot wait for the poller, and would read its
# file before it is written.
poll_stop() { touch "$POLL_OUT.stop"; wait "$POLL_PID"; }
