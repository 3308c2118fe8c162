"""`make bench-org`: the release Lambda binary, cold, over a local AWS
Organization: ACCOUNTS member accounts (default 200), two regions each, one
lock table per account and region (two in every fourth account) holding a
few locks, one of them stale, and a non-lock table beside each, all in one
moto_server over loopback.

Per binary, one cold invocation then one warm one (discovery cached in the
container), at the module's defaults (128 MB, RUN_BUDGET 50s within a 60 s
timeout, ORGANIZATION_ACCOUNTS=all): the invocation time, the discovery time
(the invocation less the pass the report times), sources, AWS calls (moto's
request log), CPU (user + system, all threads) in all and per source, peak
RSS, the result's size, and the CPU time projected at 128, 256 and 512 MB,
where Lambda gives a function a share of one vCPU in proportion to its
memory (one vCPU at 1,769 MB). With BENCH_ORG_BASELINE=<binary>, that binary
runs too, against the same organisation in the same run, for a side-by-side
comparison. Each binary runs twice: with its connections kept alive (a
keep-alive front before moto, as AWS's endpoints keep them) and straight to
moto, whose server closes every connection after one response (a TCP
connect and teardown per call, which AWS does not cost). Nothing here is a
test and nothing asserts a time.

BENCH_ORG_CONNECTIONS=kept (or closed) runs one way only. BENCH_ORG_CALLGRIND=1
counts instead the instructions of one cold invocation per binary under
valgrind's callgrind (`make bench-org-instructions`): seconds wobble on a
shared machine, instruction counts do not.

Usage: [BENCH_ORG_BASELINE=OTHER] bench_org.py BINARY [ACCOUNTS]
"""

import collections
import json
import os
import subprocess
import sys
import time
import urllib.request

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_lambda  # noqa: E402  (the Runtime API emulation and peak RSS)
import keepalive_proxy  # noqa: E402

REGIONS = ["us-east-1", "eu-west-1"]
ROLE = "tf-lock-reaper-access"


def start_moto(log_path, operation_log):
    """tools/moto_server.py (one request at a time, as AWS applies them), its
    request log in `log_path`, the operation of each request in `operation_log`."""
    log = open(log_path, "w")
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.Popen(
        [sys.executable, os.path.join(here, "moto_server.py"), "-H", "127.0.0.1", "-p", "0"],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={**os.environ, "MOTO_OPERATION_LOG": operation_log},
    )
    for _ in range(300):
        time.sleep(0.1)
        with open(log_path) as f:
            text = f.read()
        if "http://127.0.0.1:" in text:
            port = int(text.split("http://127.0.0.1:")[1].split()[0].strip("/"))
            url = f"http://127.0.0.1:{port}"
            urllib.request.urlopen(url + "/moto-api/", timeout=5)
            return proc, url
    raise SystemExit("moto_server did not start")


def session(url, creds=None, region="us-east-1"):
    creds = creds or {"AccessKeyId": "test", "SecretAccessKey": "test", "SessionToken": None}
    return boto3.session.Session(
        region_name=region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
    )


def lock_table(ddb, name, n_locks):
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    now = time.time()
    for i in range(n_locks):
        key = f"tfstate/{name}/stack-{i}/terraform.tfstate"
        age = 3 * 3600 if i == 0 else 60
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - age)) + "Z"
        info = {"ID": f"{i:08x}-0000-0000-0000-000000000000", "Operation": "OperationTypeApply", "Info": "",
                "Who": "ci@runner", "Version": "1.15.5", "Created": created, "Path": key}
        ddb.put_item(TableName=name, Item={"LockID": {"S": key}, "Info": {"S": json.dumps(info)}})


def build(url, accounts):
    root = session(url)
    orgs = root.client("organizations", endpoint_url=url)
    orgs.create_organization(FeatureSet="ALL")
    sts = root.client("sts", endpoint_url=url)
    ids = []
    for i in range(accounts):
        out = orgs.create_account(AccountName=f"member-{i}", Email=f"m{i}@example.com")
        ids.append(out["CreateAccountStatus"]["AccountId"])
    lock_tables = other_tables = 0
    for n, account in enumerate(ids):
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ROLE}", RoleSessionName="setup")["Credentials"]
        for region in REGIONS:
            ddb = session(url, creds, region).client("dynamodb", endpoint_url=url)
            for t in range(2 if n % 4 == 0 else 1):
                lock_table(ddb, f"terraform-locks-{t}", 4)
                lock_tables += 1
            ddb.create_table(
                TableName="orders",
                AttributeDefinitions=[{"AttributeName": "OrderId", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "OrderId", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
            other_tables += 1
    return ids, lock_tables, other_tables


def operations(operation_log):
    """The operation of every request so far, in order."""
    try:
        with open(operation_log) as f:
            return [line.strip() for line in f]
    except FileNotFoundError:
        return []


# Lambda gives a function one vCPU at 1,769 MB, and CPU in proportion below it.
VCPU_MB = 1769
MEMORY_SIZES = [128, 256, 512]


def sources_of(summary):
    """Sources in the pass: the bounded summary's totals (this commit's
    shape) or the length of its list (before it was bounded)."""
    totals = summary.get("totals")
    return totals["sources"] if totals else len(summary["sources"])


def stale_of(summary):
    totals = summary.get("totals")
    return totals["stale"] if totals else sum(s["counts"]["stale"] for s in summary["sources"])


def main():
    args = sys.argv[1:]
    binaries = [("this", os.path.abspath(args[0]))]
    accounts = int(args[1]) if len(args) > 1 else 200
    baseline = os.environ.get("BENCH_ORG_BASELINE")
    if baseline:
        binaries.append(("baseline", os.path.abspath(baseline)))
    log_path = f"/tmp/bench-org-moto-{os.getpid()}.log"
    operation_log = f"/tmp/bench-org-operations-{os.getpid()}.log"
    moto, url = start_moto(log_path, operation_log)
    try:
        t0 = time.monotonic()
        ids, lock_tables, other_tables = build(url, accounts)
        print(f"organisation: {len(ids)} member accounts + the management account, {len(REGIONS)} regions, "
              f"{lock_tables} lock tables, {other_tables} other tables (built in {time.monotonic() - t0:.0f} s)")
        if os.environ.get("BENCH_ORG_CALLGRIND"):
            return count_instructions(binaries, url, log_path)
        rows = []
        front, stop_front = keepalive_proxy.start(url)
        try:
            modes = [("kept", front), ("closed", url)]
            only = os.environ.get("BENCH_ORG_CONNECTIONS")
            for connections, endpoint in [m for m in modes if not only or m[0] == only]:
                for label, binary in binaries:
                    before = len(operations(operation_log))
                    r = run(binary, endpoint, lambda: len(operations(operation_log)))
                    ops = operations(operation_log)
                    label = f"{label}/{connections}"
                    rows.append((label, "cold", r, ops[before:r["mark"]], r["invoke_ms"] - r["summary"]["duration_ms"]))
                    for w in r["warm"]:
                        rows.append((label, "warm", w, ops[r["mark"]:w["mark"]], None))
        finally:
            stop_front()
        print()
        print("kept: connections kept alive, as AWS's endpoints do (tools/keepalive_proxy.py in front of moto);")
        print("closed: straight to moto, whose server closes the connection after every response.")
        print(f"{'binary':>15} {'pass':>4} {'invoke ms':>10} {'discovery ms':>13} {'sources':>8} {'calls':>6} "
              f"{'cpu s':>6} {'cpu ms/src':>11} {'peak RSS MB':>12} {'result B':>9} {'ok':>5}  "
              + " ".join(f"{f'@{mb}MB s':>9}" for mb in MEMORY_SIZES))
        for label, kind, r, calls, discovery_ms in rows:
            summary = r["summary"]
            sources = sources_of(summary)
            rss = f"{r['peak_rss_mb']:>12.1f}" if "peak_rss_mb" in r else f"{'':>12}"
            disc = f"{discovery_ms:>13.0f}" if discovery_ms is not None else f"{'(cached)':>13}"
            projected = " ".join(f"{r['cpu_s'] * VCPU_MB / mb:>9.1f}" for mb in MEMORY_SIZES)
            print(f"{label:>15} {kind:>4} {r['invoke_ms']:>10.0f} {disc} {sources:>8} {len(calls):>6} "
                  f"{r['cpu_s']:>6.2f} {r['cpu_s'] * 1000 / max(sources, 1):>11.2f} {rss} "
                  f"{r['response_bytes']:>9} {str(summary['ok']):>5}  {projected}")
        print()
        for label, kind, _, calls, _ in rows:
            counted = collections.Counter(calls).most_common()
            print(f"{label} {kind} calls: " + ", ".join(f"{op} {n}" for op, n in counted))
        first = rows[0][2]["summary"]
        d = first.get("discovery") or {}
        print(f"discovery: {d.get('accounts')} accounts, {d.get('searched')} account/region pairs, "
              f"{d.get('tables')} lock tables, {d.get('other_tables')} other tables, "
              f"{len(d.get('failures', []))} failures; stale locks: {stale_of(first)}")
        print(f"@N MB s: the CPU time projected at N MB of function memory (cpu s x {VCPU_MB} / N), "
              "where Lambda gives a share of one vCPU; network waits come on top.")
    finally:
        moto.kill()
        moto.wait()


def count_instructions(binaries, url, log_path):
    """One cold invocation per binary under `valgrind --tool=callgrind`,
    connections kept alive: the instructions it executed (init and the
    invocation), which do not wobble with the machine's load as seconds do.
    valgrind's CPU has no SHA extensions, so request signing counts more
    than on real hardware, alike for every binary."""
    front, stop_front = keepalive_proxy.start(url)
    try:
        counts = []
        for label, binary in binaries:
            out = f"{log_path}.{label}.callgrind"
            wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
            r = bench_lambda.invoke(binary, front, settings(), b'{"source": "aws.scheduler"}', wrapper=wrapper)
            with open(out) as f:
                total = next(int(line.split()[1]) for line in f if line.startswith(("totals:", "summary:")))
            sources = sources_of(r["summary"])
            counts.append((label, total, sources))
            print(f"{label:>8} cold: {total:,} instructions, {sources} sources, "
                  f"{total / max(sources, 1):,.0f} per source", flush=True)
        if len(counts) == 2:
            print(f"this / baseline: {counts[0][1] / counts[1][1]:.2f} of the instructions")
    finally:
        stop_front()


def settings():
    """The Lambda's environment beyond bench_lambda's: the module's
    defaults for an organisation."""
    return {
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "ORGANIZATION_ACCOUNTS": "all",
        "MEMBER_ROLE_NAME": ROLE,
        "DISCOVER_REGIONS": ",".join(REGIONS),
        "MAX_DELETES_PER_RUN": "1000",
    }


def run(binary, url, mark):
    """One cold invocation and one warm one (discovery cached in the
    container) through bench_lambda's Runtime API emulation, with the
    discovery settings; `mark` is read at each answer."""
    bench_lambda.RuntimeApi.on_answer = mark
    try:
        return bench_lambda.invoke(binary, url, settings(), b'{"source": "aws.scheduler"}', invocations=2)
    finally:
        bench_lambda.RuntimeApi.on_answer = None


if __name__ == "__main__":
    main()
