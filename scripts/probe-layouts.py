#!/usr/bin/env python3
"""What a memory costs the server, per storage layout and operation, with no client library.

Starts a private redis-server on a free port (pinned to the last CPU, this probe to the
first, when there are two or more), sends each layout's commands for one operation over one
connection, 16 operations in flight, and prints the server's CPU time per operation
(`INFO cpu`, user + sys, before and after): what the server's one thread spends, syscalls
included, so `1e6 / µs` bounds the rate of that operation whatever the client does.

  store   hand       MULTI, SET blob PX, ZADD timeline, ZADD steps, ZADD importance, EXEC:
                     what a user writes by hand (the bench's baseline)
          +expiry    the same plus ZADD expiry and ZCARD timeline (cleanup and capacity)
          +ttl       that plus PEXPIRE of the four indexes on every write
          lua        one script doing SET, four ZADD, PTTL and ZCARD (what a script costs)
          lex        MULTI, SET blob PX, one ZADD of four lexically encoded members to a
                     single index, PEXPIRE of that index, ZCARD, EXEC: the tiers' write
  get     hget       one HGET (the yardstick of a read by id)
          get        one GET of the entry (the same yardstick for an entry stored as a string)
          bitfield   BITFIELD INCRBY u32 8 1 SET i64 40 now, then GET, pipelined: the tiers'
                     counted read (bf-sat: with OVERFLOW SAT)
          multi-z    MULTI, GET blob, ZADD XX INCR (count), ZADD XX GT (last access), EXEC
          lua        one script: GET, HINCRBY, HSET
  recent  zrevrange  ZREVRANGE timeline 0 19
          mget       MGET of 20 blobs

Usage: scripts/probe-layouts.py [--ops N]
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BLOB = (b"x" * 400)
NOW = 1_764_160_000_000
TTL = 86_400_000


def enc(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n")
        line, self.buf = self.buf[:i], self.buf[i + 2:]
        return line

    def reply(self):
        line = self._line()
        kind = line[:1]
        if kind == b"-":
            raise RuntimeError(line.decode())
        if kind in b"+:":
            return line
        if kind == b"$":
            n = int(line[1:])
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"*":
            n = int(line[1:])
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError(f"unexpected reply {line!r}")

    def cmd(self, *args):
        self.send(enc(*args))
        return self.reply()

    def server_cpu(self):
        info = self.cmd("INFO", "cpu").decode()
        fields = dict(l.split(":", 1) for l in info.split("\r\n") if ":" in l)
        return float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])


def mid(i):
    return "01JXYZ%020d" % i


K = "p:{agent}:"


def hand(i):
    m = mid(i)
    return (enc("MULTI") + enc("SET", K + "m:" + m, BLOB, "PX", TTL)
            + enc("ZADD", K + "t", NOW + i, m) + enc("ZADD", K + "s", i, m)
            + enc("ZADD", K + "i", "0.5", m) + enc("EXEC")), 6


def expiry(i):
    m = mid(i)
    return (enc("MULTI") + enc("SET", K + "m:" + m, BLOB, "PX", TTL)
            + enc("ZADD", K + "t", NOW + i, m) + enc("ZADD", K + "s", i, m)
            + enc("ZADD", K + "i", "0.5", m) + enc("ZADD", K + "e", NOW + i + TTL, m)
            + enc("ZCARD", K + "t") + enc("EXEC")), 8


def with_ttl(i):
    m = mid(i)
    arm = b"".join(enc("PEXPIRE", K + k, TTL + 3_600_000) for k in "tsie")
    return (enc("MULTI") + enc("SET", K + "m:" + m, BLOB, "PX", TTL)
            + enc("ZADD", K + "t", NOW + i, m) + enc("ZADD", K + "s", i, m)
            + enc("ZADD", K + "i", "0.5", m) + enc("ZADD", K + "e", NOW + i + TTL, m)
            + arm + enc("ZCARD", K + "t") + enc("EXEC")), 12


STORE_LUA = """
redis.call('SET', KEYS[5], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
redis.call('ZADD', KEYS[4], ARGV[7], ARGV[6])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[2] + 3600000) end
end
return redis.call('ZCARD', KEYS[1])
"""


def lex(i):
    m = mid(i)
    deadline = NOW + i + TTL
    half = "3fe0000000000000"  # the bits of 0.5: positive doubles order as their bits
    members = ["t%016x%s" % (NOW + i, m), "s%016x%s" % (i, m), "i%s%s" % (half, m),
               "x%016x%016x%016x%s%s" % (deadline, NOW + i, i, half, m)]
    zadd = ["ZADD", K + "x"] + [a for member in members for a in ("0", member)]
    return (enc("MULTI") + enc("SET", K + "m:" + m, BLOB, "PX", TTL) + enc(*zadd)
            + enc("PEXPIRE", K + "x", TTL + 3_600_000) + enc("ZCARD", K + "x")
            + enc("EXEC")), 6


GET_LUA = ("local b = redis.call('GET', KEYS[1]) if not b then return false end "
           "local r = redis.call('HINCRBY', KEYS[2], ARGV[1], 1) "
           "redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) return {b, r}")


def measure(conn, name, build, ops, depth=16):
    before = conn.server_cpu()
    i = 0
    while i < ops:
        batch, replies = [], 0
        for k in range(depth):
            data, n = build(i + k)
            batch.append(data)
            replies += n
        conn.send(b"".join(batch))
        for _ in range(replies):
            conn.reply()
        i += depth
    after = conn.server_cpu()
    print(f"  {name:<10} {1e6 * (after - before) / ops:7.2f} µs per operation in the server")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=32_000)
    ops = parser.parse_args().ops
    server = shutil.which("redis-server")
    if server is None:
        sys.exit("needs redis-server (apt-get install -y redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cpus = sorted(os.sched_getaffinity(0))
    workdir = tempfile.mkdtemp()
    proc = subprocess.Popen([server, "--port", str(port), "--save", "", "--appendonly", "no",
                             "--dir", workdir], stdout=subprocess.DEVNULL)
    try:
        if len(cpus) >= 2:
            os.sched_setaffinity(proc.pid, {cpus[-1]})
            os.sched_setaffinity(0, {cpus[0]})
            print(f"pinned: server on CPU {cpus[-1]}, probe on CPU {cpus[0]}")
        for _ in range(100):
            try:
                conn = Conn(port)
                conn.cmd("PING")
                break
            except OSError:
                time.sleep(0.05)
        else:
            sys.exit("redis-server did not start")
        store_sha = conn.cmd("SCRIPT", "LOAD", STORE_LUA).decode()
        get_sha = conn.cmd("SCRIPT", "LOAD", GET_LUA).decode()

        def lua_store(i):
            m = mid(i)
            return enc("EVALSHA", store_sha, 5, K + "t", K + "s", K + "i", K + "e",
                       K + "m:" + m, BLOB, TTL, NOW + i, i, "0.5", m, NOW + i + TTL), 1

        print(f"store ({ops} memories of {len(BLOB)} bytes each, one agent)")
        for name, build in [("hand", hand), ("+expiry", expiry), ("+ttl", with_ttl),
                            ("lua", lua_store), ("lex", lex), ("hand", hand)]:
            conn.cmd("FLUSHALL")
            measure(conn, name, build, ops)

        conn.cmd("FLUSHALL")
        for start in range(0, ops, 1000):
            batch = [hand(i)[0] for i in range(start, start + 1000)]
            conn.send(b"".join(batch))
            for _ in range(6 * 1000):
                conn.reply()
        conn.send(b"".join(enc("HSET", K + "h:" + mid(i), "r", 0) for i in range(ops)))
        for _ in range(ops):
            conn.reply()
        conn.send(b"".join(enc("ZADD", K + "c", 0, "r" + mid(i), NOW, "a" + mid(i))
                           for i in range(ops)))
        for _ in range(ops):
            conn.reply()
        print("get (by id, counting the read)")
        measure(conn, "hget", lambda i: (enc("HGET", K + "h:" + mid(i), "r"), 1), ops)
        measure(conn, "multi-z", lambda i: (
            enc("MULTI") + enc("GET", K + "m:" + mid(i))
            + enc("ZADD", K + "c", "XX", "INCR", 1, "r" + mid(i))
            + enc("ZADD", K + "c", "XX", "GT", NOW + 1, "a" + mid(i)) + enc("EXEC"), 5), ops)
        measure(conn, "lua", lambda i: (
            enc("EVALSHA", get_sha, 2, K + "m:" + mid(i), K + "c2", mid(i), mid(i) + ":a",
                NOW), 1), ops)
        measure(conn, "hget", lambda i: (enc("HGET", K + "h:" + mid(i), "r"), 1), ops)
        measure(conn, "get", lambda i: (enc("GET", K + "m:" + mid(i)), 1), ops)
        conn.send(b"".join(enc("SET", K + "b:" + mid(i), b"\x03" + bytes(12) + BLOB, "PX", TTL)
                           for i in range(ops)))
        for _ in range(ops):
            conn.reply()
        for name, sat in [("bitfield", []), ("bf-sat", ["OVERFLOW", "SAT"])]:
            measure(conn, name, lambda i, sat=sat: (
                enc("BITFIELD", K + "b:" + mid(i), *sat, "INCRBY", "u32", 8, 1, "SET", "i64",
                    40, NOW) + enc("GET", K + "b:" + mid(i)), 2), ops)
        measure(conn, "get", lambda i: (enc("GET", K + "m:" + mid(i)), 1), ops)

        ids = [x.decode() for x in conn.cmd("ZREVRANGE", K + "t", 0, 19)]
        print("recent(20): the two commands of the hand-written read")
        measure(conn, "zrevrange", lambda i: (enc("ZREVRANGE", K + "t", 0, 19), 1), ops // 2)
        measure(conn, "mget", lambda i: (enc("MGET", *[K + "m:" + x for x in ids]), 1),
                ops // 2)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
