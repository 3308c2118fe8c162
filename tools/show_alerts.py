"""Print what on-call received in `make demo`: SNS messages read back from
the subscribed SQS queue, and the events the local PagerDuty receiver got."""
import json
import sys

import boto3

queue_url, pd_log = sys.argv[1], sys.argv[2]
sqs = boto3.client("sqs")
shown = 0
while True:
    got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    if not got:
        break
    for m in got:
        env = json.loads(m["Body"])
        attrs = {k: v["Value"] for k, v in env.get("MessageAttributes", {}).items()}
        print(f"--- SNS  subject: {env.get('Subject')}")
        print(f"    attributes: {json.dumps(attrs, sort_keys=True)}")
        for line in env["Message"].splitlines():
            print(f"    | {line}")
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        shown += 1
try:
    with open(pd_log) as f:
        lines = f.readlines()
except FileNotFoundError:
    lines = []
open(pd_log, "w").close()
for line in lines:
    rec = json.loads(line)
    ev = rec["event"]
    ev["routing_key"] = "<redacted>"
    print(f"--- PagerDuty POST {rec['path']}")
    print("    " + json.dumps(ev, indent=2).replace("\n", "\n    "))
    shown += 1
if not shown:
    print("    (nothing new for on-call: no SNS message, no PagerDuty event)")
