"""`make bench-lambda`: the release Lambda binary, cold, on large lock tables.

For each size N it starts moto_server on a free loopback port, fills a lock
table with N stale-and-fresh synthetic Terraform locks plus their N digests,
then runs the binary cold RUNS times under a minimal Lambda Runtime API (one
`{"dry_run": true}` invocation each, as `aws lambda invoke` would send) and
prints, per run: init time (process start to its first `/next`), invocation
time, CPU (user + system), peak RSS and the response's size. Everything is
loopback only, with static credentials; nothing here is a test and nothing
asserts a time.

Usage: bench_lambda.py BINARY [N ...]   (default sizes: 10000 100000)
"""

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import boto3

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
TABLE = "terraform-state-locks"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_moto(venv_bin):
    port = free_port()
    proc = subprocess.Popen(
        [os.path.join(venv_bin, "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            break
        except Exception:
            time.sleep(0.1)
    return proc, url


def fill(url, n):
    session = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    ddb = session.client("dynamodb", endpoint_url=url)
    ddb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    table = session.resource("dynamodb", endpoint_url=url).Table(TABLE)
    now = time.time()
    with table.batch_writer() as batch:
        for i in range(n):
            key = f"tfstate/team-{i % 40}/stack-{i}/terraform.tfstate"
            # One lock in ten is stale (older than the 2h window).
            age = 3 * 3600 if i % 10 == 0 else 60
            created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - age)) + ".123456789Z"
            info = {
                "ID": f"{i:08x}-8b1b-8e4c-d741-a4c77006cd79",
                "Operation": "OperationTypeApply",
                "Info": "",
                "Who": f"ci@runner-{i % 97}",
                "Version": "1.15.5",
                "Created": created,
                "Path": key,
            }
            batch.put_item(Item={"LockID": key, "Info": json.dumps(info, separators=(",", ":"))})
            batch.put_item(Item={"LockID": key + "-md5", "Digest": "0cc175b9c0f1b6a831c399e269772661"})


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    """Serves `invocations` invocations one after another (a warm container
    after the first), recording when each was handed out and answered and
    the process's CPU (user + system) at each answer."""

    event = b'{"dry_run": true}'
    invocations = 1
    pid = None
    # Called at each answer; what it returns is kept beside the answer's time and CPU.
    on_answer = None
    handed = []
    answered = []
    responses = []
    done = threading.Event()
    hold = threading.Event()

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.endswith("/invocation/next"):
            if len(RuntimeApi.handed) >= RuntimeApi.invocations:
                # The poll after the last answer: hold it until the process is killed.
                RuntimeApi.hold.wait(60)
                return
            RuntimeApi.handed.append(time.monotonic())
            self.send_response(200)
            deadline_ms = int((time.time() + 900) * 1000)
            self.send_header("Lambda-Runtime-Aws-Request-Id", f"bench-{len(RuntimeApi.handed)}")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline_ms))
            self.send_header(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:123456789012:function:tf-lock-reaper",
            )
            self.send_header("Content-Length", str(len(self.event)))
            self.end_headers()
            self.wfile.write(self.event)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        at, cpu = time.monotonic(), cpu_s(RuntimeApi.pid)
        RuntimeApi.answered.append((at, cpu, RuntimeApi.on_answer() if RuntimeApi.on_answer else None))
        RuntimeApi.responses.append((self.path, body))
        self.send_response(202)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
        if len(RuntimeApi.responses) >= RuntimeApi.invocations:
            RuntimeApi.done.set()


def cpu_s(pid):
    """User + system CPU of a running process so far, all its threads
    (`/proc/<pid>/stat`, in clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_hwm_kb(pid):
    """Peak resident set of the process since its exec (`VmHWM`). Not
    `ru_maxrss`: that also counts the forked copy of this (large) Python
    process from before the exec."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def lambda_env(url, server, extra):
    """The environment the Lambda service gives the function, against `url`."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "tf-lock-reaper",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "METRICS_SINK": "none",
    }
    env.update(extra)
    return env


def invoke(binary, url, extra_env, event, invocations=1, wrapper=()):
    """`invocations` invocations of `event` under the Runtime API emulation,
    the first one cold: init and invocation times, CPU, peak RSS and the
    response of the first; with more, `warm` lists the later ones'
    invocation time, CPU and response size. `wrapper`: a command the binary
    runs under (`valgrind --tool=callgrind ...`)."""
    RuntimeApi.handed = []
    RuntimeApi.answered = []
    RuntimeApi.responses = []
    RuntimeApi.invocations = invocations
    RuntimeApi.done = threading.Event()
    RuntimeApi.hold = threading.Event()
    RuntimeApi.event = event
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    started = time.monotonic()
    env = lambda_env(url, server, extra_env)
    proc = subprocess.Popen([*wrapper, binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    RuntimeApi.pid = proc.pid
    RuntimeApi.done.wait(1800)
    peak_rss_kb = vm_hwm_kb(proc.pid)
    # SIGTERM first, so a wrapper such as `valgrind --tool=callgrind` can
    # write its counts; then make sure.
    proc.terminate()
    give_up = time.monotonic() + 60
    while True:
        pid, _, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > give_up:
            proc.kill()
            os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    RuntimeApi.hold.set()
    server.shutdown()
    for path, body in RuntimeApi.responses or [("", b"")]:
        assert path.endswith("/response"), f"the function did not answer: {path} {body[:300]!r}"
    (first_at, first_cpu, first_mark), body = RuntimeApi.answered[0], RuntimeApi.responses[0][1]
    warm = []
    for n in range(1, len(RuntimeApi.responses)):
        (at, cpu, mark), (_, prev_cpu, _) = RuntimeApi.answered[n], RuntimeApi.answered[n - 1]
        warm.append({
            "mark": mark,
            "invoke_ms": (at - RuntimeApi.handed[n]) * 1000,
            "cpu_s": cpu - prev_cpu,
            "response_bytes": len(RuntimeApi.responses[n][1]),
            "summary": json.loads(RuntimeApi.responses[n][1]),
        })
    return {
        "init_ms": (RuntimeApi.handed[0] - started) * 1000,
        "invoke_ms": (first_at - RuntimeApi.handed[0]) * 1000,
        "cpu_s": first_cpu,
        "peak_rss_mb": peak_rss_kb / 1024,
        "response_bytes": len(body),
        "summary": json.loads(body),
        "mark": first_mark,
        "warm": warm,
    }


def run_once(binary, url):
    extra = {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "LOCK_TABLES": TABLE, "RUN_BUDGET": "600s"}
    r = invoke(binary, url, extra, b'{"dry_run": true}')
    counts = r.pop("summary")["totals"]
    r["locks_held"] = counts["locks_held"]
    r["stale"] = counts["stale"]
    return r


PYTHON_BASELINE = r"""
import json, sys, datetime, boto3
ddb = boto3.client("dynamodb")
now = datetime.datetime.now(datetime.timezone.utc)
held = stale = 0
for page in ddb.get_paginator("scan").paginate(TableName=sys.argv[1]):
    for item in page["Items"]:
        if item["LockID"]["S"].endswith("-md5"):
            continue
        info = json.loads(item["Info"]["S"])
        created = datetime.datetime.fromisoformat(info["Created"][:26] + "+00:00")
        held += 1
        stale += (now - created).total_seconds() >= 7200
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(json.dumps({"locks_held": held, "stale": stale, "vm_hwm_kb": int(hwm)}))
"""


def run_python_baseline(url):
    """The same scan and parse in plain Python with boto3, for comparison."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", PYTHON_BASELINE, TABLE], env=env, stdout=subprocess.PIPE)
    out = proc.stdout.read()
    _, _, usage = os.wait4(proc.pid, 0)
    return {
        "wall_ms": (time.monotonic() - started) * 1000,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": json.loads(out)["vm_hwm_kb"] / 1024,
        "result": json.loads(out),
    }


def main():
    binary = os.path.abspath(sys.argv[1])
    sizes = [int(n) for n in sys.argv[2:]] or [10_000, 100_000]
    venv_bin = os.path.dirname(sys.executable)
    print(f"{'locks':>8} {'run':>3} {'init ms':>8} {'invoke ms':>10} {'cpu s':>7} {'peak RSS MB':>12} {'response B':>11}")
    for n in sizes:
        moto, url = start_moto(venv_bin)
        try:
            fill(url, n)
            for run in range(1, RUNS + 1):
                r = run_once(binary, url)
                assert r["locks_held"] == n, r
                print(
                    f"{n:>8} {run:>3} {r['init_ms']:>8.1f} {r['invoke_ms']:>10.0f} {r['cpu_s']:>7.2f} "
                    f"{r['peak_rss_mb']:>12.1f} {r['response_bytes']:>11}",
                    flush=True,
                )
            p = run_python_baseline(url)
            assert p["result"]["locks_held"] == n, p
            print(
                f"{n:>8} {'py':>3} {'-':>8} {p['wall_ms']:>10.0f} {p['cpu_s']:>7.2f} {p['peak_rss_mb']:>12.1f} {'-':>11}"
                "   (plain boto3 scan + json.loads of every Info, for comparison)",
                flush=True,
            )
        finally:
            moto.kill()
            moto.wait()


if __name__ == "__main__":
    main()
