"""`make bench-org`: the release Lambda binary, cold, over a local AWS
Organization: ACCOUNTS member accounts (default 200), two regions each, one
lock table per account and region (two in every fourth account) holding a
few locks, one of them stale, and a non-lock table beside each, all in one
moto_server over loopback.

One invocation, at the module's defaults (128 MB, RUN_BUDGET 50s within a
60 s timeout, ORGANIZATION_ACCOUNTS=all): prints the invocation time, the
discovery time (the invocation less the pass the report times), the pass
time, AWS calls in all and per source (moto's request log), CPU, peak RSS
and the response's size. Nothing here is a test and nothing asserts a time.

Usage: bench_org.py BINARY [ACCOUNTS]
"""

import json
import os
import subprocess
import sys
import time
import urllib.request

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_lambda  # noqa: E402  (the Runtime API emulation and peak RSS)

REGIONS = ["us-east-1", "eu-west-1"]
ROLE = "tf-lock-reaper-access"


def start_moto(log_path):
    """tools/moto_server.py (one request at a time, as AWS applies them), its
    request log in `log_path`."""
    log = open(log_path, "w")
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.Popen(
        [sys.executable, os.path.join(here, "moto_server.py"), "-H", "127.0.0.1", "-p", "0"],
        stdout=subprocess.DEVNULL,
        stderr=log,
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


def requests(log_path):
    with open(log_path) as f:
        return sum(1 for line in f if '" 200 ' in line or '" 400 ' in line or '" 403 ' in line)


def main():
    binary = os.path.abspath(sys.argv[1])
    accounts = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    log_path = f"/tmp/bench-org-moto-{os.getpid()}.log"
    moto, url = start_moto(log_path)
    try:
        t0 = time.monotonic()
        ids, lock_tables, other_tables = build(url, accounts)
        print(f"organisation: {len(ids)} member accounts + the management account, {len(REGIONS)} regions, "
              f"{lock_tables} lock tables, {other_tables} other tables (built in {time.monotonic() - t0:.0f} s)")
        before = requests(log_path)
        r = run(binary, url)
        calls = requests(log_path) - before
        summary = r["summary"]
        d = summary.get("discovery") or {}
        sources = len(summary["sources"])
        pass_ms = summary["duration_ms"]
        print(f"{'invoke ms':>10} {'discovery ms':>13} {'pass ms':>8} {'sources':>8} {'calls':>6} {'calls/source':>13} "
              f"{'cpu s':>6} {'peak RSS MB':>12} {'response B':>11} {'ok':>5}")
        print(f"{r['invoke_ms']:>10.0f} {r['invoke_ms'] - pass_ms:>13.0f} {pass_ms:>8} {sources:>8} {calls:>6} "
              f"{calls / max(sources, 1):>13.1f} {r['cpu_s']:>6.2f} {r['peak_rss_mb']:>12.1f} "
              f"{r['response_bytes']:>11} {str(summary['ok']):>5}")
        print(f"discovery: {d.get('accounts')} accounts, {d.get('searched')} account/region pairs, "
              f"{d.get('tables')} lock tables, {d.get('other_tables')} other tables, "
              f"{len(d.get('failures', []))} failures; stale locks: "
              f"{sum(s['counts']['stale'] for s in summary['sources'])}")
    finally:
        moto.kill()
        moto.wait()


def run(binary, url):
    """One cold invocation through bench_lambda's Runtime API emulation,
    with the discovery settings."""
    extra = {
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "ORGANIZATION_ACCOUNTS": "all",
        "MEMBER_ROLE_NAME": ROLE,
        "DISCOVER_REGIONS": ",".join(REGIONS),
        "MAX_DELETES_PER_RUN": "1000",
    }
    return bench_lambda.invoke(binary, url, extra, b'{"source": "aws.scheduler"}')


if __name__ == "__main__":
    main()
