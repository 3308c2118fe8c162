"""Print what the chat channels received in `make demo`, as a person would
read it: the custom notifications published to the chat topic (read back
from the SQS queue subscribed to it: what Amazon Q Developer in chat
applications would render in Slack or Teams), and the Block Kit messages
the local Slack webhook receiver got. `--json` prints the first trigger
and resolve as published, for the README."""
import json
import sys

import boto3

queue_url, slack_log = sys.argv[1], sys.argv[2]
as_json = "--json" in sys.argv
sqs = boto3.client("sqs")
notes = []
while True:
    got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    if not got:
        break
    for m in got:
        notes.append(json.loads(json.loads(m["Body"])["Message"]))
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
try:
    with open(slack_log) as f:
        posts = [json.loads(line)["event"] for line in f]
except FileNotFoundError:
    posts = []
open(slack_log, "w").close()

shown_json = set()
for n in notes:
    c, md = n["content"], n["metadata"]
    print(f"--- chat topic  [thread {md['threadId'][:17]}…  {md['eventType']}]")
    print(f"    {c['title']}")
    for line in c["description"].splitlines():
        print(f"      {line}")
    for step in c.get("nextSteps", []):
        print(f"      → {step.strip('`')}")
    event = md["eventType"].rsplit(".", 1)[-1]
    if as_json and event in ("trigger", "resolve") and event not in shown_json:
        shown_json.add(event)
        print("    as published:")
        print("    " + json.dumps(n, indent=2).replace("\n", "\n    "))
for p in posts:
    print("--- Slack webhook (Block Kit)")
    for b in p.get("blocks", []):
        if b["type"] == "header":
            print(f"    # {b['text']['text']}")
        elif b["type"] == "section" and "fields" in b:
            print("    " + "   ".join(f["text"].replace("\n", " ") for f in b["fields"]))
        elif b["type"] == "section":
            for line in b["text"]["text"].splitlines():
                print(f"    {line}")
        elif b["type"] == "context":
            print(f"    ({b['elements'][0]['text']})")
if not notes and not posts:
    print("    (nothing new in the chat channels)")
